"""Reward normalisation and reward centring: the two standard fixes for a reward's scale and offset.

* **Gain/bias normalisation** (OpenAI's lm-human-preferences): after training, fit a gain g and a
  bias b so that g·r + b has mean 0 and std 1 on rewards of reference-policy samples, "so the KL
  coefficient always has the same meaning". Bradley-Terry is blind to the offset and the training
  run decides the scale; normalisation pins both down. OpenAI also applies it *before* training
  (``normalize_before`` in lm-human-preferences' ``train_reward.py``), to the fresh reward model on
  policy samples, targeting the training labels' scales (for comparison labels, which have none:
  mean 0, std 1). Then the head's init std no longer sets the initial reward scale. ``fit`` refuses a
  reference std ≤ ``rel_tol``·max(1, |mean|): the zero head, and also any head so small that its
  rewards' std falls under that floor (absolute, 1e-6, when |mean| < 1), although its rewards still
  have a spread. ``normalize_before`` and ``train_normalised_heads`` run it for linear heads on frozen
  features: under Adam the raw weight's size still sets how fast the head can turn (how far, in ηT/σ,
  depends on the learning rate and the number of steps).
* **Reward centring** (Eisenstein et al. 2023; TRL's ``center_rewards_coefficient``): during
  training, add c·mean((r⁺ + r⁻)²) to the Bradley-Terry loss, which pulls the rewards of each pair
  towards a zero mean without touching their difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rmlib.losses import bradley_terry_loss
from rmlib.utils import validation


@dataclass(frozen=True)
class RewardNormalizer:
    """The affine map r ↦ gain·r + bias. Call it on rewards of any shape."""

    gain: float
    bias: float

    @classmethod
    def fit(cls, reference_rewards: torch.Tensor, target_mean: float = 0.0, target_std: float = 1.0,
            rel_tol: float = 1e-6) -> "RewardNormalizer":
        """Gain and bias that give ``reference_rewards`` mean ``target_mean`` and std ``target_std``.

        gain = target_std / std(ref), bias = target_mean − gain·mean(ref), with the population std
        (``correction=0``) so that the normalised reference set has exactly the target std. A
        reference set whose spread is below ``rel_tol`` of its scale has no std to divide by: it
        raises ``ValueError`` instead of returning an infinite gain.
        """
        ref = validation.float_tensor("reference_rewards", reference_rewards, nonempty=False, finite=True).detach().double().flatten()
        target_mean = validation.real("target_mean", target_mean)
        target_std = validation.real("target_std", target_std, positive=True)
        rel_tol = validation.real("rel_tol", rel_tol, minimum=0.0)
        if ref.numel() < 2:
            raise ValueError(f"need at least 2 reference rewards to measure a spread, got {ref.numel()}")
        mean = ref.mean().item()
        std = ref.std(correction=0).item()
        if std <= rel_tol * max(1.0, abs(mean)):
            raise ValueError(
                f"reference rewards have (near) zero variance (std {std:.3g} around mean {mean:.3g}): "
                "the gain target_std/std is undefined; use a reference set whose rewards differ"
            )
        gain = target_std / std
        return cls(gain=gain, bias=target_mean - gain * mean)

    def __call__(self, rewards: torch.Tensor) -> torch.Tensor:
        validation.float_tensor("rewards", rewards, nonempty=False, finite=True)
        return self.gain * rewards + self.bias


def normalize_rewards(rewards: torch.Tensor, reference_rewards: torch.Tensor) -> torch.Tensor:
    """``rewards`` mapped by the gain and bias fitted on ``reference_rewards`` (target mean 0, std 1)."""
    return RewardNormalizer.fit(reference_rewards)(rewards)


@dataclass(frozen=True)
class NormalisedHeads:
    """H linear heads with OpenAI's gain and bias: reward_k(h) = gain_k · (w_k · h) + bias_k.

    ``weight`` is (H, d), ``gain`` and ``bias`` are (H,). lm-human-preferences keeps the gain and the
    bias as trainable variables of the reward model (``rewards.py``: ``reward_norm/gain``, ``bias``);
    its head, an ``fc_layer``, also has a bias of its own, b in gain·(w·h + b) + bias, left out here:
    under a loss that sees only reward differences neither bias gets a gradient.
    """

    weight: torch.Tensor
    gain: torch.Tensor
    bias: torch.Tensor

    def rewards(self, states: torch.Tensor) -> torch.Tensor:
        """Rewards of every head for ``states`` (N, d): shape (H, N)."""
        validation.float_tensor("states", states, ndim=2)
        validation.features("states", states, self.weight.shape[1])
        return (self.weight @ states.T) * self.gain[:, None] + self.bias[:, None]


def normalize_before(heads: torch.Tensor, reference_states: torch.Tensor) -> NormalisedHeads:
    """lm-human-preferences' ``normalize_before`` for linear heads on fixed features.

    Each row w_k of ``heads`` (H, d) gets the gain and bias (``RewardNormalizer.fit``) that give its
    rewards on ``reference_states`` (N, d), the hidden states of policy samples, mean 0 and std 1 (the
    target lm-human-preferences uses for comparison labels). A head whose reference rewards have a std
    at or below ``fit``'s floor, 1e-6·max(1, |mean|), raises ``ValueError``: the zero head, but also a
    nonzero head scaled small enough (a 1e-30 head whose rewards have std ~1e-30), so "the init std
    drops out" holds for every scale above that floor, not for every c > 0. Heads and states of
    different dtypes raise ``TypeError``.
    """
    validation.float_tensor("heads", heads, ndim=2, finite=True)
    validation.float_tensor("reference_states", reference_states, ndim=2, finite=True)
    validation.same_dtype(("heads", "reference_states"), heads, reference_states)
    validation.features("reference_states", reference_states, heads.shape[1])
    fits = [RewardNormalizer.fit(reference_states @ w) for w in heads]
    as_tensor = lambda values: torch.tensor(values, dtype=heads.dtype)
    return NormalisedHeads(heads.detach().clone(), as_tensor([f.gain for f in fits]), as_tensor([f.bias for f in fits]))


def train_normalised_heads(heads: NormalisedHeads, h_chosen: torch.Tensor, h_rejected: torch.Tensor,
                           lr: float = 1e-3, steps: int = 200) -> NormalisedHeads:
    """Full-batch Adam on the Bradley-Terry loss of every head, training its weight, gain and bias.

    The features are frozen: only the heads learn. Adam works coordinate by coordinate, so the H heads
    stacked in one tensor train exactly as H separate optimisers would. Returns the trained heads; the
    ones passed in are left unchanged. (Bradley-Terry gives the bias zero gradient: it stays put.)
    PyTorch's Adam (eps 1e-8); lm-human-preferences' ``utils/core.py: minimize`` uses eps 1e-5 and a
    learning rate decaying linearly to 0.
    """
    validation.float_tensor("h_chosen", h_chosen, ndim=2, finite=True)
    validation.float_tensor("h_rejected", h_rejected, ndim=2, finite=True)
    validation.same_shape(("h_chosen", "h_rejected"), h_chosen, h_rejected)
    validation.same_dtype(("h_chosen", "heads.weight"), h_chosen, heads.weight)
    validation.same_dtype(("h_rejected", "heads.weight"), h_rejected, heads.weight)
    lr = validation.real("lr", lr, positive=True)
    steps = validation.integer("steps", steps)
    params = [t.detach().clone().requires_grad_() for t in (heads.weight, heads.gain, heads.bias)]
    trained = NormalisedHeads(*params)
    optimiser = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        # mean over pairs per head, summed over heads: each head gets its own loss's gradient
        loss = bradley_terry_loss(trained.rewards(h_chosen), trained.rewards(h_rejected), reduction="none").mean(1).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return NormalisedHeads(*(p.detach() for p in params))


def centring_penalty(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """mean((r⁺ + r⁻)²): zero exactly when every pair's two rewards sum to zero."""
    validation.float_tensor("r_chosen", r_chosen, nonempty=False, finite=True)
    validation.float_tensor("r_rejected", r_rejected, nonempty=False, finite=True)
    validation.same_shape(("r_chosen", "r_rejected"), r_chosen, r_rejected)
    return (r_chosen + r_rejected).pow(2).mean()


def centred_bt_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, coefficient: float = 0.01) -> torch.Tensor:
    """Bradley-Terry loss −log σ(r⁺ − r⁻), averaged, plus ``coefficient``·mean((r⁺ + r⁻)²).

    TRL's ``RewardTrainer`` with ``center_rewards_coefficient`` (0.01 is the recommended value);
    ``coefficient=0`` is plain Bradley-Terry.
    """
    coefficient = validation.real("coefficient", coefficient, minimum=0.0)
    penalty = centring_penalty(r_chosen, r_rejected)
    return bradley_terry_loss(r_chosen, r_rejected) + coefficient * penalty


centering_penalty = centring_penalty  # the American spelling: code that imports it keeps working

__all__ = [
    "NormalisedHeads",
    "RewardNormalizer",
    "centring_penalty",
    "centred_bt_loss",
    "normalize_before",
    "normalize_rewards",
    "train_normalised_heads",
]
