"""The interactive explorers, driven without a browser: set a control's value, check the numbers."""

import base64
import math

import numpy as np
import pytest

from rmlib.lab import explorers

# Statistical checks use the explorer's fixed seed and its own standard error (a crossed heads ×
# inputs estimate, slightly conservative); 4 standard errors leave a false-failure rate < 1e-4.
Z = 4.0


@pytest.fixture(scope="module")
def variance():
    return explorers.variance_explorer()


def test_variance_explorer_default_state_matches_theory(variance):
    r = variance.result
    assert (r.initialiser, r.d) == ("score_head", 256)
    assert r.sigma_w == pytest.approx(1 / math.sqrt(257))
    assert r.predicted == pytest.approx(256 / 257)
    assert abs(r.measured - r.predicted) < Z * r.stderr, (r.measured, r.stderr)
    assert variance.controls["sigma_w"].disabled, "σ_w follows the initialiser unless 'custom' is chosen"
    assert variance.controls["sigma_w"].value == pytest.approx(r.sigma_w)


def test_offset_slider_separates_the_exact_formula_from_the_textbook(variance):
    png, readout = variance.png, variance.readout.value
    variance.controls["offset_norm"].value = 50.0
    r = variance.result
    assert r.offset_norm == 50.0
    assert r.predicted == pytest.approx((256 + 2500) / 257)
    assert abs(r.measured - r.predicted) < Z * r.stderr, (r.measured, r.stderr, r.predicted)
    assert (r.measured - r.textbook) > 10 * r.stderr, "d σ_w² σ_h² ignores the offset and must miss"
    assert variance.png != png and variance.readout.value != readout, "the figure and readout must follow"
    shown = variance.figure.outputs[0]["data"]["image/png"]
    assert base64.b64decode(shown) == variance.png
    variance.controls["offset_norm"].value = 0.0


@pytest.mark.parametrize("name, d", [("pytorch_default", 4096), ("xavier_normal", 64), ("large", 16)])
def test_initialiser_dropdown_uses_the_catalogue_law(variance, name, d):
    variance.controls["initialiser"].value = name
    variance.controls["d"].value = d
    r = variance.result
    assert (r.initialiser, r.d) == (name, d)
    assert r.sigma_w == pytest.approx(explorers.get_initialiser(name).std(d))
    assert variance.controls["sigma_w"].value == pytest.approx(r.sigma_w), "the locked slider shows σ_w"
    assert abs(r.measured - r.predicted) < Z * r.stderr, (name, d, r.measured, r.stderr, r.predicted)


def test_zero_head_gives_exactly_zero_rewards(variance):
    variance.controls["initialiser"].value = "zero"
    r = variance.result
    assert r.sigma_w == 0 and r.rewards.abs().max().item() == 0 and r.measured == 0 and r.z_score == 0


def test_custom_sigma_w_unlocks_the_slider(variance):
    variance.controls["initialiser"].value = "custom"
    assert not variance.controls["sigma_w"].disabled
    variance.controls["d"].value = 1024
    variance.controls["sigma_w"].value = 0.5
    variance.controls["sigma_h"].value = 0.3
    r = variance.result
    assert (r.initialiser, r.sigma_w, r.sigma_h) == ("custom", 0.5, 0.3)
    assert r.predicted == pytest.approx(1024 * 0.25 * 0.09)
    assert abs(r.measured - r.predicted) < Z * r.stderr, (r.measured, r.stderr, r.predicted)


def test_static_stand_in_is_the_current_figure(variance):
    bundle = variance._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle, "live frontends get the widget"
    assert base64.b64decode(bundle["image/png"]) == variance.png, "static pages get the current figure"
    assert variance.png.startswith(b"\x89PNG")


def test_display_carries_the_png_under_ipywidgets_7_and_8(variance, monkeypatch):
    """What IPython's display() sends: ipywidgets 7 goes through _ipython_display_, 8 through the bundle."""
    import IPython.display
    from IPython.core.formatters import format_display_data

    if hasattr(variance, "_ipython_display_"):  # ipywidgets 7 (Colab's 7.7.1)
        shown = []
        monkeypatch.setattr(IPython.display, "display", lambda data, raw=False: shown.append((data, raw)))
        monkeypatch.setattr(type(variance), "_handle_displayed", lambda self, **kwargs: None)
        variance._ipython_display_()
        ((data, raw),) = shown
        assert raw
    else:
        data, _ = format_display_data(variance)
    assert "application/vnd.jupyter.widget-view+json" in data
    assert base64.b64decode(data["image/png"]) == variance.png


def test_same_controls_give_the_same_numbers():
    a = explorers.variance_explorer_result(d=64, sigma_h=2.0, offset_norm=5.0, initialiser="hf_default")
    b = explorers.variance_explorer_result(d=64, sigma_h=2.0, offset_norm=5.0, initialiser="hf_default")
    assert a.measured == b.measured and bool((a.rewards == b.rewards).all())


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"d": 0}, ValueError, "d must be an int ≥ 1"),
        ({"sigma_h": -1.0}, ValueError, "sigma_h must be ≥ 0"),
        ({"sigma_h": float("nan")}, ValueError, "sigma_h must be finite"),
        ({"offset_norm": "big"}, TypeError, "offset_norm must be a real number"),
        ({"initialiser": "custom"}, ValueError, "needs sigma_w"),
        ({"initialiser": "custom", "sigma_w": -0.1}, ValueError, "sigma_w must be ≥ 0"),
        ({"initialiser": "kaiming"}, KeyError, "unknown initialiser"),
    ],
)
def test_variance_explorer_rejects_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        explorers.variance_explorer_result(**kwargs)


