"""Generate the student worksheets in ``exercises/`` from the worked worksheets in ``solutions/``.

``solutions/`` is the single source. In every solution notebook, answers sit between marker lines::

    # BEGIN SOLUTION                 (code cells; any number of leading '#' is accepted,
    ...model answer...                so Markdown cells can use '### BEGIN SOLUTION')
    # END SOLUTION

The generated exercise replaces each region: in a code cell with ``# YOUR CODE HERE`` and
``raise NotImplementedError`` at the region's indentation, and tags the cell ``raises-exception`` so
Run All (and nbval) continues past it; in a Markdown cell with "Your answer here.".

Written questions carry a rubric — the points a full answer makes — in a Markdown cell of the
solution, between ``### BEGIN RUBRIC`` and ``### END RUBRIC``. Teachers read it in ``solutions/``;
in the exercise it becomes a collapsed "Compare with" reveal (an HTML ``<details>`` block, which
Jupyter, JupyterLab, Colab and the HTML build render closed until clicked), so a learner writes an
answer first and then checks it against the points. Everything
outside the regions is copied unchanged, outputs and execution counts are cleared, and the JSON is
written by nbformat with sorted keys, so regenerating gives byte-identical files. If a solution
carries the launch cells of ``tools.launch`` (Colab/Binder badges pointing at the notebook's own
path), the exercise gets the same cells re-stamped for its own path.

Usage::

    python -m tools exercises            # regenerate exercises/ (removes exercises with no solution)
    python -m tools exercises --check    # exit 1 and list stale exercises, change nothing
    python -m tools exercises --out DIR  # write the exercises somewhere else (the tests do this)
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

from tools import ROOT, STAMP_KEY
from tools.config import load_config
from tools.stamp import stamp_notebook

BEGIN = re.compile(r"^(?P<indent>[ \t]*)#+[ \t]*BEGIN SOLUTION[ \t]*$")
END = re.compile(r"^[ \t]*#+[ \t]*END SOLUTION[ \t]*$")
CODE_STUB = "{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError"
MARKDOWN_STUB = "Your answer here."
RAISES_TAG = "raises-exception"
BEGIN_RUBRIC = re.compile(r"^[ \t]*#+[ \t]*BEGIN RUBRIC[ \t]*$")
END_RUBRIC = re.compile(r"^[ \t]*#+[ \t]*END RUBRIC[ \t]*$")
REVEAL = ("<details>\n<summary><b>Compare with</b> — the points a full answer makes (open it after writing "
          "yours)</summary>\n\n{points}\n\n</details>")


class WorksheetError(ValueError):
    """A solution notebook the generator cannot turn into an exercise."""


def strip_solutions(source: str, cell_type: str, where: str) -> tuple[str, int]:
    """Replace every BEGIN/END SOLUTION region of one cell's source; return (new source, regions replaced)."""
    out: list[str] = []
    inside: re.Match | None = None
    regions = 0
    for number, line in enumerate(source.split("\n"), start=1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if inside:
                raise WorksheetError(f"{where}, line {number}: BEGIN SOLUTION inside another solution region")
            inside = begin
        elif end:
            if not inside:
                raise WorksheetError(f"{where}, line {number}: END SOLUTION without a BEGIN SOLUTION")
            stub = CODE_STUB.format(indent=inside["indent"]) if cell_type == "code" else MARKDOWN_STUB
            out.append(stub)
            inside, regions = None, regions + 1
        elif not inside:
            out.append(line)
    if inside:
        raise WorksheetError(f"{where}: BEGIN SOLUTION is never closed by END SOLUTION")
    return "\n".join(out), regions


def reveal_rubrics(source: str, where: str) -> tuple[str, int]:
    """Turn every BEGIN/END RUBRIC region of a Markdown cell into a collapsed "Compare with" reveal."""
    out: list[str] = []
    inside: list[str] | None = None
    regions = 0
    for number, line in enumerate(source.split("\n"), start=1):
        if BEGIN_RUBRIC.match(line):
            if inside is not None:
                raise WorksheetError(f"{where}, line {number}: BEGIN RUBRIC inside another rubric")
            inside = []
        elif END_RUBRIC.match(line):
            if inside is None:
                raise WorksheetError(f"{where}, line {number}: END RUBRIC without a BEGIN RUBRIC")
            points = "\n".join(inside).strip()
            if not points:
                raise WorksheetError(f"{where}, line {number}: an empty rubric")
            out.append(REVEAL.format(points=points))
            inside, regions = None, regions + 1
        elif inside is not None:
            inside.append(line)
        else:
            out.append(line)
    if inside is not None:
        raise WorksheetError(f"{where}: BEGIN RUBRIC is never closed by END RUBRIC")
    return "\n".join(out), regions


def make_exercise(solution: nbformat.NotebookNode, where: str, exercise_path: str | None = None) -> nbformat.NotebookNode:
    """The student copy of one solution notebook (the input is not modified).

    ``exercise_path`` (relative to the repository root) is used to re-stamp launch badges, if any.
    """
    nb = copy.deepcopy(solution)
    total = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type not in ("code", "markdown"):
            continue
        cell.source, regions = strip_solutions(cell.source, cell.cell_type, f"{where}, cell {index}")
        total += regions
        if cell.cell_type == "markdown":
            cell.source, _ = reveal_rubrics(cell.source, f"{where}, cell {index}")
        elif any(BEGIN_RUBRIC.match(line) for line in cell.source.split("\n")):
            raise WorksheetError(f"{where}, cell {index}: a rubric belongs in a Markdown cell")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)  # timing metadata left by nbclient
            if regions:
                tags = cell.metadata.setdefault("tags", [])
                if RAISES_TAG not in tags:
                    tags.append(RAISES_TAG)
    if total == 0:
        raise WorksheetError(f"{where}: no BEGIN SOLUTION / END SOLUTION region, so there is nothing to exercise")
    if exercise_path and any(c.get("metadata", {}).get("course", {}).get(STAMP_KEY) for c in nb.cells):
        nb = _restamp(nb, exercise_path)
    return nb


