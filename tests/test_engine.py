"""The batched sweep engine: equal to a plain nn.Module + torch.optim loop, divergence, determinism, errors."""

import math

import pytest
import torch

from rmlib.data import make_preference_data
from rmlib.lab.engine import SweepConfig, head_weight, minibatch_indices, run_sweep, run_sweep_loop, sweep_grid

STEPS = 40


@pytest.fixture(scope="module")
def data():
    return make_preference_data(n_train=512, n_test=256, seed=1)


@pytest.fixture(scope="module")
def healthy():
    # Configurations whose training is not chaotic: float rounding differences stay at rounding level.
    return sweep_grid(["zero", "score_head", "large"], ["adam", "sgd"], {"adam": [1e-2], "sgd": [0.05]},
                      (False, True), (0,))


def test_engine_equals_plain_loop(data, healthy):
    fast = run_sweep(data, healthy, steps=STEPS, batch_size=32, progress=False)
    slow = run_sweep_loop(data, healthy, steps=STEPS, batch_size=32, progress=False)
    assert not fast.metrics["diverged"].any() and not slow.metrics["diverged"].any()
    # Batched and per-run matmuls round differently (float32 eps ≈ 1.2e-7); after 40 steps the
    # differences stay below 1e-4 relative, far below any effect the course measures (≥ 1e-2).
    for name in ("loss", "reward_std"):
        assert torch.allclose(fast.curves[name], slow.curves[name], rtol=1e-4, atol=1e-5), name
    for name in ("train_loss", "test_loss", "test_acc", "reward_std", "cka", "initial_loss"):
        assert torch.allclose(fast.metrics[name], slow.metrics[name], rtol=1e-4, atol=1e-5), name
    # ‖θ − θ₀‖ subtracts nearly equal O(1) weights, so it inherits their absolute rounding (~1e-6 each).
    assert torch.allclose(fast.metrics["backbone_change"], slow.metrics["backbone_change"], rtol=0, atol=1e-4)


def test_head_and_batches_depend_only_on_the_run(data):
    c = SweepConfig(init="score_head", seed=4)
    w = head_weight(c, 64)
    assert torch.equal(w, head_weight(c, 64))
    assert w.std().item() == pytest.approx(1 / math.sqrt(65), rel=0.5)  # 64 draws: loose on purpose
    assert torch.equal(head_weight(SweepConfig(init="zero"), 64), torch.zeros(64))
    idx = minibatch_indices(4, steps=20, batch_size=32, n=128)
    assert idx.shape == (20, 32)
    # Each epoch is a permutation: the first 4 batches cover every pair exactly once.
    assert torch.equal(idx[:4].flatten().sort().values, torch.arange(128))


def test_divergence_is_recorded_and_other_runs_are_untouched(data, healthy):
    bad = SweepConfig(init=10.0, optimizer="sgd", lr=0.1, train_backbone=True, seed=0)
    with_bad = run_sweep(data, healthy + [bad], steps=STEPS, batch_size=32, progress=False)
    alone = run_sweep(data, healthy, steps=STEPS, batch_size=32, progress=False)
    div = with_bad.metrics["diverged"]
    assert div[-1] and not div[:-1].any()
    step = with_bad.metrics["diverge_step"][-1].item()
    assert 0 <= step < 10
    assert math.isnan(with_bad.metrics["test_loss"][-1].item())
    assert torch.isnan(with_bad.curves["loss"][-1, step + 1:]).all()
    assert torch.isfinite(with_bad.curves["loss"][-1, : step + 1]).all()
    # Runs are independent: adding a diverging run changes nobody else's numbers.
    for name in ("test_loss", "cka", "backbone_change"):
        assert torch.allclose(with_bad.metrics[name][:-1], alone.metrics[name], rtol=1e-5, atol=1e-6)
    # The plain loop flags it at the same step.
    loop = run_sweep_loop(data, [bad], steps=STEPS, batch_size=32, progress=False)
    assert loop.metrics["diverged"][0] and loop.metrics["diverge_step"][0].item() == step


def test_nan_divergence_without_blowup_threshold(data):
    bad = SweepConfig(init=10.0, optimizer="sgd", lr=0.1, train_backbone=True, seed=0)
    res = run_sweep(data, [bad], steps=STEPS, batch_size=32, progress=False, blowup=float("inf"))
    assert res.metrics["diverged"][0]  # only non-finite values count now, and they still come


def test_frozen_runs_keep_the_backbone_and_zero_head_sends_no_gradient(data):
    res = run_sweep(data, sweep_grid(["zero", "large"], seeds=(0,)), steps=10, batch_size=32, progress=False)
    frozen = res.mask(train_backbone=False)
    assert torch.equal(res.metrics["backbone_change"][frozen], torch.zeros(2))
    assert torch.equal(res.metrics["cka"][frozen], torch.ones(2))
    zero = res.mask(init="zero")
    assert torch.equal(res.metrics["grad_norm0"][zero], torch.zeros(2))
    assert (res.metrics["grad_norm0"][~zero] > 0).all()
    assert torch.allclose(res.metrics["initial_loss"][zero], torch.full((2,), math.log(2)))