# ---------------------------------------------------------------------------------------------------
# Training explorer (engine runs: d = 64 synthetic preferences, 200 steps by default, seed 0; ~0.5 s each)
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def training():
    return explorers.training_explorer()


def test_training_explorer_default_is_the_reference_run(training):
    r = training.result
    assert (r.config.init, r.config.optimizer, r.config.lr) == ("score_head", "adam", 1e-3)
    assert np.array_equal(r.loss, r.reference_loss), "same config and seed must give the same curve"
    assert r.head_std == pytest.approx(1 / math.sqrt(65))
    assert r.metrics["train_loss"] < math.log(2) < r.metrics["initial_loss"], r.metrics
    assert r.diverge_step == -1 and len(r.loss) == 200 and r.epochs == 6.25
    # Held-out loss is evaluated along the way (every 8 steps, 26 times) and early stopping reported.
    assert len(r.eval_steps) == len(r.val_loss) == 26 and r.eval_steps[-1] == 200
    assert np.array_equal(r.val_loss, r.reference_val_loss)
    assert r.metrics["best_step"] in r.eval_steps and r.val_loss.min() == r.val_loss[list(r.eval_steps).index(r.metrics["best_step"])]


def test_zero_head_starts_at_chance(training):
    training.controls["init"].value = 0.0
    r = training.result
    assert r.head_std == 0 and r.metrics["initial_loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert r.loss[0] == pytest.approx(math.log(2), abs=1e-6)


def test_large_head_under_adam_keeps_a_large_reward_scale(training):
    png = training.png
    training.controls["optimizer"].value = "adam"
    training.controls["lr"].value = 1e-3
    training.controls["init"].value = 10.0
    r = training.result
    assert training.png != png, "the figure must follow the controls"
    assert r.diverge_step == -1
    # Lesson 05, section 5: Adam's scale-free steps leave a std-10 head's rewards far above the true
    # scale after 200 steps (16 ± 4 vs 2 over 5 seeds); the reference run ends near the true scale.
    assert r.metrics["reward_std"] > 3 * r.true_reward_std, r.metrics
    assert r.reference_reward_std[-20:].mean() < 1.5 * r.true_reward_std
    assert r.metrics["initial_loss"] > 10 * r.reference_loss[0]


def test_large_head_under_sgd_diverges(training):
    training.controls["init"].value = 10.0
    training.controls["optimizer"].value = "sgd"
    training.controls["lr"].value = 0.1
    r = training.result
    assert r.config.optimizer == "sgd" and r.config.lr == 0.1
    assert 0 <= r.diverge_step < 20, "lesson 05, section 5: diverges at step 2-3 in every seed"
    assert math.isnan(r.metrics["test_acc"]) and f"at step {r.diverge_step}<" in training.readout.value
    training.controls["init"].value = "score_head"
    assert training.result.diverge_step == -1, "the same SGD step size is fine with 1/sqrt(d+1)"


def test_long_training_overfits_and_weight_decay_holds_the_scale(training):
    training.controls["init"].value = "score_head"
    training.controls["optimizer"].value = "adamw"
    training.controls["lr"].value = 1e-2
    training.controls["epochs"].value = 30.0
    assert not training.controls["weight_decay"].disabled, "weight decay is live with AdamW"
    long = training.result
    assert len(long.loss) == 960 and long.eval_steps[-1] == 960
    # Lesson 05, section 3: at lr 1e-2 the held-out loss turns up within a few epochs and the reward
    # scale ends several times the true one; the explorer must show it.
    assert long.metrics["best_step"] < 200 and long.val_loss[-1] > 2 * long.val_loss.min()
    assert long.metrics["reward_std"] > 3 * long.true_reward_std
    training.controls["weight_decay"].value = 1.0
    decayed = training.result
    assert decayed.config.weight_decay == 1.0
    assert decayed.metrics["reward_std"] < 1.6 * decayed.true_reward_std  # lesson 05, section 4
    training.controls["optimizer"].value = "adam"
    assert training.controls["weight_decay"].disabled and training.result.config.weight_decay == 0.0
    training.controls["epochs"].value = 6.25
    training.controls["weight_decay"].value = 0.0


def test_training_runs_are_cached(training):
    training.controls["init"].value = 1.0
    first = training.result
    training.controls["init"].value = 3.0
    training.controls["init"].value = 1.0
    assert training.result is first


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"optimizer": "rmsprop"}, ValueError, "optimizer must be one of"),
        ({"lr": -1.0}, ValueError, "lr must be positive"),
        ({"init": "kaiming"}, KeyError, "unknown initialiser"),
        ({"init": -1.0}, ValueError, "init std must be ≥ 0"),
        ({"weight_decay": 0.1}, ValueError, "use optimizer='adamw'"),
        ({"epochs": 0}, ValueError, "epochs"),
        ({"steps": 10, "epochs": 1.0}, ValueError, "not both"),
    ],
)
def test_training_explorer_rejects_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        explorers.training_explorer_result(**kwargs)
