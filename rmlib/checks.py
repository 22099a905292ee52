"""Checkers for the worksheets: each one probes a learner's function with its own seeded inputs.

Every checker takes the learner's function and

- prints one line and returns ``True`` when the answer is right;
- raises ``AssertionError`` with a hint naming the likely mistake when it is wrong;
- prints "not implemented yet" and returns ``False`` while the function still raises
  ``NotImplementedError``, so Run All on a fresh worksheet runs from top to bottom.

Checkers seed their own probes and run inside ``torch.random.fork_rng``, so they are reproducible
and leave the notebook's global random state exactly as they found it.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Callable, NoReturn

import torch
import torch.nn.functional as F
from torch import nn

from rmlib.seeding import make_generator

CHECK_SEED = 1234


class _NotImplementedYet(Exception):
    """The learner's function still raises NotImplementedError."""


def _checker(name: str) -> Callable[[Callable[[Callable], str]], Callable[[Callable], bool]]:
    """Turn ``check(fn) -> success detail`` into a public checker with the shared contract."""

    def wrap(check: Callable[[Callable], str]) -> Callable[[Callable], bool]:
        @functools.wraps(check)
        def run(fn: Callable) -> bool:
            if not callable(fn):
                raise TypeError(f"{check.__name__} expects your function `{name}` itself, got {type(fn).__name__}")
            try:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(CHECK_SEED)
                    detail = check(fn)
            except _NotImplementedYet:
                print(f"{name}: not implemented yet (replace `raise NotImplementedError` with your code, then rerun)")
                return False
            print(f"✓ {name}: {detail}")
            return True

        return run

    return wrap


def _call(fn: Callable, *args: Any, called_as: str, hint: str = "") -> Any:
    """Call the learner's function; a crash becomes an AssertionError saying how it was called."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise _NotImplementedYet from None
    except Exception as exc:  # any crash of the learner's code is a wrong answer, explained
        raise AssertionError(
            f"{getattr(fn, '__name__', 'your function')} raised {type(exc).__name__}: {exc}\n"
            f"  called as {called_as}" + (f"\n  hint: {hint}" if hint else "")
        ) from None


def _fail(message: str) -> NoReturn:
    raise AssertionError(message)


def _as_float(value: Any, what: str) -> float:
    """A Python float from a number or a one-element tensor, or a clear failure."""
    if value is None:
        _fail(f"{what} returned None: did you forget the `return` statement?")
    if torch.is_tensor(value):
        if value.numel() != 1:
            _fail(f"{what} must return one number, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(f"{what} must return a number, got {type(value).__name__}")
    return float(value)


def _close(a: float, b: float, rel: float) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.0)


def relative_error(x: torch.Tensor, y: torch.Tensor) -> float:
    """cs231n's gradient-check metric: max |x − y| / max(1e-8, |x| + |y|), elementwise."""
    x, y = x.detach().double(), y.detach().double()
    return (x - y).abs().div((x.abs() + y.abs()).clamp_min(1e-8)).max().item()


def _excess_kurtosis(x: torch.Tensor) -> float:
    c = x.double().flatten() - x.double().mean()
    return (c.pow(4).mean() / c.pow(2).mean() ** 2).item() - 3.0


# --------------------------------------------------------------------------- worksheet 03: layer_init

N_WEIGHTS = 200_000  # weights drawn per statistical probe


