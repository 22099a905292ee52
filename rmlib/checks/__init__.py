"""Self-checks for the worksheets, one module per worksheet, all sharing one contract (``_contract``).

Every checker takes the learner's function; it prints one ✓ line and returns ``True`` when the answer
is right, raises ``AssertionError`` with a hint naming the likely mistake when it is wrong, and prints
"not implemented yet" and returns ``False`` while the function is still the untouched stub. Probes are
drawn afresh on every call; ``check_x(x, seed=N)`` replays the probes of a recorded seed.

=========  ==============================  =========================================================
worksheet  module                          checkers
=========  ==============================  =========================================================
02         ``rmlib.checks.variance``       check_predicted_variance, check_mc_variance, check_formula_breaker
02         ``rmlib.checks.derivations``    check_std_for_unit_variance, check_difference_std
03         ``rmlib.checks.layer_init``     check_layer_init, check_score_head_std, check_default_head_reward_std
04         ``rmlib.checks.bt_loss``        check_bradley_terry_loss, check_bt_gradient, check_relative_error
05         ``rmlib.checks.sweep``          check_loglog_slope, check_adam_first_step, check_early_stopping_step
06         ``rmlib.checks.normalisation``  check_reward_gain_bias, check_normalise_on_reference
=========  ==============================  =========================================================

Around the checkers:

- ``hint(task, level)`` prints graded hints without opening the solution: level 1 a first nudge,
  2 the key idea, 3 the formula (a complete solution). For graded work a teacher switches level 3
  off by setting the environment variable ``RMLIB_HINT_LEVEL_MAX=2`` where the students' kernels run
  (``hint_level_max()`` reads it); levels 1 and 2 then stay available. Each checker module holds them in a module-level dict
  ``HINTS = {"task_name": ("nudge", "key idea", "formula")}``; ``hint`` finds that dict in every
  module of this package, so a new module's hints need no registration (``_registry``). Each module
  also declares its worksheet, ``WORKSHEET = "03"``.
- ``scoreboard()`` summarises which tasks of the worksheet(s) checked in this kernel pass, from the
  structured records the checkers keep (``RECORDS``).
"""

from __future__ import annotations

import textwrap

from rmlib.checks._contract import CHECK_SEED, MARKS, MIME_TYPE, RECORDS, TASKS, relative_error
from rmlib.checks._registry import HINT_LEVEL_ENV, HINT_LEVELS, available_hints, hint_level_max, worksheets  # noqa: F401
from rmlib.checks.derivations import check_difference_std, check_std_for_unit_variance
from rmlib.checks.bt_loss import check_bradley_terry_loss, check_bt_gradient, check_relative_error
from rmlib.checks.layer_init import check_default_head_reward_std, check_layer_init, check_score_head_std
from rmlib.checks.normalisation import check_normalise_on_reference, check_reward_gain_bias
from rmlib.checks.sweep import check_adam_first_step, check_early_stopping_step, check_loglog_slope
from rmlib.checks.variance import check_formula_breaker, check_mc_variance, check_predicted_variance, mc_variance_stderr

WORKSHEETS = worksheets()  # {checker module: worksheet number}, from each module's WORKSHEET


def hint(task: str, level: int = 1) -> None:
    """Print hint ``level`` (1 = a first nudge, 2 = the key idea, 3 = the formula) for ``task``."""
    hints = available_hints()
    if task not in hints:
        known = ", ".join(sorted(hints)) or "none"
        raise ValueError(f"no hints for {task!r}; tasks with hints: {known}")
    if isinstance(level, bool) or not isinstance(level, int) or level < 1:
        raise ValueError(f"level must be 1, 2 or 3 (1 = a first nudge), got {level!r}")
    levels = hints[task]
    top = min(len(levels), hint_level_max())
    shown = min(level, top)
    what = HINT_LEVELS[shown - 1] if shown <= len(HINT_LEVELS) else f"level {shown}"
    if shown < top:
        more = f"  (more: rmlib.checks.hint({task!r}, {shown + 1}))"
    elif top < len(levels):
        more = f"  (that is the last hint here: your teacher has switched level {top + 1} off for graded work)"
    else:
        more = "  (that is the last hint)"
    # Every line indented alike, so a multi-line formula keeps its Python indentation when copied.
    print(f"hint {shown}/{top} for {task} — {what}:\n{textwrap.indent(levels[shown - 1], '  ')}\n{more}")


def scoreboard(worksheet: str | None = None) -> None:
    """Print which tasks pass, from the check records kept in this kernel (``RECORDS``).

    ``worksheet`` ("03", say) picks the worksheet; by default it is every worksheet with a check on record.
    """
    if worksheet is None:
        modules = [m for m in WORKSHEETS if any(TASKS[t].module == m for t in RECORDS if t in TASKS)]
    else:
        modules = [m for m, number in WORKSHEETS.items() if number == str(worksheet).zfill(2)]
        if not modules:
            raise ValueError(f"no worksheet {worksheet!r}; worksheets: {', '.join(dict.fromkeys(WORKSHEETS.values()))}")
    tasks = [t for t in TASKS.values() if t.module in modules]
    if not tasks:
        print("scoreboard: no check has run in this kernel yet")
        return
    marks = {**MARKS, "not run": MARKS["not attempted"]}
    status = {t.name: RECORDS.get(t.name, {}).get("status", "not run") for t in tasks}
    width = max(len(t.name) for t in tasks)
    title = ", ".join(f"worksheet {number}" for number in dict.fromkeys(WORKSHEETS[m] for m in modules))
    lines = [f"scoreboard — {title}"]
    lines += [f"  {marks[status[t.name]]} {t.name:<{width}}  {status[t.name]}" for t in tasks]
    passed = sum(s == "passed" for s in status.values())
    lines.append(f"  {passed} of {len(tasks)} tasks pass" + (" — well done!" if passed == len(tasks) else ""))
    print("\n".join(lines))


__all__ = [
    "CHECK_SEED",
    "MIME_TYPE",
    "RECORDS",
    "TASKS",
    "WORKSHEETS",
    "available_hints",
    "check_adam_first_step",
    "check_default_head_reward_std",
    "check_difference_std",
    "check_std_for_unit_variance",
    "check_bradley_terry_loss",
    "check_bt_gradient",
    "check_early_stopping_step",
    "check_formula_breaker",
    "check_layer_init",
    "check_loglog_slope",
    "check_mc_variance",
    "check_normalise_on_reference",
    "check_predicted_variance",
    "check_relative_error",
    "check_reward_gain_bias",
    "check_score_head_std",
    "hint",
    "hint_level_max",
    "mc_variance_stderr",
    "relative_error",
    "scoreboard",
]
