"""Synthetic preference data with a known true reward, and the "pretrained" backbone that goes with it.

The set-up (taught in lesson 05, section 1): inputs x ~ N(0, I) in R^input_dim; a 2-layer GELU MLP teacher h₀(x) in
R^hidden_size plays the pretrained backbone; the true reward is r*(x) = u·h₀(x), scaled so that its
std over inputs is ``true_reward_std``. Each pair (a, b) gets a label drawn from the Bradley-Terry
model, P(a ≻ b) = σ(r*(a) − r*(b)), so the data contain the label noise real preferences have.
The student reward model starts from h₀ with a fresh score head: the pretrained features already
contain the answer, and anything training does to them can be measured against that.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rmlib.seeding import make_generator
from rmlib.utils import validation

_SCALE_SAMPLES = 16_384  # inputs used to set the true reward's std; its relative error is ~1/sqrt(2n) = 0.6%


class MLPBackbone(nn.Module):
    """h = fc2(gelu(fc1 x)), shape (..., hidden_size): the "pretrained" feature extractor.

    The output is a linear layer, unbounded like a transformer's hidden state. (With a bounded
    output such as tanh, SGD with a huge head saturates instead of diverging.)
    """

    def __init__(self, input_dim: int, hidden_size: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden_size)
        self.fc2 = nn.Linear(hidden_size, hidden_size)

    @property
    def hidden_size(self) -> int:
        return self.fc2.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))

    @staticmethod
    def forward_with(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The same map with explicit parameters named as in ``named_parameters()`` (``fc1.weight`` …).

        Every tensor may carry a leading run dimension R (weights (R, out, in), biases (R, out),
        x (R, N, in)): this is how the batched engine evaluates many backbones at once.
        """
        def linear(name: str, z: torch.Tensor) -> torch.Tensor:
            w, b = params[f"{name}.weight"], params[f"{name}.bias"]
            return torch.baddbmm(b.unsqueeze(1), z, w.transpose(1, 2)) if z.dim() == 3 else F.linear(z, w, b)

        return linear("fc2", F.gelu(linear("fc1", x)))


class RewardMLP(nn.Module):
    """Backbone + bias-free ``score`` head: the plain nn.Module a per-configuration training loop uses."""

    def __init__(self, backbone: MLPBackbone) -> None:
        super().__init__()
        self.backbone = backbone
        self.score = nn.Linear(backbone.hidden_size, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(self.backbone(x)).squeeze(-1)


@dataclass(frozen=True)
class PreferenceSplit:
    """n preference pairs: inputs of the chosen and rejected answers and their true rewards."""

    x_chosen: torch.Tensor  # (n, input_dim)
    x_rejected: torch.Tensor  # (n, input_dim)
    r_chosen: torch.Tensor  # (n,) true reward r*(x_chosen)
    r_rejected: torch.Tensor  # (n,)

    def __len__(self) -> int:
        return self.x_chosen.shape[0]


@dataclass(frozen=True)
class PreferenceData:
    """Train, validation and test pairs, the pretrained backbone h₀ and the true head u (r* = u·h₀(x)).

    ``val`` is for choosing things during training (early stopping); ``test`` is touched only to
    report results, so a choice made on ``val`` is still judged on unseen pairs.
    """

    train: PreferenceSplit
    test: PreferenceSplit
    backbone: MLPBackbone
    true_head: torch.Tensor  # (hidden_size,)
    true_reward_std: float
    seed: int
    val: PreferenceSplit | None = None

    @property
    def input_dim(self) -> int:
        return self.train.x_chosen.shape[1]

    @property
    def hidden_size(self) -> int:
        return self.backbone.hidden_size

    def true_reward(self, x: torch.Tensor) -> torch.Tensor:
        """r*(x) = u·h₀(x) for inputs of shape (..., input_dim)."""
        with torch.no_grad():
            return self.backbone(x) @ self.true_head


def _teacher(input_dim: int, hidden_size: int, gen: torch.Generator) -> MLPBackbone:
    backbone = MLPBackbone(input_dim, hidden_size)
    with torch.no_grad():
        # fc1 weights N(0, 1/fan_in) keep GELU's inputs at unit scale, where it is clearly nonlinear;
        # small biases give the features a modest shared mean, as real ones have.
        for layer in (backbone.fc1, backbone.fc2):
            layer.weight.normal_(0.0, 1.0 / math.sqrt(layer.in_features), generator=gen)
            layer.bias.normal_(0.0, 0.1, generator=gen)
        # Rescale fc2 so each feature has unit variance on average over inputs, like a normalised
        # hidden state (‖h‖ ≈ sqrt(d)), which the course's variance formulas assume.
        probe = backbone(torch.randn(_SCALE_SAMPLES, input_dim, generator=gen))
        scale = probe.var(0).mean().sqrt()
        backbone.fc2.weight.div_(scale)
        backbone.fc2.bias.div_(scale)
    return backbone.requires_grad_(False).eval()


def _split(
    n: int, input_dim: int, true_reward: Callable[[torch.Tensor], torch.Tensor], gen: torch.Generator
) -> PreferenceSplit:
    a = torch.randn(n, input_dim, generator=gen)
    b = torch.randn(n, input_dim, generator=gen)
    r_a, r_b = true_reward(a), true_reward(b)
    # Bradley-Terry labels: a is preferred with probability σ(r*(a) − r*(b)).
    a_wins = torch.rand(n, generator=gen) < torch.sigmoid(r_a - r_b)
    pick = a_wins.unsqueeze(1)
    return PreferenceSplit(
        x_chosen=torch.where(pick, a, b),
        x_rejected=torch.where(pick, b, a),
        r_chosen=torch.where(a_wins, r_a, r_b),
        r_rejected=torch.where(a_wins, r_b, r_a),
    )


def make_preference_data(
    n_train: int = 2048,
    n_test: int = 2048,
    input_dim: int = 32,
    hidden_size: int = 64,
    true_reward_std: float = 2.0,
    seed: int = 0,
    n_val: int = 1024,
) -> PreferenceData:
    """Build a seeded synthetic preference data set (see the module docstring for the model).

    Every draw (teacher weights, true head, inputs, labels) comes from ``make_generator(seed)``, so
    the same arguments always give the same tensors. The validation pairs are drawn after the test
    pairs, so ``n_val`` changes neither the training nor the test split.
    """
    n_train = validation.integer("n_train", n_train)
    n_test = validation.integer("n_test", n_test)
    n_val = validation.integer("n_val", n_val)
    input_dim = validation.integer("input_dim", input_dim)
    hidden_size = validation.integer("hidden_size", hidden_size)
    true_reward_std = validation.real("true_reward_std", true_reward_std, positive=True)
    gen = make_generator(seed)
    backbone = _teacher(input_dim, hidden_size, gen)
    u = torch.randn(hidden_size, generator=gen)
    with torch.no_grad():
        scale_inputs = torch.randn(_SCALE_SAMPLES, input_dim, generator=gen)
        u = u * (true_reward_std / (backbone(scale_inputs) @ u).std())

    def true_reward(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return backbone(x) @ u

    train = _split(n_train, input_dim, true_reward, gen)
    test = _split(n_test, input_dim, true_reward, gen)
    val = _split(n_val, input_dim, true_reward, gen)
    return PreferenceData(train, test, backbone, u, float(true_reward_std), int(seed), val)


__all__ = ["MLPBackbone", "PreferenceData", "PreferenceSplit", "RewardMLP", "make_preference_data"]
