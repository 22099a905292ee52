"""Checkers for worksheet 05 — an initialisation sweep."""

from __future__ import annotations

import math
import numbers
from typing import Callable

import torch

from rmlib.seeding import make_generator
from rmlib.checks._contract import (_as_float, _call, _checker, _close, _fail)


@_checker("loglog_slope")
def check_loglog_slope(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> str:
    """Check ``fn(x, y)``: the least-squares slope of log y against log x, leaving out pairs with a zero."""
    g = make_generator(3)
    x = torch.cat([torch.zeros(1, dtype=torch.float64), torch.logspace(-2, 2, 12, dtype=torch.float64)])
    noise = torch.exp(0.3 * torch.randn(13, generator=g, dtype=torch.float64))
    y = 3.0 * x**0.7 * noise  # y = 0 where x = 0: a zero head sends a zero gradient
    value = _as_float(_call(fn, x, y, called_as="loglog_slope(x, y) with one (0, 0) pair"), "loglog_slope")
    keep = (x > 0) & (y > 0)
    lx, ly = x[keep].log(), y[keep].log()

    def fit(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
        """Least-squares slope and intercept of b on a."""
        ca = a - a.mean()
        slope = ((ca * (b - b.mean())).sum() / ca.pow(2).sum()).item()
        return slope, (b.mean() - slope * a.mean()).item()

    slope, intercept = fit(lx, ly)
    if _close(value, slope, 1e-6):
        return f"slope {value:.4f} of log y on log x (zero pairs left out) on a noisy power law y ∝ x^0.7"
    if not math.isfinite(value):
        _fail(f"slope = {value}: drop the pairs where x or y is 0 before taking logs (log 0 = −inf); a zero head has ‖w₀‖ = 0")
    wrong = [
        (fit(x[keep], y[keep])[0], "you fit y against x: take logs of both first (a power law is a line in log-log)"),
        (1 / fit(ly, lx)[0], "you regressed log x on log y and inverted it: regress log y on log x"),
        (fit(ly, lx)[0], "you regressed log x on log y: regress log y on log x"),
        (intercept, "that is the intercept: return the slope"),
        (fit(x[keep], ly)[0], "log y against x is a semi-log fit: take the log of x too"),
        (((ly[-1] - ly[0]) / (lx[-1] - lx[0])).item(), "you used the two end points only: fit all points by least squares"),
        ((ly / lx).mean().item(), "the mean of log y / log x is not a slope: fit a line by least squares"),
    ]
    for cand, hint in wrong:
        if _close(value, cand, 1e-6):
            _fail(f"loglog_slope gave {value:.4g}, expected {slope:.4g}: {hint}")
    _fail(f"loglog_slope gave {value:.6g}, expected the least-squares slope of log y on log x, {slope:.6g}")


@_checker("adam_first_step")
def check_adam_first_step(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> str:
    """Check ``fn(grad, lr)``: the update torch.optim.Adam adds to a parameter at its first step."""
    g = make_generator(4)
    scales = torch.tensor([1e-6, 1e-3, 1.0, 1e3], dtype=torch.float64)
    grad = torch.randn(4, 50, generator=g, dtype=torch.float64) * scales[:, None]
    grad[0, 0] = 0.0  # a parameter with zero gradient must not move
    lr = 0.01
    out = _call(fn, grad.clone(), lr, called_as=f"adam_first_step(grad, lr={lr}) with gradients from 1e-6 to 1e3")
    if out is None:
        _fail("returned None: return the update tensor (what Adam adds to the parameter)")
    if not torch.is_tensor(out) or out.shape != grad.shape:
        _fail(f"return a tensor with the gradient's shape {tuple(grad.shape)}, got {type(out).__name__}"
              + (f" of shape {tuple(out.shape)}" if torch.is_tensor(out) else ""))
    out = out.detach().double()
    p = torch.zeros(grad.shape, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([p], lr=lr)
    p.grad = grad.clone()
    opt.step()
    want = p.detach()
    err = (out - want).abs().max().item()
    if err <= 1e-12:
        sizes = ", ".join(f"{want[i].abs().max().item():.3g}" for i in range(4))
        return f"matches torch.optim.Adam; largest step per gradient scale 1e-6, 1e-3, 1, 1e3: {sizes}"
    if not torch.isfinite(out).all():
        _fail("NaN or inf where the gradient is 0: 0/0. Adam divides by sqrt(v̂) + eps, and eps keeps that finite")
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    wrong = [
        (-want, "wrong sign: the update goes against the gradient"),
        (-lr * grad, "that is SGD's step, −lr·g: Adam divides by sqrt(v̂) + eps"),
        (-lr * ((1 - beta1) * grad) / (((1 - beta2) * grad**2).sqrt() + eps),
         "no bias correction: m̂ = m/(1−β1) and v̂ = v/(1−β2) undo the zero start of the averages"),
        (-lr * grad / (grad**2 + eps).sqrt(), "eps goes outside the square root: denominator sqrt(v̂) + eps, as torch.optim.Adam"),
        (-grad / (grad.abs() + eps), "the learning rate is missing"),
        (-lr * torch.sign(grad), "close, but Adam has eps in the denominator: −lr·g/(|g| + eps), not exactly −lr·sign(g)"),
    ]
    for cand, hint in wrong:
        if (out - cand).abs().max().item() <= 1e-12:
            _fail(f"adam_first_step differs from torch.optim.Adam by up to {err:.3g}: {hint}")
    _fail(f"adam_first_step differs from torch.optim.Adam's first step by up to {err:.3g}")


def _early_stopping_reference(val_loss: list[float], steps: list[int], patience: int, *, tie_last: bool = False,
                              reset: bool = True, stop_after: int | None = None) -> tuple[int, int, float]:
    """(best index, index where training stops, best loss) of patience-based early stopping.

    The keyword arguments produce the wrong variants the checker recognises.
    """
    stop_after = patience if stop_after is None else stop_after
    best_i, best, waited = 0, val_loss[0], 0
    stop_i = len(val_loss) - 1
    for i in range(1, len(val_loss)):
        v = val_loss[i]
        if v < best or (tie_last and v == best):
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
]


@_checker("early_stopping_step")
def check_early_stopping_step(fn: Callable[[torch.Tensor, torch.Tensor, int], int]) -> str:
    """Check ``fn(val_loss, steps, patience)``: the step whose weights patience-based early stopping keeps."""
    got, want = [], []
    variants: dict[str, list[object]] = {}
    wrong = [
        ("index", lambda c, s, p: _early_stopping_reference(c, s, p)[0],
         "that is the index of the best evaluation: return its training step, steps[index]"),
        ("stop", lambda c, s, p: s[_early_stopping_reference(c, s, p)[1]],
         "that is the step where training stops; early stopping keeps the weights of the best evaluation before it"),
        ("loss", lambda c, s, p: _early_stopping_reference(c, s, p)[2],
         "that is the best validation loss: return the step where it was reached"),
        ("argmin", lambda c, s, p: s[min((v, i) for i, v in enumerate(c) if v == v)[1]],
         "that is the minimum over the whole run: training stops once `patience` evaluations in a row bring no "
         "improvement, so a later minimum is never seen"),
        ("torch-argmin", lambda c, s, p: s[int(torch.tensor(c).argmin())],
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
    ]
    for curve, patience in _ES_CASES:
        steps = [32 * i for i in range(len(curve))]
        val = torch.tensor(curve)
        out = _call(fn, val.clone(), torch.tensor(steps), patience,
                    called_as=f"early_stopping_step(val_loss={[round(v, 3) for v in curve]}, steps=[0, 32, …], "
                              f"patience={patience})")
        if out is None:
            _fail("early_stopping_step returned None: did you forget the `return` statement?")
        if torch.is_tensor(out):
            if out.numel() != 1:
                _fail(f"return one step, got a tensor of shape {tuple(out.shape)}")
            out = out.item()
        got.append(out)
        want.append(steps[_early_stopping_reference(curve, steps, patience)[0]])
        for name, f, _ in wrong:
            variants.setdefault(name, []).append(f(curve, steps, patience))
    if got == want:
        if not all(isinstance(g, int) or (isinstance(g, float) and g.is_integer()) for g in got):
            _fail(f"return the step as an int, got {[type(g).__name__ for g in got]}")
        return f"keeps steps {want} on six validation curves (a later minimum, ties, a diverged run, …)"
    def same(a: list[object], b: list[object]) -> bool:
        # float32 losses against Python floats: equal to float32 precision
        return all(isinstance(x, numbers.Real) and isinstance(y, numbers.Real) and math.isclose(x, y, rel_tol=1e-6)
                   for x, y in zip(a, b))

    for name, _, hint in wrong:
        if same(got, variants[name]):
            _fail(f"early_stopping_step gave {got}, expected {want}: {hint}")
    _fail(f"early_stopping_step gave {got}, expected {want}: keep the first evaluation with the lowest validation "
          "loss seen before `patience` evaluations in a row bring no improvement (NaN is no improvement)")
