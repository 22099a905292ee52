"""Batched Bradley-Terry training: many reward-model configurations trained at once, same maths as a loop.

Public API
----------
``SweepConfig(init="score_head", optimizer="adam", lr=1e-3, train_backbone=True, seed=0, reward_offset=0.0,
weight_decay=0.0, schedule="constant", warmup_ratio=0.0)``
    One training run. ``init`` is a name from ``rmlib.INITIALISERS`` or a float (the std of a normal
    head). ``optimizer`` is ``"adam"``, ``"adamw"`` or ``"sgd"`` with torch.optim's defaults (betas
    (0.9, 0.999), eps 1e-8; SGD without momentum). ``weight_decay`` is AdamW's decoupled decay
    (``torch.optim.AdamW``), applied as the Hugging Face ``Trainer`` applies it: to weight matrices
    and the head, not to biases. ``schedule="linear"`` is ``transformers.get_linear_schedule_with_warmup``
    (the ``Trainer`` default, used by TRL's ``RewardTrainer``): the learning rate rises linearly over
    the first ``ceil(warmup_ratio * steps)`` updates, then falls linearly to 0 at the last step;
    ``"constant"`` keeps it fixed. ``train_backbone=False`` freezes the pretrained backbone and trains
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
pass per step give every run's gradient, and Adam, AdamW and SGD are applied to the flat tensor
exactly as torch.optim computes them. ``tests/test_engine.py`` checks it run by run against a plain
``nn.Module`` + ``torch.optim`` loop (``rmlib/lab/_reference_loop.py``); ``benchmarks/sweep_speed.py``
measures the speed-up.

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
Curves (per step, on the minibatch, before the update): ``loss`` and ``reward_std``; NaN after a run
diverged. Evaluation curves (``evals``, with ``eval_every``): ``{val,test}_{loss,acc,reward_std,reward_mean}``
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

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields

import torch
from tqdm.auto import tqdm

from rmlib.data import PreferenceData, PreferenceSplit
from rmlib.init import get_initialiser, layer_init
from rmlib.losses import bradley_terry_loss, preference_accuracy
from rmlib.seeding import make_generator
from rmlib.utils import validation

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "linear")
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
DEFAULT_STEPS = 200
EVAL_METRICS = ("loss", "acc", "reward_std", "reward_mean")
_EVAL_CHUNK = 16  # runs evaluated together: bounds memory at ~16 × 8192 × d floats


@dataclass(frozen=True)
class SweepConfig:
    """One training run of a sweep (see the module docstring)."""

    init: str | float = "score_head"
    optimizer: str = "adam"
    lr: float = 1e-3
    train_backbone: bool = True
    seed: int = 0
    reward_offset: float = 0.0
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_ratio: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.init, str):
            get_initialiser(self.init)  # raises KeyError listing the valid names
        else:
            validation.real("init std", self.init, minimum=0.0)
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
        if self.warmup_ratio > 0 and self.schedule != "linear":
            raise ValueError("warmup_ratio needs schedule='linear' (a constant schedule has no warm-up)")

    @property
    def init_label(self) -> str:
        return self.init if isinstance(self.init, str) else f"std {self.init:g}"

    def head_std(self, d: int) -> float:
        """Std of each head weight for hidden size ``d``."""
        return get_initialiser(self.init).std(d) if isinstance(self.init, str) else float(self.init)

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


def head_weight(config: SweepConfig, d: int) -> torch.Tensor:
    """The initial head weight w₀ (shape (d,)) of a run, drawn with the catalogue initialiser.

    Seeded by ``make_generator(2 * seed)`` (the minibatch order uses ``2 * seed + 1``), so a run's
    head does not depend on anything else in the sweep.
    """
    # A bare module holding a (1, d) weight: nn.Linear's own init would draw from the global generator.
    layer = torch.nn.Module()
    layer.weight = torch.nn.Parameter(torch.empty(1, d))
    gen = make_generator(2 * config.seed)
    if isinstance(config.init, str):
        get_initialiser(config.init).apply(layer, generator=gen)
    else:
        layer_init(layer, float(config.init), generator=gen)
    return layer.weight.detach().reshape(d).clone()


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


def over_runs(values: torch.Tensor, dim: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, sample std and count over runs along ``dim``, leaving out NaN entries (diverged runs).

    The course's one rule for statistics over seeds: NaN entries are excluded and counted out; the
    std is the sample std (n − 1) and NaN when fewer than two runs are left, the mean NaN when none is.
    """
    v = values.double()
    ok = ~torch.isnan(v)
    n = ok.sum(dim)
    mean = torch.where(ok, v, 0.0).sum(dim) / n  # NaN where n == 0
    dev = torch.where(ok, v - mean.unsqueeze(dim), 0.0).pow(2).sum(dim)
    std = torch.where(n > 1, (dev / (n - 1).clamp(min=1)).sqrt(), float("nan"))
    return mean, std, n


