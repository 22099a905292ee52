"""Every lesson's stated time follows from its text: ~120 words of prose and ~8 lines of code a minute.

The rate is the catalogue's (pyproject.toml, [tool.course]): a first reading that runs every cell. The
launch stamp cells (Colab badge and setup) are not the lesson and are not counted. A stated time may be
off by 25 % either way — reading speeds differ more than that — but no more.
"""

import re
from pathlib import Path

import nbformat
import pytest

from tools.catalogue import stated_minutes

ROOT = Path(__file__).resolve().parents[1]
WORDS_PER_MINUTE, CODE_LINES_PER_MINUTE, TOLERANCE = 120, 8, 0.25
TIMED = ["01", "02", "03", "04", "05"]  # the lessons whose stated time has been re-derived from their text


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


def test_reading_minutes_counts_words_and_code_lines():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(" ".join(["word"] * 240)),
                nbformat.v4.new_code_cell("x = 1\n\n" * 16)]
    stamp = nbformat.v4.new_markdown_cell("badge " * 1000)
    stamp.metadata["course"] = {"launch_stamp": "badges"}
    nb.cells.append(stamp)
    assert reading_minutes(nb) == pytest.approx(2 + 2)


@pytest.mark.parametrize("number", TIMED)
def test_stated_minutes_follow_from_the_text(number):
    path = next((ROOT / "notebooks").glob(f"{number}_*.ipynb"))
    nb = nbformat.read(path, as_version=4)
    stated = stated_minutes(nb)
    estimate = reading_minutes(nb)
    assert stated is not None, f"{path.name} states no 'About N minutes' in its first cell"
    assert abs(stated - estimate) <= TOLERANCE * estimate, (
        f"{path.name} says about {stated} minutes; its text reads in about {estimate:.0f}")
