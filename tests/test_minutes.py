"""Every lesson's and worksheet's stated time follows from its text: ~120 words of prose and ~8 lines of code a minute.

The rate is the catalogue's (pyproject.toml, [tool.course]): a first reading that runs every cell. The
launch stamp cells (Colab badge and setup) are not the lesson and are not counted; collapsed asides are
(a first reading opens them). A worksheet is timed on its worked version in solutions/, whose answers are
the code a learner writes, plus thinking time: 5 minutes for every task that asks the learner to derive
or predict a result before code checks it (a task whose heading says "Derive", "Predict" or "by hand"),
since reading a worked derivation is much faster than finding it. A stated time may be off by 25 % either way — reading speeds differ more than
that — but no more. The catalogue's minutes (README's table, the website's course map) and the "About N
minutes" of a notebook's title cell, where it states one, must be the same number.
"""

import re
from pathlib import Path

import nbformat
import pytest

from tools.catalogue import load_catalogue, stated_minutes

ROOT = Path(__file__).resolve().parents[1]
WORDS_PER_MINUTE, CODE_LINES_PER_MINUTE, TOLERANCE = 120, 8, 0.25
MINUTES_PER_DERIVATION = 5
DERIVATION_TASK = re.compile(r"#+\s*Task\b[^\n]*\b(Derive|Predict|by hand)\b")
CATALOGUE = load_catalogue(ROOT)
# Notebooks another change is rewriting: their minutes are re-derived when it lands (text estimates measured
# at the time of writing in the reason). Not strict, so the fix shows up as XPASS rather than a failure.
BEING_REWRITTEN: dict[str, str] = {}  # notebook -> why its stated minutes are known to be off (xfail)


def reading_minutes(nb: nbformat.NotebookNode) -> float:
    """words of Markdown / 120 + non-blank code lines / 8, launch stamp cells left out."""
    words = lines = 0
    for cell in nb.cells:
        if cell.get("metadata", {}).get("course", {}).get("launch_stamp"):
            continue
        if cell.cell_type == "markdown":
            words += len(re.findall(r"\S+", cell.source))
        elif cell.cell_type == "code":
            lines += sum(1 for line in cell.source.splitlines() if line.strip())
    return words / WORDS_PER_MINUTE + lines / CODE_LINES_PER_MINUTE


def thinking_minutes(nb: nbformat.NotebookNode) -> float:
    """5 minutes for each worksheet task whose heading asks for a derivation or a prediction."""
    return MINUTES_PER_DERIVATION * sum(
        1 for cell in nb.cells if cell.cell_type == "markdown" and DERIVATION_TASK.match(cell.source))


def test_thinking_minutes_count_derivation_and_prediction_tasks():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(source) for source in (
        "## Task 1 — Predict", "## Task 1b — Derive: the bias", "## Task 2 — The gradient, by hand",
        "## Task 3 — Measure", "We derive nothing here.")]
    assert thinking_minutes(nb) == 3 * MINUTES_PER_DERIVATION


def test_reading_minutes_counts_words_and_code_lines():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(" ".join(["word"] * 240)),
                nbformat.v4.new_code_cell("x = 1\n\n" * 16)]
    stamp = nbformat.v4.new_markdown_cell("badge " * 1000)
    stamp.metadata["course"] = {"launch_stamp": "badges"}
    nb.cells.append(stamp)
    assert reading_minutes(nb) == pytest.approx(2 + 2)


def timed():
    """(notebook the learner opens, notebook whose text is timed, catalogue minutes, worksheet?) for every
    lesson and worksheet."""
    rows = []
    for lesson in CATALOGUE.lessons:
        rows.append((lesson.notebook, lesson.notebook, lesson.minutes, False))
        if lesson.worksheet:
            rows.append((lesson.worksheet.notebook, lesson.worksheet.solution, lesson.worksheet.minutes, True))
    return [pytest.param(*row, id=row[0], marks=[pytest.mark.xfail(reason=BEING_REWRITTEN[row[0]], strict=False)]
                         if row[0] in BEING_REWRITTEN else []) for row in rows]


def test_every_lesson_and_worksheet_is_timed():
    assert len(timed()) == sum(1 + bool(lesson.worksheet) for lesson in CATALOGUE.lessons) >= 8


@pytest.mark.parametrize("opened, text, minutes, worksheet", timed())
def test_stated_minutes_follow_from_the_text(opened, text, minutes, worksheet):
    nb = nbformat.read(ROOT / text, as_version=4)
    estimate = reading_minutes(nb) + (thinking_minutes(nb) if worksheet else 0)
    assert abs(minutes - estimate) <= TOLERANCE * estimate, (
        f"the catalogue gives {opened} {minutes} minutes; its text reads in about {estimate:.0f}")
    for path in {opened, text}:
        stated = stated_minutes(nbformat.read(ROOT / path, as_version=4))
        assert stated in (None, minutes), f"{path} says about {stated} minutes, the catalogue {minutes}"
