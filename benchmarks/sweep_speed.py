"""One sweep trained twice: batched (``rmlib.run_sweep``) and as a per-configuration Python loop.

Usage::

    python benchmarks/sweep_speed.py            # 84 + 3 configurations x 200 steps
    python benchmarks/sweep_speed.py --seeds 1  # a quicker, smaller sweep
    python benchmarks/sweep_speed.py --threads 1  # both engines on one intra-op thread

The loop is what one would write by hand: for each configuration an ``nn.Module`` (``RewardMLP``),
``torch.optim.Adam`` or ``SGD``, and the same minibatches (``rmlib/lab/sweep/reference.py``, not course API). Both
engines must agree: every curve and metric within the tolerances below, and the same runs diverging
at the same step. Exit status 1 if they do not. The last lines are ``speedup in CPU time: N.Nx`` and
``speedup: N.Nx`` (wall time).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from rmlib import INITIALISERS, make_preference_data, run_sweep, sweep_grid
from rmlib.lab.sweep.reference import run_sweep_loop

# Both engines do the same float32 operations, but batched and per-run matmuls sum in different
# orders (float32 eps = 1.2e-7). In these non-chaotic settings the losses, accuracies, reward stds
# and CKA stay within ~1e-6 relative over 200 steps (measured: ≤ 3e-6 on AVX-512, AVX2 and default).
# Not compared here: backbone_change and reward_mean. The backbone's last bias gets an exactly-zero
# gradient in exact arithmetic, so Adam turns rounding noise into lr-sized steps there and the two
# engines part by as much as a one-ulp nudge of the start does; tests/test_engine.py checks those
# against that measured spread.
RTOL, ATOL = 1e-4, 1e-5
METRICS = ("train_loss", "test_loss", "test_acc", "reward_std", "cka")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per configuration (default 3)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None,
                        help="intra-op threads for both engines (default: torch's default, "
                             f"{torch.get_num_threads()} here; run_sweep itself defaults to 1)")
    args = parser.parse_args()

    data = make_preference_data(seed=0)
    # Every catalogued head x {frozen, joint} x {Adam 1e-3, SGD 0.05} x seeds: 84 runs with 3 seeds.
    # SGD 0.05 keeps the large-head runs out of the chaotic regime, where any two float orders
    # (even two loops) part ways, so "same results" can be checked run by run.
    configs = sweep_grid(list(INITIALISERS), ["adam", "sgd"], {"adam": [1e-3], "sgd": [0.05]},
                         (False, True), range(args.seeds))
    # Plus one setting that diverges within a few steps (std-10 head, SGD 0.1, joint): both engines
    # must flag the same runs at the same step.
    configs += sweep_grid([10.0], ["sgd"], [0.1], (True,), range(args.seeds))
    # Warm-up (thread pools, allocator) so neither engine pays it in the timing.
    threads = dict(num_threads=args.threads)  # the same setting for both engines
    run_sweep(data, configs[:4], steps=5, progress=False, **threads)
    run_sweep_loop(data, configs[:4], steps=5, progress=False, **threads)

    # Wall time and this process's CPU time. On a shared machine the wall time of each engine depends
    # on what else runs meanwhile; with one intra-op thread the CPU time does not, so its ratio is the
    # steadier measure (with several threads, CPU time also counts threads spinning while they wait).
    t0, c0 = time.perf_counter(), time.process_time()
    fast = run_sweep(data, configs, steps=args.steps, progress=False, **threads)
    t_fast, c_fast = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    slow = run_sweep_loop(data, configs, steps=args.steps, progress=False, **threads)
    t_slow, c_slow = time.perf_counter() - t0, time.process_time() - c0

    n_threads = args.threads or torch.get_num_threads()
    print(f"{len(configs)} configurations x {args.steps} steps, batch 64, d = {data.hidden_size}, "
          f"{n_threads} intra-op thread(s) for both engines\n")
    print(f"{'quantity':<18}{'max |batched - loop|':>22}{'tolerance':>26}{'ok':>5}")
    ok_all = True
    checks = [(f"curve {k}", fast.curves[k], slow.curves[k], RTOL, ATOL) for k in ("loss", "reward_std")]
    checks += [(k, fast.metrics[k], slow.metrics[k], RTOL, ATOL) for k in METRICS]
    for name, a, b, rtol, atol in checks:
        ok = torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
        ok_all &= ok
        diff = (a - b).abs().nan_to_num().max().item()
        print(f"{name:<18}{diff:>22.2e}{f'{atol:g} + {rtol:g}·|loop|':>26}{'yes' if ok else 'NO':>5}")
    same_div = torch.equal(fast.metrics["diverge_step"], slow.metrics["diverge_step"])
    ok_all &= same_div
    print(f"{'diverged runs':<18}{int(fast.metrics['diverged'].sum()):>22d}{'same steps':>26}"
          f"{'yes' if same_div else 'NO':>5}")
    print(f"\n{'engine':<28}{'wall s':>10}{'CPU s':>10}")
    print(f"{'batched (run_sweep)':<28}{t_fast:>10.2f}{c_fast:>10.2f}")
    print(f"{'loop (nn.Module + optim)':<28}{t_slow:>10.2f}{c_slow:>10.2f}")
    if not ok_all:
        print("\nbatched and loop results differ beyond tolerance", file=sys.stderr)
    print(f"speedup in CPU time: {c_slow / c_fast:.1f}x")
    print(f"speedup: {t_slow / t_fast:.1f}x")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
