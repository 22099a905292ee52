"""Tests of rmlib.policy: the KL-regularised optimal policy, KL, entropy, and the REINFORCE toy."""

from __future__ import annotations

import math

import pytest
import torch

import rmlib
from rmlib.policy import (entropy, kl_divergence, kl_regularised_objective, optimal_policy, policy_gradient,
                          scale_sweep)


def _problem(prompts: int = 32, k: int = 6, seed: int = 0):
    gen = rmlib.make_generator(seed)
    ref = torch.log_softmax(torch.randn(prompts, k, generator=gen, dtype=torch.float64), -1)
    return ref, torch.randn(prompts, k, generator=gen, dtype=torch.float64)


def test_optimal_policy_closed_form():
    ref, r = _problem()
    opt = optimal_policy(ref, r, beta=0.5)
    unnorm = ref.exp() * torch.exp(r / 0.5)
    assert torch.allclose(opt.exp(), unnorm / unnorm.sum(-1, keepdim=True))


def test_optimal_policy_maximises_objective():
    """J(π*) ≥ J(π) for perturbed policies, and J(π*) = β log E_ref[exp(r/β)] (the free energy)."""
    ref, r = _problem()
    beta = 0.7
    opt = optimal_policy(ref, r, beta)
    j_opt = kl_regularised_objective(opt, ref, r, beta)
    assert torch.allclose(j_opt, beta * torch.logsumexp(ref + r / beta, -1))
    gen = rmlib.make_generator(1)
    for _ in range(5):
        other = torch.log_softmax(opt + 0.3 * torch.randn(opt.shape, generator=gen, dtype=opt.dtype), -1)
        assert (kl_regularised_objective(other, ref, r, beta) < j_opt).all()


def test_reward_scale_is_inverse_temperature():
    ref, r = _problem()
    assert torch.allclose(optimal_policy(ref, 4.0 * r, beta=1.0), optimal_policy(ref, r, beta=0.25))


def test_optimal_policy_ignores_per_prompt_shift():
    ref, r = _problem()
    shift = torch.linspace(-50, 50, r.shape[0], dtype=r.dtype)[:, None]
    assert torch.allclose(optimal_policy(ref, r + shift, 0.5), optimal_policy(ref, r, 0.5))


def test_kl_and_entropy_known_values():
    k = 4
    uniform = torch.full((k,), -math.log(k), dtype=torch.float64)
    assert entropy(uniform).item() == pytest.approx(math.log(k))
    one_hot = torch.log(torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64))
    assert entropy(one_hot).item() == 0.0
    assert kl_divergence(one_hot, uniform).item() == pytest.approx(math.log(k))
    assert kl_divergence(uniform, uniform).item() == 0.0
    p = torch.log(torch.tensor([0.5, 0.5], dtype=torch.float64))
    q = torch.log(torch.tensor([0.9, 0.1], dtype=torch.float64))
    assert kl_divergence(p, q).item() == pytest.approx(0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1))


def test_scale_sweep_monotone_and_limits():
    ref, r = _problem()
    scales = torch.tensor([0.0, 0.1, 1.0, 10.0, 1000.0], dtype=torch.float64)
    kl, ent = scale_sweep(ref, r, 1.0, scales)
    assert kl.shape == ent.shape == (5, 32)
    assert torch.allclose(kl[0], torch.zeros(32, dtype=torch.float64), atol=1e-12)  # scale 0: π* = π_ref
    assert torch.allclose(ent[0], entropy(ref))
    # d KL(π*‖π_ref)/ds = s·Var_π*(r)/β² ≥ 0: KL grows with the scale for every prompt. Entropy
    # need not (a reward favouring an unlikely response first flattens π*), except from a uniform π_ref.
    assert (kl.diff(dim=0) > 0).all()
    uniform = torch.full_like(ref, -math.log(ref.shape[-1]))
    kl_u, ent_u = scale_sweep(uniform, r, 1.0, scales)
    assert torch.allclose(ent_u, math.log(ref.shape[-1]) - kl_u) and (ent_u.diff(dim=0) < 0).all()
    # Scale → ∞: π* → the argmax response, KL → −log π_ref(argmax), entropy → 0.
    best = r.argmax(-1, keepdim=True)
    assert torch.allclose(kl[-1], -ref.gather(1, best).squeeze(1), atol=1e-6)
    assert (ent[-1] < 1e-6).all()


