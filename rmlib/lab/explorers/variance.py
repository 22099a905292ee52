"""The variance explorer (lesson 02): d, σ_w (or a catalogue initialiser), σ_h and a shared offset ‖m‖ →
histogram of initial rewards r = w·h, measured variance against σ_w²(dσ_h² + ‖m‖²) and against d σ_w² σ_h²."""

from __future__ import annotations

import math
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from rmlib.init import INITIALISERS, Initialiser, get_initialiser
from rmlib.lab.explorers.widget import Explorer
from rmlib.seeding import make_generator
from rmlib.theory import (
    crossed_mean_with_stderr,
    isotropic_reward_variance,
    predicted_reward_variance,
    sample_hidden_states,
)
from rmlib.utils import validation

CUSTOM = "custom"  # initialiser choice meaning "use the σ_w slider"
HIDDEN_SIZES = (16, 64, 256, 1024, 4096)


@dataclass(frozen=True)
class VarianceResult:
    """Initial rewards for one setting of the variance explorer, with measurement and predictions."""

    d: int
    sigma_w: float
    sigma_h: float
    offset_norm: float
    initialiser: str
    rewards: torch.Tensor  # (heads, inputs)
    measured: float
    stderr: float
    predicted: float  # σ_w² (d σ_h² + ‖m‖²) = σ_w² E‖h‖²
    textbook: float  # d σ_w² σ_h², blind to the offset

    @property
    def z_score(self) -> float:
        """(measured − predicted) / stderr; 0 when every reward is exactly 0 (a zero head)."""
        return 0.0 if self.stderr == 0 else (self.measured - self.predicted) / self.stderr


def variance_explorer_result(
    d: int = 256,
    sigma_h: float = 1.0,
    offset_norm: float = 0.0,
    initialiser: str = "score_head",
    sigma_w: float | None = None,
    n_heads: int = 512,
    n_inputs: int = 512,
    seed: int = 0,
) -> VarianceResult:
    """Initial rewards r = w·h of ``n_heads`` fresh heads on ``n_inputs`` hidden states (every pair).

    w follows ``initialiser`` from :data:`rmlib.INITIALISERS` (its own law: normal, or uniform for
    the PyTorch default) or, with ``initialiser="custom"``, N(0, sigma_w²). h = m + σ_h z with the
    same offset m (‖m‖ = ``offset_norm``, along the all-ones direction) for every input. Var(r) over
    heads and inputs is E[r²] (w has mean 0); scoring every input with every head is one matmul, fast
    at d = 4096, and :func:`rmlib.theory.crossed_mean_with_stderr` gives its honest standard error.
    """
    d = validation.integer("d", d)
    n_heads, n_inputs = validation.integer("n_heads", n_heads), validation.integer("n_inputs", n_inputs)
    sigma_h, offset_norm = validation.real("sigma_h", sigma_h, minimum=0.0), validation.real("offset_norm", offset_norm, minimum=0.0)
    if initialiser == CUSTOM:
        if sigma_w is None:
            raise ValueError("initialiser='custom' needs sigma_w")
        std = validation.real("sigma_w", sigma_w, minimum=0.0)
        init = Initialiser(CUSTOM, f"custom σ_w = {std:g}", "normal", lambda _d: std, "explorer slider")
    else:
        init = get_initialiser(initialiser)
        std = init.std(d)
    gen = make_generator(seed)
    offset = torch.full((d,), offset_norm / math.sqrt(d))
    w = init.sample(n_heads, d, generator=gen)
    h = sample_hidden_states(n_inputs, d, sigma_h, offset, generator=gen)
    rewards = w @ h.T  # (heads, inputs)
    measured, stderr = crossed_mean_with_stderr(rewards.pow(2))
    return VarianceResult(
        d=d,
        sigma_w=std,
        sigma_h=sigma_h,
        offset_norm=offset_norm,
        initialiser=init.name,
        rewards=rewards,
        measured=measured,
        stderr=stderr,
        predicted=predicted_reward_variance(d, std, sigma_h, offset_norm),
        textbook=isotropic_reward_variance(d, std, sigma_h),
    )


