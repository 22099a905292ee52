"""Checkers for worksheet 05 — an initialisation sweep."""

from __future__ import annotations

import math
import numbers
from typing import Callable

import torch

import numpy as np

from rmlib.checks._contract import (_as_float, _call, _checker, _close, _dtype_name, _expect_raises, _fail, _probe_generator,
                                    _tensor)

WORKSHEET = "05"  # the number its notebooks' file names start with


def _fit(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """Least-squares slope and intercept of b on a."""
    ca = a - a.mean()
    slope = ((ca * (b - b.mean())).sum() / ca.pow(2).sum()).item()
    return slope, (b.mean() - slope * a.mean()).item()


# Noisy power laws y = c·x^k with zero pairs at positions drawn afresh on every call: (0, 0) (a zero head
# sends a zero gradient), (0, y > 0) and (x > 0, 0), so filtering on x alone, or dropping the first pair,
# leaves a log of 0 behind. The first has
# log x symmetric about 0 (logspace(−2, 2)); the others do not and have c ≠ 1, so a fit forced through
# the origin, which the first cannot tell from the right one, is caught. One is float32.
_SLOPE_PROBES = [(-2.0, 2.0, 3.0, 0.7, torch.float64), (0.5, 3.0, 0.2, 1.3, torch.float64),
                 (-3.0, -0.5, 40.0, 0.45, torch.float32)]


@_checker("loglog_slope")
def check_loglog_slope(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> str:
    """Check ``fn(x, y)``: the least-squares slope of log y against log x, leaving out pairs with a zero."""
    g = _probe_generator(0)
    results, rows = [], []
    for lo, hi, c, k, dtype in _SLOPE_PROBES:
        x = torch.logspace(lo, hi, 12, dtype=torch.float64)
        y = c * x**k * torch.exp(0.3 * torch.randn(12, generator=g, dtype=torch.float64))
        for zx, zy in [(0.0, 0.0), (0.0, float(y[5])), (float(x[7]), 0.0)]:  # three zero pairs, anywhere
            at = int(torch.randint(0, len(x) + 1, (1,), generator=g))
            x = torch.cat([x[:at], torch.tensor([zx], dtype=torch.float64), x[at:]])
            y = torch.cat([y[:at], torch.tensor([zy], dtype=torch.float64), y[at:]])
        x, y = x.to(dtype), y.to(dtype)
        zeros = [i for i in range(len(x)) if x[i] == 0 or y[i] == 0]
        called = (f"loglog_slope(x, y) on y = {c}·x^{k} with noise, x in [1e{lo:g}, 1e{hi:g}] and zero pairs at "
                  f"indices {zeros} ({dtype})")
        value = _as_float(_call(fn, x, y, called_as=called), "loglog_slope")
        keep = (x > 0) & (y > 0)
        lx, ly = x[keep].double().log(), y[keep].double().log()
        slope, intercept = _fit(lx, ly)
        rel = 1e-6 if dtype == torch.float64 else 1e-4  # float32 logs carry ~1e-7 relative error each
        wrong = [
            (_fit(x[keep].double(), y[keep].double())[0],
             "you fit y against x: take logs of both first (a power law is a line in log-log)"),
            (1 / _fit(ly, lx)[0], "you regressed log x on log y and inverted it: regress log y on log x"),
            (_fit(ly, lx)[0], "you regressed log x on log y: regress log y on log x"),
            (intercept, "that is the intercept: return the slope"),
            (_fit(x[keep].double(), ly)[0], "log y against x is a semi-log fit: take the log of x too"),
            (((ly[-1] - ly[0]) / (lx[-1] - lx[0])).item(),
             "you used the two end points only: fit all points by least squares"),
            ((ly / lx).mean().item(), "the mean of log y / log x is not a slope: fit a line by least squares"),
            (((lx * ly).sum() / lx.pow(2).sum()).item(),
             "a line through the origin: least squares needs an intercept, so subtract the means of log x and "
             "log y first (y = c·x^k has log c ≠ 0)"),
        ]
        rows.append((called, value, slope, rel, wrong))
        results.append(value)
    if all(_close(v, want, rel) for _, v, want, rel, _ in rows):
        return ("least-squares slope of log y on log x (zero pairs left out, wherever they are) on three noisy power "
                "laws: " + ", ".join(f"{r:.4f}" for r in results))
    called, value, slope, rel, _ = next(r for r in rows if not _close(r[1], r[2], r[3]))
    if not math.isfinite(value):
        _fail(f"slope = {value} ({called}): leave out every pair where x OR y is 0 before taking logs "
              "(log 0 = −inf), wherever it is; a zero head has ‖w₀‖ = 0")
    for i, (_, hint) in enumerate(rows[0][4]):  # a wrong formula is named only if it explains every probe
        if all(_close(v, r_wrong[i][0], r_rel) for _, v, _, r_rel, r_wrong in rows):
            _fail(f"loglog_slope gave {value:.4g}, expected {slope:.4g} ({called}): {hint}")
    _fail(f"loglog_slope gave {value:.6g}, expected the least-squares slope of log y on log x, {slope:.6g} "
          f"({called})")


def _adam_step(grad: torch.Tensor, lr: float) -> torch.Tensor:
    """What torch.optim.Adam adds to a parameter at its first step, from torch.optim itself."""
    p = torch.zeros(grad.shape, dtype=grad.dtype, requires_grad=True)
    opt = torch.optim.Adam([p], lr=lr)
    p.grad = grad.clone()
    opt.step()
    return p.detach()


@_checker("adam_first_step")
def check_adam_first_step(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> str:
    """Check ``fn(grad, lr)``: the update torch.optim.Adam adds to a parameter at its first step.

    Probed at two learning rates and in float64 and float32: the update has the gradient's shape and dtype,
    and the gradient is left as it was."""
    g = _probe_generator(0)
    scales = torch.tensor([1e-6, 1e-3, 1.0, 1e3], dtype=torch.float64)
    base = torch.randn(4, 50, generator=g, dtype=torch.float64) * scales[:, None]
    base[0, 0] = 0.0  # a parameter with zero gradient must not move
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    sizes = []
    for lr, dtype in ((0.01, torch.float64), (0.37, torch.float64), (3e-4, torch.float32)):
        grad = base.to(dtype)
        called = f"adam_first_step(grad, lr={lr}) with {dtype} gradients from 1e-6 to 1e3"
        out = _call(fn, grad, lr, called_as=called)
        if out is None:
            _fail("returned None: return the update tensor (what Adam adds to the parameter)")
        out = _tensor(out, "adam_first_step", shape=tuple(grad.shape), dtype=dtype,
                      why_dtype="return the update in the gradient's dtype").detach()
        want = _adam_step(grad, lr)
        # Relative to each element: eps written as a float32 tensor (1e-8 → 1e-8 − 6.1e-17) moves the update by
        # ≤ 6.1e-9 of itself, so float64 allows 1e-8 (every wrong form is ≥ 1e-3 off on the 1e-6 gradients);
        # float32 allows a few units of rounding (4 ε32 ≈ 4.8e-7).
        rtol = 1e-8 if dtype == torch.float64 else 4 * torch.finfo(torch.float32).eps
        bound = rtol * want.abs() + 1e-300
        err = ((out - want).abs() / bound).max().item() * rtol
        close = lambda a: bool(((a - want).abs() <= bound).all())  # noqa: E731
        close_to = lambda cand: bool(((out - cand).abs() <= rtol * cand.abs() + 1e-300).all())  # noqa: E731
        if close(out):
            sizes.append(f"lr={lr}: {want.abs().max().item():.3g}")
            continue
        bad = ~torch.isfinite(out)
        if bad.any():
            if torch.equal(bad, grad == 0):  # the evidence: non-finite exactly where the gradient is 0
                _fail("NaN or inf where the gradient is 0: 0/0. Adam divides by sqrt(v̂) + eps, and eps keeps that "
                      "finite")
            _fail(f"adam_first_step gave NaN or inf at {int(bad.sum())} of {bad.numel()} elements ({called}); "
                  "torch.optim.Adam's first step is finite everywhere")
        wrong = [
            (-want, "wrong sign: the update goes against the gradient"),
            (-lr * grad, "that is SGD's step, −lr·g: Adam divides by sqrt(v̂) + eps"),
            (-lr * ((1 - beta1) * grad) / (((1 - beta2) * grad**2).sqrt() + eps),
             "no bias correction: m̂ = m/(1−β1) and v̂ = v/(1−β2) undo the zero start of the averages"),
            (-lr * grad / (grad**2 + eps).sqrt(),
             "eps goes outside the square root: denominator sqrt(v̂) + eps, as torch.optim.Adam"),
            (-grad / (grad.abs() + eps), "the learning rate is missing"),
            (-lr * torch.sign(grad), "close, but Adam has eps in the denominator: −lr·g/(|g| + eps), not exactly −lr·sign(g)"),
        ] + [(-other * grad / (grad.abs() + eps),
              f"right for lr={other} only: the update must use the lr argument (here lr={lr})")
             for other in (0.01, 0.37, 3e-4, 1e-3) if other != lr] + [
            ((-lr * grad.float() / (grad.float().abs() + eps)).double(),
             "computed in float32: compute in the gradient's own dtype (no .float())")] * (dtype == torch.float64)
        for cand, hint in wrong:
            if close_to(cand):
                _fail(f"adam_first_step differs from torch.optim.Adam by up to {err:.3g} of the step ({called}): {hint}")
        i = int(((out - want).abs() / bound).argmax())
        _fail(f"adam_first_step differs from torch.optim.Adam's first step by up to {err:.3g} of the step ({called}); "
              f"e.g. for the gradient {grad.flatten()[i].item():.17g} it gave {out.flatten()[i].item():.17g}, expected "
              f"{want.flatten()[i].item():.17g}")
    return "matches torch.optim.Adam's first step; largest step " + ", ".join(sizes)


def _early_stopping_reference(val_loss: list[float], steps: list[int], patience: int, *, tie_last: bool = False,
                              reset: bool = True, stop_after: int | None = None, first_is_best: bool = False,
                              nan: str = "no improvement", min_delta: float = 0.0) -> tuple[int | None, int, float]:
    """(best index, index where training stops, best loss) of patience-based early stopping.

    NaN never counts as a best: the best so far starts empty (loss +inf), and a NaN evaluation, the first
    one included, is an evaluation without improvement. The best index is None when no evaluation before
    the stop has a finite loss (the task then raises ValueError). The keyword arguments produce the wrong
    variants the checker recognises (``first_is_best``: the first evaluation is the best, even when NaN;
    ``nan="improvement"``: a NaN beats any loss, as ``not v >= best`` has it; ``nan="skipped"``: a NaN evaluation
    neither improves nor uses up patience; ``min_delta``: an improvement must beat the best by that much).
    """
    stop_after = patience if stop_after is None else stop_after
    best_i, best, waited = None, math.inf, 0
    start = 0
    if first_is_best:
        best_i, best, start = 0, val_loss[0], 1
    stop_i = len(val_loss) - 1
    for i in range(start, len(val_loss)):
        v = val_loss[i]
        if v != v and nan == "skipped":
            continue
        if nan == "improvement":
            improves = not v >= best  # once a NaN is the best, every later evaluation "improves" on it
        else:
            improves = v < best - min_delta or (tie_last and v == best and best_i is not None)
        if improves:
            best_i, best = i, v
            if reset:
                waited = 0
        else:
            waited += 1  # NaN (a diverged run) is never an improvement
            if waited >= stop_after:
                stop_i = i
                break
    return best_i, stop_i, best


# Validation curves the checker probes with (evaluations every 32 steps). Each one separates some
# wrong answers: a later, lower minimum after the patience ran out; exact ties; a diverged run (NaN);
# improvements that interrupt a wait; a curve that keeps improving to the end.
_ES_CASES = [
    ([0.70, 0.55, 0.48, 0.47, 0.50, 0.52, 0.53, 0.55, 0.45, 0.60, 0.62, 0.65], 2),
    ([0.70, 0.50, 0.50, 0.51, 0.50, 0.52, 0.53, 0.54, 0.56, 0.57], 3),
    ([0.69, 0.60, 0.52, 0.49, float("nan"), float("nan"), float("nan"), float("nan")], 2),
    ([0.70, 0.60, 0.61, 0.62, 0.55, 0.56, 0.57, 0.54, 0.58, 0.59, 0.60, 0.61, 0.62], 3),
    ([0.90, 0.80, 0.70, 0.65, 0.62, 0.60, 0.59, 0.585], 1),
    ([0.70, 0.60, 0.62, 0.59, 0.63, 0.64, 0.58, 0.65, 0.66, 0.67], 2),
    # Falls without a new best while the counter runs: counting only rises against the previous evaluation
    # would reset at 0.60 and 0.55 and go on to 0.45.
    ([0.50, 0.70, 0.60, 0.55, 0.45, 0.60, 0.62, 0.64], 3),
    # Diverges, then a lower loss after the patience ran out: a NaN that resets the counter would reach it.
    ([0.70, 0.60, float("nan"), float("nan"), 0.50, 0.55, 0.56], 2),
    # The first evaluation is NaN: it is no best (keeping it would stop at step 0), it only uses up patience
    # (patience 3, so that stopping one evaluation early still finds a best and gets its own hint).
    ([float("nan"), 0.60, 0.55, 0.58, 0.50, 0.61, 0.62, 0.63, 0.45], 3),
    # An improvement of 5e-5 (distinct in float32, whose step at 0.6 is 6e-8): "strictly lower" counts it, a
    # min_delta of 1e-4 (transformers' early_stopping_threshold) would not, and stop at 0.59995 with 0.60 kept.
    ([0.70, 0.60, 0.61, 0.59995, 0.62, 0.63, 0.64], 2),
]
# Two losses closer than float32 can tell apart (its step at 0.6 is 6e-8), probed in float64: the later one is
# a strict improvement; converting the curve to float32 first makes it a tie and stops one evaluation later.
_ES_FLOAT64 = [([0.70, 0.60, 0.599999999, 0.61, 0.62, 0.63], 2)]
# Curves with no finite loss before training stops: there is no best to keep, so the task raises ValueError.
_ES_NO_BEST = [
    ([float("nan"), float("nan"), float("nan"), float("nan")], 2),
    ([float("nan"), 0.50, 0.40, 0.30], 1),  # patience 1 runs out at the first (NaN) evaluation
]


def _fresh_curves() -> list[tuple[list[float], int, list[int]]]:
    """Three validation curves drawn afresh on every call: a noisy fall then rise, rounded to 2 decimals (ties),
    one starting with a NaN evaluation (patience ≥ 3, so a best exists), one with a diverged (NaN) tail; each
    with the steps of its evaluations, unevenly spaced (a last short epoch, say), so only steps[best] is right
    (an answer that rebuilt the step as steps[0] + best·(steps[1] − steps[0]) passed evenly spaced probes)."""
    g = _probe_generator(0)
    curves = []
    for j in range(3):
        n = int(torch.randint(8, 17, (1,), generator=g))
        t = torch.linspace(0, 1, n, dtype=torch.float64)
        v = 0.7 - 0.5 * t + 0.6 * t**2 + 0.04 * torch.randn(n, generator=g, dtype=torch.float64)
        curve = [round(x, 2) for x in v.tolist()]
        patience = int(torch.randint(1, 5, (1,), generator=g))
        if j == 1:
            curve[0], patience = float("nan"), max(patience, 3)
        if j == 2:
            cut = int(torch.randint(n // 2, n, (1,), generator=g))
            curve = curve[:cut] + [float("nan")] * (n - cut)
        steps = torch.randint(10, 60, (n,), generator=g).cumsum(0).tolist()
        curves.append((curve, patience, steps))
    return curves


def _as_step(out: object) -> object:
    """An int from an int, a numpy integer, an integral float, or a one-element tensor or array; else as given."""
    if torch.is_tensor(out) or isinstance(out, (np.ndarray, np.generic)):
        if getattr(out, "size", None) is not None and not callable(out.size) and out.size != 1:
            _fail(f"return one step, got an array of shape {out.shape}")
        if torch.is_tensor(out) and out.numel() != 1:
            _fail(f"return one step, got a tensor of shape {tuple(out.shape)}")
        out = out.item()
    return out


def _variant(f: Callable, curve: list[float], steps: list[int], patience: int) -> object:
    """A wrong variant's answer on one curve (None where the variant finds no best at all)."""
    try:
        return f(curve, steps, patience)
    except TypeError:  # steps[None]: no finite evaluation before the variant stops
        return None


# Wrong answers of early_stopping_step (name, the answer it gives, its hint), each computed on every probe curve.
_ES_WRONG = [
    ("index", lambda c, s, p: _early_stopping_reference(c, s, p)[0],
     "that is the index of the best evaluation: return its training step, steps[index]"),
    ("stop", lambda c, s, p: s[_early_stopping_reference(c, s, p)[1]],
     "that is the step where training stops; early stopping keeps the weights of the best evaluation before it"),
    ("loss", lambda c, s, p: _early_stopping_reference(c, s, p)[2],
     "that is the best validation loss: return the step where it was reached"),
    ("argmin", lambda c, s, p: s[min((v, i) for i, v in enumerate(c) if v == v)[1]],
     "that is the minimum over the whole run: training stops once `patience` evaluations in a row bring no "
     "improvement, so a later minimum is never seen"),
    ("torch-argmin", lambda c, s, p: s[int(torch.tensor(c, dtype=torch.float64).argmin())],
     "that is torch.argmin over the whole run: it returns a NaN (a diverged evaluation) as the minimum, and "
     "training stops once `patience` evaluations in a row bring no improvement, so a later minimum is never seen"),
    ("argmax", lambda c, s, p: s[int(torch.tensor(c).nan_to_num(-1.0).argmax())],
     "that is the step of the *highest* validation loss: keep the lowest"),
    ("late", lambda c, s, p: s[_early_stopping_reference(c, s, p, stop_after=p + 1)[0]],
     "you wait one evaluation too long: stop after `patience` evaluations without improvement, not patience + 1"),
    ("early", lambda c, s, p: s[_early_stopping_reference(c, s, p, stop_after=max(p - 1, 1))[0]],
     "you stop one evaluation too early: wait for `patience` evaluations without improvement"),
    ("ties", lambda c, s, p: s[_early_stopping_reference(c, s, p, tie_last=True)[0]],
     "on a tie you moved to the later evaluation: only a strictly lower loss is an improvement"),
    ("no-reset", lambda c, s, p: s[_early_stopping_reference(c, s, p, reset=False)[0]],
     "reset the patience counter whenever the validation loss improves: it counts evaluations *in a row*"),
    ("last", lambda c, s, p: s[-1], "that is the last evaluation: find the best one"),
    ("nan-first", lambda c, s, p: s[_early_stopping_reference(c, s, p, first_is_best=True)[0]],
     "a NaN first evaluation is not the best: NaN never counts as a best, not even the first. Start with no "
     "best (a best loss of +inf) and treat every evaluation, the first included, the same way"),
    ("nan-improves", lambda c, s, p: s[_early_stopping_reference(c, s, p, nan="improvement")[0]],
     "you count a NaN evaluation as an improvement (every comparison with NaN is False, so `not loss >= best` is "
     "True): a diverged run is never better; compare with `loss < best`, which is False for NaN"),
    ("min-delta", lambda c, s, p: s[_early_stopping_reference(c, s, p, min_delta=1e-4)[0]],
     "an improvement is any strictly lower loss, however small: you required it to beat the best by a margin "
     "(a min_delta); the task has none"),
    ("float32", lambda c, s, p: s[_early_stopping_reference([float(torch.tensor(v, dtype=torch.float32)) for v in c], s, p)[0]],
     "you compare the losses in float32 (a .float(), or numbers made with torch.tensor): two float64 losses 1e-9 "
     "apart became a tie; compare them in the dtype they come in"),
    ("nan-skipped", lambda c, s, p: s[_early_stopping_reference(c, s, p, nan="skipped")[0]],
     "you skip NaN evaluations: a diverged evaluation still brings no improvement, so it adds one to the patience "
     "counter (training would stop there)"),
]


@_checker("early_stopping_step")
def check_early_stopping_step(fn: Callable[[torch.Tensor, torch.Tensor, int], int]) -> str:
    """Check ``fn(val_loss, steps, patience)``: the step whose weights patience-based early stopping keeps."""
    got, want = [], []
    variants: dict[str, list[object]] = {}
    def every_32(curve: list[float]) -> list[int]:
        return [32 * i for i in range(len(curve))]

    cases = ([(c, p, torch.float32, every_32(c)) for c, p in _ES_CASES]
             + [(c, p, torch.float32, steps) for c, p, steps in _fresh_curves()]
             + [(c, p, torch.float64, every_32(c)) for c, p in _ES_FLOAT64])
    for curve, patience, dtype, steps in cases:
        val = torch.tensor(curve, dtype=dtype)
        out = _call(fn, val, torch.tensor(steps), patience,
                    called_as=f"early_stopping_step(val_loss={[round(v, 3) if dtype == torch.float32 else v for v in curve]}, "
                              f"steps={steps[:3]}…, patience={patience}) in {_dtype_name(dtype)}")
        if out is None:
            _fail("early_stopping_step returned None: did you forget the `return` statement?")
        got.append(_as_step(out))
        want.append(steps[_early_stopping_reference(curve, steps, patience)[0]])
        for name, f, _ in _ES_WRONG:
            variants.setdefault(name, []).append(_variant(f, curve, steps, patience))
    if got == want:
        if not all((isinstance(g, numbers.Integral) and not isinstance(g, bool))
                   or (isinstance(g, float) and g.is_integer()) for g in got):
            _fail(f"return the step as an int, got {[type(g).__name__ for g in got]}")
        for curve, patience in _ES_NO_BEST:
            steps = [32 * i for i in range(len(curve))]
            _expect_raises(fn, (torch.tensor(curve), torch.tensor(steps), patience),
                           f"early_stopping_step(val_loss={curve}, steps=[0, 32, …], patience={patience})",
                           "no evaluation before training stops has a finite loss, so there is no best to keep "
                           "(NaN never counts as a best)")
        return (f"keeps steps {want} on {len(want)} validation curves (a later minimum, ties, a diverged run, a NaN "
                "first evaluation, a fall without a new best, float64 losses 1e-9 apart, and three drawn afresh); raises ValueError when no "
                "evaluation before the stop is finite")
    def same(a: list[object], b: list[object]) -> bool:
        # float32 losses against Python floats: equal to float32 precision
        return all(isinstance(x, numbers.Real) and isinstance(y, numbers.Real) and math.isclose(x, y, rel_tol=1e-6)
                   for x, y in zip(a, b))

    for name, _, hint in _ES_WRONG:
        if same(got, variants[name]):
            _fail(f"early_stopping_step gave {got}, expected {want}: {hint}")
    _fail(f"early_stopping_step gave {got}, expected {want}: keep the first evaluation with the lowest validation "
          "loss seen before `patience` evaluations in a row bring no improvement (NaN is no improvement, and never "
          "the best)")


HINTS = {
    "loglog_slope": (
        "A power law y = c·x^k is a straight line on log-log axes. Which pairs can you not take the log of?",
        "Drop the pairs where x or y is 0, take logs of both, and fit log y = k·log x + log c by least squares "
        "(with an intercept): k is the slope.",
        "keep = (x > 0) & (y > 0); lx, ly = x[keep].log(), y[keep].log(); lx = lx - lx.mean(); "
        "return ((lx * (ly - ly.mean())).sum() / (lx ** 2).sum()).item()",
    ),
    "adam_first_step": (
        "At step 1 Adam's averages have seen one gradient: m = (1−β1)·g and v = (1−β2)·g². What do the bias "
        "corrections turn them into?",
        "m̂ = g and v̂ = g², so the update is −lr·g/(|g| + eps): the size of the step no longer depends on the "
        "size of the gradient.",
        "return -lr * grad / (grad.abs() + 1e-8)",
    ),
    "early_stopping_step": (
        "Walk through the evaluations in order, remembering the best validation loss so far and how many "
        "evaluations in a row have not beaten it.",
        "Training stops at the first evaluation that makes that count reach `patience`; the weights kept are "
        "those of the best evaluation before it (strictly lower loss; NaN never counts as better, nor as the "
        "best: start from a best loss of +inf, and raise ValueError if nothing finite came before the stop).",
        "best, best_loss, waited = None, float('inf'), 0\n"
        "for i in range(len(val_loss)):\n"
        "    if val_loss[i] < best_loss:\n"
        "        best, best_loss, waited = i, val_loss[i], 0\n"
        "    else:\n"
        "        waited += 1\n"
        "        if waited >= patience:\n"
        "            break\n"
        "if best is None:\n"
        "    raise ValueError('no finite validation loss before training stopped')\n"
        "return int(steps[best])",
    ),
}