@pytest.mark.parametrize("call, error, match", [
    (lambda ref, r: optimal_policy(ref, r, 0.0), ValueError, "beta"),
    (lambda ref, r: optimal_policy(ref, r, float("nan")), ValueError, "beta"),
    (lambda ref, r: optimal_policy(ref.exp(), r, 1.0), ValueError, "normalised"),
    (lambda ref, r: optimal_policy(ref, r.long(), 1.0), TypeError, "floating"),
    (lambda ref, r: optimal_policy(ref, r * float("inf"), 1.0), ValueError, "non-finite"),
    (lambda ref, r: optimal_policy(ref[:, :1], r[:, :1], 1.0), ValueError, "at least 2"),
    (lambda ref, r: kl_divergence([0.5, 0.5], ref), TypeError, "log_p must be a torch.Tensor"),
    (lambda ref, r: scale_sweep(ref, r, 1.0, torch.tensor([-1.0])), ValueError, "scales"),
    (lambda ref, r: policy_gradient(ref, r, 1.0, lr=0.1, steps=0, n_samples=2), ValueError, "steps"),
    (lambda ref, r: policy_gradient(ref, r, 1.0, lr=-0.1, steps=2, n_samples=2), ValueError, "lr"),
    (lambda ref, r: policy_gradient(ref, r, 1.0, lr=0.1, steps=2, n_samples=1.5), TypeError, "n_samples"),
])
def test_bad_input_is_rejected(call, error, match):
    ref, r = _problem()
    with pytest.raises(error, match=match):
        call(ref, r)


def test_policy_gradient_estimate_is_unbiased():
    """One REINFORCE step averaged over many samples ≈ lr · the exact gradient of J."""
    ref, r = _problem(prompts=4, k=5)
    beta, lr, m = 0.5, 1e-3, 200_000
    run = policy_gradient(ref, r, beta, lr=lr, steps=1, n_samples=m, generator=rmlib.make_generator(2))
    theta = ref.clone().requires_grad_(True)
    kl_regularised_objective(torch.log_softmax(theta, -1), ref, r, beta).sum().backward()
    step = run.final - ref  # log-softmax of θ + lr ĝ minus log π_ref: ≈ lr (ĝ − Σπĝ) to first order
    exact = lr * (theta.grad - (ref.exp() * theta.grad).sum(-1, keepdim=True))
    # Each ĝ_k is a mean of m terms of std ≲ 3: its error ~3/sqrt(m) = 0.0067; allow 5x that, times lr.
    assert torch.allclose(step, exact, atol=lr * 5 * 3 / math.sqrt(m))


def test_policy_gradient_converges_for_well_scaled_and_collapses_for_inflated():
    ref, r = _problem(prompts=64, k=8)
    rewards = torch.stack([r, 8 * r, r + 10])  # well scaled, inflated, offset
    run = policy_gradient(ref, rewards, beta=0.5, lr=1.0, steps=150, n_samples=4, generator=rmlib.make_generator(3))
    assert run.log_probs.shape == (151, 3, 64, 8)
    assert torch.allclose(run.log_probs[0], ref.expand(3, 64, 8))
    gap = kl_divergence(optimal_policy(ref, rewards, 0.5), run.final).mean(-1)
    ent = entropy(run.final).mean(-1)
    assert gap[0] < 0.2 < 1.0 < gap[1] and gap[2] > 1.0, gap  # only the well-scaled run finds π*
    assert ent[1] < 0.1 and ent[2] < 0.1 < 0.8 < ent[0], ent  # the others collapse
    # Reproducible: same generator seed, same run.
    again = policy_gradient(ref, rewards, beta=0.5, lr=1.0, steps=150, n_samples=4, generator=rmlib.make_generator(3))
    assert torch.equal(again.log_probs, run.log_probs)


# --- the trained reward models that lesson 06 feeds into the policy --------------------------------

