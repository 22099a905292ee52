"""The course's optional extras (``pyproject.toml``'s ``[project.optional-dependencies]``): is one installed?

``import rmlib`` needs none of them, so a module that uses one declares it as an :class:`Extra` and
asks :meth:`Extra.missing` before importing anything from it; every "not installed" message names
the extra and the pip command that installs it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Extra:
    """An optional extra: its name in ``pyproject.toml`` and the modules it provides (module → PyPI name).

    ``name`` may join several extras with commas (``"real,trainer"``), as pip's ``.[a,b]`` does.
    """

    name: str
    modules: Mapping[str, str]

    @property
    def install(self) -> str:
        """The command that installs the extra into a clone of the course."""
        return f'pip install -e ".[{self.name}]"'

    def missing(self) -> list[str]:
        """PyPI names of the extra's packages that are not installed (empty when all are).

        ``importlib.util.find_spec`` does not import the module (importing transformers costs
        seconds) and reports one blocked with ``sys.modules[name] = None`` as missing.
        """
        absent = []
        for module, package in self.modules.items():
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):  # a broken or half-imported package counts as missing
                found = False
            if not found:
                absent.append(package)
        return absent

    def message(self, what: str, missing: Sequence[str] | None = None) -> str | None:
        """One line, ``what`` first, naming the missing packages, the extra and its install command; None if none is missing."""
        missing = self.missing() if missing is None else list(missing)
        if not missing:
            return None
        return f"{what}: {', '.join(missing)} not installed (the [{self.name}] extra); to install: {self.install}"


__all__ = ["Extra"]
