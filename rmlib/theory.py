"""Theory of initial rewards r = w·h, and batched, seeded Monte Carlo estimators to check it.

Notation: d = hidden size, w ~ N(0, σ_w² I) the score-head weight, h the hidden state.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from rmlib.utils import validation

ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam's defaults
ADAM_EPS = 1e-8


def conditional_reward_variance(h: torch.Tensor, std: float) -> torch.Tensor:
    """Exact Var_w(w·h | h) = σ_w² ‖h‖², batched over the leading dims of ``h`` (last dim = d).

    No assumption on h: for a fixed input, the init randomness alone makes r ~ N(0, σ_w²‖h‖²).
    """
    validation.float_tensor("h", h, nonempty=False)
    std = validation.real("std", std, minimum=0.0)
    return std**2 * h.pow(2).sum(-1)


def isotropic_reward_variance(d: int, std: float, sigma_h: float) -> float:
    """The textbook prediction Var(r) = d σ_w² σ_h² (zero-mean hidden states with variance σ_h² each)."""
    return d * std**2 * sigma_h**2


def offset_reward_variance(offset_norm: float, std: float) -> float:
    """Extra variance σ_w² ‖m‖² that a mean m shared by every hidden state adds to Var(r)."""
    return std**2 * offset_norm**2


def predicted_reward_variance(d: int, std: float, sigma_h: float, offset_norm: float = 0.0) -> float:
    """Var(r) over both w and h for h = m + σ_h z: σ_w² E‖h‖² = σ_w² (d σ_h² + ‖m‖²)."""
    return isotropic_reward_variance(d, std, sigma_h) + offset_reward_variance(offset_norm, std)


def sample_hidden_states(
    n: int,
    d: int,
    sigma_h: float | torch.Tensor = 1.0,
    offset: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """n hidden states h = m + σ_h ⊙ z, z ~ N(0, I_d); ``sigma_h`` may be per-dimension (anisotropic)."""
    n, d = validation.integer("n", n, minimum=0), validation.integer("d", d)
    if offset is not None:
        validation.float_tensor("offset", offset, ndim=1)
        validation.features("offset", offset, d)
    z = torch.randn(n, d, generator=generator)
    h = z * sigma_h
    if offset is not None:
        h = h + offset
    return h


def sample_initial_rewards(
    d: int,
    std: float,
    n: int,
    sigma_h: float | torch.Tensor = 1.0,
    offset: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    chunk: int = 1 << 22,
) -> torch.Tensor:
    """n independent draws of r = w·h, each with its own head w ~ N(0, std²) and hidden state h.

    Independent pairs make the samples i.i.d., so the sampling error of their variance is known.
    Work is chunked to bound memory at large d.
    """

    def draw(m: int) -> torch.Tensor:
        w = torch.randn(m, d, generator=generator) * std
        h = sample_hidden_states(m, d, sigma_h, offset, generator)
        return (w * h).sum(-1)

    return _in_chunks(n, chunk, d, draw)


def _in_chunks(n: int, chunk: int, floats_per_row: int, draw: Callable[[int], torch.Tensor]) -> torch.Tensor:
    """The n samples of ``draw(m)``, called for m rows at a time (about ``chunk`` floats per tensor it draws).

    Each call finishes its draws before the next starts, so with a seeded generator the samples depend
    on ``chunk`` as well as on the seed.
    """
    n, chunk = validation.integer("n", n), validation.integer("chunk", chunk)
    rows = max(1, chunk // floats_per_row)
    return torch.cat([draw(min(rows, n - start)) for start in range(0, n, rows)])


def variance_with_stderr(samples: torch.Tensor) -> tuple[float, float]:
    """Sample variance and its standard error sqrt((μ₄ − σ⁴)/n), from i.i.d. samples.

    The fourth moment is estimated from the samples, so the error bar is honest for
    non-Gaussian r (a sum of products of Gaussians has heavier tails).
    """
    x = samples.double().flatten()
    n = x.numel()
    if n < 2:
        raise ValueError("need at least 2 samples")
    c = x - x.mean()
    var = c.pow(2).mean().item() * n / (n - 1)
    m4 = c.pow(4).mean().item()
    return var, math.sqrt(max(m4 - var**2, 0.0) / n)


def excess_kurtosis(samples: torch.Tensor) -> float:
    """Sample excess kurtosis μ₄/σ⁴ − 3: 0 for a normal law, −1.2 for a uniform one.

    Its standard error for n normal draws is sqrt(24/n), which is how a test tells the two apart.
    """
    x = samples.double().flatten()
    if x.numel() < 2:
        raise ValueError("need at least 2 samples")
    c = x - x.mean()
    var = c.pow(2).mean().item()
    if var == 0:
        raise ValueError("kurtosis is undefined for constant samples")
    return c.pow(4).mean().item() / var**2 - 3.0


def reward_difference_std(d: int, std: float, sigma_h: float = 1.0) -> float:
    """Typical std of Δ = w·(h⁺ − h⁻) for independent isotropic h: σ_w σ_h sqrt(2d)."""
    return std * sigma_h * math.sqrt(2 * d)


def expected_initial_bt_loss(delta_std: float | np.ndarray) -> float | np.ndarray:
    """E[−log σ(Δ)] for Δ ~ N(0, s²), by the trapezoid rule on a fine grid (error < 1e-6).

    At s = 0 this is log 2 ≈ 0.693: a zero head starts at chance.
    """
    z = np.linspace(-10.0, 10.0, 40001)
    density = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    s = np.asarray(delta_std, dtype=float)
    if np.any(s < 0) or not np.all(np.isfinite(s)):
        raise ValueError("delta_std must be finite and non-negative")
    flat = s.reshape(-1)
    out = np.empty_like(flat)
    # A few stds at a time: one (len(s), 40001) array for hundreds of stds is memory-bound and ~8x slower.
    for start in range(0, flat.size, 8):
        loss = np.logaddexp(0.0, -flat[start : start + 8, None] * z)  # softplus(−Δ) = −log σ(Δ), overflow-free
        out[start : start + 8] = np.trapezoid(loss * density, z, axis=-1)
    return float(out[0]) if s.ndim == 0 else out.reshape(s.shape)


_LOSS_TABLE_S = np.geomspace(1e-3, 2e3, 400)  # log-spaced std values, 3.6 % apart
INITIAL_LOSS_RTOL = 3e-4  # relative error of mean_initial_bt_loss's interpolation (tests/test_theory.py)


@functools.lru_cache(maxsize=1)
def _initial_loss_table() -> np.ndarray:
    return expected_initial_bt_loss(_LOSS_TABLE_S)


def mean_initial_bt_loss(delta_std: np.ndarray | torch.Tensor) -> float:
    """Mean over pairs of E[−log σ(Δ)], Δ ~ N(0, s_i²): the expected initial loss of a data set whose pair i
    has reward-difference std s_i = σ_w‖h⁺_i − h⁻_i‖ (⁺ the chosen answer, ⁻ the rejected one).

    Integrating once per pair is slow for thousands of pairs, so the integral is tabulated once at 400
    values of s from 1e-3 to 2e3 and interpolated in log s: within relative ``INITIAL_LOSS_RTOL`` of
    :func:`expected_initial_bt_loss`. Below 1e-3 the loss is log 2 to within 2e-7.
    """
    s = np.asarray(delta_std.detach().cpu() if torch.is_tensor(delta_std) else delta_std, dtype=float).reshape(-1)
    if s.size == 0 or np.any(s < 0) or not np.all(np.isfinite(s)):
        raise ValueError("delta_std must be a non-empty array of finite, non-negative stds")
    if s.max() > _LOSS_TABLE_S[-1]:
        raise ValueError(f"delta_std up to {s.max():.3g} is beyond the table (2e3); use expected_initial_bt_loss")
    logs = np.log(np.maximum(s, _LOSS_TABLE_S[0]))
    return float(np.interp(logs, np.log(_LOSS_TABLE_S), _initial_loss_table()).mean())


def initial_bt_loss_asymptote(delta_std: float | np.ndarray) -> float | np.ndarray:
    """Large-s limit of the initial loss: E[max(0, −Δ)] = s / sqrt(2π)."""
    out = np.asarray(delta_std, dtype=float) / math.sqrt(2 * math.pi)
    return float(out) if out.ndim == 0 else out


def sample_reward_differences(
    d: int,
    std: float,
    n: int,
    sigma_h: float | torch.Tensor = 1.0,
    offset: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    chunk: int = 1 << 22,
) -> torch.Tensor:
    """n independent draws of Δ = w·(h⁺ − h⁻): one head w ~ N(0, std²) scoring a pair of hidden states.

    Both states share the same ``offset`` m, as every input of one backbone does; Δ is all that the
    Bradley-Terry loss sees. Independent triples make the samples i.i.d.; chunked like
    :func:`sample_initial_rewards`.
    """

    def draw(m: int) -> torch.Tensor:
        w = torch.randn(m, d, generator=generator) * std
        h_c = sample_hidden_states(m, d, sigma_h, offset, generator)
        h_r = sample_hidden_states(m, d, sigma_h, offset, generator)
        return (w * (h_c - h_r)).sum(-1)

    return _in_chunks(n, chunk, 2 * d, draw)


def crossed_mean_with_stderr(values: torch.Tensor | np.ndarray) -> tuple[float, float]:
    """Mean of a (heads × inputs) grid f(w_i, h_j) and its standard error.

    Heads are i.i.d. and inputs are i.i.d., but entries sharing a head (or an input) are correlated,
    so the grid is not n_heads·n_inputs independent samples. Writing f = μ + a_i + b_j + e_ij,
    Var(mean) = σ_a²/R + σ_b²/C + σ_e²/(RC); the estimate var(row means)/R + var(column means)/C
    has expectation σ_a²/R + σ_b²/C + 2σ_e²/(RC): slightly conservative, never optimistic.
    """
    x = validation.grid("values (heads × inputs)", values)
    rows, cols = x.shape
    if rows < 2 or cols < 2:
        raise ValueError(f"need at least 2 heads and 2 inputs, got shape {tuple(x.shape)}")
    var_mean = x.mean(1).var(ddof=1) / rows + x.mean(0).var(ddof=1) / cols
    return float(x.mean()), math.sqrt(var_mean)


def clustered_mean_with_stderr(values: torch.Tensor | np.ndarray) -> tuple[float, float]:
    """Mean of a (repeats × clusters) grid and its standard error when only the clusters are independent.

    The columns are clusters (prompts, say) that every repeat (row: a policy seed) shares, with
    something fixed per cluster (its target, its reference policy); the repeats of one cluster are
    correlated, different clusters are independent. So average each cluster over the repeats first
    and treat the C cluster means as the i.i.d. sample: std(cluster means)/sqrt(C). The i.i.d. formula
    over all R·C entries is too small when the repeats of a cluster agree. (When the rows share
    something too, use :func:`crossed_mean_with_stderr`.)
    """
    x = validation.grid("values (repeats × clusters)", values)
    if x.shape[0] < 1 or x.shape[1] < 2:
        raise ValueError(f"need at least 1 repeat and 2 clusters, got shape {tuple(x.shape)}")
    cluster_means = x.mean(0)
    return float(x.mean()), float(cluster_means.std(ddof=1) / math.sqrt(cluster_means.size))


def sample_prompt_response_pairs(
    n_pairs: int,
    d: int,
    prompt_std: float,
    response_std: float,
    same_prompt: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden states (h_chosen, h_rejected), each (n_pairs, d), built as h = p + a: a prompt part p and a
    response part a (⁺ marks the chosen answer, ⁻ the rejected one).

    p ~ N(0, prompt_std² I) and a ~ N(0, response_std² I), independent. ``same_prompt=True`` is how
    preference data is made — two answers to one prompt share p, which cancels in h⁺ − h⁻, so
    E‖h⁺ − h⁻‖² = 2d·response_std². ``same_prompt=False`` draws a separate prompt for each answer
    (independent hidden states): E‖h⁺ − h⁻‖² = 2d(prompt_std² + response_std²).
    """
    n_pairs, d = validation.integer("n_pairs", n_pairs), validation.integer("d", d)
    prompt_std = validation.real("prompt_std", prompt_std, minimum=0.0)
    response_std = validation.real("response_std", response_std, minimum=0.0)
    validation.boolean("same_prompt", same_prompt)
    prompt_c = torch.randn(n_pairs, d, generator=generator) * prompt_std
    prompt_r = prompt_c if same_prompt else torch.randn(n_pairs, d, generator=generator) * prompt_std
    h_c = prompt_c + torch.randn(n_pairs, d, generator=generator) * response_std
    h_r = prompt_r + torch.randn(n_pairs, d, generator=generator) * response_std
    return h_c, h_r


