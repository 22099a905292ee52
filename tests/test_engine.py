"""The batched sweep engine: equal to a plain nn.Module + torch.optim loop, divergence, determinism, errors."""

import math

import pytest
import torch

from rmlib.data import make_preference_data
from rmlib.lab.sweep.reference import _linear_schedule_with_warmup, run_sweep_loop
from rmlib.lab.sweep import (SweepConfig, head_weight, minibatch_indices, over_runs, run_sweep, sweep_grid,
                              training_steps)

STEPS = 40
ULP = 2.0**-23  # float32 spacing at 1: a relative change of one unit in the last place


@pytest.fixture(scope="module")
def data():
    return make_preference_data(n_train=512, n_test=256, n_val=256, seed=1)


@pytest.fixture(scope="module")
def healthy():
    # Every optimiser, frozen and joint, with the linear schedule and decoupled weight decay too.
    return (sweep_grid(["zero", "score_head", "large"], ["adam", "sgd"], {"adam": [1e-2], "sgd": [0.05]},
                       (False, True), (0,))
            + sweep_grid(["zero", "large"], ["adamw"], [1e-2], (False, True), (0,), weight_decay=0.1,
                         schedule="linear", warmup_ratio=0.1)
            # A shorter second-moment memory (lesson 05's control): its own group in the engine.
            + sweep_grid(["zero", "large"], ["adam"], [1e-2], (True,), (0,), adam_beta2=0.9))


def _per_run(x: torch.Tensor) -> torch.Tensor:
    return x.double().reshape(len(x), -1).nan_to_num()


def test_engine_equals_plain_loop_within_what_rounding_can_do(data, healthy):
    """Engine and loop must agree run by run as closely as training lets two roundings agree.

    The two do the same maths but round differently (batched vs per-run matmuls, and the kernel set:
    AVX-512, AVX2, default). Training amplifies any rounding difference, and by how much depends on
    the run: measured here, 40 steps, a one-ulp nudge of every starting weight moves the losses by
    ~1e-6, but the reward MEAN by up to 0.9 — the backbone's last bias gets an exactly-zero gradient
    in exact arithmetic (it shifts every reward equally), so Adam normalises pure rounding noise into
    lr-sized steps. So no single tolerance fits every quantity on every CPU. Instead the test measures,
    in the loop itself, how far three one-ulp nudges (×(1 ± 2⁻²³), ×(1 + 2·2⁻²³)) move each run's
    curves and metrics, and requires |engine − loop| ≤ 4 · that spread + floor, where floor =
    steps · eps32 · (1 + |value|) covers rounding that accumulates step by step in non-chaotic runs
    (a nudge at step 0 does not see it). Measured on AVX-512, AVX2 and default: |engine − loop| /
    spread ≤ 2.8 except one Adam backbone_change at 22 with a single nudge, 3.2 with the max of three.
    A wrong Adam bias correction breaks the loss curves by > 1e-2, far outside (checked once by hand).
    """
    kw = dict(steps=STEPS, batch_size=32, progress=False, eval_every=10, eval_pairs=256)
    fast = run_sweep(data, healthy, **kw)
    slow = run_sweep_loop(data, healthy, **kw)
    nudged = [run_sweep_loop(data, healthy, **kw, nudge=1 + k * ULP) for k in (1, -1, 2)]
    assert not fast.metrics["diverged"].any() and not slow.metrics["diverged"].any()
    assert torch.equal(fast.eval_steps, torch.tensor([0, 10, 20, 30, 40]))
    assert torch.equal(fast.metrics["best_step"], slow.metrics["best_step"])
    eps = torch.finfo(torch.float32).eps
    quantities = {f"curve {k}": (fast.curves[k], slow.curves[k], [n.curves[k] for n in nudged])
                  for k in ("loss", "reward_std", "misranked")}
    quantities.update({f"eval {k}": (fast.evals[k], v, [n.evals[k] for n in nudged]) for k, v in slow.evals.items()})
    quantities.update({k: (fast.metrics[k], slow.metrics[k], [n.metrics[k] for n in nudged])
                       for k in ("initial_loss", "train_loss", "test_loss", "test_acc", "reward_std", "reward_mean",
                                 "backbone_change", "cka", "best_test_loss", "best_reward_std")})
    for name, (a, b, others) in quantities.items():
        a, b = _per_run(a), _per_run(b)
        spread = torch.stack([(_per_run(o) - b).abs() for o in others]).amax(0)
        bound = 4 * spread + STEPS * eps * (1 + b.abs())
        excess = (a - b).abs() - bound
        assert (excess <= 0).all(), f"{name}: engine and loop differ beyond rounding by up to {excess.max():.2e}"
    # Before training has had time to amplify anything, the two are equal to a few ulps of the loss.
    assert torch.allclose(fast.curves["loss"][:, :3], slow.curves["loss"][:, :3], rtol=8 * eps, atol=0)


