"""The course catalogue: ``[[tool.course.lessons]]`` in pyproject.toml, checked against the notebooks.

Each lesson has a number, a title, its notebook, minutes, what you will be able to do (objectives),
the earlier lessons it builds on (prerequisites) and anything else you need (background), and
optionally a worksheet (its notebook in ``exercises/``, title, minutes, what you practise). The README's
table of lessons (``python -m tools launch``) and the website's course map (``python -m tools site``)
are generated from it; no tool reads README prose.

:func:`load_catalogue` refuses a catalogue that disagrees with the repository: a course notebook it
does not list, a listed notebook that does not exist, a title that is not the notebook's own, a
worksheet without its worked solution, or a prerequisite that is not an earlier lesson.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from tools import FOLDERS, ROOT
from tools.config import StampError, read_pyproject

WORKSHEET_PREFIX = "Worksheet: "  # a worksheet's title cell reads "# NN — Worksheet: Title"
STATED_MINUTES = re.compile(r"\bAbout\s+(\d+)\s+minutes\b")


@dataclass(frozen=True)
class Worksheet:
    notebook: str  # exercises/NN_topic.ipynb; its worked version is solutions/NN_topic.ipynb
    title: str
    minutes: int
    practise: str

    @property
    def solution(self) -> str:
        return "solutions/" + Path(self.notebook).name


@dataclass(frozen=True)
class Lesson:
    number: str
    title: str
    notebook: str
    minutes: int
    objectives: str
    prerequisites: tuple[str, ...]  # numbers of earlier lessons
    background: str  # what else you need, in a few words
    worksheet: Worksheet | None


@dataclass(frozen=True)
class Catalogue:
    title: str
    lessons: tuple[Lesson, ...]

    def lesson(self, number: str) -> Lesson:
        return next(lesson for lesson in self.lessons if lesson.number == number)

    def course_order(self) -> list[str]:
        """Every lesson followed by its worksheet, as repository paths (the website's sidebar)."""
        return [p for lesson in self.lessons for p in (lesson.notebook, lesson.worksheet and lesson.worksheet.notebook) if p]


def course_notebooks(root: Path | None = None) -> list[str]:
    """Every notebook of the three course folders as repository paths, folder by folder, sorted."""
    root = root or ROOT
    return [p.relative_to(root).as_posix() for folder in FOLDERS for p in sorted((root / folder).glob("*.ipynb"))]


def notebook_title(nb: nbformat.NotebookNode, where: str) -> str:
    """'NN — Title' from a notebook's first cell, which must be a Markdown ``# NN — Title``."""
    first = nb.cells[0] if nb.cells else None
    if first is None or first.cell_type != "markdown" or not first.source.lstrip().startswith("# "):
        raise StampError(f"{where}: the first cell must be a Markdown title starting with '# NN — Title'")
    return first.source.lstrip().splitlines()[0].lstrip("#").strip()


def stated_minutes(nb: nbformat.NotebookNode) -> int | None:
    """The "About N minutes" of a notebook's title cell, if it states one."""
    match = STATED_MINUTES.search(nb.cells[0].source) if nb.cells else None
    return int(match[1]) if match else None


def _field(entry: dict, key: str, kind: type, where: str):
    value = entry.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) or (isinstance(value, str) and not value.strip()):
        raise StampError(f"{where}: `{key}` must be a non-empty {kind.__name__}, got {value!r}")
    if kind is int and value <= 0:
        raise StampError(f"{where}: `{key}` must be positive, got {value}")
    return value


def _worksheet(entry: dict, where: str) -> Worksheet:
    return Worksheet(
        notebook=_field(entry, "notebook", str, where), title=_field(entry, "title", str, where),
        minutes=_field(entry, "minutes", int, where), practise=_field(entry, "practise", str, where),
    )