@_checker("layer_init")
def check_layer_init(fn: Callable[[nn.Module, float], nn.Module]) -> str:
    """Check ``fn(layer, std)``: N(0, std²) drawn in place into ``layer.weight``, bias untouched, same layer returned."""
    layer = nn.Linear(N_WEIGHTS, 1)
    weight, bias = layer.weight, layer.bias
    weight_before, bias_before = weight.detach().clone(), bias.detach().clone()
    std = 0.5
    out = _call(fn, layer, std, called_as=f"layer_init(nn.Linear({N_WEIGHTS}, 1), std={std})")
    if out is None:
        _fail("layer_init returned None: end with `return layer`, so `layer_init(model.score, std)` gives the head back")
    if out is not layer:
        _fail(
            "layer_init returned a different module: a new layer instead of in place. Redraw the weight of the "
            "layer you were given (torch.nn.init.normal_(layer.weight, ...)) and return that same layer"
        )
    if layer.weight is not weight:
        _fail(
            "layer.weight is a new Parameter: a new Parameter instead of in place. An optimizer built before the "
            "call would still hold the old one; draw into the existing tensor with torch.nn.init.normal_(layer.weight, ...)"
        )
    if layer.bias is not bias or not torch.equal(layer.bias.detach(), bias_before):
        _fail("the bias was changed: layer_init redraws the weight only and leaves layer.bias exactly as it was")
    if not layer.weight.requires_grad:
        _fail("layer.weight no longer requires grad: initialise it in place without detaching it from training")
    w = layer.weight.detach().double().flatten()
    if torch.equal(w, weight_before.double().flatten()):
        _fail("layer.weight is unchanged: it still holds PyTorch's default init")
    n = w.numel()
    mean, sd, kurt = w.mean().item(), w.std().item(), _excess_kurtosis(w)
    # Sampling errors of n normal draws: mean σ/sqrt(n), std σ/sqrt(2n), excess kurtosis sqrt(24/n).
    # Five standard errors keeps a right answer passing; the mistakes below sit hundreds of errors away.
    if abs(mean) > 5 * sd / math.sqrt(n):
        if abs(mean - std) < 5 * sd / math.sqrt(n):
            _fail(
                f"the weights have mean {mean:.4f} = std: normal_(w, {std}) passes std as the MEAN (the second "
                "positional argument). Write torch.nn.init.normal_(layer.weight, mean=0.0, std=std)"
            )
        _fail(f"the weights have mean {mean:.4f}; they should have mean 0")
    if kurt < -0.6:  # a uniform law has excess kurtosis −1.2, a normal one 0 ± 0.011 here
        _fail(f"uniform instead of normal: excess kurtosis {kurt:.2f} (normal: 0, uniform: −1.2); use normal_, not uniform_")
    if abs(kurt) > 5 * math.sqrt(24 / n):
        _fail(f"the weights do not look normal: excess kurtosis {kurt:.3f} (a normal law has 0)")
    fan_in = layer.weight.shape[1]
    if abs(sd - std) > 5 * std / math.sqrt(2 * n):
        wrong = {
            std**2: "you used std² (a variance) as the standard deviation",
            math.sqrt(std): "you used sqrt(std) as the standard deviation",
            1 / math.sqrt(fan_in + 1): "you ignored the std argument and used 1/sqrt(fan_in + 1)",
            1 / math.sqrt(fan_in): "you ignored the std argument and used 1/sqrt(fan_in)",
        }
        for value, hint in wrong.items():
            if abs(sd - value) < 0.02 * value:
                _fail(f"weight std {sd:.4f}, asked for {std}: {hint}")
        _fail(f"weight std {sd:.4f}, asked for std={std}")

    for module, probe_std, text in [
        (nn.Linear(64, 1, bias=False), 0.0, "nn.Linear(64, 1, bias=False), std=0.0"),
        (nn.Embedding(1000, 100), 1.0, "nn.Embedding(1000, 100), std=1.0"),
    ]:
        hint = "don't touch the bias (a Hugging Face score head has bias=None) and don't rely on in_features"
        _call(fn, module, probe_std, called_as=f"layer_init({text})", hint=hint)
        got = module.weight.detach().std().item()
        # 1e5 draws: the std's standard error is 1/sqrt(2e5) ≈ 0.0022; 0.02 is ~9 errors.
        if probe_std == 0.0 and torch.count_nonzero(module.weight) > 0:
            _fail(f"layer_init({text}) left non-zero weights: std 0 must give an all-zero weight")
        if probe_std > 0 and abs(got - probe_std) > 0.02:
            _fail(f"layer_init({text}) gave weight std {got:.3f}: it must work for any module with a .weight")
    return (
        f"normal draws (excess kurtosis {kurt:+.3f}), mean {mean:+.4f}, std {sd:.4f} for std={std}; "
        "in place, same layer returned, bias untouched"
    )


