"""Checkers for the derivation tasks of worksheet 02 (worksheet 03's, check_default_head_reward_std, lives in layer_init.py): the learner derives a formula the lessons have not printed.

Each numeric checker probes the learner's formula at fresh random arguments on every call (drawn from the
check's probe seed, fresh on every call and kept in its record, so ``check_x(x, seed=N)`` replays them, as
for every other checker), so a table of hard-coded answers cannot pass, and
names the typical wrong derivation when one matches: an ignored parameter, a constant factor, 1/sqrt(d)
for 1/sqrt(3d), a variance returned as a std.
"""

from __future__ import annotations

import decimal
import fractions
import math
from typing import Any, Callable

import numpy as np
import torch

from rmlib.checks._contract import _as_float, _call, _checker, _close, _fail, _probe_generator

WORKSHEET = "02"  # the number its notebooks' file names start with

REL = 1e-6  # a float32 computation of the right formula is exact to ~1e-7
_LOW_PRECISION = {torch.float16, torch.bfloat16}


def _number(value: Any, called: str) -> float:
    """The learner's answer as a float, with a hint for what the shared contract does not name."""
    if isinstance(value, (decimal.Decimal, fractions.Fraction)):
        value = float(value)  # exact enough, and a number all the same
    if (torch.is_tensor(value) and value.dtype in _LOW_PRECISION) or (
            isinstance(value, (np.ndarray, np.generic)) and value.dtype == np.float16):
        _fail(f"{called} returned a {value.dtype} number: 16-bit floats keep about 3 significant digits (bfloat16: 2), "
              "too few to check a formula; compute in float32/float64 or return a Python float")
    x = _as_float(value, called)
    if math.isnan(x) or math.isinf(x):
        _fail(f"{called} returned {x}: look for a division by zero or a square root of a negative number "
              "(a std is finite for every width d ≥ 1 and correlation below 1)")
    if x < 0:
        _fail(f"{called} returned {x:.6g}: a standard deviation is never negative (a sign slipped, or the "
              "square root's minus branch)")
    return x


def _probes(n: int, low_d: int = 1, high_d: int = 10_000) -> list[tuple[int, float]]:
    """n fresh (d, x) pairs from this check's probe seed: an integer width in [low_d, high_d] and a positive real
    log-uniform over [0.05, 50]."""
    g = _probe_generator(0)
    d = torch.randint(low_d, high_d + 1, (n,), generator=g).tolist()
    u = torch.rand(n, generator=g, dtype=torch.float64).tolist()
    return [(k, math.exp(math.log(0.05) + a * (math.log(50.0) - math.log(0.05)))) for k, a in zip(d, u)]


def _judge(fn: Callable, name: str, args_names: tuple[str, str], right: Callable[[int, float], float],
           wrong: list[tuple[Callable[[int, float], float], str]],
           probes: list[tuple[int, float]] | None = None,
           tol: Callable[[int, float], float] = lambda d, x: REL) -> list[tuple[int, float, float]]:
    probes = probes or [(1, 1.0), (3, 0.5)] + _probes(6)
    got = []
    for d, x in probes:
        called = f"{name}({args_names[0]}={d}, {args_names[1]}={x:.6g})"
        got.append(_number(_call(fn, d, x, called_as=called), called))
    if all(_close(g, right(d, x), tol(d, x)) for g, (d, x) in zip(got, probes)):
        return [(d, x, g) for g, (d, x) in zip(got, probes)]
    for formula, hint in wrong:
        if all(_close(g, formula(d, x), 1e-4) for g, (d, x) in zip(got, probes)):
            _fail(hint)
    for g, (d, x) in zip(got, probes):
        if _close(g, right(d, x), tol(d, x)):
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


