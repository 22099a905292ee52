"""The ``%%requires_real`` cell magic: a lesson cell that runs only when the ``real`` extra is installed.

Loaded with ``%load_ext rmlib.lab.real`` (``rmlib.lab.real`` re-exports :func:`load_ipython_extension`).
"""

from __future__ import annotations

from typing import Any

from rmlib.lab import backbone


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext rmlib.lab.real`` adds the ``%%requires_real`` cell magic.

    A cell that starts with ``%%requires_real`` runs as usual when the extra is installed and is
    skipped silently otherwise (the lesson prints :func:`rmlib.lab.backbone.real_extra_message` once, up front).
    Errors inside the cell propagate, so a failing assertion still fails the notebook.
    """

    def requires_real(line: str, cell: str) -> None:
        if not backbone.missing_real_dependencies():
            ipython.ex(ipython.transform_cell(cell))

    ipython.register_magic_function(requires_real, magic_kind="cell", magic_name="requires_real")


__all__ = ["load_ipython_extension"]
