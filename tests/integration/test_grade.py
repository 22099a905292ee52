"""python -m tools grade: a folder of submissions becomes a gradebook, whatever the submissions do.

One folder holds a solution, a blank exercise, a broken submission (a renamed function and a cell that
kills its kernel), one that hangs in an infinite loop after a wrong answer, one with a check cell
deleted, one that checks the library's function instead of its own, a blank exercise that displays a typed record and a record copied from another run, an
unreadable file named like a worksheet, and a non-notebook file; the test checks every row of the CSV
and that no submission was modified. It runs seven kernels, two at a time (about a minute on a loaded
machine); the per-cell timeout is 2 s, so the infinite loop costs 2 s (imports run in the grader's
warm-up cell, outside that timeout).
"""

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKSHEET = "03_layer_init.ipynb"
TIMEOUT = "2"  # seconds per cell: imports run in the grader's warm-up; the slowest worksheet-03 cell takes < 1 s idle


def edited(source: Path, edits: dict[str, str]) -> nbformat.NotebookNode:
    """The solution with text replaced in the cells that contain it (each edit must apply)."""
    nb = nbformat.read(source, as_version=4)
    for old, new in edits.items():
        cells = [c for c in nb.cells if old in c.source]
        assert cells, old
        for cell in cells:
            cell.source = cell.source.replace(old, new)
    return nb


