"""Discovery of the checker modules: every public module of ``rmlib.checks`` is one worksheet's checkers.

Each checker module declares the worksheet it belongs to (``WORKSHEET = "03"``, the number its notebooks'
file names start with) and may hold graded hints (``HINTS = {"task": ("nudge", "key idea", "formula")}``);
both are found here, so a new module needs no registration. The checker modules are imported on first use,
never at import time, so ``_contract`` can use this module without importing the package that imports it.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from types import ModuleType

PACKAGE = "rmlib.checks"
HINT_LEVELS = ("a first nudge", "the key idea", "the formula")
HINT_LEVEL_ENV = "RMLIB_HINT_LEVEL_MAX"


def hint_level_max() -> int:
    """The highest hint level on offer: ``RMLIB_HINT_LEVEL_MAX`` (set by a teacher for graded work), else all."""
    value = os.environ.get(HINT_LEVEL_ENV, "").strip()
    if not value:
        return len(HINT_LEVELS)
    try:
        top = int(value)
    except ValueError:
        raise ValueError(f"{HINT_LEVEL_ENV} must be a whole number of hint levels (e.g. 2), got {value!r}") from None
    return max(top, 1)


def checker_modules() -> list[ModuleType]:
    """Every public module of ``rmlib.checks`` (each worksheet's checkers), imported."""
    path = [os.path.dirname(__file__)]
    return [importlib.import_module(f"{PACKAGE}.{info.name}")
            for info in pkgutil.iter_modules(path) if not info.name.startswith("_")]


def worksheets() -> dict[str, str]:
    """{checker module's short name: its worksheet number}, in worksheet order."""
    found = {m.__name__.rsplit(".", 1)[-1]: m.WORKSHEET for m in checker_modules()}
    return dict(sorted(found.items(), key=lambda item: item[1]))


def available_hints() -> dict[str, tuple[str, ...]]:
    """{task: its graded hints}, collected from the ``HINTS`` dict of every checker module."""
    found: dict[str, tuple[str, ...]] = {}
    for module in checker_modules():
        for task, levels in getattr(module, "HINTS", {}).items():
            found[task] = tuple(levels)
    return found
