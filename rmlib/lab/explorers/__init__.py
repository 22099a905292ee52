"""Interactive explorers: the numbers live in plain functions, the ipywidgets builders are thin.

* :func:`variance_explorer_result` / :func:`variance_explorer` (``variance.py``, lesson 02): hidden size
  d, head std σ_w (or an initialiser from the catalogue), hidden-state std σ_h and a shared offset ‖m‖ →
  histogram of initial rewards r = w·h, with the measured variance against σ_w²(dσ_h² + ‖m‖²) and
  against the textbook d σ_w² σ_h².
* :func:`training_explorer_result` / :func:`training_explorer` (``training.py``, lesson 05): head init
  std, optimiser (Adam, AdamW, SGD), learning rate, training length in epochs and AdamW's weight decay
  → training and held-out (validation) Bradley-Terry loss and reward-scale curves from the batched
  engine (:mod:`rmlib.lab.sweep`), next to a fixed reference run (1/sqrt(d+1), Adam, lr 1e-3, 200 steps).

Every builder returns an :class:`Explorer` (``widget.py``): a core-ipywidgets ``VBox`` (so it works in
JupyterLab, Colab, VS Code and Binder) whose figure is a PNG. Where widgets cannot render (a static HTML
page built without widget state, GitHub's viewer), its display falls back to that PNG of the current
state. Tests drive an explorer by setting a control's ``.value`` and reading ``.result``.
"""

from rmlib.init import get_initialiser
from rmlib.lab.explorers.training import (
    BATCH_SIZE,
    EPOCHS,
    EVALUATIONS,
    LEARNING_RATES,
    REFERENCE,
    REFERENCE_STEPS,
    TRAINING_METRICS,
    WEIGHT_DECAYS,
    TrainingResult,
    head_std_options,
    plot_training_result,
    training_explorer,
    training_explorer_result,
    training_table_html,
)
from rmlib.lab.explorers.variance import (
    CUSTOM,
    HIDDEN_SIZES,
    VarianceResult,
    plot_variance_result,
    variance_explorer,
    variance_explorer_result,
    variance_table_html,
)
from rmlib.lab.explorers.widget import PNG_DPI, Explorer, figure_png

__all__ = [
    "BATCH_SIZE", "CUSTOM", "EPOCHS", "EVALUATIONS", "HIDDEN_SIZES", "LEARNING_RATES", "PNG_DPI", "REFERENCE",
    "REFERENCE_STEPS", "TRAINING_METRICS", "WEIGHT_DECAYS", "Explorer", "TrainingResult", "VarianceResult",
    "figure_png", "get_initialiser", "head_std_options", "plot_training_result", "plot_variance_result",
    "training_explorer", "training_explorer_result", "training_table_html", "variance_explorer",
    "variance_explorer_result", "variance_table_html",
]
