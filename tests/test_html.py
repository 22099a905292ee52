"""The browsable course (tools.build_html): one lesson is built for real, the rest is unit-tested."""

import base64
import re
from pathlib import Path

import nbformat
import pytest

from rmlib.lab import explorers

from tools import build_html

ROOT = Path(__file__).resolve().parents[1]


def test_links_between_lessons_point_to_pages():
    body = '<a href="02_var.ipynb">next</a> <a href="./02_var.ipynb#recap">x</a> <a href="../solutions/02_var.ipynb">s</a>'
    out = build_html.link_pages(body, {"02_var.ipynb"})
    assert out == '<a href="02_var.html">next</a> <a href="02_var.html#recap">x</a> <a href="../solutions/02_var.ipynb">s</a>'
    assert build_html.link_pages('<a href="09_missing.ipynb">', {"02_var.ipynb"}) == '<a href="09_missing.ipynb">'


def test_a_lesson_without_a_title_is_refused():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    with pytest.raises(ValueError, match="first cell must be a Markdown title"):
        build_html.title_of(nb, Path("x.ipynb"))


def test_only_filters_lessons_and_reports_an_empty_selection():
    assert [p.name[:2] for p in build_html.lesson_paths(only=["02"])] == ["02"]
    with pytest.raises(SystemExit, match="no lessons to build"):
        build_html.lesson_paths(only=["99"])


def test_build_executes_lesson_02_with_figures_and_static_explorer(tmp_path):
    (lesson,) = build_html.lesson_paths(only=["02"])
    pages = build_html.build([lesson], tmp_path)
    page = (tmp_path / pages[0].html_name).read_text(encoding="utf-8")
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert f'href="{pages[0].html_name}"' in index and pages[0].title.startswith("02 — ") and pages[0].title in index
    figures = re.findall(r'<img [^>]*src="data:image/png;base64,', page)
    assert len(figures) >= 3, "the executed lesson must carry its figures"
    # The explorer's stand-in is exactly the figure of its default state (seeded, so reproducible).
    stand_in = base64.b64encode(explorers.variance_explorer().png).decode()
    assert stand_in in page, "the variance explorer's static figure is missing from the page"
    assert "rm-readout" not in page and "widget-view+json" not in page, "no live widget on a static page"


def test_index_titles_keep_code_spans_and_escape_html():
    assert build_html._inline_code("03 — `layer_init` & <b>") == "03 — <code>layer_init</code> &amp; &lt;b&gt;"
