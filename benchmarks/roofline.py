"""The sweep engine against this machine's matmul peak: what fraction of it does a sweep reach?

Usage::

    python benchmarks/roofline.py            # every workload, best of 3 timings each
    python benchmarks/roofline.py --repeat 1 # quicker, noisier

In one process on one intra-op thread it prints

- **P**, the float32 matmul peak of one thread: the best of several tries of ``torch.mm`` at 512³ and of
  ``torch.bmm`` at the shapes the engine multiplies (a training step's layers, an evaluation chunk);
- for each workload, **F**, the matmul FLOPs of one run of it (forward and backward, counted by
  ``torch.utils.flop_counter.FlopCounterMode``), **T**, its best wall time, and **F / (T · P)**.

Only matmul FLOPs count, so doing more matmuls than the work needs cannot raise the figure without
raising F; compare F between versions of the engine. The workloads are lesson 05's 30-epoch sweep
(its joint runs and its frozen-backbone control, evaluated every 32 steps), the same without
evaluation, and ``benchmarks/sweep_speed.py``'s 87 runs × 200 steps. Wall times on a shared machine
vary with its load: the best of ``--repeat`` runs is the least disturbed one. The last two columns use
this process's CPU time instead of wall time: on a machine whose other jobs take cores away the
sweep is descheduled for part of its wall time, which CPU time does not count (cache and memory
bandwidth shared with those jobs still slow it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from rmlib import INITIALISERS, make_preference_data, run_sweep, sweep_grid

LESSON05_LR = 1e-2  # the learning rate lesson 05 tunes to (section 1's one-epoch tuning sweep picks it)
RECIPE = dict(schedule="linear", warmup_ratio=0.1)
SEEDS = (0, 1, 2, 3, 4)


def lesson05_long(data, eval_every):
    """Lesson 05 section 3: the 30-epoch joint sweep (with and without weight decay) and its frozen control."""
    joint = sweep_grid(["zero", "score_head", "large", 10.0], ["adamw"], [LESSON05_LR], (True,), SEEDS, **RECIPE)
    joint += sweep_grid(["zero", "score_head", 10.0], ["adamw"], [LESSON05_LR], (True,), SEEDS, weight_decay=1.0,
                        **RECIPE)
    for wd in (0.1, 0.01):
        joint += sweep_grid(["score_head"], ["adamw"], [LESSON05_LR], (True,), SEEDS, weight_decay=wd, **RECIPE)
    frozen = sweep_grid(["zero", "score_head"], ["adamw"], [LESSON05_LR], (False,), SEEDS, **RECIPE)
    for configs in (joint, frozen):
        run_sweep(data, configs, epochs=30, progress=False, eval_every=eval_every)


def sweep_speed(data):
    """benchmarks/sweep_speed.py's batched sweep: every head × frozen/joint × Adam/SGD × 3 seeds + 3 diverging."""
    configs = sweep_grid(list(INITIALISERS), ["adam", "sgd"], {"adam": [1e-3], "sgd": [0.05]}, (False, True), range(3))
    configs += sweep_grid([10.0], ["sgd"], [0.1], (True,), range(3))
    run_sweep(data, configs, steps=200, progress=False)


def best_time(fn, repeat: int) -> float:
    return best_times(fn, repeat)[0]


def best_times(fn, repeat: int) -> tuple[float, float]:
    """The least wall time and the least CPU time of this process over ``repeat`` calls of fn."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def matmul_peak(tries: int = 7) -> tuple[float, str]:
    """Best FLOP/s over several tries of torch.mm at 512³ and torch.bmm at the engine's shapes."""
    shapes = {"mm 512³": ((512, 512), (512, 512)),
              "bmm 45×128×32×64 (fc1, a step)": ((45, 128, 32), (45, 32, 64)),
              "bmm 45×128×64×64 (fc2, a step)": ((45, 128, 64), (45, 64, 64)),
              "bmm 16×4096×64×64 (evaluation)": ((16, 4096, 64), (16, 64, 64))}
    best, which = 0.0, ""
    for name, (sa, sb) in shapes.items():
        a, b = torch.randn(sa), torch.randn(sb)
        op = torch.mm if a.dim() == 2 else torch.bmm
        flops = 2 * a.numel() * b.shape[-1]
        reps = max(1, int(2e8 // flops))  # ~0.1 s per try at 2 GFLOP/s... fewer on a faster core
        op(a, b)
        for _ in range(tries):
            t = best_time(lambda: [op(a, b) for _ in range(reps)], 1) / reps
            if flops / t > best:
                best, which = flops / t, name
    return best, which


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timings per workload; the best is kept (default 3)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data = make_preference_data(seed=0)  # lesson 05's and sweep_speed.py's data (the defaults)
    workloads = {
        "lesson 05, 30 epochs, evaluated every 32 steps": lambda: lesson05_long(data, 32),
        "lesson 05, 30 epochs, no evaluation": lambda: lesson05_long(data, None),
        "sweep_speed.py, 87 runs x 200 steps": lambda: sweep_speed(data),
    }
    run_sweep(data, sweep_grid(["zero"], seeds=(0,)), steps=5, progress=False)  # warm-up
    peak, which = matmul_peak()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"P = {peak / 1e9:.1f} GFLOP/s float32 matmul peak on one thread (best: {which}); "
          f"load average {load:.1f} at start")
    print(f"{'workload':<50}{'F GFLOP':>10}{'T s':>8}{'F/(T·P)':>10}{'CPU s':>8}{'F/(CPU·P)':>11}")
    for name, fn in workloads.items():
        with FlopCounterMode(display=False) as counter:
            fn()
        flops = counter.get_total_flops()
        seconds, cpu = best_times(fn, args.repeat)
        print(f"{name:<50}{flops / 1e9:>10.1f}{seconds:>8.2f}{flops / (seconds * peak):>10.0%}"
              f"{cpu:>8.2f}{flops / (cpu * peak):>11.0%}", flush=True)
    peak_after, _ = matmul_peak()
    print(f"P measured again at the end: {peak_after / 1e9:.1f} GFLOP/s (the figures use the first)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
