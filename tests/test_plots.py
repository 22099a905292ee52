"""rmlib.lab.plots: seed bands skip diverged (NaN) steps; error bars show per-group mean ± std."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from rmlib import SweepConfig, SweepResult  # noqa: E402
from rmlib.lab.plots import seed_band, sweep_errorbars  # noqa: E402


def test_seed_band_mean_ignores_nan_and_stops_when_all_seeds_are_gone():
    curves = torch.tensor([[1.0, 2.0, float("nan"), float("nan")], [3.0, 4.0, 5.0, float("nan")]])
    fig, ax = plt.subplots()
    seed_band(ax, curves, label="x")
    y = ax.lines[0].get_ydata()
    np.testing.assert_allclose(y[:3], [2.0, 3.0, 5.0])
    assert np.isnan(y[3])
    plt.close(fig)
    with pytest.raises(ValueError, match="2-D"):
        seed_band(ax, torch.zeros(5))


def test_sweep_errorbars_plots_mean_and_std_per_group():
    configs = tuple(SweepConfig(init=i, seed=s) for i in ("zero", "large") for s in (0, 1))
    metrics = {"test_loss": torch.tensor([1.0, 3.0, 10.0, float("nan")]),
               "diverged": torch.tensor([False, False, False, True])}
    res = SweepResult(configs, metrics, {}, true_reward_std=2.0)
    fig, ax = plt.subplots()
    sweep_errorbars(ax, res, "test_loss", ["zero", "large"])
    data_line = ax.containers[0][0]  # ErrorbarContainer: (data line, caps, bars)
    np.testing.assert_allclose(np.asarray(data_line.get_ydata(), dtype=float), [2.0, 10.0])  # diverged run left out
    plt.close(fig)


def test_seed_band_takes_evaluation_steps_as_x():
    fig, ax = plt.subplots()
    seed_band(ax, torch.tensor([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]]), x=torch.tensor([0, 10, 20]))
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [0, 10, 20])
    with pytest.raises(ValueError, match="columns"):
        seed_band(ax, torch.zeros(2, 3), x=torch.tensor([0, 10]))
    plt.close(fig)


def test_sweep_errorbars_and_mean_std_agree_on_diverged_runs():
    # A diverged run is left out even of metrics known before training (one rule for every statistic).
    configs = tuple(SweepConfig(init="zero", seed=s) for s in (0, 1, 2))
    metrics = {"initial_loss": torch.tensor([1.0, 3.0, 100.0]), "diverged": torch.tensor([False, False, True])}
    res = SweepResult(configs, metrics, {}, true_reward_std=2.0)
    fig, ax = plt.subplots()
    sweep_errorbars(ax, res, "initial_loss", ["zero"])
    assert float(ax.containers[0][0].get_ydata()[0]) == res.mean_std("initial_loss", init="zero")[0] == 2.0
    plt.close(fig)
