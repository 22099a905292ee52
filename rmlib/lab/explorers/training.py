"""The training explorer (lesson 05): head init std, optimiser, learning rate, length and weight decay →
training and held-out Bradley-Terry loss and reward-scale curves from the batched engine, beside a fixed
reference run (1/sqrt(d+1), Adam, lr 1e-3, 200 steps)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from rmlib.data import PreferenceData, make_preference_data
from rmlib.lab.sweep import SweepConfig, SweepResult, run_sweep, training_steps
from rmlib.lab.explorers.widget import Explorer

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

    ``init`` is a catalogue name or a float std (as in :class:`rmlib.lab.sweep.SweepConfig`); the
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