@_checker("score_head_std")
def check_score_head_std(fn: Callable[[int], float]) -> str:
    """Check ``fn(hidden_size)`` = 1/sqrt(hidden_size + 1) at several widths."""
    widths = [1, 2, 64, 768, 4096]
    got = [_as_float(_call(fn, d, called_as=f"score_head_std({d})"), f"score_head_std({d})") for d in widths]
    want = [1 / math.sqrt(d + 1) for d in widths]
    if all(_close(g, w, 1e-6) for g, w in zip(got, want)):
        return "1/sqrt(d + 1) at d = " + ", ".join(f"{d} → {g:.5f}" for d, g in zip(widths, got))
    wrong = [
        (lambda d: 1 / (d + 1), "1/(d+1) instead of 1/sqrt(d+1): N(0, 1/(d+1)) gives the VARIANCE; the std is its square root"),
        (lambda d: 1 / math.sqrt(d), "1/sqrt(d): you forgot the +1 (it counts the bias as one more input)"),
        (lambda d: math.sqrt(d + 1), "sqrt(d+1): upside down, the std must shrink as the head gets wider"),
        (lambda d: 1 / math.sqrt(3 * d), "1/sqrt(3d) is PyTorch's default nn.Linear std, not the score-head rule"),
        (lambda d: 0.02, "0.02 is Hugging Face's initializer_range, a constant; the score-head rule depends on d"),
        (lambda d: math.sqrt(2 / (d + 1)), "sqrt(2/(d+1)) is Xavier normal with fan_out = 1, not the score-head rule"),
        (lambda d: 1 / d, "1/d: that is neither the std nor the variance of the rule; the std is 1/sqrt(d+1)"),
    ]
    for formula, hint in wrong:
        if all(_close(g, formula(d), 1e-6) for g, d in zip(got, widths)):
            _fail(hint)
    d, g, w = next((d, g, w) for d, g, w in zip(widths, got, want) if not _close(g, w, 1e-6))
    _fail(f"score_head_std({d}) = {g:.6g}, expected 1/sqrt({d}+1) = {w:.6g}")


# ------------------------------------------------------------------- worksheet 02: variance by Monte Carlo

_VARIANCE_GRID = [(3, 0.3, 0.5), (64, 0.05, 1.7), (1000, 2.0, 3.0), (4096, 1 / math.sqrt(4097), 1.0)]


@_checker("predict_reward_variance")
def check_predicted_variance(fn: Callable[[int, float, float], float]) -> str:
    """Check ``fn(d, std, sigma_h)`` = d σ_w² σ_h² on a grid chosen so every common slip gives a different number."""
    got = [
        _as_float(_call(fn, d, s, h, called_as=f"predict_reward_variance({d}, {s:.4g}, {h})"), "predict_reward_variance")
        for d, s, h in _VARIANCE_GRID
    ]
    want = [d * s**2 * h**2 for d, s, h in _VARIANCE_GRID]
    if all(_close(g, w, 1e-6) for g, w in zip(got, want)):
        return "d σ_w² σ_h² on " + ", ".join(f"(d={d}, σ_w={s:.3g}, σ_h={h}) → {g:.4g}" for (d, s, h), g in zip(_VARIANCE_GRID, got))
    wrong = [
        (lambda d, s, h: math.sqrt(d) * s * h, "you returned the standard deviation of r; the question asks for its variance"),
        (lambda d, s, h: d * s * h, "σ_w and σ_h must be squared: variances multiply, not standard deviations"),
        (lambda d, s, h: s**2 * h**2, "the factor d is missing: r = Σ_i w_i h_i adds d independent terms"),
        (lambda d, s, h: d * s**2 * h, "σ_h must be squared: Var(w_i h_i) = σ_w² σ_h²"),
        (lambda d, s, h: d * s * h**2, "σ_w must be squared: Var(w_i h_i) = σ_w² σ_h²"),
        (lambda d, s, h: (d * s * h) ** 2, "d² instead of d: variances of independent terms add (d terms), you squared the sum"),
        (lambda d, s, h: (d + 1) * s**2 * h**2, "d+1 terms: the +1 belongs to σ_w = 1/sqrt(d+1), the sum has d terms"),
    ]
    for formula, hint in wrong:
        if all(_close(g, formula(*p), 1e-6) for g, p in zip(got, _VARIANCE_GRID)):
            _fail(hint)
    (d, s, h), g, w = next((p, g, w) for p, g, w in zip(_VARIANCE_GRID, got, want) if not _close(g, w, 1e-6))
    _fail(f"predict_reward_variance({d}, {s:.4g}, {h}) = {g:.6g}, expected d σ_w² σ_h² = {w:.6g}")


