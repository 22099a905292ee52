"""Batched Bradley-Terry training: many reward-model configurations trained at once, same maths as a loop.

Public API
----------
``SweepConfig(init="score_head", optimizer="adam", lr=1e-3, train_backbone=True, seed=0, reward_offset=0.0)``
    One training run. ``init`` is a name from ``rmlib.INITIALISERS`` or a float (the std of a normal
    head). ``optimizer`` is ``"adam"`` or ``"sgd"`` with torch.optim's defaults (Adam betas
    (0.9, 0.999), eps 1e-8; SGD without momentum). ``train_backbone=False`` freezes the pretrained
    backbone and trains the head only. ``seed`` fixes the head draw and the minibatch order, so runs
    that share a seed share both (paired comparisons). ``reward_offset`` is a constant head bias added to
    every reward (Bradley-Terry gives a bias exactly zero gradient, so it never moves). Bad values
    raise at construction.
``sweep_grid(inits, optimizers=("adam",), lrs=(1e-3,), train_backbone=(False, True), seeds=(0, 1, 2))``
    The Cartesian product as a list of configs; ``lrs`` may be a dict {optimizer: learning rates}.
``run_sweep(data, configs, steps=200, batch_size=64, progress=True, blowup=10.0, num_threads=1) -> SweepResult``
    Trains every configuration on ``data`` (a :class:`rmlib.data.PreferenceData`) in one batched
    computation: weights of all runs are stacked along a leading run dimension, forward/backward are
    batched matmuls, and Adam/SGD are applied to the stacked tensors exactly as torch.optim does.
``run_sweep_loop(data, configs, ...same arguments...) -> SweepResult``
    The reference: one ``nn.Module`` + ``torch.optim`` loop per configuration. Same maths: batched and
    per-run matmuls round differently, so results agree to ~1e-4 relative (the benchmark's 84-run
    sweep); a chaotic run (a large head at a high learning rate) can amplify that rounding over many
    steps. Used by the tests and ``benchmarks/sweep_speed.py``.
``SweepResult``
    ``.configs`` (tuple of SweepConfig), ``.metrics`` {name: (runs,) tensor}, ``.curves``
    {name: (runs, steps) tensor}, ``.mask(**where)``, ``.mean_std(metric, **where)``, ``.rows()``,
    ``.summary(metrics, by)``; the trained weights ``.final_head`` (runs, d) and ``.final_backbone``
    (stacked MLP weights), and ``.rewards(x)`` to score new inputs with every trained model.

Metrics (one value per run; evaluation metrics are NaN for a diverged run):
    ``head_std`` init std of the head; ``w0_norm`` ‖w₀‖; ``initial_loss`` full training-set loss at
    step 0; ``grad_norm0`` ‖∂L/∂θ_backbone‖ at step 0 on the full training set (what would flow into
    the backbone, also reported for frozen runs); ``train_loss``, ``test_loss`` final BT loss;
    ``test_acc`` agreement with the sampled test labels; ``test_true_acc`` agreement with the true
    reward's ordering; ``reward_std`` std of the final rewards over test answers (compare with
    ``data.true_reward_std``); ``backbone_change`` ‖θ − θ₀‖/‖θ₀‖ over backbone parameters; ``cka``
    linear CKA of final vs pretrained features on test answers; ``diverged`` (bool) and
    ``diverge_step`` (−1 if not).
Curves (per step, on the minibatch, before the update): ``loss`` and ``reward_std``; NaN after a run
diverged.

Divergence: a run diverges at step t when its minibatch loss is non-finite or exceeds
``blowup`` × max(initial loss, log 2) (``diverge_step = steps`` if only the last update overflowed).
It is then frozen (no further updates, removed from the batched computation) while the other runs
continue.
"""

from __future__ import annotations

import copy
import math
import numbers
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from rmlib.data import PreferenceData, RewardMLP
from rmlib.init import get_initialiser, layer_init
from rmlib.losses import bradley_terry_loss, preference_accuracy
from rmlib.seeding import make_generator

