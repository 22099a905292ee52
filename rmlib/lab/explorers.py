"""Interactive explorers: the numbers live in plain functions, the ipywidgets builders are thin.

* :func:`variance_explorer_result` / :func:`variance_explorer`: hidden size d, head std σ_w (or an
  initialiser from the catalogue), hidden-state std σ_h and a shared offset ‖m‖ → histogram of
  initial rewards r = w·h, with the measured variance against σ_w²(dσ_h² + ‖m‖²) and against the
  textbook d σ_w² σ_h².
* :func:`training_explorer_result` / :func:`training_explorer`: head init std, optimiser (Adam, AdamW,
  SGD), learning rate, training length in epochs and AdamW's weight decay → training and held-out
  (validation) Bradley-Terry loss and reward-scale curves from the batched engine
  (:mod:`rmlib.lab.engine`), next to a fixed reference run (1/sqrt(d+1), Adam, lr 1e-3, 200 steps).

Every builder returns an :class:`Explorer`: a core-ipywidgets ``VBox`` (so it works in JupyterLab,
Colab, VS Code and Binder) whose figure is a PNG. Where widgets cannot render (a static HTML page
built without widget state, GitHub's viewer), its display falls back to that PNG of the current
state. Tests drive an explorer by setting a control's ``.value`` and reading ``.result``.
"""

from __future__ import annotations

import base64
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from rmlib.data import PreferenceData, make_preference_data
from rmlib.init import INITIALISERS, Initialiser, get_initialiser
from rmlib.lab.engine import SweepConfig, SweepResult, run_sweep, training_steps
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
PNG_DPI = 80


# ---------------------------------------------------------------------------------------------------
# Variance explorer
# ---------------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------------
# The widget shell shared by the explorers
# ---------------------------------------------------------------------------------------------------


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (no pyplot: nothing is shown or left open)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI)
    return buf.getvalue()


class Explorer(widgets.VBox):
    """Controls, a numeric readout and a figure; recomputes whenever a control changes.

    ``compute(**values)`` turns control values into a result, ``plot(result)`` draws it and
    ``readout(result)`` summarises it as HTML. ``.result`` and ``.png`` hold the current state.
    """

    def __init__(
        self,
        controls: dict[str, widgets.ValueWidget],
        compute: Callable[..., Any],
        plot: Callable[[Any], Figure],
        readout: Callable[[Any], str],
        css_class: str,
    ) -> None:
        self.controls = controls
        self._compute, self._plot, self._readout = compute, plot, readout
        self.readout = widgets.HTML()
        self.figure = widgets.Output()
        self.result: Any = None
        self.png = b""
        super().__init__([widgets.HBox([widgets.VBox(list(controls.values())), self.readout]), self.figure])
        self.add_class(css_class)
        self._hold = False
        for control in controls.values():
            control.observe(self.update, names="value")
        self.update()

    def values(self) -> dict[str, Any]:
        return {name: control.value for name, control in self.controls.items()}

    def update(self, change: object = None) -> None:
        """Recompute from the controls and redraw (``_hold`` batches programmatic changes)."""
        if self._hold:
            return
        self.result = self._compute(**self.values())
        self.readout.value = self._readout(self.result)
        self.png = figure_png(self._plot(self.result))
        # Setting the Output's outputs directly works with or without a kernel (and in tests).
        self.figure.outputs = (
            {
                "output_type": "display_data",
                "data": {"image/png": base64.b64encode(self.png).decode(), "text/plain": "<explorer figure>"},
                "metadata": {},
            },
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        # Live frontends render the widget view; a static page without widget state shows the PNG.
        widget_bundle = getattr(super(), "_repr_mimebundle_", None)
        data = widget_bundle(**kwargs) if widget_bundle is not None else self._widget_view_bundle()
        if data is not None:
            data["image/png"] = base64.b64encode(self.png).decode()
        return data

    def _widget_view_bundle(self) -> dict[str, Any] | None:
        """ipywidgets 7 has no _repr_mimebundle_: the same bundle its _ipython_display_ builds."""
        if self._view_name is None:
            return None
        return {
            "text/plain": repr(self)[:110],
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2, "version_minor": 0, "model_id": self._model_id,
            },
        }

    if not hasattr(widgets.Widget, "_repr_mimebundle_"):
        # ipywidgets 7 (Colab's) displays widgets through _ipython_display_, which IPython prefers to any
        # _repr_mimebundle_: display the bundle with the PNG ourselves, then do what its display does.
        def _ipython_display_(self, **kwargs: Any) -> None:
            from IPython.display import display

            data = self._repr_mimebundle_()
            if data is not None:
                display(data, raw=True)
                self._handle_displayed(**kwargs)


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