def forged_submission() -> nbformat.NotebookNode:
    """A blank exercise whose last cell displays a typed passing record and one copied from another run."""
    import hmac
    import hashlib
    import json

    from rmlib.checks._contract import MIME_TYPE, record_signature

    nb = nbformat.read(ROOT / "exercises" / WORKSHEET, as_version=4)
    typed = {"version": 2, "task": "layer_init", "checker": "check_layer_init", "module": "layer_init",
             "status": "passed", "message": "normal draws", "seed": 1}
    copied = {**typed, "task": "score_head_std", "checker": "check_score_head_std"}
    copied["signature"] = record_signature(copied, b"the key of another grading run")
    assert copied["signature"] == hmac.new(b"the key of another grading run", json.dumps(
        {k: v for k, v in copied.items() if k != "signature"}, sort_keys=True, ensure_ascii=False,
        separators=(",", ":")).encode(), hashlib.sha256).hexdigest()
    source = ("from IPython.display import display\n"
              + "".join(f"display({{{MIME_TYPE!r}: {r!r}, 'text/plain': '✓ {r['task']}'}}, raw=True)\n"
                        for r in (typed, copied)))
    nb.cells.append(nbformat.v4.new_code_cell(source))
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("class") / "submissions"
    folder.mkdir()
    solution = ROOT / "solutions" / WORKSHEET
    (folder / "ada_03_layer_init.ipynb").write_bytes(solution.read_bytes())
    (folder / "ben").mkdir()
    (folder / "ben" / WORKSHEET).write_bytes((ROOT / "exercises" / WORKSHEET).read_bytes())
    broken = edited(solution, {
        "def layer_init(": "def my_layer_init(",  # renamed: the check cell raises NameError
        "    return 1.0 / math.sqrt(hidden_size + 1)": "    import os\n    os._exit(1)",  # kills the kernel
        "ok_score_head_std = check_score_head_std(score_head_std)":
            "score_head_std(4)\nok_score_head_std = check_score_head_std(score_head_std)",
    })
    nbformat.write(broken, folder / "cy_03.ipynb")
    hangs = edited(solution, {
        "torch.nn.init.normal_(layer.weight, mean=0.0, std=std)": "torch.nn.init.uniform_(layer.weight, -std, std)",
        "    return 1.0 / math.sqrt(hidden_size + 1)": "    while True:\n        pass",
        "ok_score_head_std = check_score_head_std(score_head_std)":
            "score_head_std(4)\nok_score_head_std = check_score_head_std(score_head_std)",
    })
    nbformat.write(hangs, folder / "dee_03_layer_init.ipynb")
    borrowed = edited(solution, {  # task 2 checked on the library's own function instead of the student's
        "ok_score_head_std = check_score_head_std(score_head_std)":
            "ok_score_head_std = check_score_head_std(rmlib.score_head_std)",
    })
    nbformat.write(borrowed, folder / "hal_03_layer_init.ipynb")
    gutted = nbformat.read(solution, as_version=4)  # the check cell of task 2 deleted
    gutted.cells = [c for c in gutted.cells if "check_score_head_std(score_head_std)" not in c.source]
    nbformat.write(gutted, folder / "eve_03_layer_init.ipynb")
    (folder / "notes.txt").write_text("I could not open the worksheet, sorry!\n", encoding="utf-8")
    (folder / "gus_03_layer_init.ipynb").write_text("{ not json", encoding="utf-8")
    nbformat.write(forged_submission(), folder / "fay_03_layer_init.ipynb")

    before = {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}
    out = folder.parent / "grades.csv"
    result = subprocess.run([sys.executable, "-m", "tools", "grade", str(folder), "--csv", str(out), "--timeout", TIMEOUT,
                             "--jobs", "2", "--answers", str(folder.parent / "answers.md")],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    after = {p: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}
    with out.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    answers = (folder.parent / "answers.md").read_text(encoding="utf-8")
    return result, rows, before, after, answers


def test_the_gradebook_runs_to_the_end_and_prints_a_summary(graded):
    result, rows, _, _, _ = graded
    assert result.returncode == 0, result.stderr[-2000:]
    print(result.stdout)  # the summary table, shown with pytest -s
    assert "submission" in result.stdout and "score" in result.stdout
    assert "submissions/ada_03_layer_init.ipynb  03         3/3" in result.stdout


def test_every_row_of_the_gradebook(graded):
    _, rows, _, _, _ = graded
    table = {(r["submission"], r["task"]): (r["worksheet"], r["status"], r["message"]) for r in rows}
    assert len(rows) == len(table) == 25  # 8 notebooks (one unreadable) × 3 tasks + 1 row for the non-notebook
    # Worksheet 03's derivation task: a row for every notebook, whatever the notebook did with it.
    derived = {key[0]: value for key, value in table.items() if key[1] == "default_head_reward_std"}
    assert len(derived) == 8
    assert derived["submissions/ada_03_layer_init.ipynb"][1] == "passed"
    assert derived["submissions/ben/03_layer_init.ipynb"][1] == "not attempted"
    assert "not a readable notebook" in derived["submissions/gus_03_layer_init.ipynb"][2]
    table = {key: value for key, value in table.items() if key[1] != "default_head_reward_std"}
    assert [r["submission"] for r in rows] == sorted(r["submission"] for r in rows)  # submission order
    expect = {
        ("submissions/ada_03_layer_init.ipynb", "layer_init"): ("passed", ""),
        ("submissions/ada_03_layer_init.ipynb", "score_head_std"): ("passed", ""),
        ("submissions/ben/03_layer_init.ipynb", "layer_init"): ("not attempted", "not implemented yet"),
        ("submissions/ben/03_layer_init.ipynb", "score_head_std"): ("not attempted", "not implemented yet"),
        ("submissions/cy_03.ipynb", "layer_init"): ("error", "NameError: name 'layer_init' is not defined"),
        ("submissions/cy_03.ipynb", "score_head_std"): ("error", "the kernel died"),
        ("submissions/dee_03_layer_init.ipynb", "layer_init"): ("failed", "uniform instead of normal"),
        ("submissions/dee_03_layer_init.ipynb", "score_head_std"): ("timeout", "longer than 2 s"),
        ("submissions/eve_03_layer_init.ipynb", "layer_init"): ("passed", ""),
        ("submissions/eve_03_layer_init.ipynb", "score_head_std"): ("error", "the check never ran"),
        ("submissions/fay_03_layer_init.ipynb", "layer_init"): ("error", "forged or stale check record"),
        ("submissions/fay_03_layer_init.ipynb", "score_head_std"): ("error", "forged or stale check record"),
        ("submissions/gus_03_layer_init.ipynb", "layer_init"): ("error", "not a readable notebook"),
        ("submissions/gus_03_layer_init.ipynb", "score_head_std"): ("error", "not a readable notebook"),
        ("submissions/hal_03_layer_init.ipynb", "layer_init"): ("passed", ""),
        # rmlib's own function passed to the check: the check itself refuses it (not the notebook's score_head_std)
        ("submissions/hal_03_layer_init.ipynb", "score_head_std"): ("failed", "it was given another function"),
        ("submissions/notes.txt", ""): ("error", "not a readable notebook"),
    }
    assert set(table) == set(expect)
    for key, (status, message) in expect.items():
        worksheet, got_status, got_message = table[key]
        assert got_status == status, (key, table[key])
        assert message in got_message, (key, table[key])
        assert worksheet == ("" if key[0].endswith(".txt") else "03"), key
    # The failed check carries the checker's hint, not a traceback.
    assert "Traceback" not in table[("submissions/dee_03_layer_init.ipynb", "layer_init")][2]


def test_the_signing_key_never_reaches_the_output(graded):
    result, rows, *_ = graded
    assert "RMLIB_GRADE_KEY" not in result.stdout + result.stderr
    assert all("signature" not in r["message"] for r in rows)


def test_a_record_verifies_only_under_its_own_key():
    from rmlib.checks._contract import record_is_signed_by, record_signature

    record = {"task": "layer_init", "status": "passed", "message": "ok", "seed": 3}
    signed = {**record, "signature": record_signature(record, b"k1")}
    assert record_is_signed_by(signed, b"k1")
    assert not record_is_signed_by(signed, b"k2")  # stale: another run's key
    assert not record_is_signed_by({**signed, "status": "failed"}, b"k1")  # edited
    assert not record_is_signed_by({**signed, "task": "score_head_std"}, b"k1")  # copied to another task
    assert not record_is_signed_by(record, b"k1")  # typed: no signature


def test_no_submission_is_modified(graded):
    _, _, before, after, _ = graded
    assert before == after


def test_written_answers_are_collected_next_to_their_rubric(graded):
    *_, answers = graded
    assert answers.startswith("# Written answers") and "## Question — the variance-as-std trap" in answers
    assert "**Rubric**" in answers and "sqrt{4097}" in answers  # the rubric's points
    assert "### submissions/ben/03_layer_init.ipynb\n\n*(no answer)*" in answers  # the blank exercise
    assert "### submissions/ada_03_layer_init.ipynb" not in answers  # a solution has no answer cell to collect


def test_a_missing_path_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tools", "grade", str(tmp_path / "nope"), "--csv", str(tmp_path / "g.csv")],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "no such file" in result.stderr


def test_the_worksheet_is_told_by_its_checkers_its_records_or_its_file_name():
    from tools.grade import expected_modules

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("ok = check_bradley_terry_loss(bradley_terry_loss)")]
    assert expected_modules(nb, "anything.ipynb", []) == ["bt_loss"]
    assert expected_modules(nbformat.v4.new_notebook(), "06_reward_normalisation.ipynb", []) == ["normalisation"]
    assert expected_modules(nbformat.v4.new_notebook(), "x.ipynb", [{"module": "variance"}]) == ["variance"]
    assert expected_modules(nbformat.v4.new_notebook(), "x.ipynb", []) == []


