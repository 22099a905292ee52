"""Checkers for worksheet 03 — implementing `layer_init`."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from rmlib.theory import excess_kurtosis

from rmlib.checks.derivations import _judge  # the fresh-probe judge of derivation tasks
from rmlib.checks._contract import (_as_float, _call, _checker, _close, _dtype_name, _fail, _probe_generator)

WORKSHEET = "03"  # the number its notebooks' file names start with


N_WEIGHTS = 200_000  # weights drawn by the main statistical probe


def _check_draws(w: torch.Tensor, std: float, what: str, fan_in: int | None = None,
                 earlier: tuple[tuple[float, float], ...] = ()) -> tuple[float, float, float]:
    """Fail unless the n values of ``w`` look like n draws from N(0, std²); return (mean, sd, excess kurtosis).

    Sampling errors of n normal draws: mean σ/sqrt(n), std σ/sqrt(2n), excess kurtosis sqrt(24/n). Five
    standard errors keeps a right answer passing; the mistakes below sit dozens to hundreds of errors away.
    """
    w = w.detach().double().flatten()
    n = w.numel()
    mean, sd = w.mean().item(), w.std().item()
    if sd == 0:
        _fail(f"{what}: every weight is {mean:.4g}; fill_/constant_ sets one value, draw from N(0, std²) with normal_")
    if abs(mean) > 5 * sd / math.sqrt(n):
        if abs(mean - std) < 5 * sd / math.sqrt(n):
            _fail(
                f"{what}: the weights have mean {mean:.4f} = std. normal_(w, {std}) passes std as the MEAN (the second "
                "positional argument); write torch.nn.init.normal_(layer.weight, mean=0.0, std=std)"
            )
        _fail(f"{what}: the weights have mean {mean:.4f}; they should have mean 0")
    kurt = excess_kurtosis(w)
    z_max = (w.abs() / sd).max().item()
    beyond = int((w.abs() > 4 * sd).sum())  # a normal law puts 6.3e-5 of its mass beyond 4σ: ~13 of 200 000
    if kurt < -0.9 and z_max < 1.8:  # a uniform law: kurtosis −1.2 and nothing beyond sqrt(3) σ
        _fail(f"{what}: uniform instead of normal — excess kurtosis {kurt:.2f} (normal: 0, uniform: −1.2) and no "
              f"weight beyond {z_max:.2f} std; use normal_, not uniform_")
    if kurt < -5 * math.sqrt(24 / n) or (n * 6.3e-5 > 8 and beyond == 0):
        # No weight beyond 4σ has probability exp(−n·6.3e-5): < 3e-4 for n ≥ 130 000 (the main probe).
        _fail(f"{what}: the tails are cut off — no weight beyond {z_max:.2f} std and excess kurtosis {kurt:.3f} "
              "(a normal law has 0). A truncated normal (trunc_normal_) is not N(0, std²): use normal_")
    if abs(kurt) > 5 * math.sqrt(24 / n):
        _fail(f"{what}: the weights do not look normal: excess kurtosis {kurt:.3f} (a normal law has 0)")
    if abs(sd - std) > 5 * std / math.sqrt(2 * n):
        wrong = {
            std**2: "you used std² (a variance) as the standard deviation",
            math.sqrt(std): "you used sqrt(std) as the standard deviation",
        }
        if fan_in:
            wrong |= {1 / math.sqrt(fan_in + 1): "you ignored the std argument and used 1/sqrt(fan_in + 1)",
                      1 / math.sqrt(fan_in): "you ignored the std argument and used 1/sqrt(fan_in)"}
        for value, hint in wrong.items():
            if abs(sd - value) < 0.02 * value:
                _fail(f"{what}: weight std {sd:.4f}, asked for {std}: {hint}")
        # Evidence that the std argument is ignored: the same weight std as an earlier probe that asked for another.
        same = next((asked for asked, got in earlier if asked != std and abs(sd - got) < 0.02 * got), None)
        if same is not None:
            _fail(f"{what}: weight std {sd:.4f}, asked for std={std} — the same std as when asked for std={same}: "
                  "does your function use its std argument?")
        _fail(f"{what}: weight std {sd:.4f}, asked for std={std}")
    return mean, sd, kurt


def _check_independent_draws(w: torch.Tensor, what: str) -> None:
    """Independent draws in the weight's dtype: the means of the rows (and of the columns) spread as
    σ/sqrt(their length) does, and a float64 weight holds float64 draws.

    Found by a student attack: a weight re-centred row by row has rows that sum to 0 exactly, yet its std is
    only sqrt(1 − 1/d) lower, far inside the std test's errors. The ratio of the spreads has standard error
    1/sqrt(2·count), ≤ 0.041 from 300 means on (fewer are not tested): the band 0.75–1.25 is ≥ 6 errors wide."""
    if w.dtype == torch.float64 and torch.equal(w.detach(), w.detach().float().double()):
        # A float64 draw is a float32 number with probability ~2^-29 per weight: all 210 000 never are.
        _fail(f"{what}: every float64 weight is a float32 number — drawn in float32 and copied in. Draw in the "
              "weight's own dtype (normal_ in place draws in it)")
    w = w.detach().double()
    sd = w.std().item()
    for dim, what_mean in ((1, "row"), (0, "column")):
        means = w.mean(dim)
        if means.numel() < 300:  # too few means to tell their spread to ±0.25 at 6 standard errors
            continue
        ratio = means.std().item() / (sd / math.sqrt(w.shape[dim]))
        if not 0.75 < ratio < 1.25:
            _fail(f"{what}: the {what_mean} means of the weight spread by {ratio:.3g}× what independent draws give "
                  f"(std/sqrt({w.shape[dim]})): draw every weight independently from N(0, std²), with nothing "
                  "subtracted, rescaled or shared afterwards")


def _crash_hint(exc: BaseException) -> str:
    """The bias/in_features hint, only when the crash is evidence of it: an attribute of the layer that is
    None (a head without bias) or missing (an Embedding has no in_features)."""
    text = str(exc)
    if isinstance(exc, (AttributeError, TypeError)) and any(
            key in text for key in ("NoneType", "bias", "in_features", "out_features", "Embedding")):
        return "don't touch the bias (a Hugging Face score head has bias=None) and don't rely on in_features"
    return ""


# A sample std that hits the asked std to within RESCALE_TOL in every large layer is a tell: n draws from
# N(0, σ²) have a sample std that fluctuates by σ/sqrt(2n) (0.16% at n = 200 000), while rescaling the drawn
# weights, w · std / w.std(), hits std to float32 rounding (measured ≤ 1e-7 for either std convention).
# A right answer lands within t = 1e-6 of std in one layer with probability ≈ 2 · 2t / (sqrt(2π) σ_rel), with
# σ_rel = 1/sqrt(2n) and the factor 2 for trying both the sample and the population std: 1.0e-3 at n = 200 000,
# 1.0e-3 at 210 000 and 7.1e-4 at 100 000 — in all three, ≈ 7e-10 (the draws are independent).
RESCALE_TOL = 1e-6


def _check_not_rescaled(seen: list[tuple[float, float]], sizes: tuple[int, ...]) -> None:
    """Fail when the sample std of every large probe is the asked std to within RESCALE_TOL."""
    probes = [(asked, got, n) for (asked, got), n in zip(seen, sizes) if asked > 0]
    if len(probes) < len(sizes):
        return
    def off(asked: float, got: float, n: int) -> float:  # sample std, and population std = sample·sqrt((n−1)/n)
        return min(abs(got / asked - 1), abs(got * math.sqrt((n - 1) / n) / asked - 1))
    if all(off(*p) < RESCALE_TOL for p in probes):
        listing = ", ".join(f"{got:.7g} for std={asked:g} ({n} weights)" for asked, got, n in probes)
        _fail(f"the weights' std is exactly the asked std in every layer ({listing}): n draws from N(0, std²) have a "
              f"sample std that fluctuates by std/sqrt(2n), ±{100 / math.sqrt(2 * sizes[0]):.2f}% here. Rescaling the "
              "drawn weights to the exact std (w / w.std() * std) makes them something other than N(0, std²) draws: "
              "keep normal_'s draws as they are")


def _call_in_place(fn: Callable, module: nn.Module, std: float, text: str) -> nn.Module:
    """Call ``fn(module, std)`` and check the in-place contract: same module, same Parameter, dtype, shape, bias."""
    weight, bias = module.weight, getattr(module, "bias", None)
    shape, dtype, device, grad = weight.shape, weight.dtype, weight.device, weight.requires_grad
    bias_before = bias.detach().clone() if bias is not None else None
    out = _call(fn, module, std, called_as=f"layer_init({text})", hint=_crash_hint, may_modify=True)
    if out is None:
        _fail("layer_init returned None: end with `return layer`, so `layer_init(model.score, std)` gives the head back")
    if out is not module:
        _fail(
            "layer_init returned a different module: a new layer instead of in place. Redraw the weight of the "
            "layer you were given (torch.nn.init.normal_(layer.weight, ...)) and return that same layer"
        )
    if module.weight is not weight:
        _fail(
            "layer.weight is a new Parameter: a new Parameter instead of in place. An optimizer built before the "
            "call would still hold the old one; draw into the existing tensor with torch.nn.init.normal_(layer.weight, ...)"
        )
    if module.weight.shape != shape:
        _fail(f"layer_init({text}) changed the weight's shape from {tuple(shape)} to {tuple(module.weight.shape)}: "
              "draw into the existing weight (same shape, same dtype) with torch.nn.init.normal_(layer.weight, ...)")
    if module.weight.dtype != dtype or module.weight.device != device:
        _fail(f"layer_init({text}) changed the weight from {_dtype_name(dtype)} on {device} to "
              f"{_dtype_name(module.weight.dtype)} on {module.weight.device}: the weight must keep its dtype and device "
              "(the layer's inputs are in that dtype); draw in place with torch.nn.init.normal_(layer.weight, ...)")
    if getattr(module, "bias", None) is not bias or (bias is not None and not torch.equal(bias.detach(), bias_before)):
        _fail("the bias was changed: layer_init redraws the weight only and leaves layer.bias exactly as it was")
    if module.weight.requires_grad != grad:
        _fail("layer.weight no longer requires grad: initialise it in place without detaching it from training")
    return out


@_checker("layer_init")
def check_layer_init(fn: Callable[[nn.Module, float], nn.Module]) -> str:
    """Check ``fn(layer, std)``: N(0, std²) drawn in place into ``layer.weight``, bias untouched, same layer returned.

    Contract: the weight keeps its identity, shape, dtype and device; any module with a ``.weight``; std is
    probed at 0.37 (main), at a std drawn afresh on every call (a float64 layer), 2.0 (an Embedding) and 0;
    draws come from torch's global generator: two calls give different weights, and reseeding torch
    before each of two calls gives the same weights (what rmlib.seed_everything relies on).
    """
    layer = nn.Linear(N_WEIGHTS, 1)
    before = layer.weight.detach().clone()
    std = 0.37
    text = f"nn.Linear({N_WEIGHTS}, 1), std={std}"
    _call_in_place(fn, layer, std, text)
    if torch.equal(layer.weight.detach(), before):
        _fail("layer.weight is unchanged: it still holds PyTorch's default init")
    mean, sd, kurt = _check_draws(layer.weight, std, f"layer_init({text})", fan_in=layer.weight.shape[1])
    seen = [(std, sd)]

    fresh_std = round(float(10 ** (-2 + torch.rand(1, generator=_probe_generator(0), dtype=torch.float64).item())), 4)
    for module, probe_std, text in [
        (nn.Linear(300, 700, dtype=torch.float64), fresh_std, f"nn.Linear(300, 700, dtype=torch.float64), std={fresh_std}"),
        (nn.Embedding(1000, 100), 2.0, "nn.Embedding(1000, 100), std=2.0"),
        (nn.Linear(64, 1, bias=False), 0.0, "nn.Linear(64, 1, bias=False), std=0.0"),
    ]:
        default = module.weight.detach().clone()
        _call_in_place(fn, module, probe_std, text)
        if probe_std == 0.0:
            if torch.count_nonzero(module.weight) > 0:
                _fail(f"layer_init({text}) left non-zero weights: std 0 must give an all-zero weight")
        elif torch.equal(module.weight.detach(), default):
            _fail(f"layer_init({text}) left the weight unchanged: every module with a .weight ({type(module).__name__} "
                  "too) gets the redraw")
        else:
            _, got, _ = _check_draws(module.weight, probe_std, f"layer_init({text})", earlier=tuple(seen))
            _check_independent_draws(module.weight, f"layer_init({text})")
            seen.append((probe_std, got))

    _check_not_rescaled(seen, (N_WEIGHTS, 300 * 700, 1000 * 100))

    first = _call_in_place(fn, nn.Linear(50, 2), 0.1, "nn.Linear(50, 2), std=0.1").weight.detach().clone()
    second = _call_in_place(fn, nn.Linear(50, 2), 0.1, "nn.Linear(50, 2), std=0.1").weight.detach()
    if torch.equal(first, second):
        _fail("two calls gave the same weights: a generator created or seeded inside layer_init makes every head "
              "identical. Draw from torch's global generator (what rmlib.seed_everything seeds)")
    seed = int(torch.randint(0, 2**31, (1,), generator=_probe_generator(1)))
    runs = []
    for _ in range(2):
        torch.manual_seed(seed)
        runs.append(_call_in_place(fn, nn.Linear(50, 2), 0.1, "nn.Linear(50, 2), std=0.1").weight.detach().clone())
    if not torch.equal(*runs):
        _fail(f"torch.manual_seed({seed}) before each of two calls gave different weights: your draws do not come "
              "from torch's global generator (a private torch.Generator() seeded from the clock or OS entropy?), "
              "so seeding the notebook cannot reproduce them. Draw with torch.nn.init.normal_(layer.weight, ...)")
    return (
        f"normal draws (excess kurtosis {kurt:+.3f}), mean {mean:+.4f}, std {sd:.4f} for std={std}; also std "
        f"{fresh_std} (float64), 2.0 (Embedding), 0; in place, dtype and shape kept, bias untouched, same layer "
        "returned; reproducible from torch's seed"
    )


# Half precision cannot hold the answer: bfloat16 keeps 8 significant bits (rounding by up to 2^-8 ≈ 0.4%),
# float16 11 bits (2^-11 ≈ 0.05%), while the worksheet's later cells compare the std to 1e-6 relative.
_HALF = {"float16": 2.0**-11, "bfloat16": 2.0**-8}  # their largest relative rounding error


def _half_precision(value: object) -> str:
    """The name of a half-precision dtype the answer came back in ("" for a float, float32 or float64)."""
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return ""
    name = str(dtype).removeprefix("torch.")  # a torch dtype or a numpy one (np.float16)
    return name if name in _HALF else ""


@_checker("score_head_std")
def check_score_head_std(fn: Callable[[int], float]) -> str:
    """Check ``fn(hidden_size)`` = 1/sqrt(hidden_size + 1) at fixed widths and four drawn afresh on every call.

    Contract: one number (a float, or a one-element float32/float64 tensor or array), right to 1e-6 relative
    (float32 rounding, 6e-8, is enough). A float16 or bfloat16 answer is rejected with a hint naming its dtype:
    it rounds the std by up to 0.05% or 0.4%, and worksheet 03's later cells check the std to 1e-6.
    """
    # Four widths drawn afresh: one uniform on [3, 10⁴], where 1/sqrt(d) and 1/sqrt(d + 1) differ by more than
    # 5e-5, one log-uniform and two uniform on [3, 10⁹], so no table of widths can cover them (a table of the 10⁶
    # smallest passes with probability 1e-6). A float32 answer stays within 1e-6: above 2²⁴ it rounds d + 1 by at
    # most 6e-8, the std by half that.
    g = _probe_generator(0)
    fresh = torch.cat([torch.empty(1, dtype=torch.float64).uniform_(3, 1e4, generator=g),
                       torch.empty(1, dtype=torch.float64).uniform_(math.log(3), math.log(1e9), generator=g).exp(),
                       torch.empty(2, dtype=torch.float64).uniform_(3, 1e9, generator=g)])
    widths = [1, 2, 64, 768, 4096, 5] + fresh.round().long().tolist()
    raw = [_call(fn, d, called_as=f"score_head_std({d})") for d in widths]
    half = next(((d, _half_precision(r)) for d, r in zip(widths, raw) if _half_precision(r)), None)
    if half:
        d, dtype = half
        _fail(f"score_head_std({d}) returned a {dtype} number: {dtype} keeps too few digits for this std (it rounds "
              f"by up to {100 * _HALF[dtype]:.2g}%, and the "
              "worksheet's later cells compare it to 1e-6). Return a Python float (1 / math.sqrt(hidden_size + 1)) "
              "or a float32/float64 value")
    tols = [1e-6] * len(raw)
    got = [_as_float(r, f"score_head_std({d})") for r, d in zip(raw, widths)]
    want = [1 / math.sqrt(d + 1) for d in widths]
    if all(_close(g, w, t) for g, w, t in zip(got, want, tols)):
        return "1/sqrt(d + 1) at d = " + ", ".join(f"{d} → {g:.5f}" for d, g in zip(widths, got))
    wrong = [
        (lambda d: 1 / (d + 1), "1/(d+1) instead of 1/sqrt(d+1): N(0, 1/(d+1)) gives the VARIANCE; the std is its square root"),
        (lambda d: 1 / math.sqrt(d), "1/sqrt(d): you forgot the +1 (it counts the bias as one more input)"),
        (lambda d: math.sqrt(d + 1), "sqrt(d+1): upside down, the std must shrink as the head gets wider"),
        (lambda d: 1 / math.sqrt(3 * d), "1/sqrt(3d) is PyTorch's default nn.Linear std, not the score-head rule"),
        (lambda d: 0.02, "0.02 is Hugging Face's initializer_range, a constant; the score-head rule depends on d"),
        (lambda d: math.sqrt(2 / (d + 1)), "sqrt(2/(d+1)) is Xavier normal with fan_out = 1, not the score-head rule"),
        (lambda d: 1 / d, "1/d: that is neither the std nor the variance of the rule; the std is 1/sqrt(d+1)"),
        (lambda d: 0.0, "0 at every width: integer division? 1 // sqrt(d + 1) rounds down to 0; use 1 / math.sqrt(d + 1)"),
    ]
    for formula, hint in wrong:
        if all(_close(g, formula(d), t) or g == formula(d) for g, d, t in zip(got, widths, tols)):
            _fail(hint)
    d, g, w = next((d, g, w) for d, g, w, t in zip(widths, got, want, tols) if not _close(g, w, t))
    _fail(f"score_head_std({d}) = {g:.6g}, expected 1/sqrt({d}+1) = {w:.6g}")


HINTS = {
    "layer_init": (
        "torch.nn.init has a function that fills a tensor in place with normal draws. What are its arguments, "
        "in which order?",
        "Fill the layer's own weight in place (don't assign a new tensor or Parameter: the optimizer holds that "
        "one), keep its dtype and shape, leave the bias alone, return the layer. The 2nd positional argument of "
        "normal_ is the MEAN.",
        "torch.nn.init.normal_(layer.weight, mean=0.0, std=std); return layer",
    ),
    "score_head_std": (
        "The paper gives N(0, 1/(d+1)). Is the second argument of N(·, ·) a standard deviation or a variance?",
        "It is a variance, as papers write it; layer_init takes a standard deviation, its square root.",
        "return 1 / math.sqrt(hidden_size + 1)",
    ),
}


# Worksheet 03's derivation task (its probes and judge are those of rmlib.checks.derivations).
@_checker("default_head_reward_std")
def check_default_head_reward_std(fn: Callable[[int, float], float]) -> str:
    """``fn(d, h_norm)`` = std over PyTorch's default init of r = w·h + b for nn.Linear(d, 1) WITH its bias:
    every weight and the bias ~ U(−1/sqrt(d), 1/sqrt(d)), so Var = (‖h‖² + 1)/(3d)."""
    right = lambda d, n: math.sqrt((n**2 + 1) / (3 * d))
    wrong = [
        (lambda d, n: math.sqrt((n**2 + 1) / d), "a factor sqrt(3) too large: U(−a, a) has variance a²/3, not a²"),
        (lambda d, n: n / math.sqrt(3 * d), "you left out the bias: it is drawn from the same U(−1/sqrt(d), "
         "1/sqrt(d)) and adds 1/(3d) to the variance"),
        (lambda d, n: n / math.sqrt(d), "1/sqrt(d) per weight and no bias: U(−a, a) has std a/sqrt(3), and the "
         "bias adds its own variance"),
        (lambda d, n: (n**2 + 1) / (3 * d), "you returned the VARIANCE (‖h‖² + 1)/(3d); the std is its square root"),
        (lambda d, n: math.sqrt((n + 1) / (3 * d)), "the reward is w·h, so h enters squared: Var_w(w·h) = "
         "σ_w² ‖h‖²"),
        (lambda d, n: math.sqrt(1 / 3), "you assumed ‖h‖² = d and dropped the bias; the task gives ‖h‖"),
        (lambda d, n: math.sqrt((n**2 + 1) / (12 * d)), "U(−a, a) has width 2a: its variance is (2a)²/12 = a²/3"),
        (lambda d, n: math.sqrt((n**2 + 1) / (3 * (d + 1))), "the fan-in of nn.Linear(d, 1) is d, not d + 1: the "
         "bound is 1/sqrt(d)"),
    ]
    probes = _judge(fn, "default_head_reward_std", ("d", "h_norm"), right, wrong)
    d, n, g = probes[-1]
    return f"sqrt((‖h‖² + 1)/(3d)), e.g. d = {d}, ‖h‖ = {n:.3g} → {g:.5g}"
