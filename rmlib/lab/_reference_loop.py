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
from rmlib.lab.engine import (ADAM_BETAS, ADAM_EPS, SweepConfig, SweepResult, _answers, _assemble, _check_run_args,
                              _intra_op_threads, _start, eval_points, minibatch_indices, training_steps)
from rmlib.losses import bradley_terry_loss, preference_accuracy


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
        return torch.optim.Adam(trained.parameters(), lr=c.lr, betas=ADAM_BETAS, eps=ADAM_EPS)
    decay = [p for n, p in trained.named_parameters() if not n.endswith("bias")]
    no_decay = [p for n, p in trained.named_parameters() if n.endswith("bias")]
    groups = [{"params": decay, "weight_decay": c.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=c.lr, betas=ADAM_BETAS, eps=ADAM_EPS)


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
    """Same arguments and result as :func:`rmlib.lab.engine.run_sweep`, one run at a time."""
    configs = _check_run_args(data, configs, batch_size, blowup, eval_every, eval_pairs)
    steps = training_steps(len(data.train), batch_size, steps, epochs)
    with _intra_op_threads(num_threads):
        return _run_loop(data, configs, steps, batch_size, progress, blowup, eval_every, eval_pairs, nudge)


def _run_loop(data: PreferenceData, configs: list[SweepConfig], steps: int, batch_size: int, progress: bool,
              blowup: float, eval_every: int | None, eval_pairs: int | None, nudge: float) -> SweepResult:
    t0 = time.perf_counter()
    runs, d = len(configs), data.hidden_size
    start = _start(data, configs)
    tr = data.train
    x_all = _answers(tr)
    n = len(tr)
    points = eval_points(steps, eval_every)
    held_out = {k: (_answers(s, eval_pairs), min(len(s), eval_pairs or len(s)))
                for k, s in (("val", data.val), ("test", data.test))} if points else {}
    names = [k for k, _ in data.backbone.named_parameters()]
    out = {w: {k: torch.empty(runs, *v.shape) for k, v in data.backbone.named_parameters()} for w in ("final", "best")}
    heads = {"final": torch.empty(runs, d), "best": torch.empty(runs, d)}
    curves = {k: torch.full((runs, steps), float("nan")) for k in ("loss", "reward_std")}
    evals: dict[str, torch.Tensor] = {}
    diverge_step = torch.full((runs,), -1, dtype=torch.long)
    best_step = torch.zeros(runs, dtype=torch.long)
    for i, c in enumerate(tqdm(configs, desc=f"loop over {runs} runs", disable=not progress)):
        with torch.random.fork_rng(devices=[]):  # RewardMLP's default head init must not move global RNG
            model = RewardMLP(copy.deepcopy(data.backbone).requires_grad_(c.train_backbone))
        with torch.no_grad():
            model.score.weight.copy_(start["w0"][i].unsqueeze(0))
            if nudge != 1.0:
                for p in model.parameters():
                    p.mul_(nudge)
        opt = _optimizer(model, c)
        sched = (torch.optim.lr_scheduler.LambdaLR(opt, _linear_schedule_with_warmup(math.ceil(c.warmup_ratio * steps),
                                                                                    steps))
                 if c.schedule == "linear" else None)  # a constant learning rate needs no scheduler
        threshold = blowup * max(start["initial_loss"][i].item(), math.log(2))
        idx = minibatch_indices(c.seed, steps, batch_size, n)
        best_val, best_state = float("inf"), copy.deepcopy(model.state_dict())

        def evaluate(t: int) -> None:
            nonlocal best_val, best_state
            with torch.no_grad():
                for split, (x, k) in held_out.items():
                    r = model(x) + c.reward_offset
                    vals = {"loss": bradley_terry_loss(r[:k], r[k:]).item(),
                            "acc": preference_accuracy(r[:k], r[k:]).item(),
                            "reward_std": r.std().item(), "reward_mean": r.mean().item()}
                    for m, v in vals.items():
                        evals.setdefault(f"{split}_{m}", torch.full((runs, len(points)), float("nan")))[
                            i, points.index(t)] = v
            if evals["val_loss"][i, points.index(t)] < best_val:
                best_val, best_state = evals["val_loss"][i, points.index(t)].item(), copy.deepcopy(model.state_dict())
                best_step[i] = t

        for t in range(steps):
            if t in points:
                evaluate(t)
            r = model(x_all[torch.cat([idx[t], idx[t] + n])]) + c.reward_offset
            loss = bradley_terry_loss(r[:batch_size], r[batch_size:])
            curves["loss"][i, t], curves["reward_std"][i, t] = loss.item(), r.detach().std().item()
            if not math.isfinite(loss.item()) or loss.item() > threshold:
                diverge_step[i] = t
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
        else:
            if points:
                evaluate(steps)
        if diverge_step[i] < 0 and not all(torch.isfinite(p).all() for p in model.parameters()):
            diverge_step[i] = steps  # the last update overflowed (earlier ones show in the loss)
        for which, state in (("final", model.state_dict()), ("best", best_state)):
            heads[which][i] = state["score.weight"].reshape(d)
            for k in names:
                out[which][k][i] = state[f"backbone.{k}"]
    return _assemble(data, configs, start, heads, out, curves, evals, points, best_step, diverge_step, steps,
                     time.perf_counter() - t0)
