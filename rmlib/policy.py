"""What a reward does downstream: the KL-regularised optimal policy and a policy-gradient toy.

Each prompt has K candidate responses. A policy is a categorical distribution over them, held as
log-probabilities in the last dimension; every function is batched over any leading dimensions
(configurations, prompts). The RLHF objective for a reward r and a reference policy π_ref is

    J(π) = E_{y~π}[r(y)] − β KL(π ‖ π_ref),

maximised by π*(y) ∝ π_ref(y) exp(r(y)/β): the reward enters only through r/β, so scaling the
reward by s is the same as dividing β by s — reward scale is an inverse temperature.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rmlib.utils import validation


def _check_logprobs(log_p: torch.Tensor, name: str) -> torch.Tensor:
    validation.float_tensor(name, log_p, nonempty=False)
    if log_p.dim() == 0 or log_p.shape[-1] < 2:
        raise ValueError(f"{name} needs a last dimension of at least 2 responses, got shape {tuple(log_p.shape)}")
    if torch.isnan(log_p).any() or torch.isposinf(log_p).any():
        raise ValueError(f"{name} contains nan or +inf")
    total = torch.logsumexp(log_p, -1)
    if not torch.allclose(total, torch.zeros_like(total), atol=1e-4):
        raise ValueError(f"{name} must be normalised log-probabilities (logsumexp over the last dim = 0)")
    return log_p


def optimal_policy(log_pi_ref: torch.Tensor, rewards: torch.Tensor, beta: float) -> torch.Tensor:
    """log π* = log_softmax(log π_ref + r/β): the maximiser of E_π[r] − β KL(π‖π_ref).

    ``rewards`` broadcasts against ``log_pi_ref`` (last dim = responses).
    """
    _check_logprobs(log_pi_ref, "log_pi_ref")
    validation.float_tensor("rewards", rewards, nonempty=False, finite=True)
    beta = validation.real("beta", beta, positive=True)
    return torch.log_softmax(log_pi_ref + rewards / beta, dim=-1)


def kl_divergence(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) = Σ_y p(y) (log p(y) − log q(y)) over the last dim; terms with p(y) = 0 count 0."""
    _check_logprobs(log_p, "log_p")
    _check_logprobs(log_q, "log_q")
    p = log_p.exp()
    # where p = 0 the term is 0 even if q = 0 too (avoid 0·(−inf − −inf) = nan)
    return torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p)).sum(-1)


def entropy(log_p: torch.Tensor) -> torch.Tensor:
    """H(p) = −Σ_y p(y) log p(y) over the last dim, in nats (log K for a uniform policy)."""
    _check_logprobs(log_p, "log_p")
    p = log_p.exp()
    return -torch.where(p > 0, p * log_p, torch.zeros_like(p)).sum(-1)


def kl_regularised_objective(log_pi: torch.Tensor, log_pi_ref: torch.Tensor, rewards: torch.Tensor,
                             beta: float) -> torch.Tensor:
    """J(π) = E_π[r] − β KL(π‖π_ref), per prompt."""
    validation.float_tensor("rewards", rewards, nonempty=False, finite=True)
    beta = validation.real("beta", beta, positive=True)
    return (log_pi.exp() * rewards).sum(-1) - beta * kl_divergence(log_pi, log_pi_ref)


