"""What a sweep trains: one run's configuration, the grid of them, and each run's head and minibatches."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields

import torch

from rmlib.data import PreferenceData
from rmlib.init import Initialiser, get_initialiser
from rmlib.seeding import make_generator
from rmlib.utils import validation

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "linear")
DEFAULT_STEPS = 200


@dataclass(frozen=True)
class SweepConfig:
    """One training run of a sweep (see :mod:`rmlib.lab.sweep`)."""

    init: str | float = "score_head"
    optimizer: str = "adam"
    lr: float = 1e-3
    train_backbone: bool = True
    seed: int = 0
    reward_offset: float = 0.0
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_ratio: float = 0.0
    adam_beta2: float = 0.999

    def __post_init__(self) -> None:
        self.initialiser  # raises for an unknown name (KeyError listing the valid ones) or a bad std
        validation.one_of("optimizer", self.optimizer, OPTIMIZERS)
        validation.real("lr", self.lr, positive=True)
        if not isinstance(self.train_backbone, bool):
            raise TypeError(f"train_backbone must be a bool, got {type(self.train_backbone).__name__}")
        validation.integer("seed", self.seed, minimum=0)
        validation.real("reward_offset", self.reward_offset)
        validation.real("weight_decay", self.weight_decay, minimum=0.0)
        if self.weight_decay > 0 and self.optimizer != "adamw":
            raise ValueError(f"weight_decay is AdamW's decoupled decay: use optimizer='adamw', not {self.optimizer!r}")
        validation.one_of("schedule", self.schedule, SCHEDULES)
        if not validation.real("warmup_ratio", self.warmup_ratio, minimum=0.0) < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 0 <= validation.real("adam_beta2", self.adam_beta2) < 1:
            raise ValueError(f"adam_beta2 must be in [0, 1), got {self.adam_beta2}")
        if self.adam_beta2 != 0.999 and self.optimizer == "sgd":
            raise ValueError("adam_beta2 is Adam's second-moment decay: SGD has none")
        if self.warmup_ratio > 0 and self.schedule != "linear":
            raise ValueError("warmup_ratio needs schedule='linear' (a constant schedule has no warm-up)")

    @property
    def initialiser(self) -> Initialiser:
        """The catalogue entry named by ``init``, or a normal head whose std is ``init``."""
        if isinstance(self.init, str):
            return get_initialiser(self.init)
        std = validation.real("init std", self.init, minimum=0.0)
        return Initialiser(f"std {std:g}", f"std {std:g}", "normal", lambda d: std, "a normal head of this std")

    @property
    def init_label(self) -> str:
        return self.init if isinstance(self.init, str) else self.initialiser.label

    def head_std(self, d: int) -> float:
        """Std of each head weight for hidden size ``d``."""
        return self.initialiser.std(d)

    def lr_factors(self, steps: int) -> torch.Tensor:
        """The learning-rate multiplier of each of ``steps`` updates, shape (steps,), float64.

        ``"linear"`` is ``transformers.get_linear_schedule_with_warmup`` with
        ``num_warmup_steps = ceil(warmup_ratio · steps)`` (as ``TrainingArguments.get_warmup_steps``):
        update t (from 0) uses t/W during the warm-up, then (steps − t)/(steps − W).
        """
        t = torch.arange(steps, dtype=torch.float64)
        if self.schedule == "constant":
            return torch.ones(steps, dtype=torch.float64)
        warm = math.ceil(steps * self.warmup_ratio)
        return torch.where(t < warm, t / max(1, warm), ((steps - t) / max(1, steps - warm)).clamp(min=0))


def sweep_grid(
    inits: Iterable[str | float],
    optimizers: Iterable[str] = ("adam",),
    lrs: Iterable[float] | Mapping[str, Iterable[float]] = (1e-3,),
    train_backbone: Iterable[bool] = (False, True),
    seeds: Iterable[int] = (0, 1, 2),
    **fixed: object,
) -> list[SweepConfig]:
    """Every combination of the given values, as configs (seed varies fastest).

    ``fixed`` sets further SweepConfig fields to one value for every config (e.g. ``weight_decay=0.1``).
    """
    optimizers, inits, seeds, train_backbone = list(optimizers), list(inits), list(seeds), list(train_backbone)
    allowed = {f.name for f in fields(SweepConfig)} - {"init", "optimizer", "lr", "train_backbone", "seed"}
    unknown = set(fixed) - allowed
    if unknown:
        raise ValueError(f"unknown config field(s) {sorted(unknown)}; fixed fields are {sorted(allowed)}")
    if isinstance(lrs, Mapping):
        missing = [o for o in optimizers if o not in lrs]
        if missing:
            raise ValueError(f"lrs has no learning rates for optimizer(s) {missing}")
        lr_of = {o: list(lrs[o]) for o in optimizers}
    else:
        lr_list = list(lrs)
        lr_of = {o: lr_list for o in optimizers}
    configs = [
        SweepConfig(init=i, optimizer=o, lr=lr, train_backbone=tb, seed=s, **fixed)
        for i in inits for o in optimizers for lr in lr_of[o] for tb in train_backbone for s in seeds
    ]
    if not configs:
        raise ValueError("the grid is empty: every argument needs at least one value")
    return configs


def reward_offsets(configs: Sequence[SweepConfig]) -> torch.Tensor:
    """(R,) the constant each run adds to its rewards (``SweepConfig.reward_offset``), float32."""
    return torch.tensor([float(c.reward_offset) for c in configs])


def head_weight(config: SweepConfig, d: int) -> torch.Tensor:
    """The initial head weight w₀ (shape (d,)) of a run, drawn with its initialiser.

    Seeded by ``make_generator(2 * seed)`` (the minibatch order uses ``2 * seed + 1``), so a run's
    head does not depend on anything else in the sweep. The same numbers as the initialiser's
    ``apply`` on an ``nn.Linear(d, 1)``.
    """
    return config.initialiser.sample(1, d, generator=make_generator(2 * config.seed)).reshape(d)


def minibatch_indices(seed: int, steps: int, batch_size: int, n: int) -> torch.Tensor:
    """Indices of the training pairs in each minibatch, shape (steps, batch_size).

    Consecutive epochs of random permutations (a batch may straddle two epochs), seeded by
    ``make_generator(2 * seed + 1)``.
    """
    if batch_size > n:
        raise ValueError(f"batch_size {batch_size} exceeds the {n} training pairs")
    gen = make_generator(2 * seed + 1)
    epochs = math.ceil(steps * batch_size / n)
    order = torch.cat([torch.randperm(n, generator=gen) for _ in range(epochs)])
    return order[: steps * batch_size].view(steps, batch_size)


def training_steps(n_train: int, batch_size: int, steps: int | None = None, epochs: float | None = None) -> int:
    """Number of updates for ``steps`` or ``epochs`` (``ceil(epochs · n_train / batch_size)``); 200 if neither."""
    if steps is not None and epochs is not None:
        raise ValueError("give the training length as steps or as epochs, not both")
    if epochs is not None:
        epochs = validation.real("epochs", epochs, positive=True)
        return max(1, math.ceil(epochs * n_train / batch_size - 1e-9))
    steps = DEFAULT_STEPS if steps is None else steps
    return validation.integer("steps", steps)


def eval_points(steps: int, eval_every: int | None) -> list[int]:
    """The steps (number of updates done) at which the models are evaluated: 0, k, 2k, …, and ``steps``."""
    if eval_every is None:
        return []
    return sorted(set(range(0, steps + 1, eval_every)) | {steps})


def check_run_args(data: PreferenceData, configs: Sequence[SweepConfig], batch_size: int, blowup: float,
                   eval_every: int | None, eval_pairs: int | None) -> list[SweepConfig]:
    """The arguments both runners share, checked; ``configs`` as a list."""
    if not isinstance(data, PreferenceData):
        raise TypeError(f"data must be a PreferenceData (see make_preference_data), got {type(data).__name__}")
    configs = list(configs)
    if not configs:
        raise ValueError("configs is empty")
    bad = [type(c).__name__ for c in configs if not isinstance(c, SweepConfig)]
    if bad:
        raise TypeError(f"configs must all be SweepConfig, got {sorted(set(bad))}")
    validation.integer("batch_size", batch_size)
    if batch_size > len(data.train):
        raise ValueError(f"batch_size {batch_size} exceeds the {len(data.train)} training pairs")
    if not validation.real("blowup", blowup, finite=False) > 1:
        raise ValueError(f"blowup must be a number > 1, got {blowup!r}")
    for name, value in (("eval_every", eval_every), ("eval_pairs", eval_pairs)):
        if value is not None:
            validation.integer(name, value)
    return configs


@contextmanager
def intra_op_threads(num_threads: int | None) -> Iterator[None]:
    """Run the block with ``num_threads`` intra-op threads (None: leave torch's setting), then restore."""
    if num_threads is None:
        yield
        return
    validation.integer("num_threads", num_threads)
    before = torch.get_num_threads()
    torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
