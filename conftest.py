"""Test-run settings for the whole repository: the unit tests in tests/ and the notebooks that nbval
executes in notebooks/, solutions/ and exercises/ (a root conftest applies to all of them).

The README's test command runs the suite in parallel with pytest-xdist (``-n auto --dist loadfile``,
course.py's PARALLEL):
- every notebook runs whole in one worker, in one kernel, its cells in order (``loadfile``);
- each worker and the notebook kernels it starts use one OpenMP thread, so that N workers on N cores
  do not fight over them;
- the longest work units are handed out first (LONG_FIRST, then the notebooks), so that no long file
  starts last while the other workers sit idle;
- every test under tests/integration/ is marked ``slow``, so ``python3 course.py test -m "not slow"`` is
  the quick loop (unit tests and notebooks) and the plain test command still runs everything.
"""

from __future__ import annotations

import os

import pytest

# pytest-xdist names its workers gw0, gw1, ... A worker is one of several processes sharing the cores:
# torch's intra-op threads (OMP_NUM_THREADS) would oversubscribe them, in the worker and in every kernel
# it starts (a kernel inherits this process's environment). Set before anything imports torch; a value
# the developer set is kept. A serial run (-n 0) keeps torch's default.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

NOTEBOOK_FOLDERS = ("notebooks", "solutions", "exercises")
# The suite's longest work units, longest first (timings in benchmarks/README.md). Only the order depends
# on this list; a file missing from it just runs with the other tests.
LONG_FIRST = ("tests/integration/test_install.py", "tests/test_checks.py", "tests/integration/test_grade.py",
              "notebooks/08_trl_reward_trainer.ipynb", "tests/integration/test_site.py",
              "tests/integration/test_browser.py", "notebooks/05_initialisation_and_training.ipynb",
              "notebooks/07_real_pretrained_backbone.ipynb", "tests/test_trainer.py", "tests/test_zero3.py",
              "tests/test_theory.py", "tests/test_explorers.py", "tests/test_real.py")
# Tests that install, build the website, drive a browser or grade a class: `-m "not slow"` leaves them out.
INTEGRATION = "tests/integration"
WHOLE_FILE_MODES = ("loadfile", "loadscope", "no", "each")


def pytest_configure(config: pytest.Config) -> None:
    # One gc pass at exit instead of pytest's five: each full pass over torch's heap costs about a second.
    try:
        from _pytest.unraisableexception import gc_collect_iterations_key
    except ImportError:  # another pytest version: keep its default
        pass
    else:
        config.stash[gc_collect_iterations_key] = 1
    # nbval runs a notebook's cells as consecutive tests in one kernel: a mode that spreads single tests
    # over workers would run cell 5 in a kernel that never ran cells 1-4.
    dist = getattr(config.option, "dist", "no")
    if getattr(config.option, "numprocesses", None) and dist not in WHOLE_FILE_MODES:
        raise pytest.UsageError(
            f"--dist {dist} splits a notebook's cells over several workers; use --dist loadfile "
            "(what course.py test passes) or run serially with -n 0"
        )


@pytest.hookimpl(tryfirst=True)  # mark before `-m` deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The long test files, then the notebooks (lessons, then worksheets), then the other tests; a stable
    # sort keeps each file's items, and so each notebook's cells, in their order. xdist hands out files
    # in this order because course.py passes --no-loadscope-reorder (xdist's own reordering counts
    # tests per file, and a notebook has few "tests" however long it runs).
    def rel(item: pytest.Item) -> str | None:
        return item.path.relative_to(config.rootpath).as_posix() if item.path.is_relative_to(config.rootpath) else None

    def rank(item: pytest.Item) -> int:
        path = rel(item)
        if path is None:
            return len(LONG_FIRST) + len(NOTEBOOK_FOLDERS)
        if path in LONG_FIRST:
            return LONG_FIRST.index(path)
        top = path.split("/", 1)[0]
        return len(LONG_FIRST) + (NOTEBOOK_FOLDERS.index(top) if top in NOTEBOOK_FOLDERS else len(NOTEBOOK_FOLDERS))

    for item in items:
        if (rel(item) or "").startswith(INTEGRATION + "/"):
            item.add_marker(pytest.mark.slow)
    items.sort(key=rank)
