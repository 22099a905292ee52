"""Stamp launch badges and the Colab setup cell into every notebook, and launch links into README.md.

The repository URL and branch live in one place, ``[tool.course]`` in pyproject.toml. This command
derives everything else from them:

* right after each notebook's title cell, a Markdown cell with "Open in Colab" and Binder badges
  pointing to that notebook's own path, then a code cell that installs the course package from the
  repository only when running on Colab (without touching torch, numpy, matplotlib or ipywidgets,
  which Colab already has) and does nothing anywhere else;
* in README.md, the block between ``<!-- launch:begin -->`` and ``<!-- launch:end -->``: the Binder
  badge and a table of Colab/Binder links to every lesson and worksheet;
* ``binder/requirements.txt``: the pins of requirements.txt for Binder's one Python version
  (``binder/runtime.txt``), with torch taken from PyTorch's CPU-only wheel index.

Usage::

    python tools/launch.py            # stamp (idempotent: a second run changes nothing)
    python tools/launch.py --check    # exit 1 and list what is stale, change nothing

A notebook may ask for an optional dependency group on Colab with notebook metadata
``{"course": {"colab_extras": ["real"]}}`` (a string is accepted too); the setup cell then also
installs that extra's requirements from ``[project.optional-dependencies]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import nbformat
from packaging.requirements import InvalidRequirement, Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("notebooks", "solutions", "exercises")
STAMP_KEY = "launch_stamp"  # cell.metadata["course"][STAMP_KEY] marks the cells this tool owns
README_BEGIN = "<!-- launch:begin -->"
README_END = "<!-- launch:end -->"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


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


def load_config(pyproject: Path | None = None) -> CourseConfig:
    """Read ``[tool.course]`` (repository, branch) and the package name and extras from pyproject.toml."""
    pyproject = pyproject or ROOT / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
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


def badge_source(config: CourseConfig, path: str) -> str:
    return (
        f"[![Open In Colab]({COLAB_BADGE})]({config.colab_url(path)}) "
        f"[![Launch on Binder]({BINDER_BADGE})]({config.binder_url(path)})"
    )


def setup_source(config: CourseConfig, extras: list[str]) -> str:
    """The Colab-only setup cell: installs only the course package (and any requested extra)."""
    runs = [f"    subprocess.run([*pip, \"--no-deps\", {json.dumps(config.pip_target())}], check=True)"]
    requirements = [req for extra in extras for req in config.extras[extra]]
    if requirements:
        runs.append(f"    # this notebook also needs the optional extra(s) {', '.join(extras)} of the course package")
        runs.append(f"    subprocess.run([*pip, {', '.join(json.dumps(r) for r in requirements)}], check=True)")
    return (
        "# Setup for Google Colab: install the course library `rmlib` from the repository. Colab already\n"
        "# has torch, numpy, matplotlib and ipywidgets, so they are left alone (--no-deps).\n"
        "# Anywhere else (your laptop, Binder) this cell does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        '    pip = [sys.executable, "-m", "pip", "install", "-q"]\n' + "\n".join(runs)
    )


def _stamp_of(cell: nbformat.NotebookNode) -> str | None:
    return cell.get("metadata", {}).get("course", {}).get(STAMP_KEY)


def _new_cell(nb: nbformat.NotebookNode, kind: str, source: str) -> nbformat.NotebookNode:
    make = nbformat.v4.new_markdown_cell if kind == "badges" else nbformat.v4.new_code_cell
    cell = make(source, metadata={"course": {STAMP_KEY: kind}})
    # Deterministic ids keep re-stamping byte-stable; nbformat < 4.5 has no cell ids at all.
    if (nb.nbformat, nb.nbformat_minor) >= (4, 5):
        cell["id"] = f"launch-{kind}"
    else:
        cell.pop("id", None)
    return cell


def stamp_notebook(nb: nbformat.NotebookNode, path: str, config: CourseConfig) -> nbformat.NotebookNode:
    """Return a copy of ``nb`` with the badge and setup cells right after its title cell.

    ``path`` is the notebook's path relative to the repository root (it goes into the badge URLs).
    Cells stamped earlier are found by their metadata, so re-stamping updates them in place.
    """
    if not nb.cells or nb.cells[0].cell_type != "markdown" or not nb.cells[0].source.lstrip().startswith("# "):
        raise StampError(f"{path}: the first cell must be a Markdown title starting with '# NN — Title'")
    out = copy.deepcopy(nb)
    old = {_stamp_of(c): c for c in out.cells if _stamp_of(c)}
    body = [c for c in out.cells[1:] if not _stamp_of(c)]
    stamped = []
    for kind, source in (
        ("badges", badge_source(config, path)),
        ("setup", setup_source(config, colab_extras(nb, path, config))),
    ):
        cell = old.get(kind) or _new_cell(out, kind, source)
        cell.source = source
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        stamped.append(cell)
    out.cells = [out.cells[0], *stamped, *body]
    return out


def notebook_title(nb: nbformat.NotebookNode) -> str:
    """'NN — Title' from the first line of the title cell."""
    return nb.cells[0].source.lstrip().splitlines()[0].lstrip("#").strip()


def readme_block(config: CourseConfig, notebooks: dict[str, nbformat.NotebookNode]) -> str:
    """The README launch section: Binder badge and a Colab/Binder link for every lesson and worksheet."""
    lessons = [p for p in notebooks if p.startswith("notebooks/")]
    badges = f"[![Launch on Binder]({BINDER_BADGE})]({config.binder_url('notebooks')})"
    if lessons:  # Colab opens single notebooks, so its badge opens the first lesson
        badges += f" [![Open In Colab]({COLAB_BADGE})]({config.colab_url(lessons[0])})"
    lines = [
        README_BEGIN,
        "<!-- Generated by `python tools/launch.py` from [tool.course] in pyproject.toml; do not edit by hand. -->",
        badges,
        "",
        "| notebook | Colab | Binder |",
        "|---|---|---|",
    ]
    for path, nb in notebooks.items():
        if path.startswith("solutions/"):
            continue  # learners launch the worksheets; the worked solutions stay one click away in the repo
        kind = "worksheet" if path.startswith("exercises/") else "lesson"
        lines.append(
            f"| {kind} {notebook_title(nb)} | [open in Colab]({config.colab_url(path)}) "
            f"| [open on Binder]({config.binder_url(path)}) |"
        )
    lines.append(README_END)
    return "\n".join(lines)


def stamp_readme(text: str, block: str) -> str:
    """Replace the launch block of README text (the markers must already be there, exactly once)."""
    if text.count(README_BEGIN) != 1 or text.count(README_END) != 1:
        raise StampError(f"README.md must contain {README_BEGIN} and {README_END} exactly once each")
    start, end = text.index(README_BEGIN), text.index(README_END) + len(README_END)
    if end < start:
        raise StampError(f"README.md: {README_END} comes before {README_BEGIN}")
    return text[:start] + block + text[end:]


def binder_python(runtime: str) -> str:
    """The Python version Binder builds with, from binder/runtime.txt ("python-3.11")."""
    match = re.fullmatch(r"\s*python-(3\.\d+)\s*", runtime)
    if not match:
        raise StampError(f"binder/runtime.txt must read like 'python-3.11', got {runtime.strip()!r}")
    return match[1]


def binder_requirements(requirements: str, python: str) -> str:
    """binder/requirements.txt from requirements.txt: the same ``==`` pins for one Python, torch CPU-only.

    Environment markers are evaluated for ``python``; pip options and the editable course package
    are left out (binder/postBuild installs the package).
    """
    env = {"python_version": python, "python_full_version": f"{python}.0"}
    lines = [
        "# Generated by `python tools/launch.py` from requirements.txt, for Binder's Python "
        f"{python} (binder/runtime.txt).",
        "# Same pins; torch comes from PyTorch's CPU-only wheel index, which keeps the image small.",
        f"--extra-index-url {TORCH_CPU_INDEX}",
    ]
    for raw in requirements.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as err:
            raise StampError(f"requirements.txt: cannot parse {line!r}: {err}") from None
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        pins = [s.version for s in req.specifier if s.operator == "=="]
        if len(pins) != 1:
            raise StampError(f"requirements.txt: {req.name} must be pinned with == to be mirrored on Binder")
        version = f"{pins[0]}+cpu" if req.name == "torch" else pins[0]
        lines.append(f"{req.name}{'[' + ','.join(sorted(req.extras)) + ']' if req.extras else ''}=={version}")
    return "\n".join(lines) + "\n"


def course_notebooks(root: Path) -> list[Path]:
    """Every notebook of the three course folders, in a stable order."""
    return [p for folder in FOLDERS for p in sorted((root / folder).glob("*.ipynb"))]


def run(root: Path | None = None, check: bool = False) -> list[str]:
    """Stamp (or, with ``check``, only compare) every notebook and README; return the stale paths."""
    root = root or ROOT
    config = load_config(root / "pyproject.toml")
    stale, notebooks = [], {}
    for path in course_notebooks(root):
        rel = path.relative_to(root).as_posix()
        nb = nbformat.read(path, as_version=4)
        stamped = stamp_notebook(nb, rel, config)
        notebooks[rel] = stamped
        if stamped != nb:
            stale.append(rel)
            if not check:
                nbformat.write(stamped, path)
    binder = root / "binder"
    python = binder_python((binder / "runtime.txt").read_text(encoding="utf-8"))
    requirements = (root / "requirements.txt").read_text(encoding="utf-8")
    for path, make in (
        (root / "README.md", lambda text: stamp_readme(text, readme_block(config, notebooks))),
        (binder / "requirements.txt", lambda _: binder_requirements(requirements, python)),
    ):
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        new = make(text)
        if new != text:
            stale.append(path.relative_to(root).as_posix())
            if not check:
                path.write_text(new, encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report what is stale; exit 1 if anything is")
    args = parser.parse_args(argv)
    try:
        stale = run(check=args.check)
    except StampError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.check and stale:
        print("Out of date with [tool.course] in pyproject.toml; run `python tools/launch.py`:")
        print("\n".join(f"  {p}" for p in stale))
        return 1
    print(f"{'stale' if args.check else 'stamped'}: {len(stale)} file(s)" + "".join(f"\n  {p}" for p in stale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
