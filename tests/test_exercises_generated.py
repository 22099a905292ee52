"""exercises/ is generated from solutions/ by tools.exercises, and only by it."""

import re
import runpy
import sys
from pathlib import Path

import nbformat
import pytest

from tools import exercises as make_exercises
from tools.config import load_config
from tools.stamp import stamp_notebook

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))



def run_tool(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """``python -m tools exercises ARGS`` as a developer types it (the package's ``__main__`` block, its exit
    code and its report), run in this interpreter: a second one takes 1-10 s to start under load."""
    monkeypatch.setattr(sys, "argv", ["tools", "exercises", *args])
    monkeypatch.delitem(sys.modules, "tools.__main__", raising=False)  # run it afresh as __main__
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("tools", run_name="__main__", alter_sys=True)
    return exited.value.code, capsys.readouterr().out


def run_main(capsys, *args: str) -> tuple[int, str]:
    """The tool's ``main`` called directly."""
    code = make_exercises.main(list(args))
    return code, capsys.readouterr().out


def test_committed_exercises_are_exactly_what_the_generator_writes(tmp_path, capsys):
    code, _ = run_main(capsys, "--out", str(tmp_path))
    assert code == 0
    generated = sorted(p.name for p in tmp_path.glob("*.ipynb"))
    committed = sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb"))
    assert generated == committed, "exercises/ and solutions/ hold different worksheets: run python -m tools exercises"
    for name in generated:
        assert (tmp_path / name).read_bytes() == (ROOT / "exercises" / name).read_bytes(), (
            f"exercises/{name} differs from its regeneration: never edit exercises/ by hand; "
            "edit solutions/ and run python -m tools exercises"
        )


def test_check_mode_passes_on_the_repository(capsys):
    code, out = run_main(capsys, "--check")
    assert code == 0, out


def test_check_mode_reports_a_stale_and_an_orphan_exercise(tmp_path, capsys, monkeypatch):
    assert run_main(capsys, "--out", str(tmp_path))[0] == 0
    first = sorted(tmp_path.glob("*.ipynb"))[0]
    first.write_text(first.read_text(encoding="utf-8").replace("YOUR CODE HERE", "my edit"), encoding="utf-8")
    (tmp_path / "99_orphan.ipynb").write_text("{}", encoding="utf-8")
    # Once through the command line: the exit code a CI script or a pre-commit hook sees.
    code, out = run_tool(monkeypatch, capsys, "--out", str(tmp_path), "--check")
    assert code == 1
    assert f"out of date: {first}" in out and "no solution for" in out
    assert run_main(capsys, "--out", str(tmp_path))[0] == 0  # regenerating repairs both
    assert not (tmp_path / "99_orphan.ipynb").exists()
    assert run_main(capsys, "--out", str(tmp_path), "--check") == (0, "")


# ------------------------------------------------------------------------------------ the transformation


def solution_notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# 99 — Worksheet: test"), *cells]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i}"
    return nb


def test_a_region_inside_a_function_keeps_its_indentation_and_the_rest_of_the_cell():
    src = "def f(x):\n    'doc'\n    # BEGIN SOLUTION\n    y = x + 1\n    return y\n    # END SOLUTION\n\nprint('after')"
    out, n = make_exercises.strip_solutions(src, "code", "here")
    assert n == 1
    assert out == "def f(x):\n    'doc'\n    # YOUR CODE HERE\n    raise NotImplementedError\n\nprint('after')"


def test_several_regions_and_a_markdown_answer():
    src = "# BEGIN SOLUTION\na = 1\n# END SOLUTION\nb = 2\n# BEGIN SOLUTION\nc = 3\n# END SOLUTION"
    out, n = make_exercises.strip_solutions(src, "code", "here")
    assert n == 2 and out.count("raise NotImplementedError") == 2 and "b = 2" in out and "a = 1" not in out
    md, n = make_exercises.strip_solutions("Intro\n### BEGIN SOLUTION\nThe answer.\n### END SOLUTION", "markdown", "here")
    assert (md, n) == ("Intro\nYour answer here.", 1)


@pytest.mark.parametrize(
    "src, message",
    [
        ("# BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n# END SOLUTION", "END SOLUTION without a BEGIN"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", "inside another solution region"),
    ],
)
def test_unbalanced_markers_are_errors_naming_the_cell_and_line(src, message):
    with pytest.raises(make_exercises.WorksheetError, match=message) as info:
        make_exercises.strip_solutions(src, "code", "solutions/x.ipynb, cell 3")
    assert "cell 3" in str(info.value)


def test_stub_cells_are_tagged_outputs_cleared_and_other_cells_copied_verbatim():
    stub = nbformat.v4.new_code_cell("x = 0\n# BEGIN SOLUTION\nx = 1\n# END SOLUTION", metadata={"tags": ["keep"]})
    stub.outputs = [nbformat.v4.new_output("stream", text="1\n")]
    stub.execution_count = 3
    plain = nbformat.v4.new_code_cell("print('check')", metadata={"course": {"x": 1}})
    plain.execution_count = 4
    raw = nbformat.v4.new_raw_cell("# BEGIN SOLUTION")  # raw cells are never touched
    nb = solution_notebook(stub, plain, raw)
    ex = make_exercises.make_exercise(nb, "sol.ipynb")
    assert ex.cells[1].metadata.tags == ["keep", "raises-exception"]
    assert ex.cells[1].outputs == [] and ex.cells[1].execution_count is None
    assert "tags" not in ex.cells[2].metadata and ex.cells[2].metadata.course == {"x": 1}
    assert ex.cells[2].source == "print('check')" and ex.cells[2].execution_count is None
    assert ex.cells[3] == raw
    assert [c.id for c in ex.cells] == [c.id for c in nb.cells]
    assert nb.cells[1].source.endswith("# END SOLUTION")  # the solution itself is left alone


def test_a_notebook_without_regions_is_an_error():
    with pytest.raises(make_exercises.WorksheetError, match="nothing to exercise"):
        make_exercises.make_exercise(solution_notebook(nbformat.v4.new_code_cell("x = 1")), "sol.ipynb")


def test_launch_cells_are_kept_and_point_at_the_exercise():
    nb = solution_notebook(nbformat.v4.new_code_cell("# BEGIN SOLUTION\nx = 1\n# END SOLUTION"))
    config = load_config(ROOT / "pyproject.toml")
    stamped = stamp_notebook(nb, "solutions/99_test.ipynb", config)
    ex = make_exercises.make_exercise(stamped, "sol.ipynb", "exercises/99_test.ipynb")
    expected = stamp_notebook(make_exercises.make_exercise(nb, "sol.ipynb"), "exercises/99_test.ipynb", config)
    assert make_exercises.render(ex) == make_exercises.render(expected)
    badges = ex.cells[1].source
    assert "exercises/99_test.ipynb" in badges and "solutions" not in badges


def test_rendering_is_deterministic():
    nb = solution_notebook(nbformat.v4.new_code_cell("# BEGIN SOLUTION\nx = 1\n# END SOLUTION"))
    first = make_exercises.render(make_exercises.make_exercise(nb, "a"))
    assert first == make_exercises.render(make_exercises.make_exercise(nb, "a"))
    assert first.endswith("}\n") and '"nbformat": 4' in first


# ----------------------------------------------------------------------------------- the worksheets


def test_there_are_at_least_four_worksheets():
    assert len(SOLUTIONS) >= 4, [p.name for p in SOLUTIONS]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_each_worksheet_follows_the_conventions(path):
    nb = nbformat.read(path, as_version=4)
    number = path.name[:2]
    assert re.match(rf"# {number} — Worksheet: ", nb.cells[0].source), "title must be '# NN — Worksheet: ...'"
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert any("seed_everything(0)" in s for s in code[:3]), "the first code cells must call rmlib.seed_everything(0)"
    tasks = [s for s in code if "BEGIN SOLUTION" in s]
    checks = [s for s in code if re.search(r"\bcheck_\w+\(", s) and "import" not in s]
    assert tasks and len(checks) >= len(tasks), "every task needs a check cell calling rmlib.checks"
    assert all("raises-exception" not in c.metadata.get("tags", []) for c in nb.cells), (
        "solutions must run without errors: the generator adds raises-exception to the exercises"
    )


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_exercises_hold_no_solution_text(path):
    ex = nbformat.read(ROOT / "exercises" / path.name, as_version=4)
    text = "\n".join(c.source for c in ex.cells)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    for cell in ex.cells:
        if cell.cell_type == "code" and "raise NotImplementedError" in cell.source:
            assert "raises-exception" in cell.metadata.get("tags", [])


# ------------------------------------------------------------------------- rubrics and the scoreboard


def test_a_rubric_becomes_a_collapsed_compare_with_reveal():
    md, n = make_exercises.reveal_rubrics("Intro\n### BEGIN RUBRIC\n- point one\n- point two\n### END RUBRIC", "here")
    assert n == 1
    assert md.startswith("Intro\n<details>\n<summary><b>Compare with</b>")
    assert "\n\n- point one\n- point two\n\n</details>" in md  # blank lines: Markdown renders inside <details>
    nb = solution_notebook(nbformat.v4.new_code_cell("# BEGIN SOLUTION\nx = 1\n# END SOLUTION"),
                           nbformat.v4.new_markdown_cell("### BEGIN RUBRIC\n- a point\n### END RUBRIC"))
    ex = make_exercises.make_exercise(nb, "sol.ipynb")
    assert "<details>" in ex.cells[2].source and "BEGIN RUBRIC" in nb.cells[2].source


@pytest.mark.parametrize(
    "src, message",
    [
        ("### BEGIN RUBRIC\n- a", "never closed"),
        ("- a\n### END RUBRIC", "END RUBRIC without a BEGIN"),
        ("### BEGIN RUBRIC\n### BEGIN RUBRIC\n### END RUBRIC", "inside another rubric"),
        ("### BEGIN RUBRIC\n\n### END RUBRIC", "empty rubric"),
    ],
)
def test_broken_rubric_markers_are_errors(src, message):
    with pytest.raises(make_exercises.WorksheetError, match=message):
        make_exercises.reveal_rubrics(src, "solutions/x.ipynb, cell 3")


def test_a_rubric_in_a_code_cell_is_an_error():
    nb = solution_notebook(nbformat.v4.new_code_cell("# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n# BEGIN RUBRIC"))
    with pytest.raises(make_exercises.WorksheetError, match="Markdown cell"):
        make_exercises.make_exercise(nb, "sol.ipynb")


REVIEWED = SOLUTIONS  # every worksheet: a rubric for each written question, a scoreboard at the end


@pytest.mark.parametrize("path", REVIEWED, ids=lambda p: p.name)
def test_every_written_question_has_a_rubric_and_the_worksheet_ends_with_a_scoreboard(path):
    nb = nbformat.read(path, as_version=4)
    ex = nbformat.read(ROOT / "exercises" / path.name, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and "BEGIN SOLUTION" in cell.source:
            assert "BEGIN RUBRIC" in nb.cells[i + 1].source, f"cell {i}: a written answer needs a rubric cell after it"
            assert ex.cells[i].source == "Your answer here."
            assert ex.cells[i + 1].source.startswith("<details>") and "Compare with" in ex.cells[i + 1].source
    assert "BEGIN RUBRIC" not in "\n".join(c.source for c in ex.cells)
    assert nb.cells[-1].cell_type == "code" and nb.cells[-1].source.strip() == f'rmlib.checks.scoreboard("{path.name[:2]}")'
    header = nb.cells[0].source
    assert "**What you need:**" in header and "minutes" in header and "rmlib.checks.hint(" in header
