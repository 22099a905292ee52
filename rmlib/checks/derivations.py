"""Checkers for the derivation tasks of worksheet 02 (worksheet 03's, check_default_head_reward_std, lives in layer_init.py): the learner derives a formula the lessons do not print.

Each numeric checker probes the learner's formula at fresh random arguments on every call (drawn from the
check's probe seed, fresh on every call and kept in its record, so ``check_x(x, seed=N)`` replays them, as
for every other checker), so a table of hard-coded answers cannot pass, and
names the typical wrong derivation when one matches: an ignored parameter, a constant factor, 1/sqrt(d)
for 1/sqrt(3d), a variance returned as a std.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from rmlib.checks._contract import _as_float, _call, _checker, _close, _fail, _probe_generator

REL = 1e-6  # a float32 computation of the right formula is exact to ~1e-7


def _probes(n: int, low_d: int = 1, high_d: int = 10_000) -> list[tuple[int, float]]:
    """n fresh (d, x) pairs from this check's probe seed: an integer width in [low_d, high_d] and a positive real
    log-uniform over [0.05, 50]."""
    g = _probe_generator(0)
    d = torch.randint(low_d, high_d + 1, (n,), generator=g).tolist()
    u = torch.rand(n, generator=g, dtype=torch.float64).tolist()
    return [(k, math.exp(math.log(0.05) + a * (math.log(50.0) - math.log(0.05)))) for k, a in zip(d, u)]


def _judge(fn: Callable, name: str, args_names: tuple[str, str], right: Callable[[int, float], float],
           wrong: list[tuple[Callable[[int, float], float], str]]) -> list[tuple[int, float, float]]:
    probes = [(1, 1.0), (3, 0.5)] + _probes(6)
    got = []
    for d, x in probes:
        called = f"{name}({args_names[0]}={d}, {args_names[1]}={x:.6g})"
        got.append(_as_float(_call(fn, d, x, called_as=called), called))
    if all(_close(g, right(d, x), REL) for g, (d, x) in zip(got, probes)):
        return [(d, x, g) for g, (d, x) in zip(got, probes)]
    for formula, hint in wrong:
        if all(_close(g, formula(d, x), 1e-4) for g, (d, x) in zip(got, probes)):
            _fail(hint)
    for g, (d, x) in zip(got, probes):
        if _close(g, right(d, x), REL):
            continue
        if any(_close(g2, g, 1e-9) for g2, (d2, x2) in zip(got, probes) if (d2, x2) != (d, x)
               and not _close(right(d2, x2), right(d, x), 1e-3)):
            _fail(f"{name} returns {g:.6g} for different arguments: does your formula use both {args_names[0]} and "
                  f"{args_names[1]}?")
        _fail(f"{name}({args_names[0]}={d}, {args_names[1]}={x:.6g}) = {g:.6g}, which is not what the derivation "
              f"gives (checked at random arguments, so a hard-coded table cannot pass)")
    raise AssertionError("unreachable")  # pragma: no cover


@_checker("std_for_unit_variance")
def check_std_for_unit_variance(fn: Callable[[int, float], float]) -> str:
    """``fn(d, sigma_h)`` = the σ_w giving Var(r) = 1 when the bias is one more input: 1/sqrt(d σ_h² + 1)."""
    right = lambda d, s: 1 / math.sqrt(d * s**2 + 1)
    wrong = [
        (lambda d, s: 1 / math.sqrt(d + 1), "1/sqrt(d+1) is the answer only for sigma_h = 1: the weights multiply "
         "inputs of variance sigma_h², the bias multiplies the constant 1"),
        (lambda d, s: 1 / (s * math.sqrt(d + 1)), "1/(sigma_h sqrt(d+1)) treats the bias's input as having variance "
         "sigma_h² too; it is the constant 1 (E[1²] = 1)"),
        (lambda d, s: 1 / (s * math.sqrt(d)), "1/(sigma_h sqrt(d)) leaves the bias out: it is one more input, "
         "with value 1, and adds sigma_w² to Var(r)"),
        (lambda d, s: 1 / math.sqrt(d), "1/sqrt(d): this ignores both sigma_h and the bias"),
        (lambda d, s: 1 / (d * s**2 + 1), "you returned the VARIANCE 1/(d sigma_h² + 1); sigma_w is its square root"),
        (lambda d, s: math.sqrt(d * s**2 + 1), "upside down: Var(r) = sigma_w² (d sigma_h² + 1) = 1 gives "
         "sigma_w = 1/sqrt(...)"),
        (lambda d, s: 1 / math.sqrt(d * s + 1), "sigma_h enters squared: each term w_k h_k has variance "
         "sigma_w² sigma_h²"),
    ]
    probes = _judge(fn, "std_for_unit_variance", ("d", "sigma_h"), right, wrong)
    d, s, g = probes[-1]
    return f"sigma_w = 1/sqrt(d sigma_h² + 1), e.g. d = {d}, sigma_h = {s:.3g} → {g:.5g} (sigma_h = 1: 1/sqrt(d+1))"


# The variance chain of lesson 02 §3, numbered as in the worksheet: which line first uses each assumption.
ASSUMPTION_LINES = {"A1": 2, "A2": 3, "A3": 5}
_WHY = {
    "A1": "A1 (w independent of h) is what lets E[w_k w_l h_k h_l] split into E[w_k w_l] E[h_k h_l]",
    "A2": "A2 (independent zero-mean weights of variance sigma_w²) is what kills the k ≠ l terms: "
          "E[w_k w_l] = sigma_w² δ_kl",
    "A3": "A3 (zero-mean coordinates of average variance sigma_h²) is what turns sum_k E[h_k²] into d sigma_h²; "
          "line 4 needs no assumption",
}


@_checker("assumption_lines")
def check_assumption_lines(fn: Callable[[], dict]) -> str:
    """``fn()`` = {"A1": line, "A2": line, "A3": line}: the first line (2–5) of the chain that uses each."""
    answer = _call(fn, called_as="assumption_lines()")
    if not isinstance(answer, dict):
        _fail(f"assumption_lines() must return a dict like {{'A1': 2, ...}}, got {type(answer).__name__}")
    if set(answer) != set(ASSUMPTION_LINES):
        _fail(f"the keys must be exactly 'A1', 'A2', 'A3'; got {sorted(map(str, answer))}")
    for key, line in answer.items():
        if isinstance(line, bool) or not isinstance(line, int) or not 2 <= line <= 5:
            _fail(f"{key}: a line number 2, 3, 4 or 5 (an int), got {line!r}")
    for key in ("A1", "A2", "A3"):
        if answer[key] != ASSUMPTION_LINES[key]:
            _fail(f"{key} → line {answer[key]} is not the first line that needs it. Hint: {_WHY[key]}")
    return "A1 → line 2 (factorise), A2 → line 3 (cross terms vanish), A3 → line 5 (average variance)"


HINTS = {
    "std_for_unit_variance": (
        "Treat the bias as a weight w_0 whose input is always 1. Write r as a sum of d + 1 independent terms.",
        "Var(r) = sum of the variances of the terms: d of them are sigma_w² sigma_h², the bias's is sigma_w² · 1².",
        "Var(r) = sigma_w² (d sigma_h² + 1) = 1, so sigma_w = 1/sqrt(d sigma_h² + 1).",
    ),
    "default_head_reward_std": (
        "Two facts: the std of U(−a, a), and Var_w(r | h) for a fixed h. Which parameters are random here?",
        "U(−a, a) has variance a²/3 with a = 1/sqrt(d); the bias is one more term with input 1.",
        "Var = (1/(3d)) (‖h‖² + 1), std = sqrt((‖h‖² + 1)/(3d)).",
    ),
    "assumption_lines": (
        "Read the chain one line at a time and ask: what would have to be false for this step to fail?",
        "Factorising an expectation of a product needs independence; killing cross terms needs uncorrelated "
        "zero-mean weights; replacing a sum of second moments by d sigma_h² needs the definition of sigma_h.",
        "A1 → 2, A2 → 3, A3 → 5 (line 4 is an identity).",
    ),
}
