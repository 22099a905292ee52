"""Time every notebook of the course (notebooks/, solutions/, exercises/), one fresh kernel each.

Usage::

    python benchmarks/notebook_times.py                 # all three folders
    python benchmarks/notebook_times.py notebooks/02*   # some notebooks
    python benchmarks/notebook_times.py --budget 120    # exit 1 if the total exceeds 120 s
    python benchmarks/notebook_times.py --threads 1     # kernels with OMP_NUM_THREADS=1 (torch intra-op)
    python benchmarks/notebook_times.py --jobs 2 --threads 1   # as the parallel test suite runs them

Each time includes starting the kernel and importing torch (about 2 s on a 2-core CPU). By default
notebooks run one after another, as ``pytest -n 0`` runs them; the test suite itself (pytest-xdist,
see conftest.py) runs one notebook per worker, one worker per core, each kernel with one OpenMP thread:
``--jobs N --threads 1`` reproduces that, and the wall time it prints is the notebooks' share of the
suite's. Cells tagged ``raises-exception`` (the exercise stubs) may raise; any other error fails the run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("notebooks", "solutions", "exercises")
TIMEOUT = 600  # seconds per cell: only catches a hang


def course_notebooks() -> list[Path]:
    return [p for folder in FOLDERS for p in sorted((ROOT / folder).glob("*.ipynb"))]


def run_notebook(path: Path) -> float:
    """Execute ``path`` top to bottom in its own folder; return the wall time in seconds."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks to time (default: every course notebook)")
    parser.add_argument("--budget", type=float, help="fail (exit 1) when the total exceeds this many seconds")
    parser.add_argument("--threads", type=int, help="set OMP_NUM_THREADS for the kernels (torch's intra-op threads)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks executed at once, each in its own kernel (default 1)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # kernels inherit this process's environment
    paths = [p.resolve() for p in args.paths] or course_notebooks()
    if not paths:
        print("no notebooks found", file=sys.stderr)
        return 2
    total = 0.0
    start = time.perf_counter()
    # Threads suffice: each notebook runs in its own kernel process, the client threads only wait on it.
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for path, seconds in zip(paths, pool.map(run_notebook, paths)):
            total += seconds
            print(f"{seconds:7.1f} s  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)
    print(f"{total:7.1f} s  total ({len(paths)} notebooks)")
    if args.jobs > 1:
        print(f"{time.perf_counter() - start:7.1f} s  wall, {args.jobs} at a time")
    if args.budget is not None and total > args.budget:
        print(f"over budget: {total:.1f} s > {args.budget:.0f} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
