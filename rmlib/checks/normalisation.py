"""Checkers for worksheet 06 — reward normalisation."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from rmlib.checks._contract import (_as_float, _call, _checker, _close, _dtype_name, _expect_raises, _fail,
                                    _probe_generator, _tensor)

WORKSHEET = "06"  # the number its notebooks' file names start with


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
    gain, bias = _as_float(out[0], f"{call}[0] (gain)"), _as_float(out[1], f"{call}[1] (bias)")
    if not (math.isfinite(gain) and math.isfinite(bias)):
        _fail(f"{call} returned gain {gain}, bias {bias}: a valid reference must give a finite gain and bias")
    return gain, bias


def _expect_value_error(fn: Callable, reference: torch.Tensor, name: str, why: str) -> None:
    _expect_raises(fn, (reference.clone(),), f"reward_gain_bias({name})", why)


def _check_gain_bias_values(fn: Callable[[torch.Tensor], tuple[float, float]],
                            g: torch.Generator) -> tuple[float, float]:
    """The right (gain, bias) on a float64 reference, a float32 table and a small spread; the first pair."""
    reference = torch.randn(1000, generator=g, dtype=torch.float64) * 7.0 - 3.0
    call = "reward_gain_bias(reference) on 1000 rewards with mean ≈ −3, std ≈ 7"
    gain, bias = _gain_bias(_call(fn, reference, called_as=call), call)
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

    # float32 rewards of size 1000 with spread 0.05: computed in float32, the mean is off by ~1e-5 and the
    # normalised rewards by ~1e-4; computed in float64 (as the task says) they are exact to ~1e-12.
    grid = torch.randn(4, 250, generator=g, dtype=torch.float32) * 0.05 + 1000.0
    call = "reward_gain_bias(reference) on a float32 tensor of shape (4, 250), mean ≈ 1000, std ≈ 0.05"
    raw = _call(fn, grid, called_as=call)
    gain2, bias2 = _gain_bias(raw, call)
    out = gain2 * grid.double() + bias2
    if abs(out.mean().item()) > 2e-2 or abs(out.std(correction=0).item() - 1) > 2e-2:  # float32 work: ~1e-3
        _fail(f"{call}: normalised mean {out.mean():.3g}, std {out.std(correction=0):.4g}. Use every element of "
              "the tensor, whatever its shape and dtype")
    if abs(out.mean().item()) > 1e-8 or abs(out.std(correction=0).item() - 1) > 1e-8:
        narrow = [_dtype_name(p.dtype) if torch.is_tensor(p) else type(p).__name__ for p in raw
                  if getattr(p, "dtype", None) in (torch.float32, torch.float16, torch.bfloat16, np.float32, np.float16)]
        fix = (f"You returned {narrow[0]} values, which keep 7 digits or fewer (torch.tensor(x) is float32): "
               "return Python floats, float(gain) and float(bias)" if narrow else
               "Compute the mean and std in float64 (reference.double()), so float32 inputs lose nothing")
        _fail(f"{call}: normalised mean {out.mean().item():.3g}, std {out.std(correction=0).item():.10g}: off by more "
              f"than float64 rounding. {fix}")

    small = torch.randn(100, generator=g, dtype=torch.float64) * 1e-3
    call = "reward_gain_bias(reference) on rewards with std 1e-3"
    gain3, _ = _gain_bias(_call(fn, small, called_as=call, hint=lambda exc: (
        "a real spread of 1e-3 is not zero variance: your threshold is too large" if isinstance(exc, ValueError)
        else "")), call)
    if not _close(gain3, 1 / small.std(correction=0).item(), 1e-6):
        _fail(f"{call}: gain {gain3:.6g}, expected {1 / small.std(correction=0).item():.6g}")
    return gain, bias


def _check_gain_bias_guards(fn: Callable[[torch.Tensor], tuple[float, float]], g: torch.Generator) -> None:
    """ValueError on every reference without a usable spread: constant, rounding-constant, nan/±inf, one reward, none."""
    _expect_value_error(fn, torch.full((10,), 3.0, dtype=torch.float64), "ten rewards all equal to 3.0",
                        "with zero variance there is no gain that gives std 1; dividing by std = 0 gives inf")
    constant32 = torch.full((10,), 0.1, dtype=torch.float32)
    spread = constant32.std(correction=0).item()
    _expect_value_error(fn, constant32, "ten float32 rewards all equal to 0.1",
                        f"their std computes to {spread:.2g}, not 0, because of rounding; compare the std with a "
                        "tolerance relative to the rewards' scale (e.g. std <= 1e-6 * max(1, |mean|)), not with == 0")
    _expect_value_error(fn, torch.tensor([0.5, float("nan"), -1.0], dtype=torch.float64), "rewards containing nan",
                        "a nan or inf reward makes the mean and std nan; check torch.isfinite(reference).all()")
    for bad, text in [(float("inf"), "+inf"), (float("-inf"), "−inf")]:
        _expect_value_error(fn, torch.tensor([0.5, bad, -1.0], dtype=torch.float64), f"rewards containing {text}",
                            "an infinite reward makes the std inf or nan, and the gain 0 or nan; check "
                            "torch.isfinite(reference).all(), which catches nan AND ±inf")
    _expect_value_error(fn, torch.tensor([[1.5, 1.5], [1.5, 1.5]], dtype=torch.float32), "a 2×2 table of equal rewards",
                        "a constant table has zero variance, whatever its shape")
    n = int(torch.randint(200, 2000, (1,), generator=g))
    # In the second half, so a guard that looks only at the first few (or first hundred) rewards never passes.
    where = int(torch.randint(n // 2, n - 1, (1,), generator=g))
    long = torch.randn(n, generator=g, dtype=torch.float64)
    long[where] = float("nan")
    _expect_value_error(fn, long, f"{n} rewards with a nan at index {where}",
                        "check every reward (torch.isfinite(reference).all()), not only the first few")
    _expect_value_error(fn, torch.zeros(50, dtype=torch.float64), "fifty rewards all equal to 0.0",
                        "zero spread around a mean of 0 is still zero spread: compare σ with 1e-6·max(1, |μ|), "
                        "so the tolerance does not vanish when μ = 0")
    tiny = torch.randn(100, generator=g, dtype=torch.float64) * 1e-9
    _expect_value_error(fn, tiny, "a hundred rewards of size 1e-9 around 0",
                        "a spread of 1e-9 is (near) zero variance: compare σ with a tolerance that does not vanish "
                        "at μ = 0, σ ≤ 1e-6·max(1, |μ|)")
    near = torch.full((1000,), 0.1, dtype=torch.float64) + torch.linspace(-1e-15, 1e-15, 1000, dtype=torch.float64)
    _expect_value_error(fn, near, f"a thousand float64 rewards equal to 0.1 up to 1e-15 (std "
                                  f"{near.std(correction=0).item():.2g}, not 0)",
                        "compare σ with a tolerance relative to the rewards' size, σ ≤ 1e-6·max(1, |μ|), not with == 0")
    # Rounding-level spread at a large mean. A float32 reward has 24 significant bits, so rewards that differ only
    # by rounding differ by a few steps of 2^-23 ≈ 1.2e-7 of their size; the guard σ ≤ 1e-6·max(1, |μ|) sits about
    # 8 such steps up, at every scale. Half of the rewards one float32 step (ulp) higher: σ = ulp/2, at most 6e-8·|μ|,
    # so a relative guard raises. An absolute guard σ ≤ t does not scale: at μ = 1000 the ulp is 2^-14 ≈ 6.1e-5
    # (σ = 3.1e-5 > 1e-6), and at μ in [32768, 65536) it is 2^-8 (σ = 2.0e-3, above any t the std-1e-3 probe allows).
    for mu in (1000.0, float(32768 + 32767 * torch.rand(1, generator=g, dtype=torch.float64))):
        ulp_apart = torch.full((200,), mu, dtype=torch.float32)
        ulp_apart[::2] = torch.nextafter(ulp_apart[::2], torch.tensor(float("inf")))
        sigma = ulp_apart.double().std(correction=0).item()
        _expect_value_error(fn, ulp_apart, f"200 float32 rewards equal to {float(ulp_apart[1]):.7g}, half of them one "
                                           f"float32 step higher (std {sigma:.2g}: rounding at this scale)",
                            "a spread of one float32 rounding step is no spread: compare σ with a tolerance relative to "
                            "the rewards' scale, σ ≤ 1e-6·max(1, |μ|); a fixed threshold such as 1e-6 is far below "
                            "one rounding step once |μ| is large")
    _expect_value_error(fn, torch.tensor([2.0], dtype=torch.float64), "a single reward",
                        "one reward has no spread to measure")
    _expect_value_error(fn, torch.zeros(0, dtype=torch.float64), "an empty tensor",
                        "no rewards, no statistics: check the number of rewards before computing the mean")


@_checker("reward_gain_bias")
def check_reward_gain_bias(fn: Callable[[torch.Tensor], tuple[float, float]]) -> str:
    """Check ``fn(reference)`` = (gain, bias) with gain·r + bias of mean 0 and std 1 (population) on ``reference``."""
    g = _probe_generator(0)  # one generator, drawn in this order: a recorded seed replays every probe
    gain, bias = _check_gain_bias_values(fn, g)
    _check_gain_bias_guards(fn, g)
    return (f"gain {gain:.4f}, bias {bias:+.4f} give the reference mean 0, std 1; any shape and dtype; "
            "constant, rounding-constant, nan, ±inf, single-reward and empty references raise ValueError")


@_checker("normalise_on_reference")
def check_normalise_on_reference(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> str:
    """Check ``fn(rewards, samples)``: one gain/bias fitted on ``rewards.gather(1, samples)``, applied to all of ``rewards``.

    Contract: a new tensor of the shape and dtype of ``rewards`` (``rewards`` not modified); probed at
    (16 × 6, 12 samples, float64) and (5 × 9, 4 samples, float32); a reference without spread raises
    ValueError, as in Task 1.
    """
    g = _probe_generator(0)
    for prompts, k, m, dtype in [(5, 9, 4, torch.float32), (16, 6, 12, torch.float64)]:
        _check_normalised(fn, g, prompts, k, m, dtype)
    rewards = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    samples = torch.zeros(3, 2, dtype=torch.long)
    rewards[:, 0] = 1.0  # every reference sample is response 0, whose reward is 1.0 in every prompt
    _expect_raises(fn, (rewards, samples), "normalise_on_reference(rewards, samples) where every sampled reward is 1.0",
                   "the reference samples have no spread, so there is no gain: fit with your reward_gain_bias, "
                   "whose guard raises ValueError")
    # The same, with different indices in every row: only the sampled rewards (not the indices) say "no spread".
    rewards = torch.randn(4, 6, generator=g, dtype=torch.float64)
    samples = torch.stack([torch.randperm(6, generator=g)[:3] for _ in range(4)])
    rewards.scatter_(1, samples, 2.5)
    _expect_raises(fn, (rewards, samples), f"normalise_on_reference(rewards, samples={samples.tolist()}) where every "
                   "sampled reward is 2.5 (the other responses differ)",
                   "the reference samples have no spread, so there is no gain: fit with your reward_gain_bias on "
                   "rewards.gather(1, samples), whose guard raises ValueError")
    return "one gain and bias fitted on the reference samples, applied to every response (float64 and float32)"


def _check_normalised(fn: Callable, g: torch.Generator, prompts: int, k: int, m: int, dtype: torch.dtype) -> None:
    rewards = (torch.randn(prompts, k, generator=g, dtype=torch.float64) * 4.0
               + torch.linspace(-5, 5, prompts, dtype=torch.float64)[:, None]).to(dtype)
    # Reference samples favour the first responses, so their statistics differ from those of all responses.
    samples = torch.multinomial(torch.linspace(3.0, 0.5, k).expand(prompts, k), m, replacement=True, generator=g)
    call = (f"normalise_on_reference(rewards of shape ({prompts}, {k}) in {_dtype_name(dtype)}, "
            f"samples of shape ({prompts}, {m}))")
    out = _call(fn, rewards, samples, called_as=call)
    if not torch.is_tensor(out):
        _fail(f"return the normalised reward table as a tensor, got {type(out).__name__}")
    if out.shape != rewards.shape:
        hint = (" — that is the reference samples only; normalise every response" if out.shape == samples.shape
                else "")
        _fail(f"returned shape {tuple(out.shape)}, expected the full table {tuple(rewards.shape)}{hint}")
    _tensor(out, call, dtype=dtype, why_dtype="return the table in the dtype of `rewards` (gain * rewards + bias, "
                                              "with gain and bias Python floats, keeps it)")
    r64 = rewards.double()
    ref = r64.gather(1, samples)
    gain = 1 / ref.std(correction=0)
    want = gain * r64 - gain * ref.mean()
    atol = 1e-6 if dtype == torch.float64 else 1e-4  # float32: rewards of size ~10 normalised to ~1 lose ~1e-6
    got = out.double()
    if torch.allclose(got, want, atol=atol):
        return
    got_ref = got.gather(1, samples)
    if torch.allclose(got, (r64 - r64.mean()) / r64.std(correction=0), atol=atol):
        _fail("you fitted on all responses: fit the gain and bias on the reference samples rewards.gather(1, samples) "
              "(what the reference policy actually produces), then apply them to every response")
    row_mean, row_std = ref.mean(1, keepdim=True), ref.std(1, keepdim=True, correction=0)
    # Samples are drawn with replacement, so on about 1 seed in 80 (24 of 2000) some prompt's samples are all one
    # response: its row std is 0 and a per-prompt answer gives nan/inf there, exactly where this formula does.
    if torch.allclose(got, (r64 - row_mean) / row_std, atol=atol, equal_nan=True):
        _fail("you normalised each prompt separately: one gain and one bias for the whole reference set, so that "
              "rewards stay comparable across prompts")
    if torch.allclose(got, (r64 - ref.mean()) / ref.std(), atol=atol):
        _fail("the std divides by n − 1 (torch's default): use correction=0, as in Task 1")
    first = r64[:, :m] if m <= k else None
    if first is not None and torch.allclose(got, (r64 - first.mean()) / first.std(correction=0), atol=atol):
        _fail("you fitted on the first M responses: `samples` holds the indices of the reference samples; "
              "fit on rewards.gather(1, samples)")
    _fail(f"on the reference samples your output has mean {got_ref.mean():.4g} and std {got_ref.std(correction=0):.4g}"
          "; it must have mean 0 and std 1, by one gain and one bias applied to the whole table")


HINTS = {
    "reward_gain_bias": (
        "gain·r + bias = (r − μ)/σ for every r: read off gain and bias. Then list every input for which μ or σ "
        "cannot be computed or σ is (nearly) zero.",
        "Flatten to float64, use the population std (correction=0). Raise ValueError for fewer than 2 rewards, for "
        "any non-finite value (torch.isfinite covers nan and ±inf), and for σ ≤ 1e-6·max(1, |μ|) (rounding "
        "makes a constant float32 table have σ ≈ 1e-9, not 0).",
        "r = reference.detach().double().flatten(); mean, std = r.mean().item(), r.std(correction=0).item(); gain = 1 / std; return gain, -gain * mean   # after the three ValueError guards",
    ),
    "normalise_on_reference": (
        "Which rewards are the reference set? `samples` holds indices into each row of `rewards`.",
        "Pick the sampled rewards with rewards.gather(1, samples), fit ONE gain and bias on them with your Task 1 "
        "function, and apply those two numbers to the whole table.",
        "gain, bias = reward_gain_bias(rewards.gather(1, samples)); return gain * rewards + bias",
    ),
}