def _restamp(nb: nbformat.NotebookNode, path: str) -> nbformat.NotebookNode:
    """Point the copied launch cells at the exercise's own path, exactly as `python -m tools launch` would."""
    return stamp_notebook(nb, path, load_config(ROOT / "pyproject.toml"))


def render(nb: nbformat.NotebookNode) -> str:
    """The exact text written to disk: nbformat's JSON (sorted keys, indent 1) and a final newline."""
    nbformat.validate(nb)  # nbformat.writes would only log a schema error; fail loudly instead
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def generate(solutions: Path) -> dict[str, str]:
    """Render the exercise of every ``solutions/*.ipynb``: {file name: text}."""
    paths = sorted(solutions.glob("*.ipynb"))
    if not paths:
        raise WorksheetError(f"no solution notebooks (*.ipynb) in {solutions}")
    rendered = {}
    for path in paths:
        solution = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        if solution.nbformat != 4:
            raise WorksheetError(f"{path}: expected nbformat 4, got {solution.nbformat}")
        # Badges name the published path, exercises/NAME, wherever this run writes (the tests use a tmp dir).
        rendered[path.name] = render(make_exercise(solution, str(path), f"exercises/{path.name}"))
    return rendered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools exercises", description=__doc__.split("\n")[0])
    parser.add_argument("--solutions", type=Path, default=ROOT / "solutions", help="folder of solution notebooks")
    parser.add_argument("--out", type=Path, default=ROOT / "exercises", help="folder to write the exercises to")
    parser.add_argument("--check", action="store_true", help="report stale exercises and exit 1; write nothing")
    args = parser.parse_args(argv)
    try:
        rendered = generate(args.solutions)
    except WorksheetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    existing = {p.name for p in args.out.glob("*.ipynb")} if args.out.is_dir() else set()
    stale = sorted(existing - rendered.keys())
    changed = [
        name for name, text in rendered.items()
        if not (args.out / name).is_file() or (args.out / name).read_text(encoding="utf-8") != text
    ]
    if args.check:
        for name in changed:
            print(f"out of date: {args.out / name}")
        for name in stale:
            print(f"no solution for: {args.out / name}")
        return 1 if changed or stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name in changed:
        (args.out / name).write_text(rendered[name], encoding="utf-8")
        print(f"wrote {args.out / name}")
    for name in stale:
        (args.out / name).unlink()
        print(f"removed {args.out / name} (no solution notebook)")
    print(f"{len(rendered)} exercises up to date in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
