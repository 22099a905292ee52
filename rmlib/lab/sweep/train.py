"""The batched engine: every run of a sweep as one row of a flat parameter stack, trained in one computation."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from rmlib.data import MLPBackbone, PreferenceData
from rmlib.lab.sweep.config import SweepConfig, check_run_args, eval_points, intra_op_threads, minibatch_indices, \
    reward_offsets, training_steps
from rmlib.lab.sweep.evaluate import Evaluator, answers, pretrained_features, rewards, start_quantities
from rmlib.lab.sweep.result import SweepResult, Trained, assemble
from rmlib.losses import bradley_terry_loss, preference_accuracy
from rmlib.theory import ADAM_BETAS, adam_step


class FlatLayout:
    """Where a run's trained parameters sit in its row of the (runs, P) stack: the head first, then
    (if the backbone trains) the backbone's parameters in ``named_parameters`` order."""

    def __init__(self, data: PreferenceData, train_backbone: bool) -> None:
        self.forward_with = type(data.backbone).forward_with
        self.d = data.hidden_size
        self.pretrained = {k: v.detach() for k, v in data.backbone.named_parameters()}
        self.names = list(self.pretrained) if train_backbone else []
        self.shapes = [self.pretrained[k].shape for k in self.names]
        sizes = [self.d] + [self.pretrained[k].numel() for k in self.names]
        self.bounds = torch.tensor([0, *sizes]).cumsum(0).tolist()
        # Hugging Face's Trainer decays every weight but no bias (nor LayerNorm): the head and weight matrices.
        self.decayed = [slice(a, b) for k, a, b in zip(["head", *self.names], self.bounds, self.bounds[1:])
                        if not k.endswith("bias")]
        # The hand-written step knows fc2(gelu(fc1 x)) only; anything else is left to autograd.
        self.hand = (not self.names or (type(data.backbone) is MLPBackbone
                                         and self.names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]))
        self._step: _HandStep | None = None

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

    def loss_and_grad(self, flat: torch.Tensor, batch: torch.Tensor, offset: torch.Tensor,
                      b: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each run's minibatch loss (R,), its rewards (R, 2b) and its gradient (R, P).

        For the course's backbone (fc1, GELU, fc2) or a frozen one, :class:`_HandStep` does it with the
        same kernels autograd would call, into reused buffers; any other backbone goes through autograd.
        """
        if self.hand:
            if self._step is None or self._step.shape != (len(flat), *batch.shape[1:]):
                self._step = _HandStep(self, len(flat), batch.shape[1], batch.shape[2])
            return self._step(flat, batch, offset, b)
        return self.autograd_loss_and_grad(flat, batch, offset, b)

    def autograd_loss_and_grad(self, flat: torch.Tensor, batch: torch.Tensor, offset: torch.Tensor,
                               b: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`loss_and_grad` through autograd, without keeping a graph.

        The head and each backbone tensor enter autograd as separate leaves viewing ``flat``: a gradient
        taken through slices of one leaf would cost a zero-filled (R, P) tensor and a sum per slice.
        """
        sizes = [self.d] + [s.numel() for s in self.shapes]
        leaves = [v.detach().requires_grad_(True) for v in flat.split(sizes, 1)]
        head, params = leaves[0], {k: v.view(len(flat), *s) for k, v, s in zip(self.names, leaves[1:], self.shapes)}
        h = self.forward_with(params, batch) if self.names else batch
        r = rewards(h, head, offset)
        loss = bradley_terry_loss(r[:, :b], r[:, b:], reduction="none").mean(1)
        grads = torch.autograd.grad(loss.sum(), leaves)
        grad = grads[0] if len(grads) == 1 else torch.cat(grads, 1)
        return loss.detach(), r.detach(), grad


class _HandStep:
    """One training step's forward and backward for R runs, written out op by op into reused buffers.

    The forward, ``grad @ W``, the bias sums and GELU's backward are the kernels autograd calls, on
    operands laid out as autograd lays them out; the weight and head gradients are the same dot products
    as autograd's, formed untransposed (see the comments below). The loss, rewards and gradient are the
    same to the bit (``tests/test_engine.py`` checks it against :meth:`FlatLayout.autograd_loss_and_grad`,
    on whichever CPU kernels the tests run with). What it saves, per step: autograd's bookkeeping, a
    fresh allocation (and page faults)
    for every intermediate, the (R, P) concatenation of the gradient, and the head's outer product
    ∂r/∂h = dr ⊗ w, which autograd computes as a batched matrix product with an inner dimension of 1:
    one multiplication per element, the same number as the elementwise ``mul`` used here, 7× faster.
    Only the loss itself (−log σ of reward differences, on the (R, 2b) rewards) goes through autograd.
    """

    def __init__(self, layout: FlatLayout, runs: int, n: int, width: int) -> None:
        self.layout, self.shape = layout, (runs, n, width)
        d = layout.d
        new = torch.empty
        self.grad = new(runs, layout.bounds[-1])
        self.r = new(runs, n, 1)
        self.gw = new(runs, 1, d)
        self.dh = new(runs, n, d)
        if layout.names:
            hidden = layout.shapes[0][0]
            self.a1, self.g1, self.h = new(runs, n, hidden), new(runs, n, hidden), new(runs, n, d)
            self.dg1, self.da1 = new(runs, n, hidden), new(runs, n, hidden)
            self.gw1, self.gw2 = new(runs, hidden, width), new(runs, d, hidden)

    def __call__(self, flat: torch.Tensor, x: torch.Tensor, offset: torch.Tensor,
                 b: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lay, runs = self.layout, len(flat)
        w = lay.head(flat)
        grad = self.grad
        with torch.no_grad():
            if lay.names:
                p = lay.backbone(flat)
                w1, b1, w2, b2 = (p[k] for k in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"))
                torch.baddbmm(b1.unsqueeze(1), x, w1.transpose(1, 2), out=self.a1)
                torch.ops.aten.gelu.out(self.a1, out=self.g1)
                h = torch.baddbmm(b2.unsqueeze(1), self.g1, w2.transpose(1, 2), out=self.h)
            else:
                h = x
            r = torch.bmm(h, w.unsqueeze(2), out=self.r).squeeze(2) + offset.unsqueeze(1)
        r.requires_grad_(True)
        with torch.enable_grad():
            loss = bradley_terry_loss(r[:, :b], r[:, b:], reduction="none").mean(1)
        (dr,) = torch.autograd.grad(loss.sum(), r)
        with torch.no_grad():
            dr = dr.unsqueeze(2)  # (R, N, 1)
            # ∂L/∂w = hᵀ dr, computed as the row vector drᵀ h: the same sums in the same order (checked
            # bit for bit), ~10× faster than MKL's matrix-times-vector path for the column form.
            grad[:, : lay.d].copy_(torch.bmm(dr.transpose(1, 2), h, out=self.gw).squeeze(1))
            if lay.names:
                sl = dict(zip(lay.names, (slice(a, c) for a, c in zip(lay.bounds[1:], lay.bounds[2:]))))
                gp = {k: grad[:, sl[k]].view(runs, *s) for k, s in zip(lay.names, lay.shapes)}
                dh = torch.mul(dr, w.unsqueeze(1), out=self.dh)
                # Autograd forms (zᵀ dh)ᵀ; dhᵀ z is the same dot products, bit for bit, without the transpose.
                gp["fc2.weight"].copy_(torch.bmm(dh.transpose(1, 2), self.g1, out=self.gw2))
                torch.sum(dh, 1, out=gp["fc2.bias"])
                torch.bmm(dh, w2, out=self.dg1)
                torch.ops.aten.gelu_backward.grad_input(self.dg1, self.a1, grad_input=self.da1)
                gp["fc1.weight"].copy_(torch.bmm(self.da1.transpose(1, 2), x, out=self.gw1))
                torch.sum(self.da1, 1, out=gp["fc1.bias"])
        return loss.detach(), r.detach(), grad


class RunStack:
    """The runs still training: their positions in the group and every per-run tensor, kept in step.

    A run that diverges leaves through :meth:`drop`, the one place where the per-run tensors are cut.
    """

    def __init__(self, **per_run: torch.Tensor | None) -> None:
        self._tensors = {k: v for k, v in per_run.items() if v is not None}
        runs = {len(v) for v in self._tensors.values()}
        if len(runs) != 1:
            raise ValueError(f"per-run tensors must share their first dimension, got {sorted(runs)}")
        self.positions = torch.arange(runs.pop())

    def __len__(self) -> int:
        return len(self.positions)

    def __contains__(self, name: str) -> bool:
        return name in self._tensors

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._tensors[name]

    def drop(self, gone: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Remove the runs where the bool mask ``gone`` is set; return their positions and tensors."""
        keep = ~gone
        left = (self.positions[gone], {k: v[gone] for k, v in self._tensors.items()})
        self.positions = self.positions[keep]
        self._tensors = {k: v[keep] for k, v in self._tensors.items()}
        return left


class _Group:
    """R runs that share ``train_backbone`` and SGD-or-Adam(W), trained together; results go to ``out``
    at the rows ``rows`` (the runs' places in the sweep)."""

    def __init__(self, data: PreferenceData, configs: Sequence[SweepConfig], w0: torch.Tensor,
                 initial_loss: torch.Tensor, steps: int, batch_size: int, blowup: float) -> None:
        self.layout = layout = FlatLayout(data, configs[0].train_backbone)
        self.adam = configs[0].optimizer != "sgd"
        self.betas = (ADAM_BETAS[0], configs[0].adam_beta2)
        self.batch_size = batch_size
        n = len(data.train)
        x_train = answers(data.train)
        # A frozen backbone's features never change: compute them once, look them up per batch.
        self.source = x_train if layout.names else pretrained_features(data, x_train)
        batches = {s: minibatch_indices(s, steps, batch_size, n) for s in sorted({c.seed for c in configs})}
        idx = torch.stack([batches[c.seed] for c in configs])  # (R, steps, B)
        flat = layout.flat(w0)
        wd = torch.tensor([c.weight_decay for c in configs], dtype=torch.float64)
        self.stack = RunStack(
            flat=flat,
            pairs=torch.cat([idx, idx + n], 2),  # (R, steps, 2B): chosen rows, then their rejected partners
            lr_table=torch.stack([c.lr * c.lr_factors(steps) for c in configs]),  # (R, steps) float64
            weight_decay=wd.unsqueeze(1) if bool(wd.any()) else None,  # (R, 1) float64
            offset=reward_offsets(configs),
            threshold=blowup * initial_loss.clamp(min=math.log(2)),
            exp_avg=torch.zeros_like(flat) if self.adam else None,
            exp_avg_sq=torch.zeros_like(flat) if self.adam else None,
        )
        self.final = flat.clone()
        self.best = flat.clone()
        self.best_val = torch.full((len(configs),), float("inf"))
        self.batch: torch.Tensor | None = None  # this step's inputs, gathered into one reused buffer
        self.update: torch.Tensor | None = None  # Adam's update, reused step after step

    def evaluate(self, evaluator: Evaluator, out: Trained, rows: torch.Tensor, t: int, j: int) -> None:
        """Record every evaluation curve at evaluation point j (step t); keep the best weights by val loss."""
        s = self.stack
        e = evaluator(self.layout, s["flat"], s["offset"])
        for k, v in e.items():
            out.eval_table(k)[rows[s.positions], j] = v
        better = e["val_loss"] < self.best_val[s.positions]
        pos = s.positions[better]
        self.best_val[pos], self.best[pos] = e["val_loss"][better], s["flat"][better]
        out.best_step[rows[pos]] = t

    def step(self, t: int, out: Trained, rows: torch.Tensor) -> None:
        """One minibatch update of every run in the stack (update t, from 0), dropping runs that diverge."""
        s, b = self.stack, self.batch_size
        # index_select + view: the same gather as source[pairs], ~5x faster on CPU; into a reused buffer.
        rows_t = s["pairs"][:, t].flatten()
        if self.batch is None or len(self.batch) != len(rows_t):
            self.batch = self.source.new_empty(len(rows_t), self.source.shape[1])
        batch = torch.index_select(self.source, 0, rows_t, out=self.batch).view(len(s), 2 * b, -1)
        loss, r, grad = self.layout.loss_and_grad(s["flat"], batch, s["offset"], b)
        with torch.no_grad():
            out.curves["loss"][rows[s.positions], t] = loss
            out.curves["reward_std"][rows[s.positions], t] = r.std(1)
            out.curves["misranked"][rows[s.positions], t] = 1 - preference_accuracy(r[:, :b], r[:, b:], dim=1)
            bad = ~torch.isfinite(loss) | (loss > s["threshold"])
            if bad.any():
                # Keep the last parameters of diverged runs and drop them from the stack.
                gone, left = s.drop(bad)
                out.diverge_step[rows[gone]] = t
                self.final[gone] = left["flat"]
                grad = grad[~bad]
                if not len(s):
                    return
            lr = s["lr_table"][:, t : t + 1]  # (R, 1) this step's scheduled learning rate, float64
            if self.adam:  # Adam(W) as torch.optim computes it, one learning rate per run
                if self.update is None or self.update.shape != grad.shape:
                    self.update = torch.empty_like(grad)
                adam_step(s["flat"], grad, s["exp_avg"], s["exp_avg_sq"], t + 1, lr,
                          s["weight_decay"] if "weight_decay" in s else None, betas=self.betas,
                          decay_columns=self.layout.decayed, buffer=self.update)
            else:
                s["flat"].add_(-lr.float() * grad)

    def finish(self, steps: int, out: Trained, rows: torch.Tensor) -> None:
        """Write the final and best weights of every run to ``out``; flag a run whose last update overflowed."""
        self.final[self.stack.positions] = self.stack["flat"]
        # An update in the last step can still overflow; later steps would have caught it via the loss.
        finite = torch.isfinite(self.final).all(1)
        late = ~finite & (out.diverge_step[rows] < 0)
        out.diverge_step[rows[late]] = steps
        for which, flat in (("final", self.final), ("best", self.best)):
            out.heads[which][rows] = self.layout.head(flat)
            for k, v in self.layout.backbone(flat).items():
                out.backbones[which][k][rows] = v


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
    """Train every config on ``data`` in one batched computation (see :mod:`rmlib.lab.sweep`).

    ``num_threads``: torch intra-op threads during the sweep (restored afterwards; None keeps torch's
    setting). The default is 1 because each op is small: on a busy 2-core machine two spinning threads
    cost more than they gain (``benchmarks/README.md``).
    """
    configs = check_run_args(data, configs, batch_size, blowup, eval_every, eval_pairs)
    steps = training_steps(len(data.train), batch_size, steps, epochs)
    with intra_op_threads(num_threads):
        t0 = time.perf_counter()
        start = start_quantities(data, configs)
        points = eval_points(steps, eval_every)
        trained = Trained.empty(data, len(configs), steps, len(points))
        evaluator = Evaluator(data, eval_pairs) if points else None
        kinds = sorted({(c.train_backbone, c.optimizer == "sgd", c.adam_beta2) for c in configs})
        with tqdm(total=steps * len(kinds), desc=f"sweep of {len(configs)} runs", disable=not progress) as bar:
            for kind in kinds:
                rows = torch.tensor([i for i, c in enumerate(configs) if (c.train_backbone, c.optimizer == "sgd", c.adam_beta2) == kind])
                group = _Group(data, [configs[i] for i in rows], start["w0"][rows], start["initial_loss"][rows],
                               steps, batch_size, blowup)
                _train(group, evaluator, points, steps, trained, rows, bar)
        return assemble(data, configs, start, trained, points, steps, time.perf_counter() - t0)


def _train(group: _Group, evaluator: Evaluator | None, points: list[int], steps: int, out: Trained,
           rows: torch.Tensor, bar: tqdm) -> None:
    at = {t: j for j, t in enumerate(points)}
    for t in range(steps):
        if not len(group.stack):
            bar.update(steps - t)
            break
        if evaluator is not None and t in at:
            group.evaluate(evaluator, out, rows, t, at[t])
        group.step(t, out, rows)
        bar.update(1)
    if evaluator is not None and len(group.stack):
        group.evaluate(evaluator, out, rows, steps, at[steps])
    group.finish(steps, out, rows)
