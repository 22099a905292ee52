"""Grade submitted worksheets: run each in its own kernel and write a gradebook (CSV) and a summary table.

Usage::

    python -m tools grade SUBMISSIONS… --csv grades.csv [--timeout SECONDS] [--jobs N] [--answers answers.md]

SUBMISSIONS are notebooks or folders (searched recursively; hidden files and checkpoints skipped).
Every file found is graded: each notebook is read into memory and executed as a copy by nbclient in a
fresh ``python3`` kernel, in a temporary working directory, with ``--timeout`` seconds per cell (the
submission on disk is never written to); ``--jobs N`` runs N kernels at a time. Errors in cells do not stop the run (``allow_errors``), so
one broken task does not hide the others.

Outcomes come from the structured records the checkers emit (``rmlib.checks``: a display of MIME type
``application/vnd.rmlib.check+json`` in the cell outputs), never from printed text:

=============  =====================================================================================
status         meaning
=============  =====================================================================================
passed         the task's checker accepted the answer
failed         the checker rejected it; ``message`` holds its hint
not attempted  the function is still the untouched stub (``raise NotImplementedError``)
error          the check never produced a record: its cell raised something else (a renamed or
               missing function: NameError), the check cell is gone, the kernel died, or the
               file is not a notebook; or a record of the task was not signed by this run
               ("forged or stale check record")
timeout        a cell ran longer than ``--timeout`` before this task's check ran
=============  =====================================================================================

Only records the checkers produced while this command ran the submission count. For each submission
the grader draws a secret key (``secrets``) and starts the kernel with it in the environment variable
``RMLIB_GRADE_KEY``; ``rmlib.checks`` reads it once at import (a warm-up cell imports it before the
first cell of the submission runs) and removes it from ``os.environ``, and signs every record with an
HMAC of its content. The grader verifies each record: one that was typed, copied from another run or
edited is graded "error: forged or stale check record". A passing record of a function the notebook did
not define (``check_layer_init(rmlib.layer_init)``) is graded "error" too. The key is never printed or written. What
this does not protect against: code in the submission that reads the key out of its own process or
rewrites ``rmlib`` in the kernel (README, "Collect and grade").

The warm-up cell (``import rmlib.checks``) runs with a generous timeout of its own, so ``--timeout``
measures the submission's cells, not the time it takes to import torch on a loaded machine.

The tasks expected of a submission are those of its worksheet, told by the checkers the notebook
imports or calls, the records it produced, and the worksheet number in its file name ("03_…" or
"ada_03_…" is worksheet 03); a student who deletes cells, or whose file cannot be read, still gets a
row for every task. The CSV has one row per
submission × task: ``submission, worksheet, task, status, message``.

Written answers are for a person to grade: ``--answers answers.md`` collects them, question by
question, each next to its rubric (the points a full answer makes).
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import re
import secrets
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROWS = ("submission", "worksheet", "task", "status", "message")
GRADEBOOK_MARKS = {"error": "E", "timeout": "T"}  # outcomes only the gradebook records (beside the checkers' own)
FORGED = "forged or stale check record: it was not produced by the checkers while the gradebook ran this submission"
WARMUP = "import rmlib.checks  # the gradebook's warm-up: imports are not the submission's time"
WARMUP_TIMEOUT = 300.0  # seconds for the warm-up cell (importing torch on a loaded machine)


@dataclass
class Row:
    submission: str
    worksheet: str
    task: str
    status: str
    message: str = ""


def _registry() -> tuple[dict, dict, str]:
    """(tasks by name, worksheet number by checker module, the record MIME type) from rmlib.checks."""
    import rmlib.checks as checks

    return checks.TASKS, checks.WORKSHEETS, checks.MIME_TYPE


def _statuses() -> tuple[tuple[str, ...], dict[str, str]]:
    """Every status of a gradebook row in column order, and its mark: the checkers' statuses, then the gradebook's."""
    from rmlib.checks._contract import MARKS, STATUSES

    return (*STATUSES, *GRADEBOOK_MARKS), {**MARKS, **GRADEBOOK_MARKS}


def find_submissions(paths: list[Path]) -> list[tuple[Path, str]]:
    """(file, name shown in the gradebook) for every submitted file, in a stable order."""
    found = []
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                parts = file.relative_to(path).parts
                if any(part.startswith(".") or part == ".ipynb_checkpoints" for part in parts):
                    continue
                found.append((file, str(Path(path.name, *parts))))
        else:
            found.append((path, path.name))
    return found


def expected_modules(nb: nbformat.NotebookNode | None, name: str, records: list[dict]) -> list[str]:
    """The checker modules (worksheets) a submission answers, in worksheet order."""
    tasks, worksheets, _ = _registry()
    modules = {r.get("module") for r in records}
    if nb is not None:
        source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        modules |= {t.module for t in tasks.values() if re.search(rf"\b{t.checker}\b", source)}
    number = re.search(r"(?:^|[_\-. ])(\d\d)_", Path(name).name)  # "03_…", also after a name: "ada_03_…"
    if number:
        modules |= {m for m, n in worksheets.items() if n == number[1]}
    return [m for m in worksheets if m in modules]


def _records_and_errors(nb: nbformat.NotebookNode, mime: str, key: bytes | None = None
                        ) -> tuple[list[dict], dict[str, str], set[str]]:
    """Every trusted check record in the outputs (in order), {task: error} for check cells that raised
    without one, and the tasks with a record not signed with ``key`` (forged or stale; all, if ``key`` is None)."""
    from rmlib.checks._contract import record_is_signed_by

    tasks, _, _ = _registry()
    records, errors, forged = [], {}, set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell_records = [o["data"][mime] for o in cell.get("outputs", [])
                        if o.get("output_type") in ("display_data", "execute_result") and mime in o.get("data", {})]
        for r in cell_records:
            if not (isinstance(r, dict) and "task" in r and "status" in r):
                continue
            if key is not None and record_is_signed_by(r, key):
                records.append(r)
            else:
                forged.add(str(r["task"]))
        failure = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
        if failure is not None:
            recorded = {r.get("task") for r in cell_records}
            for task in tasks.values():
                if task.name not in recorded and re.search(rf"\b{task.checker}\s*\(", cell.source):
                    errors[task.name] = f"{failure.get('ename', 'Error')}: {failure.get('evalue', '')}".strip()
    return records, errors, forged


def _own_function(record: dict) -> bool:
    """True when the checked function was defined in the notebook's cells (module ``__main__``), not imported."""
    return str(record.get("function", "")).startswith("__main__.")