def _lesson(entry: dict, where: str) -> Lesson:
    if not isinstance(entry, dict):
        raise StampError(f"{where}: each lesson must be a table, got {entry!r}")
    prerequisites = entry.get("prerequisites", [])
    if not isinstance(prerequisites, list) or not all(isinstance(p, str) for p in prerequisites):
        raise StampError(f"{where}: `prerequisites` must be a list of lesson numbers like \"02\"")
    if not isinstance(entry.get("background", ""), str):
        raise StampError(f"{where}: `background` must be a string")
    worksheet = entry.get("worksheet")
    if worksheet is not None and not isinstance(worksheet, dict):
        raise StampError(f"{where}: `worksheet` must be a table, got {worksheet!r}")
    return Lesson(
        number=_field(entry, "number", str, where), title=_field(entry, "title", str, where),
        notebook=_field(entry, "notebook", str, where), minutes=_field(entry, "minutes", int, where),
        objectives=_field(entry, "objectives", str, where), prerequisites=tuple(prerequisites),
        background=entry.get("background", ""),
        worksheet=None if worksheet is None else _worksheet(worksheet, f"{where}, worksheet"),
    )


def parse_catalogue(data: dict, where: str = "pyproject.toml") -> Catalogue:
    """The catalogue from parsed pyproject data, each field's type checked (not yet the notebooks)."""
    course = data.get("tool", {}).get("course", {})
    title, entries = course.get("title"), course.get("lessons")
    if not isinstance(title, str) or not title.strip():
        raise StampError(f"{where}: [tool.course] needs `title`, the course's name")
    if not isinstance(entries, list) or not entries:
        raise StampError(f"{where}: [tool.course] needs a [[tool.course.lessons]] table per lesson")
    lessons = tuple(_lesson(entry, f"{where}: lesson {i + 1}") for i, entry in enumerate(entries))
    numbers = [lesson.number for lesson in lessons]
    if numbers != sorted(set(numbers)):
        raise StampError(f"{where}: lesson numbers must be unique and in order, got {numbers}")
    for lesson in lessons:
        later = [p for p in lesson.prerequisites if p not in numbers[: numbers.index(lesson.number)]]
        if later:
            raise StampError(f"{where}: lesson {lesson.number}'s prerequisites {later} are not earlier lessons")
    return Catalogue(title=title.strip(), lessons=lessons)


def _expected_titles(catalogue: Catalogue) -> dict[str, str]:
    """Each listed notebook's path -> the title its first cell must carry."""
    titles = {}
    for lesson in catalogue.lessons:
        if not lesson.notebook.startswith(f"notebooks/{lesson.number}_"):
            raise StampError(f"lesson {lesson.number}: its notebook must be notebooks/{lesson.number}_….ipynb")
        titles[lesson.notebook] = f"{lesson.number} — {lesson.title}"
        sheet = lesson.worksheet
        if sheet:
            if not sheet.notebook.startswith(f"exercises/{lesson.number}_"):
                raise StampError(f"lesson {lesson.number}: its worksheet must be exercises/{lesson.number}_….ipynb")
            titles[sheet.notebook] = titles[sheet.solution] = f"{lesson.number} — {WORKSHEET_PREFIX}{sheet.title}"
    return titles


def check_against_notebooks(catalogue: Catalogue, notebooks: dict[str, nbformat.NotebookNode]) -> None:
    """Refuse a catalogue that does not list exactly the course notebooks, under their own titles."""
    expected = _expected_titles(catalogue)
    missing, unlisted = sorted(set(expected) - set(notebooks)), sorted(set(notebooks) - set(expected))
    if missing or unlisted:
        raise StampError(
            "[tool.course.lessons] in pyproject.toml disagrees with the course folders: "
            + "; ".join(part for part in (missing and f"no such notebook {missing}",
                                          unlisted and f"not in the catalogue {unlisted}") if part)
        )
    for path, title in expected.items():
        actual = notebook_title(notebooks[path], path)
        if actual != title:
            raise StampError(f"{path}: its title is {actual!r}, the catalogue says {title!r}")


def load_catalogue(root: Path | None = None, notebooks: dict[str, nbformat.NotebookNode] | None = None) -> Catalogue:
    """The catalogue of ``root``'s pyproject.toml, checked against its course notebooks."""
    root = root or ROOT
    catalogue = parse_catalogue(read_pyproject(root / "pyproject.toml"), str(root / "pyproject.toml"))
    if notebooks is None:
        notebooks = {p: nbformat.read(root / p, as_version=4) for p in course_notebooks(root)}
    check_against_notebooks(catalogue, notebooks)
    return catalogue


def markdown_cell(text: str) -> str:
    """``text`` inside a Markdown table cell: a pipe is escaped (LaTeX's ``\\|`` becomes ``\\\\|``)."""
    return " ".join(text.split()).replace("|", r"\|")