def test_linear_schedule_is_transformers_and_epochs_count_steps(data):
    c = SweepConfig(optimizer="adamw", schedule="linear", warmup_ratio=0.25)
    lam = _linear_schedule_with_warmup(math.ceil(0.25 * 10), 10)
    assert c.lr_factors(10).tolist() == pytest.approx([lam(t) for t in range(10)])
    assert c.lr_factors(10)[:4].tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])  # ceil(2.5) = 3 warm-up steps
    assert SweepConfig().lr_factors(5).tolist() == [1.0] * 5
    assert training_steps(512, 32, epochs=1) == 16 and training_steps(512, 32, epochs=2.5) == 40
    assert training_steps(512, 32) == 200 and training_steps(512, 32, steps=7) == 7
    res = run_sweep(data, [SweepConfig()], batch_size=32, epochs=0.5, progress=False)
    assert res.steps == 8 and res.curves["loss"].shape == (1, 8)
    with pytest.raises(ValueError, match="not both"):
        run_sweep(data, [SweepConfig()], steps=5, epochs=1, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        run_sweep(data, [SweepConfig()], epochs=0, progress=False)


def test_early_stopping_keeps_the_best_validation_step(data):
    cfgs = sweep_grid(["zero", 10.0], ["adam"], [3e-2], (True,), (0, 1))
    res = run_sweep(data, cfgs, steps=60, batch_size=32, progress=False, eval_every=6)
    best = res.eval_steps[res.evals["val_loss"].argmin(1)]
    assert torch.equal(res.metrics["best_step"], best)
    # The best weights are re-evaluated on the full test set: at the last step they are the final ones.
    last = res.metrics["best_step"] == res.steps
    assert torch.equal(res.metrics["best_test_loss"][last], res.metrics["test_loss"][last])
    assert (res.metrics["best_step"] < res.steps).any(), "lr 3e-2 on 512 pairs overfits within 60 steps"
    # Validation picks the step; the test split is only reported: its own minimum can sit elsewhere.
    assert "best_test_loss" in res.metrics and res.evals["test_loss"].shape == res.evals["val_loss"].shape


def test_statistics_over_runs_leave_out_diverged_runs_and_count_them():
    v = torch.tensor([[1.0, 2.0], [3.0, float("nan")], [float("nan"), float("nan")]])
    mean, std, n = over_runs(v)
    assert mean.tolist() == [2.0, 2.0] and n.tolist() == [2, 1]
    assert std[0].item() == pytest.approx(math.sqrt(2)) and math.isnan(std[1].item())
    mean, std, n = over_runs(torch.tensor([float("nan")]))
    assert math.isnan(mean.item()) and n.item() == 0


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
    # Runs are independent: adding a diverging run changes nobody else's numbers. Same kernels, same
    # order of operations per run, but a different batch size R in the bmm can change the summation
    # blocking: allow a few float32 ulps per step (40 steps · eps), not more.
    eps = torch.finfo(torch.float32).eps
    for name in ("test_loss", "cka", "train_loss", "backbone_change"):
        assert torch.allclose(with_bad.metrics[name][:-1], alone.metrics[name], rtol=STEPS * eps, atol=STEPS * eps)
    # The plain loop flags it at the same step, and the statistics rule leaves it out.
    loop = run_sweep_loop(data, [bad], steps=STEPS, batch_size=32, progress=False)
    assert loop.metrics["diverged"][0] and loop.metrics["diverge_step"][0].item() == step
    assert math.isnan(with_bad.mean_std("initial_loss", init=10.0)[0])
    row = with_bad.summary(["test_loss"], by=("init", "optimizer"))[-1]
    assert row["n"] == 1 and row["diverged"] == 1 and math.isnan(row["test_loss_mean"])


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
    # A zero head ties every pair at step 0: the misranked curve counts a tie as half, exactly 0.5.
    assert torch.equal(res.curves["misranked"][zero, 0], torch.full((2,), 0.5))
    # A nonzero head's misranked share is a multiple of 1/batch_size: the minibatch's pairs, counted.
    large = res.curves["misranked"][~zero]
    assert torch.equal(large * 32, (large * 32).round()) and ((large >= 0) & (large <= 1)).all()


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
        ({"optimizer": "rmsprop"}, ValueError, "optimizer must be one of"),
        ({"init": "kaiming"}, KeyError, "unknown initialiser"),
        ({"init": -1.0}, ValueError, "init std must be ≥ 0"),
        ({"init": None}, TypeError, "init"),
        ({"lr": 0.0}, ValueError, "lr must be positive"),
        ({"lr": -1e-3}, ValueError, "lr"),
        ({"lr": float("nan")}, ValueError, "lr"),
        ({"train_backbone": 1}, TypeError, "train_backbone"),
        ({"seed": -1}, ValueError, "seed"),
        ({"reward_offset": float("inf")}, ValueError, "reward_offset"),
        ({"weight_decay": 0.1}, ValueError, "use optimizer='adamw'"),
        ({"optimizer": "adamw", "weight_decay": -0.1}, ValueError, "weight_decay"),
        ({"schedule": "cosine"}, ValueError, "schedule must be one of"),
        ({"warmup_ratio": 0.1}, ValueError, "needs schedule='linear'"),
        ({"schedule": "linear", "warmup_ratio": 1.0}, ValueError, "warmup_ratio"),
        ({"weight_decay": "0.1"}, TypeError, "weight_decay"),
        ({"adam_beta2": 1.0}, ValueError, "adam_beta2 must be in"),
        ({"optimizer": "sgd", "adam_beta2": 0.9}, ValueError, "SGD has none"),
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
    with pytest.raises(ValueError, match="eval_every"):
        run_sweep(data, ok, steps=1, eval_every=0)
    with pytest.raises(ValueError, match="unknown config field"):
        sweep_grid(["zero"], colour="red")


def test_thread_setting_is_restored_and_does_not_change_results(data):
    cfgs = sweep_grid(["score_head"], ["sgd"], [0.05], (True,), (0,))
    before = torch.get_num_threads()
    one = run_sweep(data, cfgs, steps=10, batch_size=32, progress=False)
    assert torch.get_num_threads() == before
    default = run_sweep(data, cfgs, steps=10, batch_size=32, progress=False, num_threads=None)
    assert torch.allclose(one.curves["loss"], default.curves["loss"], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no learning rates"):
        sweep_grid(["zero"], ["adam", "sgd"], {"adam": [1e-3]})


def test_run_stack_drops_runs_from_every_per_run_tensor_at_once():
    from rmlib.lab.sweep.train import RunStack

    stack = RunStack(flat=torch.arange(12.0).view(4, 3), lr=torch.tensor([1.0, 2.0, 3.0, 4.0]), skip=None)
    assert len(stack) == 4 and "skip" not in stack and "lr" in stack
    gone, left = stack.drop(torch.tensor([False, True, False, False]))
    assert gone.tolist() == [1] and left["lr"].tolist() == [2.0] and left["flat"].tolist() == [[3.0, 4.0, 5.0]]
    # Positions stay those of the original stack, so results land in the right rows.
    gone, left = stack.drop(torch.tensor([False, False, True]))
    assert gone.tolist() == [3] and stack.positions.tolist() == [0, 2]
    assert stack["lr"].tolist() == [1.0, 3.0] and stack["flat"][:, 0].tolist() == [0.0, 6.0]
    with pytest.raises(ValueError, match="first dimension"):
        RunStack(flat=torch.zeros(3, 2), lr=torch.zeros(2))


def test_head_initialiser_is_the_catalogue_entry_or_a_normal_of_the_given_std():
    from rmlib.init import INITIALISERS

    assert SweepConfig(init="pytorch_default").initialiser is INITIALISERS["pytorch_default"]
    c = SweepConfig(init=0.5)
    assert c.initialiser.std(64) == 0.5 and c.init_label == "std 0.5" and c.head_std(8) == 0.5
    # A head drawn through the initialiser equals the catalogue's own apply on an nn.Linear(d, 1).
    for init in ("pytorch_default", "score_head"):
        layer = torch.nn.Linear(16, 1, bias=False)
        INITIALISERS[init].apply(layer, generator=__import__("rmlib").make_generator(2 * 3))
        assert torch.equal(head_weight(SweepConfig(init=init, seed=3), 16), layer.weight.detach().reshape(16))


@pytest.mark.parametrize("train_backbone", [True, False])
def test_hand_written_step_is_autograd_to_the_bit(data, train_backbone):
    """The engine's hand-written forward and backward (FlatLayout via _HandStep) give the same loss,
    rewards and gradient as autograd through ``forward_with``, bit for bit, on trained-looking weights."""
    from rmlib.lab.sweep.evaluate import answers, pretrained_features
    from rmlib.lab.sweep.train import FlatLayout

    layout = FlatLayout(data, train_backbone)
    assert layout.hand
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(5, data.hidden_size, generator=gen)
    flat = layout.flat(w)
    flat += 0.01 * torch.randn(flat.shape, generator=gen)  # runs that differ in every parameter
    x = answers(data.train)
    source = x if train_backbone else pretrained_features(data, x)
    batch = source[torch.randint(len(source), (5, 64), generator=gen)]
    offset = torch.tensor([0.0, 1.0, -2.0, 0.5, 0.0])
    hand = layout.loss_and_grad(flat, batch, offset, 32)
    auto = layout.autograd_loss_and_grad(flat, batch, offset, 32)
    for a, b in zip(hand, auto):
        assert torch.equal(a, b)


def test_a_backbone_the_hand_written_step_does_not_know_goes_through_autograd(data):
    from dataclasses import replace

    from rmlib.lab.sweep.train import FlatLayout

    class Other(type(data.backbone)):  # same maths, another class: the engine must not assume its layers
        pass

    other = Other(data.backbone.fc1.in_features, data.hidden_size)
    other.load_state_dict(data.backbone.state_dict())
    odata = replace(data, backbone=other)
    assert FlatLayout(data, True).hand and not FlatLayout(odata, True).hand
    cfgs = sweep_grid(["score_head"], ["adam"], [1e-2], (True,), (0,))
    a = run_sweep(data, cfgs, steps=5, batch_size=32, progress=False, eval_every=5, eval_pairs=64)
    b = run_sweep(odata, cfgs, steps=5, batch_size=32, progress=False, eval_every=5, eval_pairs=64)
    assert torch.equal(a.curves["loss"], b.curves["loss"]) and torch.equal(a.evals["val_loss"], b.evals["val_loss"])
    for k in ("test_loss", "cka"):
        assert torch.equal(a.metrics[k], b.metrics[k])
