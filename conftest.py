"""Test-run settings for the whole repository: the unit tests in tests/ and the notebooks that nbval
executes in notebooks/, solutions/ and exercises/ (a root conftest applies to all of them).

The suite runs in parallel with pytest-xdist (``-n auto --dist loadfile`` in pyproject.toml):
- every notebook runs whole in one worker, in one kernel, its cells in order (``loadfile``);
- each worker and the notebook kernels it starts use one OpenMP thread, so that N workers on N cores
  do not fight over them;
- the notebooks, the longest work units, are handed out first, so that no long notebook starts last
  while the other workers sit idle.
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
WHOLE_FILE_MODES = ("loadfile", "loadscope", "no", "each")


def pytest_configure(config: pytest.Config) -> None:
    # nbval runs a notebook's cells as consecutive tests in one kernel: a mode that spreads single tests
    # over workers would run cell 5 in a kernel that never ran cells 1-4.
    dist = getattr(config.option, "dist", "no")
    if getattr(config.option, "numprocesses", None) and dist not in WHOLE_FILE_MODES:
        raise pytest.UsageError(
            f"--dist {dist} splits a notebook's cells over several workers; use --dist loadfile "
            "(pyproject.toml's default) or run serially with -n 0"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Notebooks first (lessons, then worksheets), then the unit tests; a stable sort keeps each file's
    # items, and so each notebook's cells, in their order. xdist hands out files in this order when
    # --no-loadscope-reorder is given (pyproject.toml does).
    def rank(item: pytest.Item) -> int:
        top = item.path.relative_to(config.rootpath).parts[0] if item.path.is_relative_to(config.rootpath) else ""
        return NOTEBOOK_FOLDERS.index(top) if top in NOTEBOOK_FOLDERS else len(NOTEBOOK_FOLDERS)

    items.sort(key=rank)
