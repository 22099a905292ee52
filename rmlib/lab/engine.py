"""The sweep engine's former home, kept so that ``from rmlib.lab.engine import run_sweep`` still works.

The engine lives in :mod:`rmlib.lab.sweep`; every name below is the same object.
"""

from rmlib.lab.sweep import (OPTIMIZERS, SCHEDULES, SweepConfig, SweepResult, eval_points, head_weight,
                             minibatch_indices, over_runs, run_sweep, sweep_grid, training_steps)

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