# ---------------------------------------------------------------------------------------------------
# Training explorer
# ---------------------------------------------------------------------------------------------------

REFERENCE = SweepConfig(init="score_head", optimizer="adam", lr=1e-3)
REFERENCE_STEPS = 200
BATCH_SIZE = 64
LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
EPOCHS = (1.0, 3.0, 6.25, 10.0, 30.0)  # 6.25 epochs of 2,048 pairs in batches of 64 = the reference's 200 steps
WEIGHT_DECAYS = (0.0, 0.01, 0.1, 1.0)
EVALUATIONS = 25  # held-out evaluations per run, evenly spaced
TRAINING_METRICS = ("initial_loss", "train_loss", "test_loss", "test_acc", "reward_std", "backbone_change", "cka",
                    "best_step", "best_test_loss")


def head_std_options(d: int) -> list[tuple[str, str | float]]:
    """The head inits offered by the training explorer, (label, SweepConfig.init), smallest first."""
    return [
        ("0 (zero head)", 0.0),
        ("0.02 (HF default)", "hf_default"),
        (f"{1 / math.sqrt(3 * d):.3g} (PyTorch default)", "pytorch_default"),
        (f"{1 / math.sqrt(d + 1):.3g} = 1/sqrt(d+1)", "score_head"),
        ("0.3", 0.3),
        ("1", 1.0),
        ("3", 3.0),
        ("10", 10.0),
    ]


@dataclass(frozen=True)
class TrainingResult:
    """One training run of the explorer, with the fixed reference run for comparison."""

    config: SweepConfig
    head_std: float
    loss: np.ndarray  # (steps,) minibatch loss before each update; NaN after divergence
    reward_std: np.ndarray  # (steps,) std of the minibatch rewards
    metrics: dict[str, float]
    diverge_step: int  # -1 if the run did not diverge
    reference_loss: np.ndarray
    reference_reward_std: np.ndarray
    true_reward_std: float
    seconds: float  # wall time of this run's training
    eval_steps: np.ndarray  # steps of the held-out evaluations
    val_loss: np.ndarray  # validation loss at eval_steps (NaN after divergence)
    reference_eval_steps: np.ndarray
    reference_val_loss: np.ndarray
    epochs: float  # training length in passes over the training pairs


