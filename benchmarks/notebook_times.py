"""Time every notebook of the course (notebooks/, solutions/, exercises/) in units of B, one fresh kernel each.

B is what any notebook pays before its first line of science: starting a kernel and importing torch,
matplotlib and ``rmlib`` (measured first, the minimum of 3). A time in B carries between machines where
seconds do not (two 2-core machines here differed 2.3x in seconds).

Usage::

    python benchmarks/notebook_times.py                 # all three folders
    python benchmarks/notebook_times.py notebooks/02*   # some notebooks
    python benchmarks/notebook_times.py --budget        # exit 1 if a budget below is exceeded
    python benchmarks/notebook_times.py --threads 1     # kernels with OMP_NUM_THREADS=1 (torch intra-op)
    python benchmarks/notebook_times.py --jobs 2 --threads 1   # as the parallel test suite runs them

Budgets (``--budget``): every lesson (``notebooks/``) ≤ 4 B, lessons 07 and 08 (which load a real
transformer) ≤ 5 B, and all the notebooks timed together ≤ 30 B when they are the course's 18. Each time
includes the kernel start and imports, i.e. one B. By default notebooks run one after another; the test
suite (pytest-xdist, see conftest.py) runs one notebook per worker, one worker per core, each kernel with
one OpenMP thread: ``--jobs N --threads 1`` reproduces that (on a machine shared with other work, B and
the notebooks' times rise together only roughly: measure on an idle machine for budgets). Cells tagged
``raises-exception`` (the exercise stubs) may raise; any other error fails the run.
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
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: the course's tools are beside rmlib

from tools.catalogue import course_notebooks  # noqa: E402

TIMEOUT = 600  # seconds per cell: only catches a hang
LESSON_BUDGET = 4.0  # in B
REAL_MODEL_LESSONS, REAL_MODEL_BUDGET = ("07", "08"), 5.0
COURSE_NOTEBOOKS, COURSE_BUDGET = 18, 30.0


def _execute(nb: nbformat.NotebookNode, folder: Path) -> float:
    start = time.perf_counter()
    NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    return time.perf_counter() - start


def run_notebook(path: Path) -> float:
    """Execute ``path`` top to bottom in its own folder; return the wall time in seconds."""
    return _execute(nbformat.read(path, as_version=4), path.parent)


def measure_b(tries: int = 3) -> float:
    """B: start a kernel and import torch, matplotlib and rmlib, as every notebook does; the minimum of ``tries``."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import matplotlib.pyplot\nimport torch\nimport rmlib")])
    return min(_execute(nb, ROOT) for _ in range(tries))


def budget_of(path: Path) -> float | None:
    """The budget in B of one notebook: lessons have one, worksheets count only towards the total."""
    if path.parent.name != "notebooks":
        return None
    return REAL_MODEL_BUDGET if path.name[:2] in REAL_MODEL_LESSONS else LESSON_BUDGET


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks to time (default: every course notebook)")
    parser.add_argument("--budget", action="store_true", help="fail (exit 1) when a budget in B is exceeded")
    parser.add_argument("--threads", type=int, help="set OMP_NUM_THREADS for the kernels (torch's intra-op threads)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks executed at once, each in its own kernel (default 1)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # kernels inherit this process's environment
    paths = [p.resolve() for p in args.paths] or [ROOT / p for p in course_notebooks(ROOT)]
    if not paths:
        print("no notebooks found", file=sys.stderr)
        return 2
    b = measure_b()
    print(f"B = {b:.2f} s (start a kernel, import torch, matplotlib and rmlib; min of 3)", flush=True)
    over, total, start = [], 0.0, time.perf_counter()
    # Threads suffice: each notebook runs in its own kernel process, the client threads only wait on it.
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for path, seconds in zip(paths, pool.map(run_notebook, paths)):
            total += seconds
            name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            limit = budget_of(path)
            mark = "" if limit is None else f"  (budget {limit:g} B{', OVER' if seconds > limit * b else ''})"
            if limit is not None and seconds > limit * b:
                over.append(f"{name}: {seconds / b:.1f} B > {limit:g} B")
            print(f"{seconds:7.1f} s {seconds / b:6.1f} B  {name}{mark}", flush=True)
    print(f"{total:7.1f} s {total / b:6.1f} B  total ({len(paths)} notebooks)")
    if len(paths) == COURSE_NOTEBOOKS and total > COURSE_BUDGET * b:
        over.append(f"the {COURSE_NOTEBOOKS} notebooks: {total / b:.1f} B > {COURSE_BUDGET:g} B")
    if args.jobs > 1:
        print(f"{time.perf_counter() - start:7.1f} s {(time.perf_counter() - start) / b:6.1f} B  wall, "
              f"{args.jobs} at a time")
    if args.budget and over:
        print("over budget: " + "; ".join(over), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
