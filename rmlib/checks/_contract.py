"""The contract every worksheet checker shares: each one probes a learner's function with its own seeded inputs.

Every checker takes the learner's function and

- prints one line and returns ``True`` when the answer is right;
- raises ``AssertionError`` with a hint naming the likely mistake when it is wrong — and only
  ``AssertionError``: a crash of the learner's code is reported as "your function raised X when
  called as …", and anything the learner returns that the checker cannot even use (a wrong type,
  shape or dtype) is a failed check with a hint, never a crash of the checker;
- prints "not implemented yet" and returns ``False`` while the function is still the untouched stub,
  so Run All on a fresh worksheet runs from top to bottom.

Every outcome is also kept as a structured record (``RECORDS``, read by ``scoreboard()``) and, inside
a Jupyter kernel, displayed as a MIME bundle of type ``application/vnd.rmlib.check+json`` next to its
``text/plain`` line. The gradebook (``python -m tools grade``) reads those bundles from the outputs
of the executed notebook; nothing parses printed text.

Mechanisms every checker gets from ``_checker`` (a new checker uses them by calling the helpers this module
re-exports from ``_answers``, ``_own`` and ``_probes``):

- **Fresh probes.** Each call draws a fresh probe seed (``secrets``), or takes ``seed=`` (replay) or the
  environment variable ``RMLIB_CHECK_SEED``; ``_probe_generator(k)`` gives the k-th seeded generator of
  this call and ``_probe_seed()`` the seed itself. The seed is kept in the record, and a failure whose
  probes came from it says how to replay them: ``check_x(x, seed=N)``. torch's global generator is
  seeded with it too, inside ``torch.random.fork_rng``, so the notebook's random state is left alone.
- **Crashes.** ``_call`` turns any exception of the answer, including ``SystemExit`` and every other
  ``BaseException`` except ``KeyboardInterrupt``, into a failed check saying how it was called.
- **Inputs.** ``_call`` hands the answer the real input tensors and fails when it changed one in place.
- **Global state.** torch's default dtype, grad mode, deterministic-algorithms flag and anomaly mode,
  and numpy's and Python's global random state are compared before and after the check; a change is
  undone and, unless the check already failed, is itself a failure naming it.
- **Not attempted.** Only an untouched stub (a body that is exactly ``raise NotImplementedError``, as
  ``tools.exercises`` generates it) is "not attempted"; a ``NotImplementedError`` raised by a finished
  answer is a failed check.
- **Signed records.** When the gradebook runs a submission it hands the kernel a per-run key in the
  environment variable ``RMLIB_GRADE_KEY`` (read once at import, then removed from ``os.environ``);
  every record is then signed with an HMAC over its content (``record_signature``), and the gradebook
  trusts only records whose signature it can verify.
- **Evidence-based hints.** ``_diagnose`` names a wrong formula only when that formula reproduces the
  answer on every probe; otherwise the failure shows the failing probe and the expected value.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import sys
from dataclasses import dataclass
from typing import Callable

import torch

# The helpers checkers call live by concern in the modules below; they are re-exported here so a checker
# module imports everything it needs from `_contract`.
from rmlib.checks._answers import (_NotImplementedYet, _argument_name, _as_float, _call, _close,  # noqa: F401
                                   _diagnose, _dtype_name, _expect_raises, _fail, _function_name, _is_stub,
                                   _is_stub_code, _not_implemented_failure, _snapshot, _stub_in_traceback, _tensor,
                                   _unchanged, relative_error)
from rmlib.checks._own import OWN_IMPLEMENTATIONS, _own_message, _reached_own_implementation, _Watch  # noqa: F401
from rmlib.checks._registry import available_hints, hint_level_max
from rmlib.checks._probes import (CHECK_SEED, SEED_ENV, _CURRENT, _STATE_HINTS, _fresh_seed,  # noqa: F401
                                  _global_state, _probe_generator, _probe_seed, _restore_state)

MIME_TYPE = "application/vnd.rmlib.check+json"
RECORD_VERSION = 2  # 2: records carry the probe seed and, under the gradebook, a signature
KEY_ENV = "RMLIB_GRADE_KEY"  # set by `python -m tools grade` in the kernels it starts, and only there
# Read once and taken out of the environment, so that neither a later os.environ lookup nor a
# subprocess of the answer sees it (what this does not protect against: README, "Collect and grade").
_KEY = os.environ.pop(KEY_ENV, "").encode()
STATUSES = ("passed", "failed", "not attempted")  # what a checker can record; the gradebook adds error, timeout
MARKS = {"passed": "✓", "failed": "✗", "not attempted": "·"}  # each status's mark (scoreboard, gradebook, ✓/✗ lines)


@dataclass(frozen=True)
class Task:
    """One checked task: its name (the learner's function), its checker and the module (worksheet) it belongs to."""

    name: str
    checker: str
    module: str


TASKS: dict[str, Task] = {}  # every task with a checker, in definition order (= worksheet order)
RECORDS: dict[str, dict] = {}  # the latest outcome of each task checked in this Python process


# ------------------------------------------------------------------------------------------ signed records

def _canonical(record: dict) -> bytes:
    content = {k: v for k, v in record.items() if k != "signature"}
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def record_signature(record: dict, key: bytes) -> str:
    """HMAC-SHA256 of a record's content (every field but ``signature``) under ``key``."""
    return hmac.new(key, _canonical(record), hashlib.sha256).hexdigest()


def record_is_signed_by(record: dict, key: bytes) -> bool:
    """True when ``record`` carries a valid signature under ``key`` (what the gradebook trusts)."""
    signature = record.get("signature")
    return isinstance(signature, str) and hmac.compare_digest(signature, record_signature(record, key))


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # the checkers also run without IPython (plain Python, pytest)
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _emit(record: dict, line: str) -> None:
    """Keep the record; show the line (inside a kernel as a display carrying the structured record)."""
    if _KEY:
        record = {**record, "signature": record_signature(record, _KEY)}
    RECORDS[record["task"]] = record
    if _in_kernel():
        from IPython.display import display

        display({MIME_TYPE: record, "text/plain": line}, raw=True)
    else:
        print(line)


def _hint_pointer(name: str) -> str:
    top = min(len(available_hints().get(name, ())), hint_level_max())
    if not top:
        return ""
    more = f"; levels 2–{top} say more" if top > 2 else ("; level 2 says more" if top == 2 else "")
    return f"\n  stuck? rmlib.checks.hint({name!r}) gives a first nudge{more}"


def _checker_bindings() -> dict[str, dict]:
    """Every name bound in the checkers' modules, to tell afterwards whether an answer rebound one."""
    return {m: dict(vars(mod)) for m, mod in list(sys.modules.items())
            if mod is not None and (m == "rmlib.checks" or m.startswith("rmlib.checks."))}


def _restore_bindings(before: dict[str, dict]) -> list[str]:
    """Put back what an answer rebound in a checker module; return the names it had changed."""
    changed = []
    for m, names in before.items():
        g = vars(sys.modules[m])
        for k in [k for k in g if k not in names and k != "__warningregistry__"]:  # warnings.warn(stacklevel=2)
            changed.append(f"{m}.{k}")
            del g[k]
        for k, v in names.items():
            if g.get(k, _MISSING) is not v:
                changed.append(f"{m}.{k}")
                g[k] = v
    return changed


_MISSING = object()


def _run_check(check: Callable[[Callable], str], fn: Callable, name: str, seed: int) -> str:
    """Run ``check(fn)`` under the probe seed, guarding the notebook's global state; return its success detail."""
    if not callable(fn):
        _fail(f"{check.__name__} expects your function `{name}` itself, got {type(fn).__name__}: "
              f"write {check.__name__}({name}), without calling {name}")
    if _is_stub(fn):
        raise _NotImplementedYet
    # In a notebook, the check is of the function the worksheet names: a check cell rewritten to pass another
    # (correct) function would otherwise record a pass for an answer cell that is still wrong.
    notebook_fn = getattr(sys.modules.get("__main__"), name, None)
    if _in_kernel() and notebook_fn is not None and notebook_fn is not fn:
        _fail(f"{check.__name__} checks your function `{name}`; it was given another function "
              f"({getattr(fn, '__name__', type(fn).__name__)}). Write {check.__name__}({name})")
    who = getattr(fn, "__name__", name).replace("<lambda>", "lambda")
    own = _reached_own_implementation(fn, name)
    if own:
        _fail(_own_message(who, name, own))
    _CURRENT.update(seed=int(seed), used=False)
    state = _global_state()
    bindings = _checker_bindings()
    failed = True
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed((int(seed) + CHECK_SEED) % 2**63)
            watch = _Watch(name, fn)
            try:
                detail = check(watch(fn))
            finally:
                # What the watch saw overrides the check's verdict: a reference reached by a computed name
                # gives right values, and a stack read may have handed back the checker's own expected ones.
                seen = watch.failure(who, name)
                if seen:
                    _fail(seen)
        failed = False
    except (AssertionError, _NotImplementedYet):
        raise
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the checker choked on what came back: still the learner's mistake
        _fail(f"what your function returned could not be checked ({type(exc).__name__}: {exc}); "
              "compare its type, shape and dtype with the task statement")
    finally:
        rebound = _restore_bindings(bindings)
        if rebound:  # e.g. an answer that reached the checker's module through the stack and disarmed _fail
            _fail(f"your function changed the checker itself ({rebound[0]}); the check has put it back")
        changed = _restore_state(state)
        if changed and not failed:
            _fail(f"your function changed {changed[0]} and left it changed: "
                  f"{_STATE_HINTS[changed[0]]} (the check has put it back)")
    return detail


def _checker(name: str) -> Callable[[Callable[[Callable], str]], Callable[..., bool]]:
    """Turn ``check(fn) -> success detail`` into a public checker with the shared contract."""

    def wrap(check: Callable[[Callable], str]) -> Callable[..., bool]:
        module = check.__module__.rsplit(".", 1)[-1]
        TASKS[name] = Task(name=name, checker=check.__name__, module=module)

        @functools.wraps(check)
        def run(fn: Callable, *, seed: int | None = None) -> bool:
            if seed is None:
                seed = int(os.environ[SEED_ENV]) if os.environ.get(SEED_ENV, "").strip() else _fresh_seed()
            record = {"version": RECORD_VERSION, "task": name, "checker": check.__name__, "module": module,
                      "seed": int(seed), "function": _function_name(fn)}
            replay = f"\n  (probe seed {seed}: {check.__name__}({name}, seed={seed}) replays these probes)"
            try:
                detail = _run_check(check, fn, name, seed)
            except _NotImplementedYet:
                _emit({**record, "status": "not attempted", "message": "not implemented yet"},
                      f"{name}: not implemented yet (replace `raise NotImplementedError` with your code, then rerun)")
                return False
            except AssertionError as exc:
                text = str(exc) + (replay if _CURRENT["used"] else "")
                _emit({**record, "status": "failed", "message": text},
                      f"{MARKS['failed']} {name}: not right yet — the hint is in the error below")
                raise AssertionError(text + _hint_pointer(name)) from None
            finally:
                _CURRENT.update(seed=None, used=False)
            _emit({**record, "status": "passed", "message": detail}, f"{MARKS['passed']} {name}: {detail}")
            return True

        return run

    return wrap