@dataclass
class SweepResult:
    """Per-run metrics and curves of a sweep (see the module docstring for the names and the statistics rule)."""

    configs: tuple[SweepConfig, ...]
    metrics: dict[str, torch.Tensor]
    curves: dict[str, torch.Tensor]
    true_reward_std: float
    seconds: float = field(default=float("nan"))
    final_head: torch.Tensor | None = field(default=None, repr=False)  # (runs, d) trained head weights
    final_backbone: dict[str, torch.Tensor] | None = field(default=None, repr=False)  # stacked, by name
    evals: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)  # (runs, evaluations)
    eval_steps: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    steps: int = 0
    forward_with: Callable[[Mapping[str, torch.Tensor], torch.Tensor], torch.Tensor] | None = field(
        default=None, repr=False)

    def __len__(self) -> int:
        return len(self.configs)

    def rewards(self, x: torch.Tensor) -> torch.Tensor:
        """Rewards of every trained reward model on inputs ``x`` (n, input_dim): shape (runs, n).

        Uses each run's final backbone and head plus its ``reward_offset``; NaN for diverged runs.
        Lets a lesson use the trained reward models downstream (e.g. to score candidate responses).
        """
        if self.final_head is None or self.final_backbone is None or self.forward_with is None:
            raise ValueError("this SweepResult holds no trained weights")
        in_dim = next(v for k, v in self.final_backbone.items() if k.endswith("weight")).shape[2]
        if not torch.is_tensor(x) or x.dim() != 2 or x.shape[1] != in_dim:
            raise ValueError(f"x must have shape (n, {in_dim}), "
                             f"got {tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
        offset = torch.tensor([float(c.reward_offset) for c in self.configs])
        with torch.no_grad():
            h = self.forward_with(self.final_backbone, x.expand(len(self.configs), -1, -1))
            r = _rewards(h, self.final_head, offset)
        return torch.where(self.metrics["diverged"].unsqueeze(1), float("nan"), r)

    def mask(self, **where: object) -> torch.Tensor:
        """Bool mask of the runs whose config fields match, e.g. ``mask(optimizer="sgd", lr=0.1)``.

        A list, tuple or set value matches any of its members.
        """
        names = {f.name for f in fields(SweepConfig)}
        unknown = set(where) - names
        if unknown:
            raise ValueError(f"unknown config field(s) {sorted(unknown)}; choose from {sorted(names)}")
        keep = torch.ones(len(self.configs), dtype=torch.bool)
        for key, want in where.items():
            allowed = list(want) if isinstance(want, (list, tuple, set, frozenset)) else [want]
            keep &= torch.tensor([getattr(c, key) in allowed for c in self.configs], dtype=torch.bool)
        return keep

    def _values(self, metric: str) -> torch.Tensor:
        if metric not in self.metrics:
            raise KeyError(f"unknown metric {metric!r}; choose from {sorted(self.metrics)}")
        # The rule: diverged runs are left out of every statistic, including metrics known before training.
        return torch.where(self.metrics["diverged"], float("nan"), self.metrics[metric].double())

    def mean_std(self, metric: str, **where: object) -> tuple[float, float]:
        """Mean and std over the selected runs (as :meth:`mask`), by the rule in the module docstring."""
        mean, std, _ = over_runs(self._values(metric)[self.mask(**where)])
        return mean.item(), std.item()

    def rows(self) -> list[dict[str, object]]:
        """One dict per run: its config fields followed by its metrics (plain Python numbers)."""
        out = []
        for i, c in enumerate(self.configs):
            row: dict[str, object] = {f.name: getattr(c, f.name) for f in fields(SweepConfig)}
            row.update({k: v[i].item() for k, v in self.metrics.items()})
            out.append(row)
        return out

    def summary(
        self,
        metrics: Sequence[str],
        by: Sequence[str] = ("init", "optimizer", "lr", "train_backbone"),
    ) -> list[dict[str, object]]:
        """Mean and std over seeds of each metric, per group of ``by`` fields (the statistics rule).

        Each row has the group's fields, ``n`` runs, ``diverged`` count (left out), and
        ``<metric>_mean`` / ``<metric>_std``.
        """
        unknown = [m for m in metrics if m not in self.metrics]
        if unknown:
            raise KeyError(f"unknown metric(s) {unknown}; choose from {sorted(self.metrics)}")
        groups: dict[tuple, list[int]] = {}
        for i, c in enumerate(self.configs):
            groups.setdefault(tuple(getattr(c, k) for k in by), []).append(i)
        out = []
        for key, idx in groups.items():
            ix = torch.tensor(idx)
            row: dict[str, object] = dict(zip(by, key))
            row["n"], row["diverged"] = len(idx), int(self.metrics["diverged"][ix].sum())
            for m in metrics:
                mean, std, _ = over_runs(self._values(m)[ix])
                row[f"{m}_mean"], row[f"{m}_std"] = mean.item(), std.item()
            out.append(row)
        return out


# ---------------------------------------------------------------------------------------------
# The model, described once: the backbone's forward_with + a head vector. A run's trained
# parameters are one row of a flat (R, P) tensor: the head first, then the backbone's parameters.


class _Model:
    def __init__(self, data: PreferenceData, train_backbone: bool) -> None:
        self.forward_with = type(data.backbone).forward_with
        self.d = data.hidden_size
        self.pretrained = {k: v.detach() for k, v in data.backbone.named_parameters()}
        self.names = list(self.pretrained) if train_backbone else []
        self.shapes = [self.pretrained[k].shape for k in self.names]
        sizes = [self.d] + [self.pretrained[k].numel() for k in self.names]
        self.bounds = torch.tensor([0, *sizes]).cumsum(0).tolist()
        # Hugging Face's Trainer decays every weight but no bias (nor LayerNorm): the head and weight matrices.
        self.decay = torch.cat([torch.ones(self.d)] + [torch.full((self.pretrained[k].numel(),),
                               0.0 if k.endswith("bias") else 1.0) for k in self.names])

    @property
    def size(self) -> int:
        return self.bounds[-1]

    def flat(self, w: torch.Tensor) -> torch.Tensor:
        """(R, P) start: the heads w (R, d) and, if trained, copies of the pretrained backbone."""
        parts = [w] + [self.pretrained[k].reshape(1, -1).expand(len(w), -1) for k in self.names]
        return torch.cat(parts, 1).contiguous()

    def head(self, flat: torch.Tensor) -> torch.Tensor:
        return flat[:, : self.d]

    def backbone(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: flat[:, a:b].view(len(flat), *s)
                for k, s, a, b in zip(self.names, self.shapes, self.bounds[1:], self.bounds[2:])}

    def features(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """x (R, N, in) inputs if the backbone trains, else (R, N, d) or (N, d) pretrained features."""
        return self.forward_with(self.backbone(flat), x) if self.names else x


def _rewards(h: torch.Tensor, w: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """h (R, N, d) or (N, d) shared, w (R, d) → rewards (R, N)."""
    if h.dim() == 2:
        return (h @ w.T).T + offset.unsqueeze(1)
    return torch.bmm(h, w.unsqueeze(2)).squeeze(2) + offset.unsqueeze(1)


def _stack(params: Mapping[str, torch.Tensor], runs: int) -> dict[str, torch.Tensor]:
    return {k: v.detach().unsqueeze(0).expand(runs, *v.shape) for k, v in params.items()}


def _pretrained_features(data: PreferenceData, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return data.backbone(x)


def _answers(split: PreferenceSplit, pairs: int | None = None) -> torch.Tensor:
    """Inputs of the first ``pairs`` pairs: chosen answers, then their rejected partners."""
    k = len(split) if pairs is None else min(pairs, len(split))
    return torch.cat([split.x_chosen[:k], split.x_rejected[:k]])


def _initial_loss_and_grad(data: PreferenceData, w0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-training-set BT loss at step 0 and ‖∂L/∂θ_backbone‖ at the pretrained θ, per head in w0."""
    x = _answers(data.train)
    n = len(data.train)
    forward = type(data.backbone).forward_with
    pretrained = dict(data.backbone.named_parameters())
    losses, norms = [], []
    for w in w0.split(_EVAL_CHUNK):
        p = {k: v.clone().requires_grad_(True) for k, v in _stack(pretrained, len(w)).items()}
        r = _rewards(forward(p, x.expand(len(w), -1, -1)), w, torch.zeros(len(w)))
        loss = bradley_terry_loss(r[:, :n], r[:, n:], reduction="none").mean(1)
        grads = torch.autograd.grad(loss.sum(), list(p.values()))
        losses.append(loss.detach())
        norms.append(torch.stack([g.flatten(1).pow(2).sum(1) for g in grads]).sum(0).sqrt())
    return torch.cat(losses), torch.cat(norms)


def _linear_cka(h0: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Linear CKA (Kornblith et al. 2019) of features h0 (N, d) with each run's h (R, N, d).

    CKA = ‖AᵀB‖²_F / (‖AᵀA‖_F ‖BᵀB‖_F) for column-centred A, B: 1 for features equal up to a rotation
    and scale, lower as they drift apart. Being invariant to rotation and scale, it cannot see the
    features stretch along one direction (such as the head's) if the others keep their share.
    """
    a = h0 - h0.mean(0)
    b = h - h.mean(1, keepdim=True)
    cross = (a.T @ b).pow(2).sum((1, 2))
    self_a = (a.T @ a).pow(2).sum().sqrt()
    self_b = (b.transpose(1, 2) @ b).pow(2).sum((1, 2)).sqrt()
    return cross / (self_a * self_b)


def _split_stats(r: torch.Tensor, n: int) -> dict[str, torch.Tensor]:
    """BT loss, accuracy, reward std and mean of rewards r (R, 2n): chosen answers then rejected ones."""
    rc, rr = r[:, :n], r[:, n:]
    return {"loss": bradley_terry_loss(rc, rr, reduction="none").mean(1), "acc": preference_accuracy(rc, rr, dim=1),
            "reward_std": r.std(1), "reward_mean": r.mean(1)}


def _evaluate(
    data: PreferenceData,
    backbone: Mapping[str, torch.Tensor] | None,
    w: torch.Tensor,
    offset: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Final metrics of R runs; ``backbone=None`` means every run kept the pretrained backbone."""
    tr, te = data.train, data.test
    n_tr, n_te = len(tr), len(te)
    x_tr, x_te = _answers(tr), _answers(te)
    h0_tr, h0_te = _pretrained_features(data, x_tr), _pretrained_features(data, x_te)
    forward = type(data.backbone).forward_with
    # Orient each test pair by the true reward so accuracy against it is plain accuracy.
    sign = torch.sign(te.r_chosen - te.r_rejected)
    out: dict[str, list[torch.Tensor]] = {}
    if backbone is not None:
        ref = {k: v.detach() for k, v in data.backbone.named_parameters()}
        ref_norm = torch.stack([v.pow(2).sum() for v in ref.values()]).sum().sqrt()
    with torch.no_grad():
        for start in range(0, len(w), _EVAL_CHUNK):
            sl = slice(start, start + _EVAL_CHUNK)
            wc, oc = w[sl], offset[sl]
            if backbone is None:
                h_tr, h_te = h0_tr, h0_te
                change = torch.zeros(len(wc))
                cka = torch.ones(len(wc))
            else:
                p = {k: v[sl] for k, v in backbone.items()}
                h_tr = forward(p, x_tr.expand(len(wc), -1, -1))
                h_te = forward(p, x_te.expand(len(wc), -1, -1))
                change = torch.stack([(p[k] - ref[k]).flatten(1).pow(2).sum(1) for k in ref]).sum(0).sqrt() / ref_norm
                cka = _linear_cka(h0_te, h_te)
            r_tr, r_te = _rewards(h_tr, wc, oc), _rewards(h_te, wc, oc)
            test = _split_stats(r_te, n_te)
            rc, rr = r_te[:, :n_te], r_te[:, n_te:]
            part = {
                "train_loss": bradley_terry_loss(r_tr[:, :n_tr], r_tr[:, n_tr:], reduction="none").mean(1),
                "test_loss": test["loss"], "test_acc": test["acc"],
                "test_true_acc": preference_accuracy(rc * sign, rr * sign, dim=1),
                "reward_std": test["reward_std"], "reward_mean": test["reward_mean"],
                "backbone_change": change, "cka": cka,
            }
            for k, v in part.items():
                out.setdefault(k, []).append(v)
    return {k: torch.cat(v) for k, v in out.items()}


class _Evaluator:
    """Held-out curves during training, on fixed subsets of the validation and test pairs."""

    def __init__(self, data: PreferenceData, pairs: int | None) -> None:
        if data.val is None:
            raise ValueError("eval_every needs a validation split: build the data with make_preference_data")
        self.splits = {"val": data.val, "test": data.test}
        self.n = {k: min(len(s), pairs or len(s)) for k, s in self.splits.items()}
        self.x = {k: _answers(s, self.n[k]) for k, s in self.splits.items()}
        self.h0 = {k: _pretrained_features(data, x) for k, x in self.x.items()}
        self.true_val = self.h0["val"] @ data.true_head
        self.u = data.true_head

    def __call__(self, model: _Model, flat: torch.Tensor, offset: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        w = model.head(flat)
        with torch.no_grad():
            for k, x in self.x.items():
                h = model.features(flat, x.expand(len(flat), -1, -1)) if model.names else self.h0[k]
                for m, v in _split_stats(_rewards(h, w, offset), self.n[k]).items():
                    out[f"{k}_{m}"] = v
                if k == "val":
                    drift = _rewards(h - self.h0[k], w, torch.zeros(len(w))) if model.names \
                        else torch.zeros(len(w), len(x))
                    out["drift_corr"] = _corr(drift, self.true_val)
                    out["drift_std"] = drift.std(1)
            out["head_cos"] = (w @ self.u) / (w.norm(dim=1) * self.u.norm())
        return out


def _corr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each row of a (R, N) with b (N,); NaN for a constant row."""
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean()
    return (a @ b) / (a.norm(dim=1) * b.norm())


def _check_run_args(data: PreferenceData, configs: Sequence[SweepConfig], batch_size: int, blowup: float,
                    eval_every: int | None, eval_pairs: int | None) -> list[SweepConfig]:
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


def _start(data: PreferenceData, configs: Sequence[SweepConfig]) -> dict[str, torch.Tensor]:
    """Per-run quantities fixed before training: head, its std and norm, step-0 loss and gradient."""
    d = data.hidden_size
    w0 = torch.stack([head_weight(c, d) for c in configs])
    # Step-0 loss and gradient depend only on the head: compute them once per distinct head.
    keys = [(c.init, c.seed) for c in configs]
    unique = list(dict.fromkeys(keys))
    where = torch.tensor([unique.index(k) for k in keys])
    first = [keys.index(k) for k in unique]
    loss0, grad0 = _initial_loss_and_grad(data, w0[first])
    return {
        "w0": w0,
        "head_std": torch.tensor([c.head_std(d) for c in configs]),
        "w0_norm": w0.norm(dim=1),
        "initial_loss": loss0[where],
        "grad_norm0": grad0[where],
    }


def eval_points(steps: int, eval_every: int | None) -> list[int]:
    """The steps (number of updates done) at which the models are evaluated: 0, k, 2k, …, and ``steps``."""
    if eval_every is None:
        return []
    return sorted(set(range(0, steps + 1, eval_every)) | {steps})


def _train_group(
    data: PreferenceData,
    configs: Sequence[SweepConfig],
    w0: torch.Tensor,
    initial_loss: torch.Tensor,
    steps: int,
    batch_size: int,
    blowup: float,
    evaluator: _Evaluator | None,
    points: list[int],
    bar: tqdm,
) -> dict[str, object]:
    """Train R runs that share ``train_backbone`` and SGD-or-Adam(W).

    A run that diverges is dropped from the stack, so it is frozen and costs nothing.
    """
    runs = len(configs)
    model = _Model(data, configs[0].train_backbone)
    adam = configs[0].optimizer != "sgd"
    tr = data.train
    n = len(tr)
    lr = torch.stack([c.lr * c.lr_factors(steps) for c in configs])  # (R, steps) float64
    wd = torch.tensor([c.weight_decay for c in configs], dtype=torch.float64)
    offset = torch.tensor([float(c.reward_offset) for c in configs])
    batches = {s: minibatch_indices(s, steps, batch_size, n) for s in sorted({c.seed for c in configs})}
    idx = torch.stack([batches[c.seed] for c in configs])  # (R, steps, B)
    threshold = blowup * initial_loss.clamp(min=math.log(2))
    x_train = _answers(tr)
    # A frozen backbone's features never change: compute them once, look them up per batch.
    source = x_train if model.names else _pretrained_features(data, x_train)

    flat = model.flat(w0)
    final = flat.clone()
    best = flat.clone()
    best_val = torch.full((runs,), float("inf"))
    best_step = torch.zeros(runs, dtype=torch.long)
    exp_avg = torch.zeros_like(flat) if adam else None
    exp_avg_sq = torch.zeros_like(flat) if adam else None
    active = torch.arange(runs)  # original positions of the runs still in the stack
    diverge_step = torch.full((runs,), -1, dtype=torch.long)
    curves = {k: torch.full((runs, steps), float("nan")) for k in ("loss", "reward_std")}
    evals: dict[str, torch.Tensor] = {}
    beta1, beta2 = ADAM_BETAS

    def evaluate(t: int) -> None:
        e = evaluator(model, flat, offset)
        j = points.index(t)
        for k, v in e.items():
            evals.setdefault(k, torch.full((runs, len(points)), float("nan")))[active, j] = v
        better = e["val_loss"] < best_val[active]
        pos = active[better]
        best_val[pos], best_step[pos], best[pos] = e["val_loss"][better], t, flat[better]

    for t in range(steps):
        bar.update(1)
        if not len(active):
            continue
        if evaluator is not None and t in points:
            evaluate(t)
        b = idx[:, t]
        pair_idx = torch.cat([b, b + n], 1)  # chosen rows, then their rejected partners
        # index_select + view: the same gather as source[pair_idx], ~5x faster on CPU.
        batch = source.index_select(0, pair_idx.flatten()).view(len(active), 2 * batch_size, -1)
        flat.requires_grad_(True)
        r = _rewards(model.features(flat, batch), model.head(flat), offset)
        loss = bradley_terry_loss(r[:, :batch_size], r[:, batch_size:], reduction="none").mean(1)
        (grad,) = torch.autograd.grad(loss.sum(), flat)
        with torch.no_grad():
            flat = flat.detach()
            loss = loss.detach()
            curves["loss"][active, t] = loss
            curves["reward_std"][active, t] = r.detach().std(1)
            bad = ~torch.isfinite(loss) | (loss > threshold)
            if bad.any():
                # Keep the last parameters of diverged runs and drop them from the stack.
                gone, keep = active[bad], ~bad
                diverge_step[gone] = t
                final[gone] = flat[bad]
                active, idx, lr, wd, offset, threshold = (
                    active[keep], idx[keep], lr[keep], wd[keep], offset[keep], threshold[keep])
                flat, grad = flat[keep], grad[keep]
                if adam:
                    exp_avg, exp_avg_sq = exp_avg[keep], exp_avg_sq[keep]
                if not len(active):
                    continue
            lr_t = lr[:, t : t + 1]  # (R, 1) this step's scheduled learning rate, float64
            # Adam(W) and SGD exactly as torch.optim computes them (single-tensor path), per run.
            if adam:
                if wd.any():  # AdamW: param.mul_(1 - lr * weight_decay) before the Adam step
                    flat.mul_((1 - lr_t * wd.unsqueeze(1) * model.decay).float())
                step = t + 1
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step_size = (lr_t / (1 - beta1**step)).float()
                denom = (exp_avg_sq.sqrt() / (1 - beta2**step) ** 0.5).add_(ADAM_EPS)
                flat.add_(-step_size * (exp_avg / denom))
            else:
                flat.add_(-lr_t.float() * grad)
    if evaluator is not None and len(active):
        evaluate(steps)
    final[active] = flat
    # An update in the last step can still overflow; later steps would have caught it via the loss.
    finite = torch.isfinite(final).all(1)
    diverge_step[~finite & (diverge_step < 0)] = steps
    return {"final": final, "best": best, "best_step": best_step, "curves": curves, "evals": evals,
            "diverge_step": diverge_step, "model": model}


@contextmanager
def _intra_op_threads(num_threads: int | None) -> Iterator[None]:
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


def run_sweep(
    data: PreferenceData,
    configs: Sequence[SweepConfig],
    steps: int | None = None,
    batch_size: int = 64,
    progress: bool = True,
    blowup: float = 10.0,
    num_threads: int | None = 1,
    *,
    epochs: float | None = None,
    eval_every: int | None = None,
    eval_pairs: int | None = 512,
) -> SweepResult:
    """Train every config on ``data`` in one batched computation (see the module docstring).

    ``num_threads``: torch intra-op threads during the sweep (restored afterwards; None keeps torch's
    setting). The default is 1 because each op is small: on a 2-core machine shared with other
    processes, two spinning OpenMP threads made lesson 05 take 58 s instead of 17 s, while on an idle
    machine two threads gain only ~1.4x.
    """
    configs = _check_run_args(data, configs, batch_size, blowup, eval_every, eval_pairs)
    steps = training_steps(len(data.train), batch_size, steps, epochs)
    with _intra_op_threads(num_threads):
        return _run_batched(data, configs, steps, batch_size, progress, blowup, eval_every, eval_pairs)


def _run_batched(data: PreferenceData, configs: list[SweepConfig], steps: int, batch_size: int, progress: bool,
                 blowup: float, eval_every: int | None, eval_pairs: int | None) -> SweepResult:
    t0 = time.perf_counter()
    runs, d = len(configs), data.hidden_size
    start = _start(data, configs)
    points = eval_points(steps, eval_every)
    evaluator = _Evaluator(data, eval_pairs) if points else None
    pretrained = dict(data.backbone.named_parameters())
    out = {"final": {k: v.clone() for k, v in _stack(pretrained, runs).items()},
           "best": {k: v.clone() for k, v in _stack(pretrained, runs).items()}}
    heads = {"final": torch.empty(runs, d), "best": torch.empty(runs, d)}
    curves = {k: torch.empty(runs, steps) for k in ("loss", "reward_std")}
    evals: dict[str, torch.Tensor] = {}
    diverge_step = torch.empty(runs, dtype=torch.long)
    best_step = torch.zeros(runs, dtype=torch.long)
    kinds = sorted({(c.train_backbone, c.optimizer == "sgd") for c in configs})
    with tqdm(total=steps * len(kinds), desc=f"sweep of {runs} runs", disable=not progress) as bar:
        for kind in kinds:
            ix = torch.tensor([i for i, c in enumerate(configs) if (c.train_backbone, c.optimizer == "sgd") == kind])
            g = _train_group(data, [configs[i] for i in ix], start["w0"][ix], start["initial_loss"][ix],
                             steps, batch_size, blowup, evaluator, points, bar)
            model = g["model"]
            for which in ("final", "best"):
                heads[which][ix] = model.head(g[which])
                for k, v in model.backbone(g[which]).items():
                    out[which][k][ix] = v
            for k, v in g["curves"].items():
                curves[k][ix] = v
            for k, v in g["evals"].items():
                evals.setdefault(k, torch.full((runs, len(points)), float("nan")))[ix] = v
            diverge_step[ix] = g["diverge_step"]
            best_step[ix] = g["best_step"]
    return _assemble(data, configs, start, heads, out, curves, evals, points, best_step, diverge_step, steps,
                     time.perf_counter() - t0)


def _assemble(
    data: PreferenceData,
    configs: list[SweepConfig],
    start: dict[str, torch.Tensor],
    heads: dict[str, torch.Tensor],
    backbones: dict[str, dict[str, torch.Tensor]],
    curves: dict[str, torch.Tensor],
    evals: dict[str, torch.Tensor],
    points: list[int],
    best_step: torch.Tensor,
    diverge_step: torch.Tensor,
    steps: int,
    seconds: float,
) -> SweepResult:
    """Evaluate final (and best-step) parameters and pack everything into a SweepResult (both engines)."""
    runs = len(configs)
    joint = torch.tensor([c.train_backbone for c in configs])
    offset = torch.tensor([float(c.reward_offset) for c in configs])
    metrics = {k: start[k] for k in ("head_std", "w0_norm", "initial_loss", "grad_norm0")}
    diverged = diverge_step >= 0
    for which, prefix in (("final", ""), ("best", "best_")):
        if which == "best" and not points:
            continue
        evaluated: dict[str, torch.Tensor] = {}
        for mask, trained in ((~joint, False), (joint, True)):
            if mask.any():
                bb = {k: v[mask] for k, v in backbones[which].items()} if trained else None
                for k, v in _evaluate(data, bb, heads[which][mask], offset[mask]).items():
                    evaluated.setdefault(k, torch.full((runs,), float("nan")))[mask] = v
        for k, v in evaluated.items():
            metrics[prefix + k] = torch.where(diverged, float("nan"), v)
    if points:
        metrics["best_step"] = best_step
    metrics["diverged"] = diverged
    metrics["diverge_step"] = diverge_step
    return SweepResult(tuple(configs), metrics, curves, data.true_reward_std, seconds,
                       final_head=heads["final"].clone(),
                       final_backbone={k: v.clone() for k, v in backbones["final"].items()},
                       evals=evals, eval_steps=torch.tensor(points, dtype=torch.long), steps=steps,
                       forward_with=type(data.backbone).forward_with)


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
