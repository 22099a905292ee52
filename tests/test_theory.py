"""Variance formulas against seeded Monte Carlo, and the expected initial Bradley-Terry loss."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from rmlib import theory
from rmlib.init import initialiser_table
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
    with pytest.raises(TypeError, match="offset"):
        theory.sample_hidden_states(4, 8, offset=[0.0] * 8)
    with pytest.raises(TypeError, match="d must be an int"):
        theory.sample_hidden_states(4, 8.0)
    with pytest.raises(TypeError, match="floating"):
        theory.conditional_reward_variance(torch.ones(3, dtype=torch.long), 1.0)


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


@pytest.mark.parametrize("offset_norm", [0.0, 50.0])
def test_reward_differences_cancel_a_shared_offset(offset_norm):
    d, std = 256, 1 / math.sqrt(257)
    offset = torch.full((d,), offset_norm / math.sqrt(d))
    delta = theory.sample_reward_differences(d, std, 60_000, offset=offset, generator=make_generator(8))
    var, se = theory.variance_with_stderr(delta)
    assert abs(var - 2 * theory.isotropic_reward_variance(d, std, 1.0)) < 4 * se  # 4 standard errors


def test_reward_differences_are_reproducible_and_chunk_independent_in_shape():
    a = theory.sample_reward_differences(32, 0.1, 500, generator=make_generator(9))
    b = theory.sample_reward_differences(32, 0.1, 500, generator=make_generator(9))
    assert torch.equal(a, b)
    assert theory.sample_reward_differences(32, 0.1, 500, generator=make_generator(9), chunk=64 * 5).shape == (500,)


def test_crossed_stderr_is_calibrated_where_the_naive_one_is_not():
    # 500 independent (40 heads × 50 inputs) grids of softplus(−w·h): the spread of their means is
    # the true standard error. Its own estimate is good to 1/sqrt(2·500) ≈ 3%; allow 4 of those.
    # The crossed estimate may be conservative by at most sqrt(2); the i.i.d. formula, which
    # ignores the shared heads and inputs, must come out too small.
    g = make_generator(11)
    reps, n_heads, n_inputs, d = 500, 40, 50, 16
    w = torch.randn(reps, n_heads, d, generator=g) * 0.5
    h = torch.randn(reps, n_inputs, d, generator=g)
    grids = F.softplus(-(w @ h.transpose(1, 2)))
    true_se = grids.double().mean((1, 2)).std().item()
    crossed = np.mean([theory.crossed_mean_with_stderr(x)[1] for x in grids])
    naive = (grids.double().flatten(1).std(1) / math.sqrt(n_heads * n_inputs)).mean().item()
    assert 0.87 < crossed / true_se < math.sqrt(2) * 1.13
    assert naive / true_se < 0.87
    mean, _ = theory.crossed_mean_with_stderr(grids[0])
    assert mean == pytest.approx(grids[0].double().mean().item())
    assert theory.crossed_mean_with_stderr(grids[0].numpy()) == pytest.approx(theory.crossed_mean_with_stderr(grids[0]))


@pytest.mark.parametrize("bad", [torch.ones(5), torch.ones(1, 5), torch.ones(5, 1), torch.ones(2, 2, 2)])
def test_crossed_stderr_rejects_bad_grids(bad):
    with pytest.raises(ValueError, match="2-D|at least 2"):
        theory.crossed_mean_with_stderr(bad)


@pytest.mark.parametrize("stat", ["crossed_mean_with_stderr", "clustered_mean_with_stderr"])
def test_grid_statistics_refuse_a_list_with_type_error(stat):
    with pytest.raises(TypeError, match="torch.Tensor or numpy.ndarray, got list"):
        getattr(theory, stat)([[1.0, 2.0], [3.0, 4.0]])


def test_clustered_stderr_is_calibrated_where_the_naive_one_is_not():
    # 2000 independent (3 repeats × 64 clusters) grids: a shared per-cluster value plus independent
    # noise, as three policy seeds share 64 prompts. The spread of the grid means is the true standard
    # error (its own estimate good to 1/sqrt(2·2000) ≈ 1.6 %; allow 4 of those plus the ~1 % bias of
    # the mean of a std over 63 degrees of freedom). The i.i.d. formula over 192 entries comes out small.
    g = make_generator(12)
    reps, repeats, clusters = 2000, 3, 64
    grids = torch.randn(reps, 1, clusters, generator=g, dtype=torch.float64) + torch.randn(reps, repeats, clusters, generator=g, dtype=torch.float64)
    true_se = grids.mean((1, 2)).std().item()
    clustered = np.mean([theory.clustered_mean_with_stderr(x)[1] for x in grids])
    naive = (grids.flatten(1).std(1) / math.sqrt(repeats * clusters)).mean().item()
    assert 0.92 < clustered / true_se < 1.08, clustered / true_se
    assert naive / true_se < 0.85, naive / true_se
    mean, se = theory.clustered_mean_with_stderr(grids[0])
    assert mean == pytest.approx(grids[0].mean().item())
    assert se == pytest.approx(grids[0].mean(0).std().item() / 8)
    assert theory.clustered_mean_with_stderr(grids[0].numpy()) == pytest.approx((mean, se))


@pytest.mark.parametrize("bad", [torch.ones(5), torch.ones(3, 1), torch.ones(0, 4), torch.ones(2, 2, 2)])
def test_clustered_stderr_rejects_bad_grids(bad):
    with pytest.raises(ValueError, match="2-D|at least"):
        theory.clustered_mean_with_stderr(bad)


def test_initialiser_table_measurements_match_theory():
    rows = initialiser_table([64, 512], n_heads=64, n_pairs=256, generator=make_generator(12))
    from rmlib import INITIALISERS

    assert [(r.d, r.name) for r in rows] == [(d, n) for d in (64, 512) for n in INITIALISERS]
    for r in rows:
        assert r.std == INITIALISERS[r.name].std(r.d)
        # 4 standard errors each; 1e-6 covers the quadrature error of the loss (and the zero head).
        assert abs(r.weight_std - r.std) <= 4 * r.weight_std_se, r
        assert abs(r.w_norm - r.w_norm_theory) <= 4 * r.w_norm_se, r
        assert abs(r.reward_std - r.reward_std_theory) <= 4 * r.reward_std_se, r
        assert abs(r.bt_loss - r.bt_loss_theory) <= 4 * r.bt_loss_se + 1e-6, r
    zero = next(r for r in rows if r.name == "zero")
    assert zero.reward_std == 0 and zero.bt_loss == pytest.approx(math.log(2), abs=1e-6)  # float32 softplus


def test_initialiser_table_subset_and_unknown_names():
    rows = initialiser_table([16], names=["large"], n_heads=8, n_pairs=8, generator=make_generator(0))
    assert [r.name for r in rows] == ["large"]
    with pytest.raises(KeyError, match="unknown initialiser"):
        initialiser_table([16], names=["kaiming"])


def test_excess_kurtosis_tells_normal_from_uniform():
    n = 200_000
    g = make_generator(13)
    # standard error sqrt(24/n) = 0.011 for normal draws; 5 of those
    assert abs(theory.excess_kurtosis(torch.randn(n, generator=g))) < 5 * math.sqrt(24 / n)
    assert theory.excess_kurtosis(torch.rand(n, generator=g)) == pytest.approx(-1.2, abs=0.02)
    with pytest.raises(ValueError, match="constant"):
        theory.excess_kurtosis(torch.ones(10))
    with pytest.raises(ValueError, match="at least 2"):
        theory.excess_kurtosis(torch.ones(1))


# --- same-prompt pairs: the prompt's part of h cancels in h_c − h_r ---------------------------------

def test_same_prompt_pairs_cancel_the_prompt_part():
    n, d, sp, sa = 20_000, 32, 1.7, 1.0
    same_c, same_r = theory.sample_prompt_response_pairs(n, d, sp, sa, same_prompt=True, generator=make_generator(3))
    ind_c, ind_r = theory.sample_prompt_response_pairs(n, d, sp, sa, same_prompt=False, generator=make_generator(3))
    assert same_c.shape == same_r.shape == ind_c.shape == (n, d)
    # Every hidden state has the same law either way: per-coordinate variance sp² + sa².
    for h in (same_c, ind_r):
        assert abs(h.var(0).mean().item() - (sp**2 + sa**2)) < 0.02 * (sp**2 + sa**2)  # ~sqrt(2/(n d)) = 0.2%
    # E|h_c − h_r|² per coordinate: 2 sa² for same-prompt pairs, 2(sp² + sa²) for independent ones.
    # A mean of n·d squared normals has relative s.e. sqrt(2/(n d)) ≈ 0.2%; 1% is 5 s.e.
    same = (same_c - same_r).pow(2).mean().item()
    ind = (ind_c - ind_r).pow(2).mean().item()
    assert same == pytest.approx(2 * sa**2, rel=0.01)
    assert ind == pytest.approx(2 * (sp**2 + sa**2), rel=0.01)
    # No prompt part: both ways agree in law; reproducible with a seed.
    a = theory.sample_prompt_response_pairs(8, 4, 0.0, 1.0, generator=make_generator(5))
    b = theory.sample_prompt_response_pairs(8, 4, 0.0, 1.0, generator=make_generator(5))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n_pairs=0), ValueError, "n_pairs"), (dict(d=2.5), TypeError, "d"),
    (dict(prompt_std=-1.0), ValueError, "prompt_std"), (dict(response_std=float("nan")), ValueError, "response_std"),
])
def test_same_prompt_pairs_reject_bad_input(kwargs, error, match):
    args = dict(n_pairs=4, d=3, prompt_std=1.0, response_std=1.0) | kwargs
    with pytest.raises(error, match=match):
        theory.sample_prompt_response_pairs(**args)


# --- head-only Bradley-Terry training: a bias never moves, w·m does --------------------------------

def _preference_problem(heads=4, n=512, d=16, offset=5.0, seed=0):
    g = make_generator(seed)
    m = torch.full((d,), offset)
    h_a, h_b = torch.randn(n, d, generator=g) + m, torch.randn(n, d, generator=g) + m
    u = torch.randn(heads, d, generator=g)
    a_preferred = (h_a @ u.T - h_b @ u.T > 0).T  # (heads, n): labels from each head's true reward
    return h_a, h_b, a_preferred, torch.randn(heads, d, generator=g) * 0.1, m


def test_head_training_never_moves_the_bias_but_moves_w_dot_m():
    h_a, h_b, pref, w0, m = _preference_problem()
    w, b = theory.train_head_on_preferences(h_a, h_b, w0, pref, bias0=3.0, steps=100, lr=1e-2)
    assert torch.equal(b, torch.full((4,), 3.0))  # zero gradient, and Adam's step at zero gradient is 0
    drift = (w - w0) @ m
    assert (drift.abs() > 0.5).all(), drift  # |m| = 20: the learned direction is not orthogonal to m
    # Trained heads order the pairs they were trained on.
    acc = ((h_a @ w.T > h_b @ w.T) == pref.T).float().mean()
    assert acc > 0.9


def test_head_training_is_blind_to_a_shared_offset_and_batches_independent_heads():
    h_a, h_b, pref, w0, m = _preference_problem(offset=0.0)
    w_plain, _ = theory.train_head_on_preferences(h_a, h_b, w0, pref, steps=30)
    w_shift, _ = theory.train_head_on_preferences(h_a + 7.0, h_b + 7.0, w0, pref, steps=30)
    # Same trajectory: h_a − h_b is unchanged; only float32 rounding of h + 7 (~1e-6 relative) differs.
    assert torch.allclose(w_plain, w_shift, atol=1e-4)
    # Head 2 trained alone equals head 2 trained in the batch (Adam is elementwise).
    w_alone, _ = theory.train_head_on_preferences(h_a, h_b, w0[2:3], pref[2:3], steps=30)
    assert torch.allclose(w_alone[0], w_plain[2], atol=1e-6)
    # Default labels: a is always chosen; equals passing all-True labels.
    w_default, _ = theory.train_head_on_preferences(h_a, h_b, w0, steps=3)
    w_true, _ = theory.train_head_on_preferences(h_a, h_b, w0, torch.ones_like(pref), steps=3)
    assert torch.equal(w_default, w_true)


@pytest.mark.parametrize("call, error, match", [
    (lambda h_a, h_b, p, w0: theory.train_head_on_preferences(h_a, h_b, w0[0], p), ValueError, "w0"),
    (lambda h_a, h_b, p, w0: theory.train_head_on_preferences(h_a, h_b, w0.tolist(), p), TypeError, "w0"),
    (lambda h_a, h_b, p, w0: theory.train_head_on_preferences(h_a[:, :3], h_b[:, :3], w0, p), ValueError, "h_a"),
    (lambda h_a, h_b, p, w0: theory.train_head_on_preferences(h_a, h_b[:5], w0, p), ValueError, "same shape"),
    (lambda h_a, h_b, p, w0: theory.train_head_on_preferences(h_a, h_b, w0, p.float()), TypeError, "a_preferred"),
    (lambda h_a, h_b, p, w0: theory.train_head_on_preferences(h_a, h_b, w0, p[:, :3]), ValueError, "a_preferred"),
    (lambda h_a, h_b, p, w0: theory.train_head_on_preferences(h_a, h_b, w0, p, steps=0), ValueError, "steps"),
    (lambda h_a, h_b, p, w0: theory.train_head_on_preferences(h_a, h_b, w0, p, lr=0.0), ValueError, "lr"),
])
def test_head_training_rejects_bad_input(call, error, match):
    h_a, h_b, pref, w0, _ = _preference_problem(n=16)
    with pytest.raises(error, match=match):
        call(h_a, h_b, pref, w0)


def test_head_training_is_adam_as_torch_optim_computes_it():
    h_a, h_b, pref, w0, _ = _preference_problem(heads=2, n=64)
    w, b = theory.train_head_on_preferences(h_a, h_b, w0, pref, bias0=1.0, steps=20, lr=1e-2)
    wr = w0.clone().requires_grad_(True)
    br = torch.ones(2, requires_grad=True)
    opt = torch.optim.Adam([wr, br], lr=1e-2)
    for _ in range(20):
        r_a, r_b = h_a @ wr.T + br, h_b @ wr.T + br
        c, r = torch.where(pref.T, r_a, r_b), torch.where(pref.T, r_b, r_a)
        opt.zero_grad()
        F.softplus(r - c).mean(0).sum().backward()
        opt.step()
    # Same maths; float32 rounding of the two implementations differs (~1e-7 relative per step).
    assert torch.allclose(w, wr.detach(), atol=1e-5) and torch.equal(b, br.detach())


@pytest.mark.parametrize("decoupled", [False, True])
def test_adam_step_is_torch_optim_adam_and_adamw(decoupled):
    """The one Adam(W) step the engine and train_head_on_preferences share, against torch.optim.

    Three parameters trained on a fixed quadratic-plus-noise loss for 30 steps, one of them (a "bias")
    exempt from decay as a parameter group with weight_decay 0 exempts it. torch.optim rounds
    param + (−s·m)/d where adam_step rounds param − s·(m/d): a few float32 ulps per step, measured
    ≤ 1.2e-7 (one ulp at |p| ~ 1) on the native kernels and ATEN_CPU_CAPABILITY=default; 1e-6 leaves room.
    """
    g = make_generator(0)
    start = [torch.randn(3, 5, generator=g), torch.randn(3, 4, generator=g), torch.randn(3, 2, generator=g)]
    target = [torch.randn_like(p) for p in start]
    lr, wd = 3e-2, 0.5 if decoupled else 0.0
    ref = [p.clone().requires_grad_(True) for p in start]
    groups = [{"params": ref[:2], "weight_decay": wd}, {"params": ref[2:], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr) if decoupled else torch.optim.Adam(ref, lr=lr)
    # Ours: the three as columns of one flat (3, 11) stack, one learning rate per row as the engine has.
    flat = torch.cat(start, 1)
    m, v = torch.zeros_like(flat), torch.zeros_like(flat)
    rows_lr = torch.full((3, 1), lr, dtype=torch.float64)
    diff = 0.0
    for step in range(1, 31):
        loss = sum(((p - t) ** 2 * (1 + p.abs())).sum() for p, t in zip(ref, target))
        opt.zero_grad()
        loss.backward()
        grad = torch.cat([p.grad for p in ref], 1)
        opt.step()
        ours = flat.clone().requires_grad_(True)
        parts = ours.split([5, 4, 2], 1)
        (g_ours,) = torch.autograd.grad(sum(((p - t) ** 2 * (1 + p.abs())).sum() for p, t in zip(parts, target)),
                                        ours)
        if step == 1:
            assert torch.equal(g_ours, grad)  # same start, same gradient
        theory.adam_step(flat, g_ours, m, v, step, rows_lr, torch.full((3, 1), wd, dtype=torch.float64)
                         if decoupled else None, decay_columns=[slice(0, 9)])
        diff = max(diff, (flat - torch.cat([p.detach() for p in ref], 1)).abs().max().item())
    assert diff <= 1e-6
    # A zero gradient from zero moments moves nothing (the bias of lesson 02 stays put exactly).
    p0, z = torch.ones(4), torch.zeros(4)
    theory.adam_step(p0, z, z.clone(), z.clone(), 1, 0.1)
    assert torch.equal(p0, torch.ones(4))


def test_mean_initial_loss_interpolates_within_its_tolerance():
    check_s = np.geomspace(0.01, 500, 37)  # between the table's points, over the range lessons use
    direct = theory.expected_initial_bt_loss(check_s)
    interpolated = np.array([theory.mean_initial_bt_loss(np.array([x])) for x in check_s])
    assert np.max(np.abs(interpolated / direct - 1)) < theory.INITIAL_LOSS_RTOL
    norms = np.array([0.0, 1e-4, 2.0, 30.0])
    assert theory.mean_initial_bt_loss(norms) == pytest.approx(theory.expected_initial_bt_loss(norms).mean(),
                                                              rel=theory.INITIAL_LOSS_RTOL)
    for bad in (np.array([]), np.array([-1.0]), np.array([np.nan]), np.array([5e3])):
        with pytest.raises(ValueError):
            theory.mean_initial_bt_loss(bad)
