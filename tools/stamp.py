"""The cells and README block that ``python -m tools launch`` owns: badges, the Colab setup cell, the lesson table."""

from __future__ import annotations

import copy
import json
import re

import nbformat
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tools import STAMP_KEY
from tools.catalogue import Catalogue, Lesson, markdown_cell, notebook_title
from tools.config import CourseConfig, StampError, colab_extras

README_BEGIN = "<!-- launch:begin -->"
README_END = "<!-- launch:end -->"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"


def badge_source(config: CourseConfig, path: str) -> str:
    return (
        f"[![Open In Colab]({COLAB_BADGE})]({config.colab_url(path)}) "
        f"[![Launch on Binder]({BINDER_BADGE})]({config.binder_url(path)})"
    )


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement)[0]


def colab_requirements(config: CourseConfig, extras: list[str]) -> list[str]:
    """What a notebook's Colab cell asks pip for: the core dependencies, then its extras, one requirement
    per package, with the highest lower bound pyproject gives it and any other bound kept."""
    merged: dict[str, list[SpecifierSet]] = {}
    for requirement in [*config.dependencies, *(req for extra in extras for req in config.extras[extra])]:
        req = Requirement(requirement)
        merged.setdefault(req.name, []).append(req.specifier)
    out = []
    for name, specifiers in merged.items():
        specs = [spec for specifier in specifiers for spec in specifier]
        lower = [spec for spec in specs if spec.operator == ">="]
        rest = sorted({str(spec) for spec in specs if spec.operator != ">="})
        if lower:
            rest.insert(0, str(max(lower, key=lambda spec: Version(spec.version))))
        out.append(name + ",".join(rest))
    return out


def setup_source(config: CourseConfig, extras: list[str]) -> str:
    """The Colab-only setup cell: installs the course package without its dependencies, then asks pip for
    pyproject's lower bounds, which upgrades only what Colab has older than them, and says what changed."""
    requirements = colab_requirements(config, extras)
    names = list(dict.fromkeys(_name(r) for r in requirements))
    wanted = "course package" + (f" and its extra(s) {', '.join(extras)}" if extras else "")
    return (
        f"# Setup for Google Colab: install the {wanted} from the repository. Colab already has\n"
        "# torch, numpy, matplotlib and ipywidgets: pip upgrades a package only if it is older than the course's\n"
        "# minimum (pyproject.toml), and the last line says what changed. Anywhere else this cell does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "    from importlib.metadata import PackageNotFoundError, version\n"
        "\n"
        "    def installed(names):\n"
        "        found = {}\n"
        "        for name in names:\n"
        "            try:\n"
        "                found[name] = version(name)\n"
        "            except PackageNotFoundError:\n"
        "                found[name] = None\n"
        "        return found\n"
        "\n"
        f"    names = {json.dumps(names)}\n"
        "    before = installed(names)\n"
        '    pip = [sys.executable, "-m", "pip", "install", "-q"]\n'
        f"    subprocess.run([*pip, \"--no-deps\", {json.dumps(config.pip_target())}], check=True)\n"
        f"    subprocess.run([*pip, {', '.join(json.dumps(r) for r in requirements)}], check=True)\n"
        "    after = installed(names)\n"
        "    changed = [name for name in names if after[name] != before[name]]\n"
        "    # Import names use underscores where distribution names use hyphens (sentence-transformers).\n"
        "    imported = {name.replace(\"-\", \"_\") for name in changed}\n"
        "    restart = \" (already imported: restart the session, then run the notebook again)\" if imported & set(sys.modules) else \"\"\n"
        '    print("Colab setup:", "; ".join(f"{n} {before[n] or \'absent\'} -> {after[n]}" for n in changed) + restart\n'
        '          if changed else "the course library is installed; every other package already met its minimum")'
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
    notebook_title(nb, path)  # refuses a notebook without its title cell
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


def _launch(config: CourseConfig, path: str) -> str:
    return f"[Colab]({config.colab_url(path)}) · [Binder]({config.binder_url(path)})"


def _row(config: CourseConfig, lesson: Lesson) -> str:
    cells = [lesson.number, f"[{lesson.title}]({lesson.notebook})", markdown_cell(lesson.objectives),
             str(lesson.minutes), "—", _launch(config, lesson.notebook)]
    sheet = lesson.worksheet
    if sheet:
        cells[4] = (f"[{sheet.title}]({sheet.notebook}) ({sheet.minutes} min; [solution]({sheet.solution})): "
                    + markdown_cell(sheet.practise))
        cells[5] = f"lesson: {cells[5]}<br>worksheet: {_launch(config, sheet.notebook)}"
    return "| " + " | ".join(cells) + " |"


def readme_block(config: CourseConfig, catalogue: Catalogue) -> str:
    """The README's table of lessons and worksheets with their launch links, from the catalogue."""
    first = catalogue.lessons[0].notebook  # Colab opens single notebooks, so its badge opens the first lesson
    return "\n".join([
        README_BEGIN,
        "<!-- Generated by `python -m tools launch` from [tool.course] in pyproject.toml; do not edit by hand. -->",
        f"[![Launch on Binder]({BINDER_BADGE})]({config.binder_url('notebooks')}) "
        f"[![Open In Colab]({COLAB_BADGE})]({config.colab_url(first)})",
        "",
        "| # | lesson | you will be able to | min | worksheet | open |",
        "|---|---|---|---|---|---|",
        *(_row(config, lesson) for lesson in catalogue.lessons),
        README_END,
    ])


def stamp_readme(text: str, block: str) -> str:
    """Replace the launch block of README text (the markers must already be there, exactly once)."""
    if text.count(README_BEGIN) != 1 or text.count(README_END) != 1:
        raise StampError(f"README.md must contain {README_BEGIN} and {README_END} exactly once each")
    start, end = text.index(README_BEGIN), text.index(README_END) + len(README_END)
    if end < start:
        raise StampError(f"README.md: {README_END} comes before {README_BEGIN}")
    return text[:start] + block + text[end:]


