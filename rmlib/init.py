"""Score-head initialisation: ``layer_init``, the 1/sqrt(d+1) rule, and the catalogue of initialisers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import torch
from torch import nn

from rmlib.theory import (crossed_mean_with_stderr, expected_initial_bt_loss, reward_difference_std,
                          sample_hidden_states)
from rmlib.utils import validation


def _weight_of(layer: nn.Module) -> torch.Tensor:
    if not isinstance(layer, nn.Module):
        raise TypeError(f"expected an nn.Module with a weight tensor, got {type(layer).__name__}")
    weight = getattr(layer, "weight", None)
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"{type(layer).__name__} has no weight tensor to initialise")
    return weight


def layer_init(layer: nn.Module, std: float, generator: torch.Generator | None = None) -> nn.Module:
    """Redraw ``layer.weight`` in place from N(0, std²) and return the same layer.

    The contract of open-instruct's ``layer_init``: only the weight changes (the bias, if any, keeps
    its tensor and its values); std = 0 gives a zero weight. Works for any module with a ``weight``
    tensor (Linear, Conv, Embedding, ...).
    """
    weight = _weight_of(layer)
    std = validation.real("std", std, minimum=0.0)
    # no_grad inside normal_ lets this run on a weight that requires grad, like the original.
    torch.nn.init.normal_(weight, mean=0.0, std=std, generator=generator)
    return layer


def score_head_std(hidden_size: int) -> float:
    """The score-head std of Stiennon et al. (2020) and open-instruct: 1/sqrt(hidden_size + 1).

    The "+1" counts the bias as one more input to the head (OpenAI's ``fc_layer`` has one).
    """
    return 1.0 / math.sqrt(validation.integer("hidden_size", hidden_size) + 1)


def init_score_head(model: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """Initialise ``model.score`` with std 1/sqrt(model.config.hidden_size + 1), as open-instruct does.

    Returns the score head.
    """
    score = getattr(model, "score", None)
    if not isinstance(score, nn.Module):
        raise AttributeError(
            f"{type(model).__name__} has no `score` head module (expected model.score, as in "
            "Hugging Face *ForSequenceClassification models)"
        )
    hidden_size = getattr(getattr(model, "config", None), "hidden_size", None)
    if hidden_size is None:
        raise AttributeError(f"{type(model).__name__} has no `config.hidden_size` to size the init by")
    return layer_init(score, score_head_std(hidden_size), generator=generator)


def fan_in(layer: nn.Module) -> int:
    """Number of inputs feeding one output unit of ``layer`` (in_features for a Linear)."""
    weight = _weight_of(layer)
    if weight.dim() < 2:
        raise ValueError(f"fan-in needs a weight with at least 2 dims, got shape {tuple(weight.shape)}")
    return weight[0].numel()


@dataclass(frozen=True)
class Initialiser:
    """One way of initialising a score head, as a function of its fan-in d."""

    name: str
    label: str
    distribution: Literal["normal", "uniform"]
    std_of: Callable[[int], float]
    source: str

    def std(self, d: int) -> float:
        """Standard deviation of each weight for a head with fan-in ``d``."""
        return float(self.std_of(validation.integer("fan-in d", d)))

    def sample(self, n_heads: int, d: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Weights of ``n_heads`` independent heads of fan-in ``d``, shape (n_heads, d).

        Same law and, for the same generator state, the same numbers as ``apply`` on
        ``nn.Linear(d, n_heads)``: row i is one head. Lets the course study many heads in one tensor.
        """
        n_heads = validation.integer("n_heads", n_heads)
        std = self.std(d)
        weight = torch.empty(int(n_heads), int(d))
        if self.distribution == "uniform":
            bound = math.sqrt(3.0) * std
            return weight.uniform_(-bound, bound, generator=generator)
        return torch.nn.init.normal_(weight, mean=0.0, std=std, generator=generator)

    def apply(self, layer: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
        """Redraw ``layer.weight`` in place with this initialiser; the bias is left alone."""
        std = self.std(fan_in(layer))
        if self.distribution == "uniform":
            bound = math.sqrt(3.0) * std  # U(-a, a) has std a/sqrt(3)
            with torch.no_grad():
                layer.weight.uniform_(-bound, bound, generator=generator)
            return layer
        return layer_init(layer, std, generator=generator)


INITIALISERS: dict[str, Initialiser] = {
    init.name: init
    for init in [
        Initialiser("zero", "zero", "normal", lambda d: 0.0, "OpenAI's value head (std 0)"),
        Initialiser(
            "variance_as_std", "1/(d+1)  (variance read as std)", "normal", lambda d: 1.0 / (d + 1),
            "OpenRLHF reward head; N(0, 1/(d+1)) misread as a std",
        ),
        Initialiser(
            "hf_default", "HF initializer_range 0.02", "normal", lambda d: 0.02,
            "Hugging Face *ForSequenceClassification (Llama, GPT-NeoX)",
        ),
        Initialiser(
            "pytorch_default", "PyTorch default U(±1/sqrt(d))", "uniform", lambda d: 1.0 / math.sqrt(3 * d),
            "nn.Linear's kaiming_uniform_(a=sqrt(5)); DeepSpeed-Chat",
        ),
        Initialiser(
            "score_head", "1/sqrt(d+1)  (open-instruct)", "normal", lambda d: 1.0 / math.sqrt(d + 1),
            "Stiennon et al. 2020; open-instruct; OpenAI lm-human-preferences",
        ),
        Initialiser(
            "xavier_normal", "Xavier normal sqrt(2/(d+1))", "normal", lambda d: math.sqrt(2.0 / (d + 1)),
            "torch.nn.init.xavier_normal_ with fan_out = 1",
        ),
        Initialiser("large", "large  (std 1)", "normal", lambda d: 1.0, "a deliberately bad choice"),
    ]
}


def get_initialiser(name: str) -> Initialiser:
    """Look up a catalogue entry by name, with an error that lists the valid names."""
    try:
        return INITIALISERS[name]
    except KeyError:
        raise KeyError(f"unknown initialiser {name!r}; choose one of {sorted(INITIALISERS)}") from None


# --------------------------------------------------------------- every initialiser, measured (lesson 03)


@dataclass(frozen=True)
class InitialiserRow:
    """Measured (with standard error) and predicted initial statistics of one initialiser at one width.

    Features are h ~ N(0, σ_h² I); ``weight_std`` is the rms weight (the mean is 0 by construction) and
    ``w_norm`` the rms of ‖w‖ over heads. The predictions are σ (weight std), σ sqrt(d) (‖w‖),
    σ σ_h sqrt(d) (reward std) and E[−log σ(Δ)] with Δ ~ N(0, 2dσ²σ_h²) (initial Bradley-Terry loss).
    """

    name: str
    d: int
    std: float
    weight_std: float
    weight_std_se: float
    w_norm: float
    w_norm_se: float
    w_norm_theory: float
    reward_std: float
    reward_std_se: float
    reward_std_theory: float
    bt_loss: float
    bt_loss_se: float
    bt_loss_theory: float


def _std_from_second_moment(moment: float, moment_se: float) -> tuple[float, float]:
    # Delta method: se(sqrt(m)) = se(m) / (2 sqrt(m)); a zero moment (zero init) has zero error.
    root = math.sqrt(moment)
    return root, (moment_se / (2 * root) if root > 0 else 0.0)


def initialiser_table(
    widths: list[int],
    names: list[str] | None = None,
    n_heads: int = 128,
    n_pairs: int = 512,
    sigma_h: float = 1.0,
    generator: torch.Generator | None = None,
) -> list[InitialiserRow]:
    """Measure every initialiser (default: the whole catalogue) at every width, next to its theory.

    Per width, ``n_pairs`` (chosen, rejected) feature pairs are drawn once and scored by ``n_heads``
    heads of each initialiser, batched as one matmul; errors come from
    :func:`rmlib.theory.crossed_mean_with_stderr`.
    """
    names = list(INITIALISERS) if names is None else list(names)
    inits = [get_initialiser(name) for name in names]
    rows = []
    for d in widths:
        h = sample_hidden_states(2 * n_pairs, d, sigma_h, generator=generator)  # chosen rows, then rejected
        for init in inits:
            w = init.sample(n_heads, d, generator)
            std = init.std(d)
            r = (w @ h.T).numpy().astype(np.float64)  # the statistics below run in NumPy (see above)
            delta = r[:, :n_pairs] - r[:, n_pairs:]
            reward_std, reward_std_se = _std_from_second_moment(*crossed_mean_with_stderr(r**2))
            norm_sq = np.square(w.numpy(), dtype=np.float64).sum(1)  # i.i.d. over heads
            w_norm, w_norm_se = _std_from_second_moment(norm_sq.mean(), norm_sq.std(ddof=1) / math.sqrt(n_heads))
            bt_loss, bt_loss_se = crossed_mean_with_stderr(np.logaddexp(0.0, -delta))  # softplus(−Δ)
            # Weights have mean 0 by construction, so their std is the rms weight, |w|_rms / sqrt(d).
            weight_std, weight_std_se = w_norm / math.sqrt(d), w_norm_se / math.sqrt(d)
            rows.append(
                InitialiserRow(
                    name=init.name, d=d, std=std,
                    weight_std=weight_std, weight_std_se=weight_std_se,
                    w_norm=w_norm, w_norm_se=w_norm_se, w_norm_theory=std * math.sqrt(d),
                    reward_std=reward_std, reward_std_se=reward_std_se,
                    reward_std_theory=std * sigma_h * math.sqrt(d),
                    bt_loss=bt_loss, bt_loss_se=bt_loss_se,
                    bt_loss_theory=expected_initial_bt_loss(reward_difference_std(d, std, sigma_h)),
                )
            )
    return rows
