"""Test-run settings for the whole repository: the unit tests in tests/ and the notebooks that nbval
executes in notebooks/, solutions/ and exercises/ (a root conftest applies to all of them).

The README's test command runs the suite in parallel with pytest-xdist (``-n auto --dist loadfile``,
course.py's PARALLEL):
- every notebook runs whole in one worker, in one kernel, its cells in order (``loadfile``);
- each worker and the notebook kernels it starts use one OpenMP thread, so that N workers on N cores
  do not fight over them;
- the longest work units are handed out first (LONG_FIRST, then the notebooks), so that no long file
  starts last while the other workers sit idle.
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
# The suite's longest work units, longest first (measured with --durations on a 2-core machine): the
# install test (CI only) builds a fresh environment, minutes; the gradebook test grades six submissions,
# 30 s; lesson 08 trains with TRL, 20 s with one thread; the site test builds the website, 20-40 s; the
# browser test starts JupyterLab and Chromium, 15-20 s; lessons 05 and 07 and the trainer, ZeRO-3 and
# theory tests, 7-12 s. Only the order depends on this list; a file missing from it just runs with the
# other tests.
LONG_FIRST = ("tests/test_install.py", "tests/test_grade.py", "notebooks/08_trl_reward_trainer.ipynb",
              "tests/test_site.py", "tests/test_browser.py", "notebooks/05_initialisation_and_training.ipynb",
              "notebooks/07_real_pretrained_backbone.ipynb", "tests/test_trainer.py", "tests/test_zero3.py",
              "tests/test_theory.py", "tests/test_explorers.py", "tests/test_real.py")
WHOLE_FILE_MODES = ("loadfile", "loadscope", "no", "each")


def pytest_configure(config: pytest.Config) -> None:
    # At exit pytest runs gc.collect() five times to surface exceptions raised in finalizers; over a heap
    # holding torch, transformers and a dozen notebook clients each full collection takes ~1 s, so that
    # was 3-5 s of every worker's last seconds (measured with faulthandler stack dumps). One collection
    # still finalises the garbage left at exit; the four more would only catch what the first one's
    # finalizers leave behind.
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The long test files, then the notebooks (lessons, then worksheets), then the other tests; a stable
    # sort keeps each file's items, and so each notebook's cells, in their order. xdist hands out files
    # in this order because course.py passes --no-loadscope-reorder (xdist's own reordering counts
    # tests per file, and a notebook has few "tests" however long it runs).
    def rank(item: pytest.Item) -> int:
        if not item.path.is_relative_to(config.rootpath):
            return len(LONG_FIRST) + len(NOTEBOOK_FOLDERS)
        rel = item.path.relative_to(config.rootpath)
        if rel.as_posix() in LONG_FIRST:
            return LONG_FIRST.index(rel.as_posix())
        top = rel.parts[0]
        return len(LONG_FIRST) + (NOTEBOOK_FOLDERS.index(top) if top in NOTEBOOK_FOLDERS else len(NOTEBOOK_FOLDERS))

    items.sort(key=rank)