def _run(data: PreferenceData, config: SweepConfig, steps: int) -> SweepResult:
    # run_sweep uses one intra-op thread by default: one run is hundreds of tiny ops.
    return run_sweep(data, [config], steps=steps, batch_size=BATCH_SIZE, progress=False,
                     eval_every=max(1, steps // EVALUATIONS))


def training_explorer_result(
    init: str | float = "score_head",
    optimizer: str = "adam",
    lr: float = 1e-3,
    data: PreferenceData | None = None,
    steps: int | None = None,
    reference: SweepResult | None = None,
    *,
    epochs: float | None = None,
    weight_decay: float = 0.0,
) -> TrainingResult:
    """Train one reward model (pretrained MLP backbone + fresh head, joint training) with the engine.

    ``init`` is a catalogue name or a float std (as in :class:`rmlib.lab.engine.SweepConfig`); the
    length is ``steps`` or ``epochs`` of batch 64 (200 steps if neither); ``weight_decay`` needs
    ``optimizer="adamw"``. ``data`` defaults to ``make_preference_data()``; ``reference`` (the run of
    :data:`REFERENCE` for 200 steps on the same data) is computed when not given.
    """
    config = SweepConfig(init=init, optimizer=optimizer, lr=lr, weight_decay=weight_decay)  # validates
    data = data if data is not None else make_preference_data()
    steps = training_steps(len(data.train), BATCH_SIZE, steps, epochs)
    reference = reference if reference is not None else _run(data, REFERENCE, REFERENCE_STEPS)
    start = time.perf_counter()
    run = _run(data, config, steps)
    seconds = time.perf_counter() - start
    return TrainingResult(
        config=config,
        head_std=config.head_std(data.hidden_size),
        loss=run.curves["loss"][0].numpy(),
        reward_std=run.curves["reward_std"][0].numpy(),
        metrics={k: float(run.metrics[k][0]) for k in TRAINING_METRICS},
        diverge_step=int(run.metrics["diverge_step"][0]),
        reference_loss=reference.curves["loss"][0].numpy(),
        reference_reward_std=reference.curves["reward_std"][0].numpy(),
        true_reward_std=data.true_reward_std,
        seconds=seconds,
        eval_steps=run.eval_steps.numpy(),
        val_loss=run.evals["val_loss"][0].numpy(),
        reference_eval_steps=reference.eval_steps.numpy(),
        reference_val_loss=reference.evals["val_loss"][0].numpy(),
        epochs=steps * BATCH_SIZE / len(data.train),
    )


def plot_training_result(result: TrainingResult, fig: Figure | None = None) -> Figure:
    """Training and held-out loss, and reward-scale curves of the run, with the reference run and the targets."""
    fig = fig or Figure(figsize=(10, 3.6))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.88, wspace=0.22)
    ax_loss, ax_std = fig.subplots(1, 2)
    c = result.config
    label = f"{c.init_label}, {c.optimizer} lr {c.lr:g}" + (f" wd {c.weight_decay:g}" if c.weight_decay else "")
    for ax, mine, ref in ((ax_loss, result.loss, result.reference_loss),
                          (ax_std, result.reward_std, result.reference_reward_std)):
        ax.plot(np.arange(len(ref)), ref, color="0.6", lw=1.0, label="reference: 1/sqrt(d+1), adam lr 0.001, 200 steps")
        ax.plot(np.arange(len(mine)), mine, color="tab:red", lw=1.0, alpha=0.8, label=label)
        if result.diverge_step >= 0:
            ax.axvline(result.diverge_step, color="tab:red", ls=":", lw=1)
        ax.set_yscale("log")
        # Plain tick labels: mathtext's 10^k labels make every redraw noticeably slower.
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("training step")
    ax_loss.plot(result.reference_eval_steps, result.reference_val_loss, "o-", color="0.35", ms=2.5, lw=1.2,
                 label="reference, held-out")
    ax_loss.plot(result.eval_steps, result.val_loss, "o-", color="tab:blue", ms=2.5, lw=1.5,
                 label="held-out (validation) loss")
    if result.diverge_step < 0:
        ax_loss.axvline(result.metrics["best_step"], color="tab:blue", ls="--", lw=0.8, label="early stopping")
    ax_loss.axhline(math.log(2), color="k", ls="--", lw=0.8, label="log 2 (chance)")
    ax_loss.set_ylabel("Bradley-Terry loss")
    ax_std.axhline(result.true_reward_std, color="k", ls="--", lw=0.8, label="true reward std")
    ax_std.set_ylabel("reward std (minibatch)")
    ax_loss.legend(fontsize="x-small")
    ax_std.legend(fontsize="x-small")
    m = result.metrics
    status = f"diverged at step {result.diverge_step}" if result.diverge_step >= 0 else (
        f"held-out acc {m['test_acc']:.3f}, final reward std {m['reward_std']:.3g} (true {result.true_reward_std:g})"
    )
    fig.suptitle(f"head std {result.head_std:.3g}, {c.optimizer}, lr {c.lr:g}, {result.epochs:g} epochs: {status}",
                 fontsize="medium")
    return fig


def training_table_html(result: TrainingResult) -> str:
    """The training explorer's readout: the run's metrics (NaN after divergence)."""
    m = result.metrics
    rows = [
        ("initial loss", f"{m['initial_loss']:.3g} (log 2 = 0.693)"),
        ("final train / test loss", f"{m['train_loss']:.3g} / {m['test_loss']:.3g}"),
        ("early stopping (validation)", f"step {m['best_step']:.0f}, test loss {m['best_test_loss']:.3g}"
         if result.diverge_step < 0 else "—"),
        ("held-out accuracy", f"{m['test_acc']:.3f}"),
        ("final reward std", f"{m['reward_std']:.3g} (true {result.true_reward_std:g})"),
        ("backbone change ‖θ−θ₀‖/‖θ₀‖", f"{m['backbone_change']:.3g}"),
        ("feature similarity (CKA)", f"{m['cka']:.3f}"),
        ("diverged", f"at step {result.diverge_step}" if result.diverge_step >= 0 else "no"),
        ("training time", f"{result.seconds:.2f} s"),
    ]
    return "<table class='rm-readout'>" + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows) + "</table>"