def test_sweep_result_rewards_match_engine_metrics():
    from rmlib.data import make_preference_data
    from rmlib.lab.sweep import SweepConfig, run_sweep

    data = make_preference_data(n_train=256, n_test=256, seed=0)
    configs = [SweepConfig(init="score_head", train_backbone=False), SweepConfig(init="large", train_backbone=True),
               SweepConfig(init="zero", train_backbone=False, reward_offset=5.0)]
    result = run_sweep(data, configs, steps=20, batch_size=32, progress=False)
    x = torch.cat([data.test.x_chosen, data.test.x_rejected])
    r = result.rewards(x)
    assert r.shape == (3, 512)
    assert torch.allclose(r.std(1), result.metrics["reward_std"], rtol=1e-5)
    assert (r[2].mean() - 5.0).abs() < 1.0  # the offset is in the rewards
    with pytest.raises(ValueError, match="shape"):
        result.rewards(x[:, :3])


# --- whitened advantages (lm-human-preferences' PPO) ----------------------------------------------

def test_whiten_statistics_and_options():
    from rmlib.policy import whiten

    x = torch.randn(3, 50, generator=rmlib.make_generator(4), dtype=torch.float64) * 5 + 2
    out = whiten(x, dims=1)
    assert torch.allclose(out.mean(1), torch.zeros(3, dtype=x.dtype), atol=1e-12)
    assert torch.allclose(out.var(1, correction=0), torch.ones(3, dtype=x.dtype), atol=1e-8)  # eps 1e-8
    kept = whiten(x, shift_mean=False)  # rescaled over everything, mean put back
    assert torch.allclose(kept.mean(), x.mean()) and torch.allclose(kept.std(correction=0), torch.tensor(1.0, dtype=x.dtype))
    assert torch.equal(whiten(torch.full((5,), 3.0)), torch.zeros(5))  # constant batch: zeros, not nan
    with pytest.raises(TypeError, match="floating"):
        whiten(torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match="eps"):
        whiten(x, eps=-1.0)


def test_whitened_policy_gradient_ignores_reward_scale_and_offset_per_configuration():
    """r → a·r + c with β → a·β gives A → a·A + c: whitened, the same step. Per configuration:
    each of the two configurations below gets its own offset, which pooled whitening would mix."""
    ref, r = _problem(prompts=16, k=6)
    base = torch.stack([r, 2 * r])
    moved = torch.stack([10 * r + 5, 20 * r - 300])
    kw = dict(lr=0.5, steps=40, n_samples=4, whiten_advantages=True)
    a = policy_gradient(ref, base, 0.5, generator=rmlib.make_generator(6), **kw)
    b = policy_gradient(ref, moved, 5.0, generator=rmlib.make_generator(6), **kw)
    # Not bit-equal: whitening's eps (1e-8 added to the variance) is not scale-free, a ~1e-9 relative
    # difference per step that the 40 steps amplify to ~4e-5 (measured); a different sample would
    # show up as an O(1) difference.
    assert torch.allclose(a.log_probs, b.log_probs, atol=1e-3)
    # Without whitening the same change gives a different run.
    kw["whiten_advantages"] = False
    a = policy_gradient(ref, base, 0.5, generator=rmlib.make_generator(6), **kw)
    b = policy_gradient(ref, moved, 5.0, generator=rmlib.make_generator(6), **kw)
    assert not torch.allclose(a.final, b.final, atol=1e-3)
    with pytest.raises(TypeError, match="whiten_advantages"):
        policy_gradient(ref, r, 1.0, lr=0.1, steps=1, n_samples=2, whiten_advantages=1)


def test_whitening_removes_the_offset_collapse():
    ref, r = _problem(prompts=64, k=8)
    rewards = torch.stack([r, r + 10])  # well scaled, offset
    kw = dict(beta=0.5, lr=1.0, steps=150, n_samples=4)
    gaps = {}
    for whitened in (False, True):
        run = policy_gradient(ref, rewards, **kw, generator=rmlib.make_generator(3), whiten_advantages=whitened)
        gaps[whitened] = kl_divergence(optimal_policy(ref, rewards, 0.5), run.final).mean(-1)
    assert gaps[False][1] > 1.0 and gaps[True][1] < 0.2, gaps  # the offset run collapses only unwhitened
    assert gaps[True][0] < 0.2, gaps