def mc_variance_stderr(d: int, std: float, sigma_h: float, n: int) -> float:
    """Standard error of the sample variance of n draws of r = Σ_{i≤d} w_i h_i, w_i ~ N(0, σ_w²), h_i ~ N(0, σ_h²).

    With s² = σ_w²σ_h²: Var(r) = d s², E r⁴ = 3 d² s⁴ + 6 d s⁴ (each product has fourth moment 9 s⁴),
    so the variance of the sample variance is (E r⁴ − Var(r)²)/n = (2 d² + 6 d) s⁴ / n.
    """
    return math.sqrt((2 * d * d + 6 * d) / n) * std**2 * sigma_h**2


def _check_fresh_draws(fn: Callable) -> None:
    """Fail with a hint when the estimator reuses one head (or one hidden state) for every sample."""
    # One shared head (or one shared hidden state) gives Var over the other factor only: at d = 1
    # the estimate is w² or h², off by a chi-square(1) factor, so across seeds it swings far beyond
    # the sampling error sqrt(8/n) ≈ 0.009 of the right estimator.
    n1 = 50_000
    se1 = mc_variance_stderr(1, 1.0, 1.0, n1)
    ests = [
        _as_float(_call(fn, 1, 1.0, 1.0, n1, make_generator(seed), called_as=f"mc_reward_variance(1, 1.0, 1.0, {n1}, generator)"), "mc_reward_variance")
        for seed in range(5)
    ]
    if any(abs(e - 1.0) > 5 * se1 for e in ests):
        _fail(
            f"at d=1, σ_w=σ_h=1 your estimates across 5 seeds are {[round(e, 3) for e in ests]}, but Var(r) = 1 ± {se1:.3f}: "
            "one head w (or one hidden state h) reused for every sample? Draw a fresh w AND a fresh h per sample "
            "(tensors of shape (n, d)): the variance is over the init and the inputs together"
        )


@_checker("mc_reward_variance")
def check_mc_variance(fn: Callable[[int, float, float, int, torch.Generator], float]) -> str:
    """Check ``fn(d, std, sigma_h, n, generator)``: a Monte Carlo estimate of Var(w·h) from n fresh (w, h) pairs."""
    d, std, sigma_h, n = 16, 0.5, 3.0, 100_000
    call = f"mc_reward_variance({d}, {std}, {sigma_h}, {n}, generator)"
    est = _as_float(_call(fn, d, std, sigma_h, n, make_generator(0), called_as=call), "mc_reward_variance")
    again = _as_float(_call(fn, d, std, sigma_h, n, make_generator(0), called_as=call), "mc_reward_variance")
    if est != again:
        _fail(
            f"two calls with the same seeded generator gave {est:.6g} and {again:.6g}: pass generator=generator "
            "to every torch.randn call so the estimate is reproducible"
        )
    want = d * std**2 * sigma_h**2
    se = mc_variance_stderr(d, std, sigma_h, n)
    if not math.isfinite(est) or abs(est - want) > 5 * se:  # 5 standard errors of the sample variance
        s2 = std**2 * sigma_h**2
        wrong = [
            (math.sqrt(want), "you returned the standard deviation of r, not its variance"),
            (d * std**4 * sigma_h**2, "you scaled w by std² (a variance); torch.randn(...) * std has std `std`"),
            (d * std**2 * sigma_h**4, "you scaled h by σ_h² (a variance); torch.randn(...) * sigma_h has std σ_h"),
            (s2 / d, "you averaged over the d coordinates: r = w·h is a SUM over coordinates (.sum(-1))"),
            (s2, "r looks like a single product w_i h_i: sum over all d coordinates, r = (w * h).sum(-1)"),
            (want / 3, "w or h drawn with torch.rand (uniform on [0, 1)) instead of torch.randn (normal)"),
            (d * s2 * 7 / 144, "w and h drawn with torch.rand (uniform on [0, 1)) instead of torch.randn (normal)"),
        ]
        for value, hint in wrong:
            if math.isfinite(est) and abs(est - value) < 0.05 * value:
                _fail(f"estimate {est:.4g} for d={d}, σ_w={std}, σ_h={sigma_h} (theory {want:.4g}): {hint}")
        _check_fresh_draws(fn)
        _fail(f"estimate {est:.4g} for d={d}, σ_w={std}, σ_h={sigma_h}, but theory says {want:.4g} ± {se:.2g}")
    _check_fresh_draws(fn)
    return f"estimate {est:.4g} vs d σ_w² σ_h² = {want:.4g} (standard error {se:.2g}); reproducible, fresh w and h per sample"