def training_explorer(
    init: str | float = "score_head", optimizer: str = "adam", lr: float = 1e-3,
    data: PreferenceData | None = None, epochs: float = 6.25, weight_decay: float = 0.0,
) -> Explorer:
    """The training explorer as widgets: head std, optimiser, learning rate, epochs and weight decay.

    Each change trains one run with the batched engine (about a second for 30 epochs on a laptop CPU);
    runs are cached, so going back to a setting is instant. The weight decay applies with AdamW only
    (decoupled decay); with Adam or SGD its slider is disabled and ignored.
    """
    data = data if data is not None else make_preference_data()
    reference = _run(data, REFERENCE, REFERENCE_STEPS)
    cache: dict[tuple, TrainingResult] = {}

    def compute(init: str | float, optimizer: str, lr: float, epochs: float, weight_decay: float) -> TrainingResult:
        wd = weight_decay if optimizer == "adamw" else 0.0
        key = (init, optimizer, lr, epochs, wd)
        if key not in cache:
            cache[key] = training_explorer_result(init, optimizer, lr, data=data, reference=reference, epochs=epochs,
                                                  weight_decay=wd)
        return cache[key]

    style = {"description_width": "10em"}
    layout = widgets.Layout(width="32em")
    controls = {
        "init": widgets.SelectionSlider(
            options=head_std_options(data.hidden_size), value=init, description="head std",
            continuous_update=False, style=style, layout=layout,
        ),
        "optimizer": widgets.ToggleButtons(options=[("Adam", "adam"), ("AdamW", "adamw"), ("SGD", "sgd")],
                                           value=optimizer, description="optimiser", style=style),
        "lr": widgets.SelectionSlider(
            options=[(f"{v:g}", v) for v in LEARNING_RATES], value=lr, description="learning rate",
            continuous_update=False, style=style, layout=layout,
        ),
        "epochs": widgets.SelectionSlider(
            options=[(f"{e:g} ({training_steps(len(data.train), BATCH_SIZE, epochs=e)} steps)", e) for e in EPOCHS],
            value=epochs, description="epochs", continuous_update=False, style=style, layout=layout,
        ),
        "weight_decay": widgets.SelectionSlider(
            options=[(f"{v:g}", v) for v in WEIGHT_DECAYS], value=weight_decay, description="weight decay (AdamW)",
            continuous_update=False, style=style, layout=layout, disabled=optimizer != "adamw",
        ),
    }
    explorer = Explorer(controls, compute, plot_training_result, training_table_html, css_class="rm-training-explorer")

    def sync_decay(change: object = None) -> None:
        controls["weight_decay"].disabled = controls["optimizer"].value != "adamw"

    controls["optimizer"].observe(sync_decay, names="value")
    return explorer
