"""Checkers for worksheet 04 — a stable Bradley-Terry loss and its gradient."""

from __future__ import annotations

import math
from typing import Any, Callable, NoReturn

import torch
import torch.nn.functional as F

from rmlib.losses import bradley_terry_loss
from rmlib.checks._contract import (_as_float, _call, _checker, _close, _dtype_name, _fail, _not_implemented_failure, _probe_generator, _tensor,
                                    _unchanged,
                                    relative_error)

WORKSHEET = "04"  # the number its notebooks' file names start with


def _bt_probe(n: int, dtype: torch.dtype, k: int = 0, bounded: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Asymmetric rewards, drawn afresh on every check: chosen and rejected have different means and spreads,
    so Δ is not symmetric about 0 (a swapped sign or softplus(Δ) for softplus(−Δ) gives a different number).

    ``bounded`` draws uniform rewards with Δ in [−5, 8]: there a right float64 gradient agrees with
    autograd to < 2e-13 in every form (σ(Δ) − 1 cancels at most 1.1e-16·e⁸/2), so the tolerance can
    reject finite differences (~3e-11)."""
    g = _probe_generator(k)
    if bounded:
        chosen = torch.rand(n, generator=g, dtype=torch.float64) * 8.0 - 3.0
        rejected = torch.rand(n, generator=g, dtype=torch.float64) * 5.0 - 3.0
    else:
        chosen = torch.randn(n, generator=g, dtype=torch.float64) * 2.0 + 0.7
        rejected = torch.randn(n, generator=g, dtype=torch.float64) * 1.3 - 0.4
    return chosen.to(dtype), rejected.to(dtype)


_EXTREME_DELTAS = [-1e4, -1e3, -100.0, -30.0, 0.0, 30.0, 100.0, 1e3, 1e4]  # float32 overflows exp() past 88.7
_DTYPE_HINT = ("return the loss in the inputs' dtype (float64 in, float64 out; float32 in, float32 out), as "
               "torch's own functions do: don't convert with .float() or .double(), and build no tensor with "
               "torch.tensor(...) (it defaults to float32)")


@_checker("bradley_terry_loss")
def check_bradley_terry_loss(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> str:
    """Check ``fn(chosen, rejected)`` = mean −log σ(chosen − rejected): value, gradient, and stability up to |Δ| = 1e4.

    Contract (stated in the task): a 0-dim floating tensor in the inputs' dtype and on their device, connected
    to autograd; exact to 1e-10 (relative) in float64, to float32 rounding in float32; batch sizes 1000, 7 and 1.
    """
    results = []
    for n, dtype in [(1000, torch.float64), (7, torch.float32), (1, torch.float64)]:
        results.append(_check_bt_value(fn, n, dtype))
    _check_bt_evaluation(fn)
    _check_bt_stability(fn)
    value, err = results[0]
    return f"loss {value:.4f} on a random batch, gradient matches autograd (rel. error {err:.1e}), finite up to |Δ| = 1e4"


def _check_bt_value(fn: Callable, n: int, dtype: torch.dtype) -> tuple[float, float]:
    chosen, rejected = (t.requires_grad_() for t in _bt_probe(n, dtype, k=n))
    call = f"bradley_terry_loss(chosen, rejected) with {n} {_dtype_name(dtype)} pairs"
    loss = _call(fn, chosen, rejected, called_as=call)
    if loss is None:
        _fail("returned None: return the loss tensor")
    if not torch.is_tensor(loss):
        _fail(f"return a torch tensor (so it can be backpropagated), got {type(loss).__name__}")
    if loss.shape != ():
        _fail(f"the loss must be one number (a 0-dim tensor), got shape {tuple(loss.shape)}: take the .mean() over pairs")
    if not loss.requires_grad:
        _fail("the loss has no gradient: you left autograd (.item(), .detach(), numpy or math); use torch operations only")
    _tensor(loss, call, dtype=dtype, device=chosen.device, why_dtype=_DTYPE_HINT)
    ref = bradley_terry_loss(chosen, rejected)
    value, want = loss.item(), ref.item()
    rel = 1e-10 if dtype == torch.float64 else 1e-5  # float64 forms of the right formula agree to ~1e-15, float32 to ~1e-7
    if not _close(value, want, max(rel, 1e-6)):
        delta = (chosen - rejected).detach()
        wrong = [
            (-want, "wrong sign: the loss is −log σ(Δ), never negative; you dropped the minus"),
            (F.softplus(delta).mean().item(), "wrong sign of Δ: use Δ = chosen − rejected (the loss must be small when chosen wins)"),
            (want * n, "sum instead of mean: average the loss over the pairs"),
            (F.softplus(-delta).sum().item() / max(n - 1, 1), "divide by the number of pairs n, not n − 1"),
            (F.softplus(-delta)[0].item(), "that is the loss of the first pair only: average over all pairs"),
        ]
        for cand, hint in wrong:
            if abs(cand - want) > 1e-3 * abs(want) and _close(value, cand, 1e-5):
                _fail(f"loss {value:.6g} on a batch of {n}, expected {want:.6g}: {hint}")
        _fail(f"loss {value:.6g} on a batch of {n} {_dtype_name(dtype)} pairs, expected mean −log σ(chosen − rejected) "
              f"= {want:.6g}")
    if not _close(value, want, rel):
        _fail(f"loss {value!r} on a random float64 batch, expected {want!r}: " + _near_miss(value, chosen, rejected))
    grads = torch.autograd.grad(loss, (chosen, rejected), allow_unused=True)
    ref_grads = torch.autograd.grad(ref, (chosen, rejected))
    if any(g is None for g in grads):
        _fail("no gradient reaches chosen or rejected: build the loss from both tensors with torch operations")
    if dtype == torch.float64:
        err = max(relative_error(g, r) for g, r in zip(grads, ref_grads))
    else:  # relative to the largest entry: a right form (torch's BCE) computes σ(Δ) − 1, which float32 rounds to
        # 6e-8 absolute, a large relative error where the entry is tiny (found by a student attack)
        err = max(((g - r).abs().max() / r.abs().max().clamp_min(1e-30)).item() for g, r in zip(grads, ref_grads))
    if err > (1e-6 if dtype == torch.float64 else 1e-4):
        _fail(f"the gradient of your loss differs from the reference (relative error {err:.2g})")
    return value, err


def _check_bt_evaluation(fn: Callable) -> None:
    """The loss on rewards that need no gradient (a validation pass): same value, inputs left as they were.

    Found by a student attack: an answer that subtracted in place only when autograd was off (where torch
    allows it) passed every probe that required a gradient."""
    chosen, rejected = _bt_probe(50, torch.float64, k=50)
    call = "bradley_terry_loss(chosen, rejected) with 50 float64 pairs that do not require grad (evaluation)"
    value = _as_float(_call(fn, chosen, rejected, called_as=call), "bradley_terry_loss")
    want = bradley_terry_loss(chosen, rejected).item()
    if not _close(value, want, 1e-10):
        _fail(f"loss {value!r} on rewards without requires_grad, expected {want!r}: the loss must not depend on "
              "whether its inputs require a gradient")


def _near_miss(value: float, chosen: torch.Tensor, rejected: torch.Tensor) -> str:
    """What a float64 loss within 1e-6 of the right one, but not within 1e-10, gives evidence of."""
    delta = (chosen - rejected).detach()
    if float(torch.tensor(value, dtype=torch.float32)) == value:
        # A float64 result that is exactly a float32 number (chance ~2^-29 otherwise): computed in float32.
        return ("your loss is a float32 number in float64 clothes: it was computed in float32 (a .float(), or a tensor "
                "made with torch.tensor(...), which defaults to float32) and converted back. Compute in the inputs' "
                "dtype, as torch's own functions do")
    for eps in (1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-12):
        forms = [-torch.log(torch.sigmoid(delta) + eps).mean(), -torch.log(torch.sigmoid(delta).clamp_min(eps)).mean(),
                 torch.log(1 + torch.exp(-delta) + eps).mean()]
        if any(_close(value, f.item(), 1e-12) for f in forms):
            return f"an eps or a clamp of {eps:g} inside the log shifts it: use a form that needs none"
    return ("close (within 1e-6) but not to float64 precision (1e-10), where every right form agrees to ~1e-15: "
            "something shifts it slightly — a constant factor, an eps, or a step done in lower precision")


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
                "Rewrite −log σ(Δ) in a form that PyTorch computes without exp overflowing"
            )
        if not _close(value, want, 1e-5) and abs(value - want) > 1e-6:
            # An eps or clamp inside the log saturates: the loss stops growing with −Δ, far below −Δ.
            if delta <= -100 and value < 0.5 * want:
                _fail(
                    f"loss {value:.6g} at Δ = {delta:g}, expected {want:.6g} (−log σ(Δ) ≈ −Δ for very negative Δ): the "
                    "loss stops growing — an eps or a clamp inside the log caps it, and kills its gradient"
                )
            _fail(f"loss {value:.6g} at Δ = {delta:g} for one float32 pair, expected −log σ(Δ) = {want:.6g}")
        if torch.is_tensor(out) and out.dtype != torch.float32:
            _fail(f"bradley_terry_loss returned {_dtype_name(out.dtype)} from float32 inputs: {_DTYPE_HINT}")
        (g,) = torch.autograd.grad(out, c, allow_unused=True)
        if g is None:
            _fail("no gradient reaches `chosen`: build the loss from chosen − rejected with torch operations")
        if not torch.isfinite(g).all():
            _fail(
                f"the loss is finite at Δ = {delta:g} but its gradient is {g.item()}: torch.where evaluates both branches "
                "and the overflowing one poisons the gradient with NaN; use one formula that is stable everywhere"
            )


def _call_without_autograd(fn: Callable, c: torch.Tensor, r: torch.Tensor, called_as: str):
    """Call a by-hand gradient with autograd unavailable: inputs without requires_grad, under inference mode."""
    c, r = c.detach().clone(), r.detach().clone()
    before = (c.clone(), r.clone())
    try:
        with torch.inference_mode():
            out = fn(c, r)
    except KeyboardInterrupt:
        raise
    except NotImplementedError as exc:
        _not_implemented_failure(fn, exc, called_as)
    except RuntimeError as exc:
        if "grad" in str(exc):
            _fail(f"your function raised RuntimeError: {exc}\n  when called as {called_as} (inputs without "
                  "requires_grad, autograd off)\n  hint: it seems to use autograd (.backward() or torch.autograd.grad). "
                  "Derive the gradient by hand and compute it with tensor operations; autograd is what the check "
                  "compares your formula with")
        raise AssertionError(f"your function raised RuntimeError: {exc}\n  when called as {called_as}") from None
    except BaseException as exc:  # any other crash (SystemExit included) is a wrong answer, explained
        raise AssertionError(f"your function raised {type(exc).__name__}: {exc}\n  when called as {called_as}") from None
    if not (_unchanged(c, before[0]) and _unchanged(r, before[1])):
        _fail(f"your function changed its inputs in place\n  when called as {called_as}\n  hint: compute new "
              "tensors; the caller still needs chosen and rejected as they were")
    return out


def _fail_gradient(out: Any, want: tuple[torch.Tensor, torch.Tensor], c: torch.Tensor, r: torch.Tensor, n: int,
                   dtype: torch.dtype, err: float, tol: float) -> NoReturn:
    """Fail a gradient that differs from autograd, naming the wrong formula it matches when one does."""
    gc, gr = (t.detach().double() for t in out)
    wc = want[0].double()
    delta = (c - r).double()
    wrong = [
        (-wc, -want[1], "wrong sign: the loss falls when the chosen reward rises, so ∂L/∂chosen is negative"),
        (wc * n, want[1] * n, "gradient of the sum, not the mean: divide by the batch size"),
        (-torch.sigmoid(delta) / n, torch.sigmoid(delta) / n,
         "σ(Δ) where σ(−Δ) belongs: the derivative of log(1 + e^(−Δ)) is −e^(−Δ)/(1 + e^(−Δ)) = −σ(−Δ)"),
        (wc, wc, "the rejected gradient has the opposite sign of the chosen one: ∂Δ/∂rejected = −1"),
        (wc * n / 512, want[1] * n / 512, "the batch size is hard-coded: divide by chosen.numel()"),
    ]
    if dtype == torch.float64 and err < 1e-8:
        _fail(f"your gradient differs from autograd on {n} float64 pairs by a relative error of {err:.2g}: "
              f"close, but a formula derived by hand agrees to < {tol:g} (finite differences or an eps "
              "somewhere?)")
    for cand_c, cand_r, hint in wrong:
        if relative_error(gc, cand_c) < tol and relative_error(gr, cand_r.double()) < tol:
            _fail(f"relative error {err:.2g} against autograd on {n} {_dtype_name(dtype)} pairs: {hint}")
    _fail(f"your gradient differs from autograd on {n} {_dtype_name(dtype)} pairs: relative error {err:.2g} "
          f"(a right formula gives < {tol:g})")


@_checker("bradley_terry_grad")
def check_bt_gradient(fn: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]) -> str:
    """Check a hand-written gradient of the mean BT loss against autograd, reporting the relative error (cs231n style).

    Contract: a pair of tensors, each of its input's shape and dtype, computed without autograd (the checker
    calls it on inputs that do not require grad, with autograd switched off); batch sizes 512 (float64)
    and 5 (float32); finite at |Δ| up to 1e4.
    """
    errs = []
    for n, dtype in [(512, torch.float64), (5, torch.float32)]:
        chosen, rejected = (t.requires_grad_() for t in _bt_probe(n, dtype, k=n, bounded=True))
        want = torch.autograd.grad(bradley_terry_loss(chosen, rejected), (chosen, rejected))
        c, r = chosen.detach(), rejected.detach()
        call = f"bradley_terry_grad(chosen, rejected) with {n} {_dtype_name(dtype)} pairs"
        out = _call_without_autograd(fn, c, r, call)
        if out is None:
            _fail("returned None: return the pair (grad_chosen, grad_rejected)")
        if not isinstance(out, (tuple, list)) or len(out) != 2 or not all(torch.is_tensor(t) for t in out):
            _fail("return a pair of tensors (grad_chosen, grad_rejected), one gradient per input")
        if any(t.shape != c.shape for t in out):
            _fail(f"each gradient must have the shape of its input, {tuple(c.shape)}; got {[tuple(t.shape) for t in out]}")
        for t in out:
            _tensor(t, call, dtype=dtype, why_dtype="compute the gradient in the inputs' dtype")
        err = max(relative_error(g, w) for g, w in zip(out, want))
        # float64: every right form agrees with autograd to < 2e-13 on these probes (see _bt_probe); central
        # finite differences reach ~3e-11 at best. float32: a right form agrees to ~1e-7.
        # float32: σ(Δ) − 1 cancels up to 6e-8·e⁸/2 ≈ 9e-5 at Δ = 8, so 2e-4.
        tol = 2e-12 if dtype == torch.float64 else 2e-4
        if err > tol:
            _fail_gradient(out, want, c, r, n, dtype, err, tol)
        errs.append(err)
    # Once more with grad mode on, as a learner's later cells call it: an answer must not tell the check from use
    # (one that returned a wrong sign whenever torch.is_grad_enabled() passed; found by a student attack).
    chosen, rejected = _bt_probe(64, torch.float64, k=64, bounded=True)
    c, r = chosen.clone().requires_grad_(), rejected.clone().requires_grad_()
    want = torch.autograd.grad(bradley_terry_loss(c, r), (c, r))
    with torch.enable_grad():
        out = _call(fn, chosen, rejected, called_as="bradley_terry_grad(chosen, rejected) with 64 float64 pairs, grad mode on")
    if (not isinstance(out, (tuple, list)) or len(out) != 2 or not all(torch.is_tensor(t) for t in out)
            or any(t.shape != chosen.shape for t in out)
            or max(relative_error(g, w) for g, w in zip(out, want)) > 2e-12):
        _fail("with grad mode on (as in the worksheet's later cells) your gradient differs from the one it gave under "
              "the check's inference mode: compute the same formula whatever torch's grad mode is")
    deltas = torch.tensor(_EXTREME_DELTAS)
    out = _call_without_autograd(fn, deltas, torch.zeros_like(deltas), "bradley_terry_grad at Δ up to ±1e4 in float32")
    d = deltas.clone().requires_grad_()
    z = torch.zeros_like(deltas, requires_grad=True)
    want_x = torch.autograd.grad(bradley_terry_loss(d, z), (d, z))
    if not all(torch.isfinite(t).all() for t in out):
        _fail(
            "your gradient has NaN or inf at |Δ| ≥ 100: exp(−Δ)/(1 + exp(−Δ)) becomes inf/inf. "
            "Write it with a function PyTorch computes stably for any Δ"
        )
    err_x = max(relative_error(g, w) for g, w in zip(out, want_x))
    if err_x > 1e-5:
        _fail(f"at large |Δ| your gradient differs from autograd: relative error {err_x:.2g}")
    return f"relative error vs autograd {errs[0]:.1e} (float64), {err_x:.1e} at |Δ| up to 1e4 (float32); no autograd inside"


# Wrong formulas of relative_error, each with the hint it earns when it reproduces the answer on every probe.
_RELATIVE_ERROR_FORMULAS = [
    (lambda x, y, d: d.max(), "that is the ABSOLUTE error: divide by |x| + |y| so the number does not depend on the gradient's scale"),
    (lambda x, y, d: (d / (x.abs() + y.abs()).clamp_min(1e-8)).mean(), "mean instead of max: one bad coordinate hides in the average"),
    (lambda x, y, d: ((x - y) / (x.abs() + y.abs()).clamp_min(1e-8)).max(), "take |x − y|: a signed difference can hide the error"),
    (lambda x, y, d: (d / (x + y).abs().clamp_min(1e-8)).max(), "divide by |x| + |y|, not |x + y|: opposite signs cancel"),
    (lambda x, y, d: (d / x.abs().clamp_min(1e-8)).max(), "divide by |x| + |y|, symmetric in x and y, not by |x| alone"),
    (lambda x, y, d: (d / (x.abs() + y.abs()).clamp_min(1e-12)).max(), "the floor is 1e-8, not 1e-12"),
    (lambda x, y, d: (d / (x.abs() + y.abs())).max(), "the floor is missing: the denominator is max(1e-8, |x| + |y|)"),
    (lambda x, y, d: (d / (x.abs() + y.abs() + 1e-8)).max(),
     "the floor is a max, not an added eps: max(1e-8, |x| + |y|), not |x| + |y| + 1e-8"),
    (lambda x, y, d: (d / (x.abs() + y.abs()).clamp_min(1e-6)).max(), "the floor is 1e-8, not 1e-6"),
    (lambda x, y, d: (d / (x.abs() + y.abs()).clamp_min(1e-8)).nan_to_num(0.0).max(),
     "a NaN in the inputs must give NaN: nan_to_num, Python's max() over a list or a NaN filter hide a NaN "
     "gradient — torch's .max() propagates it"),
]


@_checker("relative_error")
def check_relative_error(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> str:
    """Check ``fn(x, y)`` = max |x − y| / max(1e-8, |x| + |y|), the gradient-check metric of cs231n.

    Probes are drawn afresh on every call; a NaN anywhere in x must give NaN (a gradient check must not
    hide a NaN gradient). A wrong formula is named only when it reproduces the answer on every probe.
    """
    g = _probe_generator(0)
    base = torch.randn(100, generator=g, dtype=torch.float64)
    where = int(torch.randint(1, 99, (1,), generator=g))
    with_nan = base.clone()
    with_nan[where] = float("nan")
    probes = {
        "equal tensors": (base, base.clone()),
        "one bad coordinate": (base, torch.cat([base[:-1], base[-1:] * 2])),
        "gradients of size 1e-4": (base * 1e-4, base * 1e-4 * (1 + 1e-3)),
        "opposite signs": (base, -base),
        "y larger than x": (base.abs(), base.abs() * 1.5),
        "a zero coordinate in both": (torch.cat([base, torch.zeros(1, dtype=torch.float64)]),) * 2,
        "a zero in x only": (torch.cat([torch.zeros(1, dtype=torch.float64), base]), torch.cat([base[:1], base])),
        # |x| + |y| below the floor: 2e-9 / max(1e-8, 4e-9) = 0.2, where no floor gives 0.5 and "+ 1e-8" 0.143.
        "gradients below the 1e-8 floor": (torch.tensor([3e-9, 0.2], dtype=torch.float64),
                                           torch.tensor([1e-9, 0.2], dtype=torch.float64)),
        "float32 tensors": (base.float(), base.float() * 1.01),
        f"a NaN in x at index {where}": (with_nan, base.clone()),
    }
    same = lambda a, b: (math.isnan(a) and math.isnan(b)) or _close(a, b, 1e-6) or abs(a - b) < 1e-12  # noqa: E731
    results = []
    for name, (x, y) in probes.items():
        value = _as_float(_call(fn, x, y, called_as=f"relative_error(x, y) on {name}"), "relative_error")
        results.append((name, x, y, value, relative_error(x, y)))
    if all(same(value, want) for _, _, _, value, want in results):
        return ("max |x − y| / max(1e-8, |x| + |y|) on equal, tiny, zero, sub-floor, float32, opposite-sign and "
                "NaN probes")
    for formula, hint in _RELATIVE_ERROR_FORMULAS:
        cands = [formula(x.double(), y.double(), (x.double() - y.double()).abs()).item() for _, x, y, _, _ in results]
        if all(same(value, c) for (_, _, _, value, _), c in zip(results, cands)):
            _fail(f"relative_error gave {[round(r[3], 6) for r in results]} on the probes "
                  f"({', '.join(r[0] for r in results)}), expected {[round(r[4], 6) for r in results]}: {hint}")
    name, _, _, value, want = next(r for r in results if not same(r[3], r[4]))
    if math.isnan(want):
        _fail(f"relative_error on {name} gave {value:.6g}, expected nan: a NaN gradient must show up in the check, "
              "not be hidden (torch's .max() propagates NaN)")
    if not math.isfinite(value):
        _fail(f"relative_error on {name} gave {value}, expected {want:.6g}: floor the denominator, "
              "max(1e-8, |x| + |y|), so 0/0 cannot happen")
    _fail(f"relative_error on {name} gave {value:.6g}, expected max |x − y| / max(1e-8, |x| + |y|) = {want:.6g}")


HINTS = {
    "bradley_terry_loss": (
        "−log σ(Δ) can be rewritten as log(1 + e^(−Δ)). Does torch have a function that computes exactly that "
        "without forming e^(−Δ) when it overflows?",
        "torch.nn.functional has two stable functions for this: logsigmoid(Δ) = log σ(Δ), and softplus(x) = "
        "log(1 + e^x). Either one, applied to Δ = chosen − rejected, then a mean over the pairs, in the inputs' dtype.",
        "return F.softplus(rejected - chosen).mean()   # the same as -F.logsigmoid(chosen - rejected).mean()",
    ),
    "bradley_terry_grad": (
        "Differentiate one term ℓ(Δ) = log(1 + e^(−Δ)) with respect to Δ, then use the chain rule through "
        "Δ = chosen − rejected and the 1/n of the mean.",
        "ℓ'(Δ) = −e^(−Δ)/(1 + e^(−Δ)); divide numerator and denominator by e^(−Δ) to write it with the sigmoid, "
        "which torch computes stably. ∂Δ/∂rejected = −1 flips the sign for the rejected reward.",
        "g = -torch.sigmoid(rejected - chosen) / chosen.numel(); return g, -g   # ℓ'(Δ) = -σ(-Δ)",
    ),
    "relative_error": (
        "Compare each coordinate relative to its own size, then report the worst coordinate.",
        "The denominator |x_i| + |y_i| is symmetric in x and y; floor it at 1e-8 with a max (not by adding an "
        "eps) so that two zeros give 0, not 0/0.",
        "return ((x - y).abs() / (x.abs() + y.abs()).clamp_min(1e-8)).max().item()",
    ),
}