@_checker("hidden_states_that_break_the_formula")
def check_formula_breaker(fn: Callable[[int, int, torch.Generator], torch.Tensor]) -> str:
    """Check ``fn(n, d, generator)`` returns n hidden states for which Var(w·h) ≠ d σ_w² σ_h².

    σ_h² is read the usual way: the variance of one coordinate, averaged over coordinates.
    The checker draws a fresh head w ~ N(0, 1/(d+1)) per sample and measures Var(r).
    """
    n, d = 20_000, 64
    call = f"hidden_states_that_break_the_formula({n}, {d}, generator)"
    h = _call(fn, n, d, make_generator(0), called_as=call)
    if h is None:
        _fail("returned None: return the tensor of hidden states")
    if not torch.is_tensor(h) or not h.is_floating_point():
        _fail(f"return a floating-point tensor of shape ({n}, {d}), got {type(h).__name__}")
    if tuple(h.shape) != (n, d):
        hint = " (transposed? one row per sample)" if tuple(h.shape) == (d, n) else ""
        _fail(f"expected shape ({n}, {d}), got {tuple(h.shape)}{hint}")
    if not torch.isfinite(h).all():
        _fail("your hidden states contain inf or NaN")
    again = _call(fn, n, d, make_generator(0), called_as=call)
    if not torch.equal(h, again):
        _fail("two calls with the same seeded generator differ: pass generator=generator to every torch.randn call")
    h = h.detach().double()
    std = 1 / math.sqrt(d + 1)
    w = torch.randn(n, d, generator=make_generator(1), dtype=torch.float64) * std
    r = (w * h).sum(-1)
    c = r - r.mean()
    var = c.pow(2).mean().item()
    se = math.sqrt(max(c.pow(4).mean().item() - var**2, 0.0) / n)  # standard error of the sample variance
    sigma_h2 = h.var(0).mean().item()
    formula = d * std**2 * sigma_h2
    exact = std**2 * h.pow(2).sum(-1).mean().item()
    if abs(var - formula) <= 6 * se:
        mean_norm = h.mean(0).norm().item()
        spread = h.var(0)
        corr = torch.corrcoef(h[:, :8].T)
        off_diag = (corr - torch.eye(8, dtype=corr.dtype)).abs().max().item()
        why = (
            f"measured Var(r) = {var:.4g} ± {se:.2g} agrees with d σ_w² σ_h² = {formula:.4g}: the formula holds for these "
            f"hidden states. Their mean is ≈ 0 (‖mean‖ = {mean_norm:.3g}), and Var(r) = σ_w² E‖h‖² with E‖h‖² = d σ_h² for "
            "any zero-mean h. "
        )
        if off_diag > 0.5:
            _fail(why + "Correlations between coordinates don't break it: w is independent across coordinates.")
        if spread.max() > 2 * spread.min():
            _fail(why + "Unequal per-coordinate variances don't break it either: σ_h² is their average.")
        _fail(why + "Isotropic h at any scale is the case the formula was derived for (rescaling h rescales σ_h² too).")
    return (
        f"Var(r) = {var:.4g} ± {se:.2g}, but d σ_w² σ_h² = {formula:.4g}; σ_w² E‖h‖² = {exact:.4g} accounts for it"
    )


# ---------------------------------------------------------------- worksheet 04: the Bradley-Terry loss


def _reference_bt_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    # −log σ(Δ) = softplus(−Δ), computed without overflow for any Δ.
    return F.softplus(rejected - chosen).mean()


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
    ref = _reference_bt_loss(chosen, rejected)
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
    want = torch.autograd.grad(_reference_bt_loss(chosen, rejected), (chosen, rejected))
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
    want_x = torch.autograd.grad(_reference_bt_loss(d, z), (d, z))
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


# ------------------------------------------------------------ worksheet 05: the initialisation sweep


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


# ------------------------------------------------------------- worksheet 06: reward normalisation


def _gain_bias(out: Any, call: str) -> tuple[float, float]:
    """The learner's (gain, bias) as two floats, or a failure that says what came back instead."""
    if torch.is_tensor(out) and out.numel() > 2:
        _fail(f"{call} returned a tensor of shape {tuple(out.shape)}: return the pair (gain, bias), "
              "not the normalised rewards")
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        _fail(f"{call} must return a pair (gain, bias), got {type(out).__name__}")
    for part, what in zip(out, ("gain", "bias")):
        if torch.is_tensor(part) and part.numel() != 1:
            _fail(f"{call} returned a {what} of shape {tuple(part.shape)}: one gain and one bias for the whole "
                  "reference set (reduce over every element, not over one dimension)")
    return _as_float(out[0], f"{call}[0] (gain)"), _as_float(out[1], f"{call}[1] (bias)")


