"""Where the course is published: ``[tool.course]`` and the package metadata of pyproject.toml.

The catalogue of lessons in the same table is read by ``tools.catalogue``."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import nbformat

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

from tools import ROOT


class StampError(ValueError):
    """A notebook, README or configuration the stamper cannot work with."""


@dataclass(frozen=True)
class CourseConfig:
    """Where the course is published, read from pyproject.toml."""

    owner: str
    repo: str
    branch: str
    distribution: str
    extras: dict[str, list[str]]
    dependencies: tuple[str, ...] = ()  # [project] dependencies

    @property
    def repository(self) -> str:
        return f"https://github.com/{self.owner}/{self.repo}"

    def colab_url(self, path: str) -> str:
        """Colab's launch URL for a notebook at ``path`` (relative to the repository root)."""
        return f"https://colab.research.google.com/github/{self.owner}/{self.repo}/blob/{self.branch}/{path}"

    def binder_url(self, path: str | None = None) -> str:
        """mybinder.org launch URL, opening JupyterLab at ``path`` (a notebook or a folder)."""
        url = f"https://mybinder.org/v2/gh/{self.owner}/{self.repo}/{self.branch}"
        return url if path is None else f"{url}?urlpath={quote(f'lab/tree/{path}', safe='')}"

    def pip_target(self) -> str:
        """The course package as a pip requirement pointing at the configured repository and branch."""
        return f"{self.distribution} @ git+{self.repository}.git@{self.branch}"


def read_pyproject(pyproject: Path | None = None) -> dict:
    """pyproject.toml, parsed (the repository's own by default)."""
    pyproject = pyproject or ROOT / "pyproject.toml"
    try:
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise StampError(f"{pyproject}: not valid TOML: {err}") from None


def load_config(pyproject: Path | None = None) -> CourseConfig:
    """Read ``[tool.course]`` (repository, branch) and the package name and extras from pyproject.toml."""
    pyproject = pyproject or ROOT / "pyproject.toml"
    data = read_pyproject(pyproject)
    course = data.get("tool", {}).get("course")
    if not isinstance(course, dict):
        raise StampError(f"{pyproject}: missing [tool.course] table with `repository` and `branch`")
    repository, branch = course.get("repository"), course.get("branch")
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?", str(repository or ""))
    if not match:
        raise StampError(f"[tool.course] repository must be https://github.com/OWNER/REPO, got {repository!r}")
    if not isinstance(branch, str) or not re.fullmatch(r"[\w./-]+", branch):
        raise StampError(f"[tool.course] branch must be a non-empty branch name, got {branch!r}")
    project = data.get("project", {})
    return CourseConfig(
        owner=match[1],
        repo=match[2],
        branch=branch,
        distribution=project["name"],
        extras={k: list(v) for k, v in project.get("optional-dependencies", {}).items()},
        dependencies=tuple(project.get("dependencies", [])),
    )


def colab_extras(nb: nbformat.NotebookNode, where: str, config: CourseConfig) -> list[str]:
    """The optional-dependency groups a notebook asks for on Colab, validated against pyproject."""
    extras = nb.metadata.get("course", {}).get("colab_extras", [])
    if isinstance(extras, str):
        extras = [extras]
    if not isinstance(extras, list) or not all(isinstance(e, str) for e in extras):
        raise StampError(f"{where}: metadata course.colab_extras must be a string or a list of strings")
    unknown = [e for e in extras if e not in config.extras]
    if unknown:
        raise StampError(
            f"{where}: colab_extras {unknown} are not in [project.optional-dependencies] "
            f"(known: {sorted(config.extras)})"
        )
    return extras