OPTIMIZERS = ("adam", "sgd")
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
_BACKBONE = ("W1", "b1", "W2", "b2")
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

    def __post_init__(self) -> None:
        if isinstance(self.init, str):
            get_initialiser(self.init)  # raises KeyError listing the valid names
        elif isinstance(self.init, bool) or not isinstance(self.init, numbers.Real):
            raise TypeError(f"init must be an initialiser name or a float std, got {type(self.init).__name__}")
        elif not (math.isfinite(self.init) and self.init >= 0):
            raise ValueError(f"init std must be finite and non-negative, got {self.init}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {OPTIMIZERS}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, numbers.Real):
            raise TypeError(f"lr must be a real number, got {type(self.lr).__name__}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be finite and positive, got {self.lr}")
        if not isinstance(self.train_backbone, bool):
            raise TypeError(f"train_backbone must be a bool, got {type(self.train_backbone).__name__}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        if isinstance(self.reward_offset, bool) or not isinstance(self.reward_offset, numbers.Real) \
                or not math.isfinite(self.reward_offset):
            raise ValueError(f"reward_offset must be a finite real number, got {self.reward_offset!r}")

    @property
    def init_label(self) -> str:
        return self.init if isinstance(self.init, str) else f"std {self.init:g}"

    def head_std(self, d: int) -> float:
        """Std of each head weight for hidden size ``d``."""
        return get_initialiser(self.init).std(d) if isinstance(self.init, str) else float(self.init)


def sweep_grid(
    inits: Iterable[str | float],
    optimizers: Iterable[str] = ("adam",),
    lrs: Iterable[float] | Mapping[str, Iterable[float]] = (1e-3,),
    train_backbone: Iterable[bool] = (False, True),
    seeds: Iterable[int] = (0, 1, 2),
) -> list[SweepConfig]:
    """Every combination of the given values, as configs (seed varies fastest)."""
    optimizers, inits, seeds, train_backbone = list(optimizers), list(inits), list(seeds), list(train_backbone)
    if isinstance(lrs, Mapping):
        missing = [o for o in optimizers if o not in lrs]
        if missing:
            raise ValueError(f"lrs has no learning rates for optimizer(s) {missing}")
        lr_of = {o: list(lrs[o]) for o in optimizers}
    else:
        lr_list = list(lrs)
        lr_of = {o: lr_list for o in optimizers}
    configs = [
        SweepConfig(init=i, optimizer=o, lr=lr, train_backbone=tb, seed=s)
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
    layer = nn.Module()
    layer.weight = nn.Parameter(torch.empty(1, d))
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


@dataclass
class SweepResult:
    """Per-run metrics and curves of a sweep (see the module docstring for the names)."""

    configs: tuple[SweepConfig, ...]
    metrics: dict[str, torch.Tensor]
    curves: dict[str, torch.Tensor]
    true_reward_std: float
    seconds: float = field(default=float("nan"))
    final_head: torch.Tensor | None = field(default=None, repr=False)  # (runs, d) trained head weights
    final_backbone: dict[str, torch.Tensor] | None = field(default=None, repr=False)  # stacked MLP weights

    def __len__(self) -> int:
        return len(self.configs)

    def rewards(self, x: torch.Tensor) -> torch.Tensor:
        """Rewards of every trained reward model on inputs ``x`` (n, input_dim): shape (runs, n).

        Uses each run's final backbone and head plus its ``reward_offset``; NaN for diverged runs.
        Lets a lesson use the trained reward models downstream (e.g. to score candidate responses).
        """
        if self.final_head is None or self.final_backbone is None:
            raise ValueError("this SweepResult holds no trained weights")
        if not torch.is_tensor(x) or x.dim() != 2 or x.shape[1] != self.final_backbone["W1"].shape[2]:
            raise ValueError(f"x must have shape (n, {self.final_backbone['W1'].shape[2]}), "
                             f"got {tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
        offset = torch.tensor([float(c.reward_offset) for c in self.configs])
        with torch.no_grad():
            h = _mlp(self.final_backbone, x.expand(len(self.configs), -1, -1))
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

    def mean_std(self, metric: str, **where: object) -> tuple[float, float]:
        """Mean and std over the non-diverged runs selected by ``where`` (as :meth:`mask`).

        NaN when no run (mean) or fewer than two runs (std) are left.
        """
        if metric not in self.metrics:
            raise KeyError(f"unknown metric {metric!r}; choose from {sorted(self.metrics)}")
        v = self.metrics[metric][self.mask(**where) & ~self.metrics["diverged"]].double()
        return (v.mean().item() if len(v) else float("nan"), v.std().item() if len(v) > 1 else float("nan"))

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
        """Mean and std over seeds (non-diverged runs) of each metric, per group of ``by`` fields.

        Each row has the group's fields, ``n`` runs, ``diverged`` count, and ``<metric>_mean`` /
        ``<metric>_std`` (NaN when fewer than 1 / 2 runs survived).
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
            ok = ix[~self.metrics["diverged"][ix]]
            row: dict[str, object] = dict(zip(by, key))
            row["n"], row["diverged"] = len(idx), len(idx) - len(ok)
            for m in metrics:
                v = self.metrics[m][ok].double()
                row[f"{m}_mean"] = v.mean().item() if len(v) else float("nan")
                row[f"{m}_std"] = v.std().item() if len(v) > 1 else float("nan")
            out.append(row)
        return out


# ---------------------------------------------------------------------------------------------
# Stacked maths: every tensor has a leading run dimension R.


def _stack_backbone(data: PreferenceData, runs: int) -> dict[str, torch.Tensor]:
    bb = data.backbone
    src = {"W1": bb.fc1.weight, "b1": bb.fc1.bias, "W2": bb.fc2.weight, "b2": bb.fc2.bias}
    return {k: v.detach().unsqueeze(0).repeat(runs, *([1] * v.dim())) for k, v in src.items()}


def _mlp(p: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Stacked MLPBackbone: x (R, N, in) → h (R, N, d), the same ops as MLPBackbone per run."""
    h = F.gelu(torch.baddbmm(p["b1"].unsqueeze(1), x, p["W1"].transpose(1, 2)))
    return torch.baddbmm(p["b2"].unsqueeze(1), h, p["W2"].transpose(1, 2))


def _rewards(h: torch.Tensor, w: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """h (R, N, d) or (N, d) shared, w (R, d) → rewards (R, N)."""
    if h.dim() == 2:
        return (h @ w.T).T + offset.unsqueeze(1)
    return torch.bmm(h, w.unsqueeze(2)).squeeze(2) + offset.unsqueeze(1)


def _pretrained_features(data: PreferenceData, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return data.backbone(x)


def _initial_loss_and_grad(data: PreferenceData, w0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-training-set BT loss at step 0 and ‖∂L/∂θ_backbone‖ at the pretrained θ, per head in w0."""
    x = torch.cat([data.train.x_chosen, data.train.x_rejected])
    n = len(data.train)
    losses, norms = [], []
    for w in w0.split(_EVAL_CHUNK):
        p = {k: v.requires_grad_(True) for k, v in _stack_backbone(data, len(w)).items()}
        r = _rewards(_mlp(p, x.expand(len(w), -1, -1)), w, torch.zeros(len(w)))
        loss = bradley_terry_loss(r[:, :n], r[:, n:], reduction="none").mean(1)
        grads = torch.autograd.grad(loss.sum(), [p[k] for k in _BACKBONE])
        losses.append(loss.detach())
        norms.append(torch.stack([g.flatten(1).pow(2).sum(1) for g in grads]).sum(0).sqrt())
    return torch.cat(losses), torch.cat(norms)


def _linear_cka(h0: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Linear CKA (Kornblith et al. 2019) of features h0 (N, d) with each run's h (R, N, d).

    CKA = ‖AᵀB‖²_F / (‖AᵀA‖_F ‖BᵀB‖_F) for column-centred A, B: 1 for features equal up to a rotation
    and scale, lower as they drift apart.
    """
    a = h0 - h0.mean(0)
    b = h - h.mean(1, keepdim=True)
    cross = (a.T @ b).pow(2).sum((1, 2))
    self_a = (a.T @ a).pow(2).sum().sqrt()
    self_b = (b.transpose(1, 2) @ b).pow(2).sum((1, 2)).sqrt()
    return cross / (self_a * self_b)


def _evaluate(
    data: PreferenceData,
    backbone: Mapping[str, torch.Tensor] | None,
    w: torch.Tensor,
    offset: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Final metrics of R runs; ``backbone=None`` means every run kept the pretrained backbone."""
    tr, te = data.train, data.test
    n_tr, n_te = len(tr), len(te)
    x_tr = torch.cat([tr.x_chosen, tr.x_rejected])
    x_te = torch.cat([te.x_chosen, te.x_rejected])
    h0_tr, h0_te = _pretrained_features(data, x_tr), _pretrained_features(data, x_te)
    # Orient each test pair by the true reward so accuracy against it is plain accuracy.
    sign = torch.sign(te.r_chosen - te.r_rejected)
    out: dict[str, list[torch.Tensor]] = {k: [] for k in
                                          ("train_loss", "test_loss", "test_acc", "test_true_acc", "reward_std",
                                           "backbone_change", "cka")}
    if backbone is not None:
        ref = _stack_backbone(data, 1)
        ref_norm = torch.stack([ref[k].pow(2).sum() for k in _BACKBONE]).sum().sqrt()
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
                h_tr = _mlp(p, x_tr.expand(len(wc), -1, -1))
                h_te = _mlp(p, x_te.expand(len(wc), -1, -1))
                change = torch.stack([(p[k] - ref[k]).flatten(1).pow(2).sum(1) for k in _BACKBONE]).sum(0).sqrt()
                change = change / ref_norm
                cka = _linear_cka(h0_te, h_te)
            r_tr, r_te = _rewards(h_tr, wc, oc), _rewards(h_te, wc, oc)
            rc, rr = r_te[:, :n_te], r_te[:, n_te:]
            out["train_loss"].append(bradley_terry_loss(r_tr[:, :n_tr], r_tr[:, n_tr:], reduction="none").mean(1))
            out["test_loss"].append(bradley_terry_loss(rc, rr, reduction="none").mean(1))
            out["test_acc"].append(preference_accuracy(rc, rr, dim=1))
            out["test_true_acc"].append(preference_accuracy(rc * sign, rr * sign, dim=1))
            out["reward_std"].append(r_te.std(1))
            out["backbone_change"].append(change)
            out["cka"].append(cka)
    return {k: torch.cat(v) for k, v in out.items()}


def _check_run_args(data: PreferenceData, configs: Sequence[SweepConfig], steps: int, batch_size: int,
                    blowup: float) -> list[SweepConfig]:
    if not isinstance(data, PreferenceData):
        raise TypeError(f"data must be a PreferenceData (see make_preference_data), got {type(data).__name__}")
    configs = list(configs)
    if not configs:
        raise ValueError("configs is empty")
    bad = [type(c).__name__ for c in configs if not isinstance(c, SweepConfig)]
    if bad:
        raise TypeError(f"configs must all be SweepConfig, got {sorted(set(bad))}")
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if batch_size > len(data.train):
        raise ValueError(f"batch_size {batch_size} exceeds the {len(data.train)} training pairs")
    if not (isinstance(blowup, numbers.Real) and blowup > 1):
        raise ValueError(f"blowup must be a number > 1, got {blowup!r}")
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


def _train_group(
    data: PreferenceData,
    configs: Sequence[SweepConfig],
    w0: torch.Tensor,
    initial_loss: torch.Tensor,
    steps: int,
    batch_size: int,
    blowup: float,
    bar: tqdm,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
    """Train R runs that share ``train_backbone`` and ``optimizer``.

    Returns final parameters (``"w"`` and, if the backbone trains, ``W1``…``b2``), curves and
    diverge_step. A run that diverges is dropped from the stack, so it is frozen and costs nothing.
    """
    runs = len(configs)
    train_backbone, adam = configs[0].train_backbone, configs[0].optimizer == "adam"
    tr = data.train
    n = len(tr)
    lr = torch.tensor([c.lr for c in configs], dtype=torch.float64)
    offset = torch.tensor([float(c.reward_offset) for c in configs])
    batches = {s: minibatch_indices(s, steps, batch_size, n) for s in sorted({c.seed for c in configs})}
    idx = torch.stack([batches[c.seed] for c in configs])  # (R, steps, B)
    threshold = blowup * initial_loss.clamp(min=math.log(2))

    params = {"w": w0.clone()}
    if train_backbone:
        params.update(_stack_backbone(data, runs))
        source = torch.cat([tr.x_chosen, tr.x_rejected])
    else:
        # A frozen backbone's features never change: compute them once, look them up per batch.
        source = _pretrained_features(data, torch.cat([tr.x_chosen, tr.x_rejected]))
    final = {k: v.clone() for k, v in params.items()}
    exp_avg = {k: torch.zeros_like(v) for k, v in params.items()} if adam else {}
    exp_avg_sq = {k: torch.zeros_like(v) for k, v in params.items()} if adam else {}
    active = torch.arange(runs)  # original positions of the runs still in the stack
    diverge_step = torch.full((runs,), -1, dtype=torch.long)
    loss_curve = torch.full((runs, steps), float("nan"))
    std_curve = torch.full((runs, steps), float("nan"))
    beta1, beta2 = ADAM_BETAS

    def per_run(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return v.view(-1, *([1] * (like.dim() - 1)))

    for t in range(steps):
        bar.update(1)
        if not len(active):
            continue
        b = idx[:, t]
        pair_idx = torch.cat([b, b + n], 1)  # chosen rows, then their rejected partners
        # index_select + view: the same gather as source[pair_idx], ~5x faster on CPU.
        batch = source.index_select(0, pair_idx.flatten()).view(len(active), 2 * batch_size, -1)
        for v in params.values():
            v.requires_grad_(True)
        h = _mlp(params, batch) if train_backbone else batch
        r = _rewards(h, params["w"], offset)
        loss = bradley_terry_loss(r[:, :batch_size], r[:, batch_size:], reduction="none").mean(1)
        grads = torch.autograd.grad(loss.sum(), list(params.values()))
        with torch.no_grad():
            params = {k: v.detach() for k, v in params.items()}
            loss = loss.detach()
            loss_curve[active, t] = loss
            std_curve[active, t] = r.detach().std(1)
            bad = ~torch.isfinite(loss) | (loss > threshold)
            if bad.any():
                # Keep the last parameters of diverged runs and drop them from the stack.
                gone, keep = active[bad], ~bad
                diverge_step[gone] = t
                for k, v in params.items():
                    final[k][gone] = v[bad]
                active, idx, lr, offset, threshold = active[keep], idx[keep], lr[keep], offset[keep], threshold[keep]
                params = {k: v[keep] for k, v in params.items()}
                grads = [g[keep] for g in grads]
                exp_avg = {k: v[keep] for k, v in exp_avg.items()}
                exp_avg_sq = {k: v[keep] for k, v in exp_avg_sq.items()}
                if not len(active):
                    continue
            # Adam and SGD exactly as torch.optim computes them (single-tensor path), per run's lr.
            if adam:
                step = t + 1
                step_size = (lr / (1 - beta1**step)).float()
                bc2_sqrt = (1 - beta2**step) ** 0.5
                for (k, p), g in zip(params.items(), grads):
                    exp_avg[k].lerp_(g, 1 - beta1)
                    exp_avg_sq[k].mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    denom = (exp_avg_sq[k].sqrt() / bc2_sqrt).add_(ADAM_EPS)
                    p.add_(per_run(-step_size, p) * (exp_avg[k] / denom))
            else:
                for p, g in zip(params.values(), grads):
                    p.add_(per_run(-lr.float(), p) * g)
    for k, v in params.items():
        final[k][active] = v.detach()
    # An update in the last step can still overflow; later steps would have caught it via the loss.
    finite = torch.stack([torch.isfinite(v).flatten(1).all(1) for v in final.values()]).all(0)
    diverge_step[~finite & (diverge_step < 0)] = steps
    return final, {"loss": loss_curve, "reward_std": std_curve}, diverge_step


def _assemble(
    data: PreferenceData,
    configs: list[SweepConfig],
    start: dict[str, torch.Tensor],
    final_w: torch.Tensor,
    final_backbone: dict[str, torch.Tensor],
    joint: torch.Tensor,
    curves: dict[str, torch.Tensor],
    diverge_step: torch.Tensor,
    seconds: float,
) -> SweepResult:
    """Evaluate final parameters and pack everything into a SweepResult (shared by both engines)."""
    runs = len(configs)
    offset = torch.tensor([float(c.reward_offset) for c in configs])
    metrics = {k: start[k] for k in ("head_std", "w0_norm", "initial_loss", "grad_norm0")}
    evals: dict[str, torch.Tensor] = {}
    for mask, trained in ((~joint, False), (joint, True)):
        if mask.any():
            bb = {k: v[mask] for k, v in final_backbone.items()} if trained else None
            part = _evaluate(data, bb, final_w[mask], offset[mask])
            for k, v in part.items():
                evals.setdefault(k, torch.full((runs,), float("nan")))[mask] = v
    diverged = diverge_step >= 0
    for k, v in evals.items():
        metrics[k] = torch.where(diverged, float("nan"), v)
    metrics["diverged"] = diverged
    metrics["diverge_step"] = diverge_step
    return SweepResult(tuple(configs), metrics, curves, data.true_reward_std, seconds,
                       final_head=final_w.clone(), final_backbone={k: v.clone() for k, v in final_backbone.items()})


@contextmanager
def _intra_op_threads(num_threads: int | None) -> Iterator[None]:
    """Run the block with ``num_threads`` intra-op threads (None: leave torch's setting), then restore."""
    if num_threads is None:
        yield
        return
    if isinstance(num_threads, bool) or not isinstance(num_threads, numbers.Integral) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive int or None, got {num_threads!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_sweep(
    data: PreferenceData,
    configs: Sequence[SweepConfig],
    steps: int = 200,
    batch_size: int = 64,
    progress: bool = True,
    blowup: float = 10.0,
    num_threads: int | None = 1,
) -> SweepResult:
    """Train every config on ``data`` in one batched computation (see the module docstring).

    ``num_threads``: torch intra-op threads during the sweep (restored afterwards; None keeps torch's
    setting). The default is 1 because each op is small: on a 2-core machine shared with other
    processes, two spinning OpenMP threads made lesson 05 take 58 s instead of 17 s, while on an idle
    machine two threads gain only ~1.4x.
    """
    configs = _check_run_args(data, configs, steps, batch_size, blowup)
    with _intra_op_threads(num_threads):
        return _run_batched(data, configs, steps, batch_size, progress, blowup)


def _run_batched(data: PreferenceData, configs: list[SweepConfig], steps: int, batch_size: int, progress: bool,
                 blowup: float) -> SweepResult:
    t0 = time.perf_counter()
    runs, d = len(configs), data.hidden_size
    start = _start(data, configs)
    joint = torch.tensor([c.train_backbone for c in configs])
    final_w = torch.empty(runs, d)
    final_backbone = {k: v.repeat(runs, *([1] * (v.dim() - 1))) for k, v in _stack_backbone(data, 1).items()}
    curves = {k: torch.empty(runs, steps) for k in ("loss", "reward_std")}
    diverge_step = torch.empty(runs, dtype=torch.long)
    kinds = sorted({(c.train_backbone, c.optimizer) for c in configs})
    with tqdm(total=steps * len(kinds), desc=f"sweep of {runs} runs", disable=not progress) as bar:
        for kind in kinds:
            ix = torch.tensor([i for i, c in enumerate(configs) if (c.train_backbone, c.optimizer) == kind])
            params, group_curves, group_div = _train_group(
                data, [configs[i] for i in ix], start["w0"][ix], start["initial_loss"][ix],
                steps, batch_size, blowup, bar,
            )
            final_w[ix] = params["w"]
            for k in _BACKBONE:
                if k in params:
                    final_backbone[k][ix] = params[k]
            for k, v in group_curves.items():
                curves[k][ix] = v
            diverge_step[ix] = group_div
    return _assemble(data, configs, start, final_w, final_backbone, joint, curves, diverge_step,
                     time.perf_counter() - t0)


def run_sweep_loop(
    data: PreferenceData,
    configs: Sequence[SweepConfig],
    steps: int = 200,
    batch_size: int = 64,
    progress: bool = True,
    blowup: float = 10.0,
    num_threads: int | None = 1,
) -> SweepResult:
    """The reference engine: for each config, a plain ``RewardMLP`` trained with ``torch.optim``.

    Same arguments as :func:`run_sweep`.
    """
    configs = _check_run_args(data, configs, steps, batch_size, blowup)
    with _intra_op_threads(num_threads):
        return _run_loop(data, configs, steps, batch_size, progress, blowup)


def _run_loop(data: PreferenceData, configs: list[SweepConfig], steps: int, batch_size: int, progress: bool,
              blowup: float) -> SweepResult:
    t0 = time.perf_counter()
    runs, d = len(configs), data.hidden_size
    start = _start(data, configs)
    tr = data.train
    x_all = torch.cat([tr.x_chosen, tr.x_rejected])
    n = len(tr)
    final_w = torch.empty(runs, d)
    final_backbone = {k: torch.empty(runs, *v.shape[1:]) for k, v in _stack_backbone(data, 1).items()}
    curves = {k: torch.full((runs, steps), float("nan")) for k in ("loss", "reward_std")}
    diverge_step = torch.full((runs,), -1, dtype=torch.long)
    for i, c in enumerate(tqdm(configs, desc=f"loop over {runs} runs", disable=not progress)):
        with torch.random.fork_rng(devices=[]):  # RewardMLP's default head init must not move global RNG
            model = RewardMLP(copy.deepcopy(data.backbone).requires_grad_(c.train_backbone))
        with torch.no_grad():
            model.score.weight.copy_(start["w0"][i].unsqueeze(0))
        trained = list(model.parameters()) if c.train_backbone else list(model.score.parameters())
        opt = (torch.optim.Adam(trained, lr=c.lr, betas=ADAM_BETAS, eps=ADAM_EPS) if c.optimizer == "adam"
               else torch.optim.SGD(trained, lr=c.lr))
        threshold = blowup * max(start["initial_loss"][i].item(), math.log(2))
        idx = minibatch_indices(c.seed, steps, batch_size, n)
        for t in range(steps):
            r = model(x_all[torch.cat([idx[t], idx[t] + n])]) + c.reward_offset
            loss = bradley_terry_loss(r[:batch_size], r[batch_size:])
            curves["loss"][i, t], curves["reward_std"][i, t] = loss.item(), r.detach().std().item()
            if not math.isfinite(loss.item()) or loss.item() > threshold:
                diverge_step[i] = t
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
        if diverge_step[i] < 0 and not all(torch.isfinite(p).all() for p in trained):
            diverge_step[i] = steps  # the last update overflowed (earlier ones show in the loss)
        final_w[i] = model.score.weight.detach().reshape(d)
        bb = model.backbone
        for k, v in zip(_BACKBONE, (bb.fc1.weight, bb.fc1.bias, bb.fc2.weight, bb.fc2.bias)):
            final_backbone[k][i] = v.detach()
    joint = torch.tensor([c.train_backbone for c in configs])
    return _assemble(data, configs, start, final_w, final_backbone, joint, curves, diverge_step,
                     time.perf_counter() - t0)


__all__ = [
    "OPTIMIZERS",
    "SweepConfig",
    "SweepResult",
    "head_weight",
    "minibatch_indices",
    "run_sweep",
    "run_sweep_loop",
    "sweep_grid",
]