def _expect_value_error(fn: Callable, reference: torch.Tensor, name: str, why: str) -> None:
    call = f"reward_gain_bias({name})"
    try:
        out = fn(reference.clone())
    except NotImplementedError:
        raise _NotImplementedYet from None
    except ValueError:
        return
    except Exception as exc:  # the wrong kind of failure is a wrong answer, explained
        _fail(f"{call} raised {type(exc).__name__}: {exc}. Check the input yourself and raise ValueError with a "
              f"message saying what is wrong ({why})")
    _fail(f"{call} returned {out!r} instead of raising ValueError: {why}")


@_checker("reward_gain_bias")
def check_reward_gain_bias(fn: Callable[[torch.Tensor], tuple[float, float]]) -> str:
    """Check ``fn(reference)`` = (gain, bias) with gain·r + bias of mean 0 and std 1 (population) on ``reference``."""
    g = make_generator(6)
    reference = torch.randn(1000, generator=g, dtype=torch.float64) * 7.0 - 3.0
    before = reference.clone()
    call = "reward_gain_bias(reference) on 1000 rewards with mean ≈ −3, std ≈ 7"
    gain, bias = _gain_bias(_call(fn, reference, called_as=call), call)
    if not torch.equal(reference, before):
        _fail("reward_gain_bias changed its input in place: compute the statistics without modifying the rewards")
    mean, std = reference.mean().item(), reference.std(correction=0).item()
    want_gain, want_bias = 1.0 / std, -mean / std
    if not (_close(gain, want_gain, 1e-6) and _close(bias, want_bias, 1e-6)):
        sample_std = reference.std(correction=1).item()
        wrong = [
            ((std, -mean * std), "you multiplied by the std: the gain is 1/std, so the spread shrinks to 1"),
            ((1 / std**2, -mean / std**2), "you divided by the variance: the gain is 1/std, not 1/std²"),
            ((1 / sample_std, -mean / sample_std),
             "torch.std divides by n − 1 by default; use the population std (correction=0) so the normalised "
             "reference has std exactly 1"),
            ((want_gain, -mean), "the bias must be −gain·mean: you subtracted the mean before scaling but returned "
                                 "it unscaled (gain·r + bias = (r − mean)/std needs bias = −mean/std)"),
            ((want_gain, mean / std), "wrong sign of the bias: bias = −gain·mean, so that gain·mean + bias = 0"),
            ((want_bias, want_gain), "you returned (bias, gain): the order is (gain, bias)"),
        ]
        for (cand_gain, cand_bias), hint in wrong:
            if _close(gain, cand_gain, 1e-6) and _close(bias, cand_bias, 1e-6):
                _fail(f"gain {gain:.6g}, bias {bias:.6g}; expected {want_gain:.6g}, {want_bias:.6g}: {hint}")
        out = gain * reference + bias
        _fail(f"gain {gain:.6g}, bias {bias:.6g} give the reference mean {out.mean():.4g} and std "
              f"{out.std(correction=0):.4g}; they must be 0 and 1")

    grid = torch.randn(4, 250, generator=g, dtype=torch.float32) * 0.5 + 10.0
    call = "reward_gain_bias(reference) on a float32 tensor of shape (4, 250)"
    gain2, bias2 = _gain_bias(_call(fn, grid, called_as=call), call)
    out = gain2 * grid.double() + bias2
    if abs(out.mean().item()) > 1e-4 or abs(out.std(correction=0).item() - 1) > 1e-4:
        _fail(f"{call}: normalised mean {out.mean():.3g}, std {out.std(correction=0):.4g}. Use every element of "
              "the tensor, whatever its shape and dtype")

    small = torch.randn(100, generator=g, dtype=torch.float64) * 1e-3
    call = "reward_gain_bias(reference) on rewards with std 1e-3"
    gain3, _ = _gain_bias(_call(fn, small, called_as=call,
                                hint="a real spread of 1e-3 is not zero variance: your threshold is too large"), call)
    if not _close(gain3, 1 / small.std(correction=0).item(), 1e-6):
        _fail(f"{call}: gain {gain3:.6g}, expected {1 / small.std(correction=0).item():.6g}")

    _expect_value_error(fn, torch.full((10,), 3.0, dtype=torch.float64), "ten rewards all equal to 3.0",
                        "with zero variance there is no gain that gives std 1; dividing by std = 0 gives inf")
    constant32 = torch.full((10,), 0.1, dtype=torch.float32)
    spread = constant32.std(correction=0).item()
    _expect_value_error(fn, constant32, "ten float32 rewards all equal to 0.1",
                        f"their std computes to {spread:.2g}, not 0, because of rounding; compare the std with a "
                        "tolerance relative to the rewards' scale (e.g. std <= 1e-6 * max(1, |mean|)), not with == 0")
    _expect_value_error(fn, torch.tensor([0.5, float("nan"), -1.0], dtype=torch.float64), "rewards containing nan",
                        "a nan or inf reward makes the mean and std nan; check torch.isfinite(reference).all()")
    _expect_value_error(fn, torch.tensor([2.0], dtype=torch.float64), "a single reward",
                        "one reward has no spread to measure")
    return (f"gain {gain:.4f}, bias {bias:+.4f} give the reference mean 0, std 1; any shape and dtype; "
            "constant, rounding-constant, nan and single-reward references raise ValueError")


