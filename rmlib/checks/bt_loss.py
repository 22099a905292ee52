"""Checkers for worksheet 04 — a stable Bradley-Terry loss and its gradient."""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from rmlib.seeding import make_generator
from rmlib.losses import bradley_terry_loss
from rmlib.checks._contract import (_as_float, _call, _checker, _close, _fail, relative_error)


def _bt_probe(n: int, dtype: torch.dtype, scale: float = 2.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = make_generator(seed)
    return (torch.randn(n, generator=g, dtype=dtype) * scale, torch.randn(n, generator=g, dtype=dtype) * scale)


_EXTREME_DELTAS = [-1e4, -1e3, -100.0, -30.0, 0.0, 30.0, 100.0, 1e3, 1e4]  # float32 overflows exp() past 88.7


@_checker("bradley_terry_loss")
def check_bradley_terry_loss(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> str:
    """Check ``fn(chosen, rejected)`` = mean −log σ(chosen − rejected): value, gradient, and stability up to |Δ| = 1e4."""
    n = 1000
    chosen, rejected = (t.requires_grad_() for t in _bt_probe(n, torch.float64))
    call = f"bradley_terry_loss(chosen, rejected) with {n} float64 pairs"
    loss = _call(fn, chosen, rejected, called_as=call)
    if loss is None:
        _fail("returned None: return the loss tensor")
    if not torch.is_tensor(loss):
        _fail(f"return a torch tensor (so it can be backpropagated), got {type(loss).__name__}")
    if loss.shape != ():
        _fail(f"the loss must be one number (a 0-dim tensor), got shape {tuple(loss.shape)}: take the .mean() over pairs")
    if not loss.requires_grad:
        _fail("the loss has no gradient: you left autograd (.item(), .detach(), numpy or math); use torch operations only")
    ref = bradley_terry_loss(chosen, rejected)
    value, want = loss.item(), ref.item()
    if not _close(value, want, 1e-6):
        delta = (chosen - rejected).detach()
        wrong = [
            (-want, "wrong sign: the loss is −log σ(Δ), never negative; you dropped the minus"),
            (F.softplus(delta).mean().item(), "wrong sign of Δ: use Δ = chosen − rejected (the loss must be small when chosen wins)"),
            (want * n, "sum instead of mean: average the loss over the pairs"),
        ]
        for cand, hint in wrong:
            if _close(value, cand, 1e-6):
                _fail(f"loss {value:.6g} on a random batch, expected {want:.6g}: {hint}")
        _check_bt_stability(fn)
        _fail(f"loss {value:.6g} on a random batch, expected mean −log σ(chosen − rejected) = {want:.6g}")
    _check_bt_stability(fn)
    if not _close(value, want, 1e-10):  # float64 forms of the right formula agree to ~1e-15
        _fail(f"loss {value!r} on a random float64 batch, expected {want!r}: something shifts it slightly (an eps?)")
    grads = torch.autograd.grad(loss, (chosen, rejected), allow_unused=True)
    ref_grads = torch.autograd.grad(ref, (chosen, rejected))
    if any(g is None for g in grads):
        _fail("no gradient reaches chosen or rejected: build the loss from both tensors with torch operations")
    err = max(relative_error(g, r) for g, r in zip(grads, ref_grads))
    if err > 1e-6:
        _fail(f"the gradient of your loss differs from the reference (relative error {err:.2g})")
    return f"loss {value:.4f} on a random batch, gradient matches autograd (rel. error {err:.1e}), finite up to |Δ| = 1e4"


def _check_bt_stability(fn: Callable) -> None:
    """Value and gradient of the loss for single pairs at |Δ| up to 1e4, in float32."""
    # Stability: one pair per Δ, float32, where exp overflows beyond |Δ| ≈ 88.7.
    for delta in _EXTREME_DELTAS:
        c = torch.tensor([delta], dtype=torch.float32, requires_grad=True)
        r = torch.zeros(1, requires_grad=True)
        call = f"bradley_terry_loss(tensor([{delta:g}]), tensor([0.])) in float32"
        out = _call(fn, c, r, called_as=call)
        value = _as_float(out, "bradley_terry_loss")
        want = max(-delta, 0.0) + math.log1p(math.exp(-abs(delta)))
        if not math.isfinite(value):
            _fail(
                f"loss = {value} at Δ = {delta:g}: a form that overflows at large reward differences. log(sigmoid(Δ)) "
                "underflows (σ(Δ) rounds to 0, log 0 = −inf) and log(1 + exp(−Δ)) overflows (exp(1000) = inf). "
                "Use the stable form −F.logsigmoid(Δ) = F.softplus(−Δ)"
            )
        if not _close(value, want, 1e-5) and abs(value - want) > 1e-6:
            _fail(
                f"loss {value:.6g} at Δ = {delta:g}, expected {want:.6g} (−log σ(Δ) ≈ −Δ for very negative Δ): an eps "
                "or a clamp inside the log caps the loss and kills its gradient; use −F.logsigmoid(Δ)"
            )
        (g,) = torch.autograd.grad(out, c, allow_unused=True)
        if g is None:
            _fail("no gradient reaches `chosen`: build the loss from chosen − rejected with torch operations")
        if not torch.isfinite(g).all():
            _fail(
                f"the loss is finite at Δ = {delta:g} but its gradient is {g.item()}: torch.where evaluates both branches "
                "and the overflowing one poisons the gradient with NaN; use F.logsigmoid or F.softplus"
            )


@_checker("bradley_terry_grad")
def check_bt_gradient(fn: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]) -> str:
    """Check a hand-written gradient of the mean BT loss against autograd, reporting the relative error (cs231n style)."""
    n = 512
    chosen, rejected = (t.requires_grad_() for t in _bt_probe(n, torch.float64, scale=3.0, seed=1))
    want = torch.autograd.grad(bradley_terry_loss(chosen, rejected), (chosen, rejected))
    c, r = chosen.detach(), rejected.detach()
    out = _call(fn, c, r, called_as=f"bradley_terry_grad(chosen, rejected) with {n} float64 pairs")
    if out is None:
        _fail("returned None: return the pair (grad_chosen, grad_rejected)")
    if not isinstance(out, (tuple, list)) or len(out) != 2 or not all(torch.is_tensor(t) for t in out):
        _fail("return a pair of tensors (grad_chosen, grad_rejected), one gradient per input")
    if any(t.shape != c.shape for t in out):
        _fail(f"each gradient must have the shape of its input, {tuple(c.shape)}; got {[tuple(t.shape) for t in out]}")
    err = max(relative_error(g, w) for g, w in zip(out, want))
    if err > 1e-8:  # float64: a right formula agrees with autograd to ~1e-16
        gc, gr = (t.detach().double() for t in out)
        wc = want[0]
        delta = c - r
        wrong = [
            (-wc, -want[1], "wrong sign: ∂L/∂Δ = −σ(−Δ) is negative (raising the chosen reward lowers the loss)"),
            (wc * n, want[1] * n, "gradient of the sum, not the mean: divide by the batch size"),
            (-torch.sigmoid(delta) / n, torch.sigmoid(delta) / n, "σ(Δ) where σ(−Δ) belongs: ∂L/∂Δ = −σ(−Δ) = σ(Δ) − 1"),
            (wc, wc, "the rejected gradient has the opposite sign of the chosen one: ∂Δ/∂rejected = −1"),
        ]
        for cand_c, cand_r, hint in wrong:
            if relative_error(gc, cand_c) < 1e-8 and relative_error(gr, cand_r) < 1e-8:
                _fail(f"relative error {err:.2g} against autograd: {hint}")
        _fail(f"your gradient differs from autograd: relative error {err:.2g} (a right formula gives < 1e-8 in float64)")
    deltas = torch.tensor(_EXTREME_DELTAS)
    out = _call(fn, deltas, torch.zeros_like(deltas), called_as="bradley_terry_grad at Δ up to ±1e4 in float32")
    d = deltas.clone().requires_grad_()
    z = torch.zeros_like(deltas, requires_grad=True)
    want_x = torch.autograd.grad(bradley_terry_loss(d, z), (d, z))
    if not all(torch.isfinite(t).all() for t in out):
        _fail(
            "your gradient has NaN or inf at |Δ| ≥ 100: exp(−Δ)/(1 + exp(−Δ)) becomes inf/inf. "
            "σ(−Δ) = torch.sigmoid(−Δ) is computed stably"
        )
    err_x = max(relative_error(g, w) for g, w in zip(out, want_x))
    if err_x > 1e-5:
        _fail(f"at large |Δ| your gradient differs from autograd: relative error {err_x:.2g}")
    return f"relative error vs autograd {err:.1e} (float64), {err_x:.1e} at |Δ| up to 1e4 (float32)"


@_checker("relative_error")
def check_relative_error(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> str:
    """Check ``fn(x, y)`` = max |x − y| / max(1e-8, |x| + |y|), the gradient-check metric of cs231n."""
    g = make_generator(2)
    base = torch.randn(100, generator=g, dtype=torch.float64)
    probes = {
        "equal tensors": (base, base.clone()),
        "one bad coordinate": (base, torch.cat([base[:-1], base[-1:] * 2])),
        "gradients of size 1e-4": (base * 1e-4, base * 1e-4 * (1 + 1e-3)),
        "opposite signs": (base, -base),
        "y larger than x": (base.abs(), base.abs() * 1.5),
        "a zero coordinate in both": (torch.cat([base, torch.zeros(1, dtype=torch.float64)]),) * 2,
        "a zero in x only": (torch.cat([torch.zeros(1, dtype=torch.float64), base]), torch.cat([base[:1], base])),
    }
    for name, (x, y) in probes.items():
        value = _as_float(_call(fn, x, y, called_as=f"relative_error(x, y) on {name}"), "relative_error")
        want = relative_error(x, y)
        if _close(value, want, 1e-6) or abs(value - want) < 1e-12:
            continue
        diff = (x - y).abs()
        if not math.isfinite(value):
            _fail(f"relative_error on {name} gave {value}: floor the denominator, max(1e-8, |x| + |y|), so 0/0 cannot happen")
        wrong = [
            (diff.max().item(), "that is the ABSOLUTE error: divide by |x| + |y| so the number does not depend on the gradient's scale"),
            ((diff / (x.abs() + y.abs()).clamp_min(1e-8)).mean().item(), "mean instead of max: one bad coordinate hides in the average"),
            (((x - y) / (x.abs() + y.abs()).clamp_min(1e-8)).max().item(), "take |x − y|: a signed difference can hide the error"),
            ((diff / (x + y).abs().clamp_min(1e-8)).max().item(), "divide by |x| + |y|, not |x + y|: opposite signs cancel"),
            ((diff / x.abs().clamp_min(1e-8)).max().item(), "divide by |x| + |y|, symmetric in x and y, not by |x| alone"),
        ]
        for cand, hint in wrong:
            if _close(value, cand, 1e-6):
                _fail(f"relative_error on {name} gave {value:.6g}, expected {want:.6g}: {hint}")
        _fail(f"relative_error on {name} gave {value:.6g}, expected max |x − y| / max(1e-8, |x| + |y|) = {want:.6g}")
    return "max |x − y| / max(1e-8, |x| + |y|) on equal, tiny, zero and opposite-sign probes"