def plot_variance_result(result: VarianceResult, fig: Figure | None = None) -> Figure:
    """Histogram of the rewards with the two predicted normal densities on top."""
    fig = fig or Figure(figsize=(7.5, 3.6))
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.14, top=0.85)  # fixed layout: faster than "constrained"
    ax = fig.subplots()
    r = result.rewards.flatten().numpy()
    spread = max(3.0 * math.sqrt(max(result.predicted, result.textbook)), 1e-3)
    ax.hist(r, bins=60, range=(-spread, spread), density=True, histtype="stepfilled", color="tab:blue", alpha=0.55,
            label="measured")
    x = np.linspace(-spread, spread, 400)
    for var, style, name in ((result.predicted, "-", "σ_w²(dσ_h²+‖m‖²)"), (result.textbook, "--", "textbook dσ_w²σ_h²")):
        if var > 0:
            ax.plot(x, np.exp(-0.5 * x**2 / var) / math.sqrt(2 * math.pi * var), style, color="k", label=f"N(0, {name})")
    ax.set_xlabel("initial reward r = w·h")
    ax.set_ylabel("density")
    ax.set_title(
        f"{result.initialiser}, d={result.d}, σ_w={result.sigma_w:.3g}, σ_h={result.sigma_h:g}, ‖m‖={result.offset_norm:g}\n"
        f"measured Var(r) = {result.measured:.3g} ± {result.stderr:.2g};  predicted {result.predicted:.3g};  "
        f"textbook {result.textbook:.3g}",
        fontsize="medium",
    )
    ax.legend(loc="upper right", fontsize="small")
    return fig


def variance_table_html(result: VarianceResult) -> str:
    """The explorer's readout: measured against both predictions."""
    return (
        "<table class='rm-readout'>"
        f"<tr><td>measured Var(r)</td><td>{result.measured:.4g} ± {result.stderr:.2g}</td></tr>"
        f"<tr><td>predicted σ_w²(dσ_h² + ‖m‖²)</td><td>{result.predicted:.4g} (z = {result.z_score:+.1f})</td></tr>"
        f"<tr><td>textbook d σ_w² σ_h²</td><td>{result.textbook:.4g}</td></tr>"
        "</table>"
    )


def variance_explorer(
    d: int = 256, sigma_h: float = 1.0, offset_norm: float = 0.0, initialiser: str = "score_head"
) -> Explorer:
    """The variance explorer as widgets: sliders for d, σ_w, σ_h, ‖m‖ and a dropdown of initialisers.

    With a catalogue initialiser, σ_w follows from d (its slider shows the value and is locked);
    choose "custom σ_w" to set it by hand.
    """
    style = {"description_width": "9em"}
    layout = widgets.Layout(width="26em")
    init = widgets.Dropdown(
        options=[(entry.label, name) for name, entry in INITIALISERS.items()] + [("custom σ_w (slider)", CUSTOM)],
        value=initialiser, description="initialiser", style=style, layout=layout,
    )
    d_slider = widgets.SelectionSlider(
        options=list(HIDDEN_SIZES), value=d, description="hidden size d", continuous_update=False,
        style=style, layout=layout,
    )
    sigma_w = widgets.FloatLogSlider(
        value=0.06, base=10, min=-3, max=1, step=0.05, description="head std σ_w", continuous_update=False,
        readout_format=".3g", style=style, layout=layout,
    )
    sigma_h = widgets.FloatSlider(
        value=sigma_h, min=0.1, max=3.0, step=0.1, description="hidden std σ_h", continuous_update=False,
        style=style, layout=layout,
    )
    offset = widgets.FloatSlider(
        value=offset_norm, min=0.0, max=50.0, step=1.0, description="shared offset ‖m‖", continuous_update=False,
        style=style, layout=layout,
    )

    def compute(initialiser: str, d: int, sigma_w: float, sigma_h: float, offset_norm: float) -> VarianceResult:
        return variance_explorer_result(d, sigma_h, offset_norm, initialiser, sigma_w)

    explorer = Explorer(
        {"initialiser": init, "d": d_slider, "sigma_w": sigma_w, "sigma_h": sigma_h, "offset_norm": offset},
        compute, plot_variance_result, variance_table_html, css_class="rm-variance-explorer",
    )

    def sync_sigma_w(change: object = None) -> None:
        # A catalogue initialiser fixes σ_w from d: show it on the locked slider. The explorer has
        # already recomputed (compute ignores the slider then), so hold off a second update.
        sigma_w.disabled = init.value != CUSTOM
        if init.value != CUSTOM:
            explorer._hold = True
            sigma_w.value = max(explorer.result.sigma_w, 10**sigma_w.min)
            explorer._hold = False

    init.observe(sync_sigma_w, names="value")
    d_slider.observe(sync_sigma_w, names="value")
    sync_sigma_w()
    return explorer
