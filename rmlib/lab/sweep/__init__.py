"""Batched Bradley-Terry training: many reward-model configurations trained at once, same maths as a loop.

Modules: ``config`` (SweepConfig, the grid, each run's head and minibatches), ``train`` (the batched
engine), ``evaluate`` (metrics and held-out curves), ``result`` (SweepResult and the statistics rule),
``reference`` (the plain per-run loop the engine is checked against; not course API).

Public API
----------
``SweepConfig(init="score_head", optimizer="adam", lr=1e-3, train_backbone=True, seed=0, reward_offset=0.0,
weight_decay=0.0, schedule="constant", warmup_ratio=0.0, adam_beta2=0.999)``
    One training run. ``init`` is a name from ``rmlib.INITIALISERS`` or a float (the std of a normal
    head). ``optimizer`` is ``"adam"``, ``"adamw"`` or ``"sgd"`` with torch.optim's defaults (betas
    (0.9, 0.999), eps 1e-8; SGD without momentum). ``weight_decay`` is AdamW's decoupled decay
    (``torch.optim.AdamW``), applied as the Hugging Face ``Trainer`` applies it: to weight matrices
    and the head, not to biases. ``schedule="linear"`` is ``transformers.get_linear_schedule_with_warmup``
    (the ``Trainer`` default, used by TRL's ``RewardTrainer``): the learning rate rises linearly over
    the first ``ceil(warmup_ratio * steps)`` updates, then falls linearly to 0 at the last step;
    ``"constant"`` keeps it fixed. ``adam_beta2`` is Adam(W)'s second-moment decay β₂ (torch's
    default 0.999; a smaller one shortens the memory of the running RMS). ``train_backbone=False`` freezes the pretrained backbone and trains
    the head only. ``seed`` fixes the head draw and the minibatch order, so runs that share a seed
    share both (paired comparisons). ``reward_offset`` is a constant head bias added to every reward
    (Bradley-Terry gives a bias exactly zero gradient, so it never moves). Bad values raise at
    construction.
``sweep_grid(inits, optimizers=("adam",), lrs=(1e-3,), train_backbone=(False, True), seeds=(0, 1, 2), **fixed)``
    The Cartesian product as a list of configs; ``lrs`` may be a dict {optimizer: learning rates};
    ``fixed`` sets the other fields (e.g. ``schedule="linear"``) for every config.
``run_sweep(data, configs, steps=None, batch_size=64, progress=True, blowup=10.0, num_threads=1, *, epochs=None,
eval_every=None, eval_pairs=512) -> SweepResult``
    Trains every configuration on ``data`` (a :class:`rmlib.data.PreferenceData`) in one batched
    computation. The length is ``steps`` updates or ``epochs`` passes over the training pairs
    (``ceil(epochs · n_train / batch_size)`` steps); 200 steps if neither is given. With
    ``eval_every=k`` the models are evaluated after every k updates (and at the start and the end)
    on the first ``eval_pairs`` validation and test pairs, and the best step by validation loss is
    kept for early stopping.
``SweepResult``
    ``.configs``, ``.metrics`` {name: (runs,)}, ``.curves`` {name: (runs, steps)}, ``.evals``
    {name: (runs, evaluations)} at ``.eval_steps``, ``.mask(**where)``, ``.mean_std(metric, **where)``,
    ``.summary(metrics, by)``, ``.rows()``; the trained weights ``.final_head`` (runs, d) and
    ``.final_backbone`` (the backbone's parameters by name, stacked), and ``.rewards(x)``.

How the engine works: the backbone is described once, by ``MLPBackbone.forward_with(params, x)`` (its
parameters by their module names, any leading run dimension) and the head is a vector ``w``. All
trained parameters of a run are one row of a flat (runs, P) tensor; one forward and one backward
pass per step give every run's gradient, and Adam, AdamW (:func:`rmlib.theory.adam_step`) and SGD
are applied to the flat tensor as torch.optim computes them. ``tests/test_engine.py`` checks it run by
run against a plain ``nn.Module`` + ``torch.optim`` loop (``rmlib/lab/sweep/reference.py``);
``benchmarks/sweep_speed.py`` and ``benchmarks/roofline.py`` measure its speed.

Metrics (one value per run; evaluation metrics are NaN for a diverged run):
    ``head_std`` init std of the head; ``w0_norm`` ‖w₀‖; ``initial_loss`` full training-set loss at
    step 0; ``grad_norm0`` ‖∂L/∂θ_backbone‖ at step 0 on the full training set (what would flow into
    the backbone, also reported for frozen runs); ``train_loss``, ``test_loss`` final BT loss;
    ``test_acc`` agreement with the sampled test labels; ``test_true_acc`` agreement with the true
    reward's ordering; ``reward_std`` / ``reward_mean`` std and mean of the final rewards over test
    answers (compare with ``data.true_reward_std``); ``backbone_change`` ‖θ − θ₀‖/‖θ₀‖ over backbone
    parameters; ``cka`` linear CKA of final vs pretrained features on test answers (blind to a
    change of the features' scale or rotation, and so to how they move along any one direction);
    ``diverged`` (bool) and ``diverge_step`` (−1 if not). With ``eval_every``: ``best_step`` (the
    evaluation step with the lowest validation loss) and ``best_<metric>`` for every evaluation
    metric above, computed with the weights of that step (early stopping).
Curves (per step, on the minibatch, before the update): ``loss``, ``reward_std`` and ``misranked`` (the
fraction of the minibatch's pairs ranked against their label, 1 − ``preference_accuracy``: a tie counts
half; averaged over an epoch, the share of training pairs misranked when training saw them); NaN after a
run diverged. Evaluation curves (``evals``, with ``eval_every``): ``{val,test}_{loss,acc,reward_std,reward_mean}``
on the fixed evaluation subsets, ``head_cos`` cos(w, u) between the head and the true head, and
``drift_corr`` the correlation over validation answers between wᵀ(h(x) − h₀(x)) — the part of the
reward the backbone's own change contributes — and the true reward r*(x), and ``drift_std`` the std
of that part over validation answers (0 for a frozen backbone).

Statistics over runs (``mean_std``, ``summary``, :func:`over_runs`, and the plots in
:mod:`rmlib.lab.plots`) follow one rule: a diverged run is left out (its metrics are NaN; a curve
counts until its run diverged) and counted; the mean is over the runs left, the std is the sample
std (n − 1), NaN when fewer than two runs are left.

Divergence: a run diverges at step t when its minibatch loss is non-finite or exceeds
``blowup`` × max(initial loss, log 2) (``diverge_step = steps`` if only the last update overflowed).
It is then frozen (no further updates, removed from the batched computation) while the other runs
continue.
"""

from rmlib.lab.sweep.config import (OPTIMIZERS, SCHEDULES, SweepConfig, eval_points, head_weight, minibatch_indices,
                                    sweep_grid, training_steps)
from rmlib.lab.sweep.result import SweepResult, over_runs
from rmlib.lab.sweep.train import run_sweep

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "SweepConfig",
    "SweepResult",
    "eval_points",
    "head_weight",
    "minibatch_indices",
    "over_runs",
    "run_sweep",
    "sweep_grid",
    "training_steps",
]