def scale_sweep(log_pi_ref: torch.Tensor, rewards: torch.Tensor, beta: float,
                scales: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """KL(π*‖π_ref) and entropy of π* for rewards multiplied by each of ``scales``.

    Returns two tensors of shape (len(scales), *broadcast shape without the response dim).
    """
    validation.float_tensor("rewards", rewards, nonempty=False, finite=True)
    scales = validation.float_tensor("scales", torch.as_tensor(scales, dtype=rewards.dtype), ndim=1, finite=True)
    if not (scales >= 0).all():
        raise ValueError(f"scales must be non-negative, got {scales.min().item()}")
    extra = (1,) * max(rewards.dim(), log_pi_ref.dim())
    log_opt = optimal_policy(log_pi_ref, scales.reshape(-1, *extra) * rewards, beta)
    return kl_divergence(log_opt, log_pi_ref.expand_as(log_opt)), entropy(log_opt)


@dataclass(frozen=True)
class PolicyGradientRun:
    """Log-probabilities of the policy before every step and after the last: (steps + 1, ..., K)."""

    log_probs: torch.Tensor

    @property
    def final(self) -> torch.Tensor:
        return self.log_probs[-1]


def whiten(values: torch.Tensor, dims: tuple[int, ...] | int | None = None, shift_mean: bool = True,
           eps: float = 1e-8) -> torch.Tensor:
    """(x − mean)/sqrt(var + eps) over ``dims`` (default: all), with the population variance.

    The statistic OpenAI's lm-human-preferences applies in PPO (``lm_human_preferences/utils/core.py:
    whiten``): to the advantages of every minibatch, and, with ``shift_mean=False`` (rescale but keep
    the mean), to the rewards. ``eps`` keeps a constant batch finite (it whitens to zeros).
    """
    validation.float_tensor("values", values, nonempty=False)
    validation.real("eps", eps, minimum=0.0)
    validation.boolean("shift_mean", shift_mean)
    dims = tuple(range(values.dim())) if dims is None else ((dims,) if isinstance(dims, int) else tuple(dims))
    mean = values.mean(dims, keepdim=True)
    var = values.var(dims, keepdim=True, correction=0)
    out = (values - mean) * torch.rsqrt(var + eps)
    return out + mean if not shift_mean else out


def policy_gradient(
    log_pi_ref: torch.Tensor,
    rewards: torch.Tensor,
    beta: float,
    lr: float,
    steps: int,
    n_samples: int,
    generator: torch.Generator | None = None,
    whiten_advantages: bool = False,
) -> PolicyGradientRun:
    """REINFORCE on softmax logits θ (initialised at log π_ref), all prompts and configurations at once.

    Each step samples ``n_samples`` responses per prompt from π_θ and ascends

        ĝ = (1/M) Σ_m (e_{y_m} − π_θ) · A(y_m),   A(y) = r(y) − β (log π_θ(y) − log π_ref(y)),

    an unbiased estimate of ∇_θ J (∇_θ log π_θ(y) = e_y − π_θ for softmax logits). By default there is
    no baseline and no normalisation: an offset shared by all rewards leaves E[ĝ] unchanged but adds
    variance, and the step grows with the reward scale. Production PPO does not run like this.

    ``whiten_advantages=True`` whitens A at every step, as lm-human-preferences' PPO does
    (``train_policy.py``: ``advantages = utils.whiten(advantages)`` in every minibatch): over all prompts
    and samples of one configuration, A ← (A − mean)/sqrt(var + 1e-8). Subtracting the batch mean acts
    as a baseline (an offset no longer pushes every sampled response up); dividing by the std makes the
    step size independent of the reward scale.

    ``rewards`` and ``log_pi_ref`` broadcast to the policy's shape (*configurations, prompts, K); a
    1-D shape (K,) is one prompt.
    """
    _check_logprobs(log_pi_ref, "log_pi_ref")
    validation.float_tensor("rewards", rewards, nonempty=False, finite=True)
    beta = validation.real("beta", beta, positive=True)
    lr = validation.real("lr", lr, positive=True)
    validation.integer("steps", steps)
    validation.integer("n_samples", n_samples)
    validation.boolean("whiten_advantages", whiten_advantages)
    shape = torch.broadcast_shapes(log_pi_ref.shape, rewards.shape)
    prompts = shape[-2] if len(shape) >= 2 else 1  # whitening groups: one configuration's prompts
    ref = log_pi_ref.expand(shape).reshape(-1, shape[-1])
    r = rewards.expand(shape).reshape(-1, shape[-1])
    theta = ref.clone()
    history = torch.empty(steps + 1, *ref.shape, dtype=ref.dtype)
    for t in range(steps):
        log_pi = torch.log_softmax(theta, -1)
        history[t] = log_pi
        y = torch.multinomial(log_pi.exp(), n_samples, replacement=True, generator=generator)  # (B, M)
        advantage = r.gather(1, y) - beta * (log_pi.gather(1, y) - ref.gather(1, y))
        if whiten_advantages:
            advantage = whiten(advantage.reshape(-1, prompts, n_samples), dims=(1, 2)).reshape(advantage.shape)
        counts = torch.zeros_like(theta).scatter_add_(1, y, advantage)  # Σ_m e_{y_m} A_m
        grad = (counts - log_pi.exp() * advantage.sum(1, keepdim=True)) / n_samples
        theta = theta + lr * grad
    history[steps] = torch.log_softmax(theta, -1)
    return PolicyGradientRun(history.reshape(steps + 1, *shape))


__all__ = [
    "PolicyGradientRun",
    "entropy",
    "kl_divergence",
    "kl_regularised_objective",
    "optimal_policy",
    "policy_gradient",
    "scale_sweep",
    "whiten",
]
