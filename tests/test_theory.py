"""Variance formulas against seeded Monte Carlo, and the expected initial Bradley-Terry loss."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rmlib import theory
from rmlib.seeding import make_generator


def test_conditional_variance_is_exact_for_a_fixed_h():
    g = make_generator(0)
    h = torch.randn(64, generator=g) * 3 + 1
    std, n = 0.2, 400_000
    r = (torch.randn(n, 64, generator=g) * std) @ h
    var, se = theory.variance_with_stderr(r)
    predicted = theory.conditional_reward_variance(h, std).item()
    assert predicted == pytest.approx(std**2 * h.pow(2).sum().item())
    assert abs(var - predicted) < 4 * se  # 4 standard errors of the sample variance


def test_conditional_variance_is_batched():
    h = torch.ones(3, 5, 10)
    assert theory.conditional_reward_variance(h, 0.5).shape == (3, 5)
    with pytest.raises(TypeError, match="floating"):
        theory.conditional_reward_variance(torch.ones(3, dtype=torch.long), 0.5)


@pytest.mark.parametrize("d, std, sigma_h", [(16, 0.25, 1.0), (256, 1 / math.sqrt(257), 2.0), (2048, 0.02, 0.5)])
def test_isotropic_prediction_matches_monte_carlo(d, std, sigma_h):
    r = theory.sample_initial_rewards(d, std, 100_000, sigma_h=sigma_h, generator=make_generator(1))
    var, se = theory.variance_with_stderr(r)
    assert abs(var - theory.isotropic_reward_variance(d, std, sigma_h)) < 4 * se


def test_shared_offset_breaks_the_isotropic_formula_and_the_offset_term_fixes_it():
    d, std = 256, 1 / math.sqrt(257)
    offset = torch.full((d,), 50 / math.sqrt(d))  # ‖m‖ = 50, the case in the course notes
    r = theory.sample_initial_rewards(d, std, 100_000, offset=offset, generator=make_generator(2))
    var, se = theory.variance_with_stderr(r)
    iso = theory.isotropic_reward_variance(d, std, 1.0)
    full = theory.predicted_reward_variance(d, std, 1.0, offset_norm=50.0)
    assert full == pytest.approx(iso + theory.offset_reward_variance(50.0, std))
    assert abs(var - full) < 4 * se
    assert var > 5 * iso  # the isotropic formula is off by an order of magnitude here


def test_anisotropic_features_follow_the_trace():
    d, std = 128, 0.1
    sigma_h = torch.linspace(0.1, 3.0, d)
    r = theory.sample_initial_rewards(d, std, 100_000, sigma_h=sigma_h, generator=make_generator(3))
    var, se = theory.variance_with_stderr(r)
    assert abs(var - std**2 * sigma_h.pow(2).sum().item()) < 4 * se


def test_sampling_is_reproducible_and_chunked_equally():
    a = theory.sample_initial_rewards(64, 0.1, 1000, generator=make_generator(5))
    b = theory.sample_initial_rewards(64, 0.1, 1000, generator=make_generator(5))
    assert torch.equal(a, b)
    c = theory.sample_initial_rewards(64, 0.1, 1000, generator=make_generator(5), chunk=64 * 7)
    assert c.shape == (1000,)


def test_offset_shape_is_checked():
    with pytest.raises(ValueError, match="offset"):
        theory.sample_hidden_states(4, 8, offset=torch.zeros(7))


def test_variance_with_stderr_matches_gaussian_theory():
    x = torch.randn(1_000_000, generator=make_generator(6), dtype=torch.float64)
    var, se = theory.variance_with_stderr(x)
    assert se == pytest.approx(math.sqrt(2 / 1_000_000), rel=0.02)  # Gaussian: se = σ² sqrt(2/n)
    with pytest.raises(ValueError):
        theory.variance_with_stderr(torch.ones(1))


@pytest.mark.parametrize("s", [0.0, 0.3, 1.0, 4.0, 30.0])
def test_expected_initial_loss_matches_monte_carlo(s):
    delta = torch.randn(2_000_000, generator=make_generator(7), dtype=torch.float64) * s
    loss = F.softplus(-delta)
    mc, se = loss.mean().item(), loss.std().item() / math.sqrt(loss.numel())
    assert abs(theory.expected_initial_bt_loss(s) - mc) < 4 * se + 1e-12


def test_expected_initial_loss_limits():
    assert theory.expected_initial_bt_loss(0.0) == pytest.approx(math.log(2), abs=1e-12)
    big = np.array([100.0, 1000.0])
    # E softplus(-Δ) - E max(0,-Δ) = E log(1+e^{-|Δ|}) = O(1/s): the asymptote is tight at large s.
    gap = theory.expected_initial_bt_loss(big) - theory.initial_bt_loss_asymptote(big)
    assert np.all(gap > 0) and np.all(gap * big < 2.0)
    with pytest.raises(ValueError):
        theory.expected_initial_bt_loss(-1.0)


def test_reward_difference_std():
    assert theory.reward_difference_std(256, 1.0) == pytest.approx(math.sqrt(512))
