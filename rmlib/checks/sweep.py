"""Checkers for worksheet 05 — an initialisation sweep."""

from __future__ import annotations

import math
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
