"""The Bradley-Terry loss and the metrics a reward-model trainer logs (accuracy, margin).

Bradley-Terry: P(chosen ≻ rejected) = σ(r⁺ − r⁻), so the negative log-likelihood of one pair is
−log σ(Δ) = softplus(−Δ) with Δ = r⁺ − r⁻ (⁺ marks the chosen answer, ⁻ the rejected one). Only Δ
enters: adding the same number to both rewards changes nothing, multiplying them does.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from rmlib.utils import validation


def _check_pair(chosen: torch.Tensor, rejected: torch.Tensor) -> None:
    validation.float_tensor("chosen rewards", chosen, nonempty=False)
    validation.float_tensor("rejected rewards", rejected, nonempty=False)
    validation.same_shape(("chosen rewards", "rejected rewards"), chosen, rejected)
    if chosen.numel() == 0:
        raise ValueError("chosen and rejected rewards are empty")


def bradley_terry_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    margin: float | torch.Tensor = 0.0,
    reduction: Literal["mean", "none"] = "mean",
) -> torch.Tensor:
    """Bradley-Terry loss −log σ(r⁺ − r⁻ − margin), averaged over pairs (``reduction="none"``: per pair).

    Computed as −logsigmoid(Δ − margin) = max(−x, 0) + log1p(exp(−|x|)), which is finite for any
    finite Δ and exact to rounding in float32 and float64 (the naive ``-log(sigmoid(Δ))`` gives
    −log 0 = inf for Δ ≲ −88 in float32; ``F.softplus`` switches to a linear branch past 20, an error of
    ~2e-9 that shows in float64). ``margin`` is TRL's
    optional per-pair margin (a float, or a tensor broadcastable to the rewards).

    Non-finite rewards are not an error here: they give a non-finite loss, which is how a training
    loop notices divergence.
    """
    _check_pair(chosen, rejected)
    if torch.is_tensor(margin):
        if not margin.is_floating_point():
            raise TypeError(f"margin must be a floating-point tensor, got dtype {margin.dtype}")
    else:
        validation.real("margin", margin)
    validation.one_of("reduction", reduction, ("mean", "none"))
    per_pair = -F.logsigmoid(chosen - rejected - margin)
    return per_pair.mean() if reduction == "mean" else per_pair


def preference_accuracy(chosen: torch.Tensor, rejected: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Fraction of pairs with r⁺ > r⁻; a tie counts as half a correct pair.

    Half is what a coin flip between tied answers would score, so a model that gives every answer
    the same reward (a zero head) has accuracy exactly 0.5, matching its loss log 2. TRL's
    ``RewardTrainer`` logs ``(rewards_chosen > rewards_rejected).mean()`` instead, where a tie counts as
    wrong: the same zero head logs accuracy 0.0 there (lesson 08). ``dim`` averages over one dimension
    only (e.g. pairs, keeping a leading dimension of runs).
    """
    _check_pair(chosen, rejected)
    correct = (chosen > rejected).to(chosen.dtype) + 0.5 * (chosen == rejected).to(chosen.dtype)
    return correct.mean() if dim is None else correct.mean(dim)


def reward_margin(chosen: torch.Tensor, rejected: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean reward margin r⁺ − r⁻ over pairs (or over ``dim``), as open-instruct and TRL log it."""
    _check_pair(chosen, rejected)
    diff = chosen - rejected
    return diff.mean() if dim is None else diff.mean(dim)


__all__ = ["bradley_terry_loss", "preference_accuracy", "reward_margin"]