@_checker("normalise_on_reference")
def check_normalise_on_reference(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> str:
    """Check ``fn(rewards, samples)``: one gain/bias fitted on ``rewards.gather(1, samples)``, applied to all of ``rewards``."""
    g = make_generator(7)
    prompts, k, m = 16, 6, 12
    rewards = torch.randn(prompts, k, generator=g, dtype=torch.float64) * 4.0 + torch.linspace(-5, 5, prompts,
                                                                                             dtype=torch.float64)[:, None]
    # Reference samples favour the first responses, so their statistics differ from those of all responses.
    samples = torch.multinomial(torch.linspace(3.0, 0.5, k).expand(prompts, k), m, replacement=True, generator=g)
    before = rewards.clone()
    call = f"normalise_on_reference(rewards of shape ({prompts}, {k}), samples of shape ({prompts}, {m}))"
    out = _call(fn, rewards, samples, called_as=call)
    if not torch.equal(rewards, before):
        _fail("normalise_on_reference changed `rewards` in place: return a new tensor")
    if not torch.is_tensor(out):
        _fail(f"return the normalised reward table as a tensor, got {type(out).__name__}")
    if out.shape != rewards.shape:
        hint = (" — that is the reference samples only; normalise every response" if out.shape == samples.shape
                else "")
        _fail(f"returned shape {tuple(out.shape)}, expected the full table {tuple(rewards.shape)}{hint}")
    ref = rewards.gather(1, samples)
    gain = 1 / ref.std(correction=0)
    want = gain * rewards - gain * ref.mean()
    if torch.allclose(out.double(), want, atol=1e-6):
        return "one gain and bias fitted on the reference samples, applied to every response"
    got_ref = out.double().gather(1, samples)
    if torch.allclose(out.double(), (rewards - rewards.mean()) / rewards.std(correction=0), atol=1e-6):
        _fail("you fitted on all responses: fit the gain and bias on the reference samples rewards.gather(1, samples) "
              "(what the reference policy actually produces), then apply them to every response")
    row_mean, row_std = ref.mean(1, keepdim=True), ref.std(1, keepdim=True, correction=0)
    if torch.allclose(out.double(), (rewards - row_mean) / row_std, atol=1e-6):
        _fail("you normalised each prompt separately: one gain and one bias for the whole reference set, so that "
              "rewards stay comparable across prompts")
    if torch.allclose(out.double(), (rewards - ref.mean()) / ref.std(), atol=1e-6):
        _fail("the std divides by n − 1 (torch's default): use correction=0, as in Task 1")
    _fail(f"on the reference samples your output has mean {got_ref.mean():.4g} and std {got_ref.std(correction=0):.4g}"
          "; it must have mean 0 and std 1, by one gain and one bias applied to the whole table")


__all__ = [
    "check_adam_first_step",
    "check_bradley_terry_loss",
    "check_bt_gradient",
    "check_formula_breaker",
    "check_layer_init",
    "check_loglog_slope",
    "check_mc_variance",
    "check_normalise_on_reference",
    "check_predicted_variance",
    "check_relative_error",
    "check_reward_gain_bias",
    "check_score_head_std",
    "mc_variance_stderr",
    "relative_error",
]