def _execute(nb: nbformat.NotebookNode, timeout: float) -> tuple[str, str]:
    """Run ``nb`` in place in a fresh kernel given a new signing key: (that key, why it stopped early or "")."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    key = secrets.token_hex(32)  # this run's signing key: only the kernel started below gets it
    warmup = nbformat.v4.new_code_cell(WARMUP)
    nb.cells.insert(0, warmup)
    stopped = ""  # why execution stopped early: "timeout" or an error message
    with tempfile.TemporaryDirectory(prefix="grade-") as workdir:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                timeout_func=lambda cell: max(timeout, WARMUP_TIMEOUT) if cell is warmup else timeout,
                                resources={"metadata": {"path": workdir}})
        try:
            client.execute(env={**os.environ, "RMLIB_GRADE_KEY": key})
        except CellTimeoutError:
            stopped = "timeout"
        except DeadKernelError as exc:
            stopped = f"the kernel died ({str(exc)[:200]})"
        except Exception as exc:  # the kernel could not start, or anything else nbclient reports
            stopped = f"execution stopped: {type(exc).__name__}: {str(exc)[:200]}"

    if nb.cells and nb.cells[0] is warmup:
        nb.cells.pop(0)
    return key, stopped


def grade_notebook(path: Path, name: str, timeout: float) -> list[Row]:
    """Execute a copy of one submission and return one row per task of its worksheet."""
    from rmlib.checks._contract import STATUSES as checker_statuses

    tasks, worksheets, mime = _registry()
    try:
        nb = nbformat.read(path, as_version=4)  # read into memory: the file is never written
        nbformat.validate(nb)
    except Exception as exc:  # not JSON, not a notebook, or a broken one: recorded, never fatal
        message = f"not a readable notebook ({type(exc).__name__}: {str(exc)[:200]})"
        modules = expected_modules(None, name, [])  # "03_…" still owes every task of worksheet 03
        if not modules:
            return [Row(name, "", "", "error", message)]
        return [Row(name, worksheets[t.module], t.name, "error", message) for t in tasks.values() if t.module in modules]

    key, stopped = _execute(nb, timeout)
    records, errors, forged = _records_and_errors(nb, mime, key.encode())
    latest = {r["task"]: r for r in records}  # a check run twice counts with its last outcome
    modules = expected_modules(nb, name, records)
    if not modules:
        return [Row(name, "", "", "error", "no worksheet task found: no checker is called and the file name has no "
                                           "worksheet number" + (f"; {stopped}" if stopped else ""))]
    rows = []
    for task in (t for t in tasks.values() if t.module in modules):
        worksheet = worksheets[task.module]
        record = latest.get(task.name)
        if task.name in forged:
            rows.append(Row(name, worksheet, task.name, "error", FORGED))
        elif record is not None and record.get("status") == "passed" and not _own_function(record):
            rows.append(Row(name, worksheet, task.name, "error",
                            f"the check ran on {record.get('function')}, a function the submission did not define"))
        elif record is not None and record.get("status") in checker_statuses:
            message = "" if record["status"] == "passed" else str(record.get("message", ""))
            rows.append(Row(name, worksheet, task.name, record["status"], message))
        elif stopped == "timeout" and (task.name not in errors or errors[task.name].startswith("KeyboardInterrupt")):
            # nbclient interrupts the cell that timed out: its KeyboardInterrupt is the timeout
            rows.append(Row(name, worksheet, task.name, "timeout", f"a cell ran longer than {timeout:g} s before this check"))
        elif task.name in errors:
            rows.append(Row(name, worksheet, task.name, "error", f"the check cell raised {errors[task.name]}"))
        elif stopped:
            rows.append(Row(name, worksheet, task.name, "error", stopped))
        else:
            rows.append(Row(name, worksheet, task.name, "error",
                            f"the check never ran: the cell calling {task.checker} is missing or was changed"))
    return rows


def written_answers(path: Path) -> list[tuple[str, str, str]]:
    """(question, the student's answer, the rubric) for each written question of a submitted worksheet.

    An exercise puts the student's answer cell between the question and the collapsed "Compare with"
    rubric that ``tools.exercises`` generates, so the answer is the Markdown cell just before each rubric.
    """
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # not a notebook: no written answers to collect
        return []
    found = []
    cells = nb.cells
    for i, cell in enumerate(cells):
        if cell.cell_type == "markdown" and cell.source.startswith("<details>") and "Compare with" in cell.source:
            answer = cells[i - 1].source.strip() if i >= 1 and cells[i - 1].cell_type == "markdown" else ""
            question = cells[i - 2].source.strip() if i >= 2 and cells[i - 2].cell_type == "markdown" else ""
            # The question starts at the cell's last heading: a cell may open with the text of the section before it.
            headings = [m.start() for m in re.finditer(r"^#+ ", question, flags=re.M)]
            question = question[headings[-1]:] if headings else question
            rubric = re.sub(r"^<details>\s*<summary>.*?</summary>|</details>\s*$", "", cell.source, flags=re.S).strip()
            found.append((question, answer, rubric))
    return found


def write_answers(paths: list[Path], out: Path) -> None:
    """One Markdown file to read the written answers by: each question, its rubric, then every student's answer."""
    by_question: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for path, name in find_submissions(paths):
        for question, answer, rubric in written_answers(path):
            title = question.splitlines()[0].lstrip("# ") if question else "(question cell missing)"
            entry = by_question.setdefault(title, (rubric, []))
            entry[1].append((name, answer if answer and answer != "Your answer here." else "*(no answer)*"))
    lines = ["# Written answers", ""]
    for title, (rubric, answers) in by_question.items():
        lines += [f"## {title}", "", "**Rubric**", "", rubric, ""]
        for name, answer in answers:
            lines += [f"### {name}", "", answer, ""]
    out.write_text("\n".join(lines), encoding="utf-8")


def grade(paths: list[Path], timeout: float, jobs: int = 1, progress=print) -> list[Row]:
    """Grade every submission found under ``paths``, ``jobs`` kernels at a time; rows in submission order."""
    submissions = find_submissions(paths)
    if jobs <= 1 or len(submissions) <= 1:
        rows = []
        for path, name in submissions:
            progress(f"grading {name} …")
            rows += grade_notebook(path, name, timeout)
        return rows
    from concurrent.futures import ProcessPoolExecutor

    progress(f"grading {len(submissions)} submissions, {jobs} at a time …")
    with ProcessPoolExecutor(max_workers=jobs) as pool:  # one process per running kernel client
        results = pool.map(grade_notebook, *zip(*submissions), [timeout] * len(submissions))
        return [row for rows in results for row in rows]


def write_csv(rows: list[Row], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(ROWS)
        for row in rows:
            writer.writerow([row.submission, row.worksheet, row.task, row.status, row.message])


def summary(rows: list[Row]) -> str:
    """One line per submission: worksheet, score, and a mark per task (✓ passed, ✗ failed, · not attempted,
    E error, T timeout)."""
    statuses, mark = _statuses()
    by_submission: dict[str, list[Row]] = {}
    for row in rows:
        by_submission.setdefault(row.submission, []).append(row)
    width = max([len("submission"), *map(len, by_submission)])
    lines = [f"{'submission':<{width}}  worksheet  score  tasks", f"{'-' * width}  ---------  -----  -----"]
    for submission, own in by_submission.items():
        graded = [r for r in own if r.task]
        passed = sum(r.status == "passed" for r in graded)
        worksheet = ",".join(sorted({r.worksheet for r in own if r.worksheet})) or "?"
        marks = " ".join(f"{mark[r.status]} {r.task}" for r in graded) or f"{mark['error']} {own[0].message[:60]}"
        lines.append(f"{submission:<{width}}  {worksheet:<9}  {passed}/{len(graded):<3}  {marks}")
    lines.append("  ".join(f"{mark[s]} {s}" for s in statuses))
    per_task: dict[tuple[str, str], collections.Counter] = {}
    for row in rows:
        if row.task:
            per_task.setdefault((row.worksheet, row.task), collections.Counter())[row.status] += 1
    if per_task:
        width = max(len(f"{w} {t}") for w, t in per_task)
        lines += ["", f"{'task':<{width}}  " + "  ".join(f"{s:>13}" for s in statuses)]
        for (worksheet, task), counts in per_task.items():
            lines.append(f"{worksheet + ' ' + task:<{width}}  " + "  ".join(f"{counts[s]:>13}" for s in statuses))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools grade", description=__doc__.split("\n")[0])
    parser.add_argument("submissions", nargs="+", type=Path, help="submitted notebooks or folders of them")
    parser.add_argument("--csv", type=Path, required=True, help="where to write the gradebook (one row per submission × task)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds any one cell may run (default 120)")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at the same time (default 1)")
    parser.add_argument("--answers", type=Path, help="also write every written answer, grouped by question next to "
                                                     "its rubric, to this Markdown file (for grading by hand)")
    args = parser.parse_args(argv)
    missing = [p for p in args.submissions if not p.exists()]
    if missing:
        print(f"error: no such file or folder: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    rows = grade(args.submissions, args.timeout, args.jobs, progress=lambda text: print(text, file=sys.stderr))
    write_csv(rows, args.csv)
    print(summary(rows))
    print(f"\nwrote {len(rows)} rows to {args.csv}")
    if args.answers:
        write_answers(args.submissions, args.answers)
        print(f"wrote the written answers to {args.answers}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