def train_head_on_preferences(
    h_a: torch.Tensor,
    h_b: torch.Tensor,
    w0: torch.Tensor,
    a_preferred: torch.Tensor | None = None,
    bias0: float | torch.Tensor = 0.0,
    steps: int = 200,
    lr: float = 1e-2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Train S heads r = w·h + b on fixed hidden states by full-batch Bradley-Terry with Adam; return (w, b).

    ``h_a``, ``h_b`` are (n, d): the two answers of n pairs, shared by every head. ``a_preferred`` is an
    (S, n) bool tensor — head s's labels, True where answer a is the chosen one (default: a always
    chosen). ``w0`` is (S, d), one head per row; ``bias0`` a float or (S,). The heads are independent
    problems (Adam is elementwise), batched as one matmul. The bias is trained too, so a caller can
    watch it receive exactly zero gradient while w·m, for any direction m, moves with w.
    """
    from rmlib.losses import bradley_terry_loss  # rmlib.losses does not import theory: no cycle

    validation.float_tensor("w0", w0, ndim=2)
    heads, d = w0.shape
    for name, h in (("h_a", h_a), ("h_b", h_b)):
        validation.float_tensor(name, h, ndim=2)
        validation.features(name, h, d)
    validation.same_shape(("h_a", "h_b"), h_a, h_b)
    if a_preferred is None:
        a_preferred = torch.ones(heads, h_a.shape[0], dtype=torch.bool)
    validation.bool_tensor("a_preferred", a_preferred, shape=(heads, h_a.shape[0]))
    validation.integer("steps", steps)
    lr = validation.real("lr", lr, positive=True)
    w = w0.detach().clone().requires_grad_(True)
    b = (torch.zeros(heads, dtype=w0.dtype) + bias0).detach().requires_grad_(True)
    params = (w, b)
    # Adam written out (adam_step below): constructing torch.optim.Adam imports torch's compiler stack,
    # seconds on first use.
    moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in params]
    first = a_preferred.T  # (n, S)
    for t in range(1, steps + 1):
        r_a, r_b = h_a @ w.T + b, h_b @ w.T + b  # (n, S)
        # The sum over heads of each head's mean loss: every head gets exactly its own gradient.
        loss = bradley_terry_loss(torch.where(first, r_a, r_b), torch.where(first, r_b, r_a), reduction="none")
        grads = torch.autograd.grad(loss.mean(0).sum(), params)
        with torch.no_grad():
            for p, g, (m, v) in zip(params, grads, moments):
                adam_step(p, g, m, v, t, lr)
    return w.detach(), b.detach()


def adam_step(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
    lr: float | torch.Tensor,
    weight_decay: float | torch.Tensor | None = None,
    betas: tuple[float, float] = ADAM_BETAS,
    eps: float = ADAM_EPS,
    decay_columns: Sequence[slice] | None = None,
    buffer: torch.Tensor | None = None,
) -> None:
    """One Adam update of ``param`` in place, as ``torch.optim.Adam`` computes it; with ``weight_decay``,
    first AdamW's decoupled decay param ← param · (1 − lr · λ), as ``torch.optim.AdamW``.

    m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², param ← param − lr/(1 − β₁ᵗ) · m / (sqrt(v / (1 − β₂ᵗ)) + ε),
    with ``step`` = t counted from 1 and the moments ``exp_avg``, ``exp_avg_sq`` updated in place. Elementwise,
    so one call updates a whole stack of independent models: ``lr`` and ``weight_decay`` may be tensors
    that broadcast against ``param`` (one learning rate per row, float64 like a scheduler's numbers), and
    ``decay_columns`` limits the decay to some ranges of the last dimension, as a parameter group with
    ``weight_decay=0`` exempts biases. ``buffer``, a tensor shaped like ``param``, holds the update
    (it is overwritten): a caller stepping many times passes one to save an allocation per step. A zero
    gradient with zero moments gives a step of exactly 0. The sweep engine (:mod:`rmlib.lab.sweep`)
    trains with this function; ``tests/test_theory.py`` checks it against ``torch.optim``.
    """
    beta1, beta2 = betas
    if weight_decay is not None:
        factor = _like(1 - lr * weight_decay, param)
        for cols in [slice(None)] if decay_columns is None else decay_columns:
            param[..., cols].mul_(factor)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    # The order of torch.optim's single-tensor Adam, in place on one buffer: sqrt(v)/sqrt(1 - β₂ᵗ) + ε.
    update = torch.sqrt(exp_avg_sq, out=buffer).div_((1 - beta2**step) ** 0.5).add_(eps)
    torch.div(exp_avg, update, out=update)
    param.sub_(update.mul_(_like(lr / (1 - beta1**step), param)))


def _like(x: float | torch.Tensor, param: torch.Tensor) -> float | torch.Tensor:
    return x.to(param.dtype) if torch.is_tensor(x) else x
