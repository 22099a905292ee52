"""What a sweep returns: the per-run record both runners fill (``Trained``), and the ``SweepResult`` made from it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields

import torch

from rmlib.data import PreferenceData
from rmlib.lab.sweep.config import SweepConfig, reward_offsets
from rmlib.lab.sweep.evaluate import final_metrics, rewards


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
    """Per-run metrics and curves of a sweep (names and the statistics rule: :mod:`rmlib.lab.sweep`)."""

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
        offset = reward_offsets(self.configs)
        with torch.no_grad():
            h = self.forward_with(self.final_backbone, x.expand(len(self.configs), -1, -1))
            r = rewards(h, self.final_head, offset)
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
        """Mean and std over the selected runs (as :meth:`mask`), by the rule of :func:`over_runs`."""
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


@dataclass
class Trained:
    """What a runner hands over, per run in config order: weights at the end and at the best evaluation,
    the curves, and when each run stopped. Both the batched engine and the plain loop return one."""

    heads: dict[str, torch.Tensor]  # "final", "best": (runs, d)
    backbones: dict[str, dict[str, torch.Tensor]]  # "final", "best": stacked backbone parameters by name
    curves: dict[str, torch.Tensor]  # (runs, steps), NaN after a run diverged
    evals: dict[str, torch.Tensor]  # (runs, evaluations)
    best_step: torch.Tensor  # (runs,) long
    diverge_step: torch.Tensor  # (runs,) long, −1 if the run did not diverge
    evaluations: int = 0  # evaluation points

    @classmethod
    def empty(cls, data: PreferenceData, runs: int, steps: int, evaluations: int) -> Trained:
        """Room for ``runs`` runs: pretrained backbones, NaN curves, no divergence."""
        pretrained = {k: v.detach() for k, v in data.backbone.named_parameters()}
        return cls(heads={w: torch.empty(runs, data.hidden_size) for w in ("final", "best")},
                   backbones={w: {k: v.expand(runs, *v.shape).clone() for k, v in pretrained.items()}
                              for w in ("final", "best")},
                   curves={k: torch.full((runs, steps), float("nan")) for k in ("loss", "reward_std", "misranked")},
                   evals={}, best_step=torch.zeros(runs, dtype=torch.long),
                   diverge_step=torch.full((runs,), -1, dtype=torch.long), evaluations=evaluations)

    def eval_table(self, name: str) -> torch.Tensor:
        """The (runs, evaluations) table of evaluation curve ``name``, NaN until filled."""
        return self.evals.setdefault(name, torch.full((len(self.best_step), self.evaluations), float("nan")))


def assemble(data: PreferenceData, configs: Sequence[SweepConfig], start: Mapping[str, torch.Tensor],
             trained: Trained, points: Sequence[int], steps: int, seconds: float) -> SweepResult:
    """Evaluate the final (and best-step) weights of every run and pack everything into a SweepResult."""
    joint = torch.tensor([c.train_backbone for c in configs])
    offset = reward_offsets(configs)
    metrics = {k: start[k] for k in ("head_std", "w0_norm", "initial_loss", "grad_norm0")}
    diverged = trained.diverge_step >= 0
    for which, prefix in (("final", ""), ("best", "best_")) if points else (("final", ""),):
        for k, v in final_metrics(data, joint, trained.backbones[which], trained.heads[which], offset).items():
            metrics[prefix + k] = torch.where(diverged, float("nan"), v)
    if points:
        metrics["best_step"] = trained.best_step
    metrics["diverged"] = diverged
    metrics["diverge_step"] = trained.diverge_step
    return SweepResult(tuple(configs), metrics, trained.curves, data.true_reward_std, seconds,
                       final_head=trained.heads["final"].clone(),
                       final_backbone={k: v.clone() for k, v in trained.backbones["final"].items()},
                       evals=trained.evals, eval_steps=torch.tensor(list(points), dtype=torch.long), steps=steps,
                       forward_with=type(data.backbone).forward_with)
