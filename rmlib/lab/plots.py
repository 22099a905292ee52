"""Plot helpers shared by the lessons: seed bands for training curves, per-group error bars for sweeps.

Both follow the engine's one rule for statistics over runs (:func:`rmlib.lab.sweep.over_runs`):
diverged runs (NaN) are left out, the std is the sample std.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from matplotlib.axes import Axes

from rmlib.lab.sweep import SweepResult, over_runs


def seed_band(
    ax: Axes,
    curves: torch.Tensor,
    label: str | None = None,
    color: str | None = None,
    x: torch.Tensor | None = None,
) -> None:
    """Mean over seeds (rows of ``curves``, shape (seeds, T)) as a line, min–max across seeds shaded.

    NaN entries (a diverged run after its divergence) are left out of the mean and the band; where
    every seed is NaN the line stops. ``x`` gives the step of each column (default 0, 1, …).
    """
    if not torch.is_tensor(curves) or curves.dim() != 2:
        raise ValueError("curves must be a 2-D tensor (seeds, steps)")
    c = curves.double()
    x = torch.arange(c.shape[1]) if x is None else x
    if len(x) != c.shape[1]:
        raise ValueError(f"x has {len(x)} points but curves have {c.shape[1]} columns")
    finite = ~torch.isnan(c)
    mean = over_runs(c)[0]  # NaN where no seed is left
    lo = torch.where(finite, c, float("inf")).min(0).values
    hi = torch.where(finite, c, float("-inf")).max(0).values
    line = ax.plot(x.numpy(), mean.numpy(), label=label, color=color, lw=1.5)[0]
    ok = finite.any(0)
    ax.fill_between(x.numpy(), torch.where(ok, lo, float("nan")).numpy(),
                    torch.where(ok, hi, float("nan")).numpy(), color=line.get_color(), alpha=0.2, lw=0)


def sweep_errorbars(
    ax: Axes,
    result: SweepResult,
    metric: str,
    groups: Sequence[object],
    field: str = "init",
    label: str | None = None,
    offset: float = 0.0,
    **where: object,
) -> None:
    """Mean ± std over seeds of ``metric`` for each value of config ``field`` in ``groups``.

    ``where`` filters the runs (as ``SweepResult.mask``); statistics as ``SweepResult.mean_std`` (diverged
    runs left out; a single run gets no bar). ``offset`` shifts the points sideways so several series
    can share the x axis.
    """
    stats = [result.mean_std(metric, **{field: g}, **where) for g in groups]
    means = [m for m, _ in stats]
    stds = [0.0 if math.isnan(s) else s for _, s in stats]
    xs = [i + offset for i in range(len(groups))]
    ax.errorbar(xs, means, yerr=stds, fmt="o", capsize=3, label=label)
    ax.set_xticks(range(len(groups)))


__all__ = ["seed_band", "sweep_errorbars"]
