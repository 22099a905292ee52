"""Statistics of what a reward head meets at initialisation: the hidden states it reads, the weights of a layer, the initial rewards.

``hidden_state_stats`` splits E‖h‖² into the shared mean and the spread; ``weight_stats`` tells a
trained layer from a random one; ``initial_rewards_over_heads`` draws the initial rewards whose
variance the theory predicts as σ_w² E‖h‖² (``predicted_initial_reward_std``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from rmlib.init import Initialiser
from rmlib.utils import validation


@dataclass(frozen=True)
class HiddenStateStats:
    """Per-dimension and per-sentence statistics of hidden states h, shape (n, d)."""

    mean: torch.Tensor  # (d,) the shared mean m
    std: torch.Tensor  # (d,) per-dimension std (over sentences)
    norms: torch.Tensor  # (n,) ‖h‖ per sentence
    mean_sq_norm: float  # E‖h‖²
    shared_mean_share: float  # ‖m‖² / E‖h‖²: the part of E‖h‖² carried by the shared mean
    outlier_dims: torch.Tensor  # dims whose RMS exceeds outlier_factor × the median RMS
    dead_dims: torch.Tensor  # dims whose std is below dead_factor × the median std
    raw_cosine: float  # mean cosine similarity between different sentences
    centred_cosine: float  # the same after subtracting m


def _mean_pairwise_cosine(h: torch.Tensor) -> float:
    u = torch.nn.functional.normalize(h, dim=1)
    n = u.shape[0]
    gram = u @ u.T
    return ((gram.sum() - gram.diagonal().sum()) / (n * (n - 1))).item()


def hidden_state_stats(h: torch.Tensor, outlier_factor: float = 10.0, dead_factor: float = 0.01) -> HiddenStateStats:
    """Measure hidden states ``h`` (n ≥ 2 sentences × d dims).

    E‖h‖² = ‖m‖² + Σ_j Var(h_j) exactly (population moments), so ``shared_mean_share`` is the
    fraction of the reward variance σ_w² E‖h‖² that the offset w·m contributes.
    """
    validation.float_tensor("h", h, ndim=2, finite=True)
    if h.shape[0] < 2:
        raise ValueError(f"need at least 2 sentences, got {h.shape[0]}")
    outlier_factor = validation.real("outlier_factor", outlier_factor, positive=True)
    dead_factor = validation.real("dead_factor", dead_factor, minimum=0.0)
    h = h.double()
    mean = h.mean(0)
    std = h.std(0, correction=0)
    rms = h.pow(2).mean(0).sqrt()
    mean_sq_norm = h.pow(2).sum(1).mean().item()
    return HiddenStateStats(
        mean=mean.float(),
        std=std.float(),
        norms=h.norm(dim=1).float(),
        mean_sq_norm=mean_sq_norm,
        shared_mean_share=mean.pow(2).sum().item() / mean_sq_norm,
        outlier_dims=torch.nonzero(rms > outlier_factor * rms.median()).flatten(),
        dead_dims=torch.nonzero(std < dead_factor * std.median()).flatten(),
        raw_cosine=_mean_pairwise_cosine(h),
        centred_cosine=_mean_pairwise_cosine(h - mean),
    )


@dataclass(frozen=True)
class WeightStats:
    """Evidence on whether a Linear layer was trained or is still its random initialisation."""

    shape: tuple[int, int]  # (out_features, in_features)
    std: float  # std of the weight entries
    excess_kurtosis: float  # E[z^4] - 3 of the standardised entries: 0 for a Gaussian init
    top_singular: float  # largest singular value of the weight
    random_edge: float  # std * (sqrt(out) + sqrt(in)): where a random matrix's largest singular value sits
    bias_all_zero: bool | None  # every bias entry exactly 0 (None: the layer has no bias)

    @property
    def edge_ratio(self) -> float:
        """top_singular / random_edge: ≈ 1 for i.i.d. random entries, > 1 once training adds structure."""
        return self.top_singular / self.random_edge


def weight_stats(layer: nn.Linear) -> WeightStats:
    """Measure ``layer`` for the marks of an untrained random init (see :class:`WeightStats`).

    A trained weight has low-rank structure that lifts its top singular value above the random-matrix
    edge (Bai-Yin: σ(√m + √n) for i.i.d. entries of std σ) and usually heavy-tailed entries; a freshly
    drawn N(0, σ²) weight sits at the edge with excess kurtosis ≈ 0 (standard error √(24/N) for N entries).
    """
    validation.instance("layer", layer, nn.Linear)
    weight = layer.weight.detach().double()
    if weight.numel() < 2 or not torch.isfinite(weight).all():
        raise ValueError("the weight must have at least 2 finite entries")
    std = weight.std().item()
    z = (weight - weight.mean()) / std
    out_features, in_features = weight.shape
    bias = layer.bias
    return WeightStats(
        shape=(out_features, in_features),
        std=std,
        excess_kurtosis=z.pow(4).mean().item() - 3.0,
        top_singular=torch.linalg.matrix_norm(weight, ord=2).item(),
        random_edge=std * (math.sqrt(out_features) + math.sqrt(in_features)),
        bias_all_zero=None if bias is None else bool((bias.detach() == 0).all()),
    )


def initial_rewards_over_heads(
    h: torch.Tensor, initialiser: Initialiser, n_draws: int = 20000, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Initial rewards r = w·h for ``n_draws`` independent (fresh head, random sentence) pairs.

    The pairs are i.i.d., so :func:`rmlib.theory.variance_with_stderr` gives an honest error bar;
    the theory says Var(r) = σ_w² E‖h‖² for any zero-mean i.i.d. head law.
    """
    validation.float_tensor("h", h, ndim=2)
    n_draws = validation.integer("n_draws", n_draws)
    heads = initialiser.sample(n_draws, h.shape[1], generator)
    rows = torch.randint(0, h.shape[0], (n_draws,), generator=generator)
    return (heads * h[rows]).sum(-1)


def predicted_initial_reward_std(h: torch.Tensor, std: float) -> float:
    """sqrt(σ_w² E‖h‖²): the initial reward std the theory predicts for hidden states ``h``."""
    return std * math.sqrt(h.double().pow(2).sum(1).mean().item())


__all__ = [
    "HiddenStateStats",
    "WeightStats",
    "hidden_state_stats",
    "initial_rewards_over_heads",
    "predicted_initial_reward_std",
    "weight_stats",
]