def test_step0_backbone_gradient_is_proportional_to_head_norm_for_small_heads(data):
    # Same seed ⇒ same direction z, w = std·z. For small std, σ(−Δ) ≈ 1/2 for every pair, so the
    # backbone gradient −σ(−Δ)·w·∂h/∂θ scales linearly with std (corrections are O(std)).
    res = run_sweep(data, [SweepConfig(init=s, seed=2) for s in (1e-4, 1e-3)], steps=1, batch_size=32,
                    progress=False)
    ratio = (res.metrics["grad_norm0"] / res.metrics["w0_norm"]).tolist()
    assert ratio[0] == pytest.approx(ratio[1], rel=1e-2)


def test_reward_offset_changes_training_only_by_rounding(data):
    cfgs = [SweepConfig(init="score_head", optimizer="sgd", lr=0.05, reward_offset=o) for o in (0.0, 3.0)]
    res = run_sweep(data, cfgs, steps=STEPS, batch_size=32, progress=False)
    assert torch.allclose(res.curves["loss"][0], res.curves["loss"][1], rtol=0, atol=1e-5)


def test_same_call_same_numbers(data):
    cfgs = sweep_grid(["hf_default"], ["sgd"], [0.05], (True,), (0, 1))
    a = run_sweep(data, cfgs, steps=10, batch_size=32, progress=False)
    b = run_sweep(data, cfgs, steps=10, batch_size=32, progress=False)
    assert torch.equal(a.curves["loss"], b.curves["loss"]) and torch.equal(a.metrics["cka"], b.metrics["cka"])
    assert not torch.equal(a.curves["loss"][0], a.curves["loss"][1])  # seeds differ


def test_result_helpers(data):
    res = run_sweep(data, sweep_grid(["zero", "score_head"], seeds=(0, 1)), steps=5, batch_size=32, progress=False)
    assert res.mask(init="zero").sum().item() == 4
    assert res.mask(init=["zero", "score_head"], train_backbone=True).sum().item() == 4
    rows = res.rows()
    assert len(rows) == 8 and rows[0]["init"] == "zero" and isinstance(rows[0]["test_loss"], float)
    summary = res.summary(["test_loss"], by=("init", "train_backbone"))
    assert len(summary) == 4 and all(r["n"] == 2 and r["diverged"] == 0 for r in summary)
    m, sd = res.mean_std("test_loss", init="zero", train_backbone=True)
    v = res.metrics["test_loss"][res.mask(init="zero", train_backbone=True)].double()
    assert m == pytest.approx(v.mean().item()) and sd == pytest.approx(v.std().item())
    with pytest.raises(ValueError, match="unknown config field"):
        res.mask(colour="red")
    with pytest.raises(KeyError, match="unknown metric"):
        res.mean_std("nope")
    with pytest.raises(KeyError, match="unknown metric"):
        res.summary(["nope"])


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"optimizer": "rmsprop"}, ValueError, "unknown optimizer"),
        ({"init": "kaiming"}, KeyError, "unknown initialiser"),
        ({"init": -1.0}, ValueError, "non-negative"),
        ({"init": None}, TypeError, "init"),
        ({"lr": 0.0}, ValueError, "lr must be finite and positive"),
        ({"lr": -1e-3}, ValueError, "lr"),
        ({"lr": float("nan")}, ValueError, "lr"),
        ({"train_backbone": 1}, TypeError, "train_backbone"),
        ({"seed": -1}, ValueError, "seed"),
        ({"reward_offset": float("inf")}, ValueError, "reward_offset"),
    ],
)
def test_bad_config_gets_a_clear_error(kwargs, err, match):
    with pytest.raises(err, match=match):
        SweepConfig(**kwargs)


def test_bad_run_arguments(data):
    ok = [SweepConfig()]
    with pytest.raises(ValueError, match="empty"):
        run_sweep(data, [])
    with pytest.raises(TypeError, match="SweepConfig"):
        run_sweep(data, [{"lr": 1e-3}])
    with pytest.raises(TypeError, match="PreferenceData"):
        run_sweep("data", ok)
    with pytest.raises(ValueError, match="batch_size"):
        run_sweep(data, ok, batch_size=10_000)
    with pytest.raises(ValueError, match="steps"):
        run_sweep(data, ok, steps=0)
    with pytest.raises(ValueError, match="blowup"):
        run_sweep(data, ok, blowup=0.5)
    with pytest.raises(ValueError, match="num_threads"):
        run_sweep(data, ok, steps=1, num_threads=0)


def test_thread_setting_is_restored_and_does_not_change_results(data):
    cfgs = sweep_grid(["score_head"], ["sgd"], [0.05], (True,), (0,))
    before = torch.get_num_threads()
    one = run_sweep(data, cfgs, steps=10, batch_size=32, progress=False)
    assert torch.get_num_threads() == before
    default = run_sweep(data, cfgs, steps=10, batch_size=32, progress=False, num_threads=None)
    assert torch.allclose(one.curves["loss"], default.curves["loss"], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no learning rates"):
        sweep_grid(["zero"], ["adam", "sgd"], {"adam": [1e-3]})