@_checker("difference_std")
def check_difference_std(fn: Callable[[int, float], float]) -> str:
    """``fn(d, rho)`` = the std of Δ = r⁺ − r⁻ when h⁺, h⁻ correlate with ρ per coordinate:
    sqrt(2d(1 − ρ)/(d + 1)) for σ_h = 1 and weights and bias i.i.d. N(0, 1/(d + 1))."""
    right = lambda d, p: math.sqrt(2 * d * (1 - p) / (d + 1))
    wrong = [
        (lambda d, p: math.sqrt(2 * d / (d + 1)), "that is the answer for independent answers (rho = 0): the "
         "covariance of h⁺_k and h⁻_k enters Var(h⁺_k − h⁻_k)"),
        (lambda d, p: math.sqrt(2 * d * (1 + p) / (d + 1)), "sign: Var(X − Y) = Var X + Var Y − 2 Cov(X, Y); "
         "alike hidden states make the difference smaller, not larger"),
        (lambda d, p: math.sqrt(2 * d * (1 - p**2) / (d + 1)), "1 − rho² is the variance left after regressing one "
         "on the other; Var(X − Y) for two unit-variance coordinates is 2 − 2 rho"),
        (lambda d, p: 2 * d * (1 - p) / (d + 1), "you returned the VARIANCE of Δ; the std is its square root"),
        (lambda d, p: math.sqrt(d * (1 - p) / (d + 1)), "a factor 2 is missing: h⁺ and h⁻ each bring variance "
         "sigma_h² to the difference"),
        (lambda d, p: math.sqrt(2 * d * (1 - p)) / (d + 1), "1/(d+1) is the weights' VARIANCE; sigma_w is "
         "1/sqrt(d+1)"),
        (lambda d, p: math.sqrt(2 * (1 - p)), "sqrt(2(1 − rho)) counts the bias as a coordinate correlated like the "
         "others, or reads Var(r) = 1 and corr(r⁺, r⁻) = rho: but the bias is the same number in both rewards and "
         "cancels in Δ, so only d terms of variance sigma_w² = 1/(d+1) remain (d/(d+1) is not 1 at small d)"),
        (lambda d, p: math.sqrt(2 * d / (d + 1)) * (1 - p), "rho scales the VARIANCE of Δ by (1 − rho); the std "
         "by sqrt(1 − rho)"),
        (lambda d, p: math.sqrt((2 * d * (1 - p) + 1) / (d + 1)), "the bias is in both rewards: it cancels in "
         "Δ = r⁺ − r⁻"),
        (lambda d, p: math.sqrt((2 * d * (1 - p) + 2) / (d + 1)), "the bias is one parameter shared by both "
         "rewards, not two independent draws: it cancels in Δ"),
    ]
    # Fresh on every call, from the recorded probe seed (seed= replays them): four ordinary probes, one wide
    # head (d up to 1e6) and one nearly collinear pair (rho up to 0.999), where a formula that only looks right
    # at moderate arguments shows itself.
    g = _probe_generator(1)
    d_fresh = torch.randint(1, 10_001, (5,), generator=g).tolist()
    d_fresh.append(int(torch.randint(100_000, 1_000_001, (1,), generator=g)))
    u = torch.rand(6, generator=g, dtype=torch.float64).tolist()
    rho_fresh = [0.95 * x for x in u[:4]] + [0.95 * u[4], 0.95 + 0.049 * u[5]]
    probes = [(1, 0.0), (3, 0.5)] + list(zip(d_fresh, rho_fresh))
    # rho rounded to float32 (by up to 2⁻²⁵ below 1) moves sqrt(1 − rho) by up to 2⁻²⁶/(1 − rho) relative: 1.5e-5 at
    # rho = 0.999, where a float32 answer of the right formula would fail 1e-6 (measured: 5 seeds in 60). Twice
    # that bound on top of REL; the nearest wrong formula is off by a factor, not by 1e-5.
    tol = lambda d, p: REL + 2**-25 / (1 - p)
    probes = _judge(fn, "difference_std", ("d", "rho"), right, wrong, probes=probes, tol=tol)
    d, p, g = probes[-1]
    return (f"std(Δ) = sqrt(2d(1 − rho)/(d + 1)), e.g. d = {d}, rho = {p:.3g} → {g:.5g} "
            f"(rho = 0: lesson 02's sqrt(2d/(d+1)))")


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
    "difference_std": (
        "Write Δ = r⁺ − r⁻ term by term: what happens to the bias? What is left is w·δ with δ = h⁺ − h⁻, "
        "lesson 02's reward with δ in place of h.",
        "Var(Δ) = sigma_w² E‖δ‖², and per coordinate Var(h⁺_k − h⁻_k) = sigma_h² + sigma_h² − 2 rho sigma_h².",
        "Var(Δ) = 2d(1 − rho)/(d + 1), so std(Δ) = sqrt(2 * d * (1 - rho) / (d + 1)).",
    ),
}
