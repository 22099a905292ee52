"""Checkers for worksheet 03 — implementing `layer_init`."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from rmlib.theory import excess_kurtosis
from rmlib.checks._contract import (_as_float, _call, _checker, _close, _fail)


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
    mean, sd = w.mean().item(), w.std().item()
    if sd == 0:
        _fail(f"every weight is {mean:.4g}: fill_/constant_ sets one value; draw from N(0, std²) with normal_")
    kurt = excess_kurtosis(w)
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