def test_a_written_answer_is_collected_under_its_question(tmp_path):
    from tools.grade import write_answers

    nb = nbformat.read(ROOT / "exercises" / WORKSHEET, as_version=4)
    (answer,) = [c for c in nb.cells if c.cell_type == "markdown" and c.source == "Your answer here."]
    answer.source = "It is the variance read as a std: 64 times smaller at d = 4096."
    nbformat.write(nb, tmp_path / "fay.ipynb")
    (tmp_path / "notes.txt").write_text("not a notebook", encoding="utf-8")
    write_answers([tmp_path], tmp_path / "answers.md")
    text = (tmp_path / "answers.md").read_text(encoding="utf-8")
    question, rest = text.split("**Rubric**")
    assert "## Question — the variance-as-std trap" in question
    assert rest.index("sqrt{4097}") < rest.index(f"### {tmp_path.name}/fay.ipynb\n\nIt is the variance read as a std")


def test_a_question_after_other_text_in_its_cell_is_filed_under_its_own_heading(tmp_path):
    from tools.grade import write_answers

    nb = nbformat.read(ROOT / "exercises" / "06_reward_normalisation.ipynb", as_version=4)
    nbformat.write(nb, tmp_path / "06.ipynb")
    write_answers([tmp_path], tmp_path / "answers.md")
    headings = [line for line in (tmp_path / "answers.md").read_text(encoding="utf-8").splitlines()
                if line.startswith("## ")]
    assert headings and all(h.startswith("## Question") for h in headings), headings
