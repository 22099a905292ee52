"""The reference the batched engine is checked against: one plain ``nn.Module`` + ``torch.optim`` loop per run.

Not course API: ``tests/test_engine.py`` and ``benchmarks/sweep_speed.py`` use it. It is written the
way one would train a single reward model by hand — ``RewardMLP``, ``torch.optim.Adam`` / ``AdamW``
(weight decay on weights, not biases, as the Hugging Face ``Trainer`` groups them) / ``SGD``, a
``LambdaLR`` with the lambda of ``transformers.get_linear_schedule_with_warmup`` — sharing with the
engine only the data, each run's initial head and minibatch order, and the final evaluation code.
``nudge`` multiplies every starting weight — head and backbone — by a factor (1 + 2⁻²³ moves each by
about one float32 ulp): the tests use it to measure how far training itself amplifies a rounding-sized
change, which bounds how far two correct implementations that round differently can part.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from rmlib.data import PreferenceData, RewardMLP
from rmlib.lab.sweep.config import SweepConfig, check_run_args, eval_points, intra_op_threads, minibatch_indices, \
    training_steps
from rmlib.lab.sweep.evaluate import answers, held_out_size, start_quantities
from rmlib.lab.sweep.result import SweepResult, Trained, assemble
from rmlib.losses import bradley_terry_loss, preference_accuracy
from rmlib.theory import ADAM_BETAS, ADAM_EPS


def _linear_schedule_with_warmup(num_warmup_steps: int, num_training_steps: int):
    # transformers/optimization.py, _get_linear_schedule_with_warmup_lr_lambda
    def lr_lambda(current_step: int) -> float:
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        return max(0.0, float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps)))

    return lr_lambda


def _optimizer(model: RewardMLP, c: SweepConfig) -> torch.optim.Optimizer:
    trained = model if c.train_backbone else model.score
    if c.optimizer == "sgd":
        return torch.optim.SGD(trained.parameters(), lr=c.lr)
    if c.optimizer == "adam":
        return torch.optim.Adam(trained.parameters(), lr=c.lr, betas=(ADAM_BETAS[0], c.adam_beta2), eps=ADAM_EPS)
    decay = [p for n, p in trained.named_parameters() if not n.endswith("bias")]
    no_decay = [p for n, p in trained.named_parameters() if n.endswith("bias")]
    groups = [{"params": decay, "weight_decay": c.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=c.lr, betas=(ADAM_BETAS[0], c.adam_beta2),
                             eps=ADAM_EPS)


def run_sweep_loop(
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
    nudge: float = 1.0,
) -> SweepResult:
    """Same arguments and result as :func:`rmlib.lab.sweep.run_sweep`, one run at a time."""
    configs = check_run_args(data, configs, batch_size, blowup, eval_every, eval_pairs)
    steps = training_steps(len(data.train), batch_size, steps, epochs)
    with intra_op_threads(num_threads):
        t0 = time.perf_counter()
        start = start_quantities(data, configs)
        points = eval_points(steps, eval_every)
        held_out = {k: (answers(s, eval_pairs), held_out_size(s, eval_pairs))
                    for k, s in (("val", data.val), ("test", data.test))} if points else {}
        trained = Trained.empty(data, len(configs), steps, len(points))
        for i, c in enumerate(tqdm(configs, desc=f"loop over {len(configs)} runs", disable=not progress)):
            _train_one(data, c, i, start, steps, batch_size, blowup, points, held_out, nudge, trained)
        return assemble(data, configs, start, trained, points, steps, time.perf_counter() - t0)


def _model(data: PreferenceData, c: SweepConfig, w0: torch.Tensor, nudge: float) -> RewardMLP:
    with torch.random.fork_rng(devices=[]):  # RewardMLP's default head init must not move global RNG
        model = RewardMLP(copy.deepcopy(data.backbone).requires_grad_(c.train_backbone))
    with torch.no_grad():
        model.score.weight.copy_(w0.unsqueeze(0))
        if nudge != 1.0:
            for p in model.parameters():
                p.mul_(nudge)
    return model


def _held_out(model: RewardMLP, c: SweepConfig, held_out: dict) -> dict[str, float]:
    out = {}
    with torch.no_grad():
        for split, (x, k) in held_out.items():
            r = model(x) + c.reward_offset
            out.update({f"{split}_loss": bradley_terry_loss(r[:k], r[k:]).item(),
                        f"{split}_acc": preference_accuracy(r[:k], r[k:]).item(),
                        f"{split}_reward_std": r.std().item(), f"{split}_reward_mean": r.mean().item()})
    return out


def _train_one(data: PreferenceData, c: SweepConfig, i: int, start: dict, steps: int, batch_size: int,
               blowup: float, points: list[int], held_out: dict, nudge: float, out: Trained) -> None:
    """Train run i alone with torch.optim and write what it produced to row i of ``out``."""
    model = _model(data, c, start["w0"][i], nudge)
    opt = _optimizer(model, c)
    sched = (torch.optim.lr_scheduler.LambdaLR(opt, _linear_schedule_with_warmup(math.ceil(c.warmup_ratio * steps),
                                                                                steps))
             if c.schedule == "linear" else None)  # a constant learning rate needs no scheduler
    threshold = blowup * max(start["initial_loss"][i].item(), math.log(2))
    n = len(data.train)
    x_all, idx = answers(data.train), minibatch_indices(c.seed, steps, batch_size, n)
    best_val, best_state = float("inf"), copy.deepcopy(model.state_dict())
    for t in range(steps + 1):
        if t in points:
            vals = _held_out(model, c, held_out)
            for k, v in vals.items():
                out.eval_table(k)[i, points.index(t)] = v
            if vals["val_loss"] < best_val:
                best_val, best_state, out.best_step[i] = vals["val_loss"], copy.deepcopy(model.state_dict()), t
        if t == steps:
            break
        r = model(x_all[torch.cat([idx[t], idx[t] + n])]) + c.reward_offset
        loss = bradley_terry_loss(r[:batch_size], r[batch_size:])
        out.curves["loss"][i, t], out.curves["reward_std"][i, t] = loss.item(), r.detach().std().item()
        out.curves["misranked"][i, t] = 1 - preference_accuracy(r[:batch_size], r[batch_size:]).item()
        if not math.isfinite(loss.item()) or loss.item() > threshold:
            out.diverge_step[i] = t
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    if out.diverge_step[i] < 0 and not all(torch.isfinite(p).all() for p in model.parameters()):
        out.diverge_step[i] = steps  # the last update overflowed (earlier ones show in the loss)
    for which, state in (("final", model.state_dict()), ("best", best_state)):
        out.heads[which][i] = state["score.weight"].reshape(data.hidden_size)
        for k in out.backbones[which]:
            out.backbones[which][k][i] = state[f"backbone.{k}"]
