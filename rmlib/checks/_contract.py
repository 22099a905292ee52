"""The contract every worksheet checker shares: each one probes a learner's function with its own seeded inputs.

Every checker takes the learner's function and

- prints one line and returns ``True`` when the answer is right;
- raises ``AssertionError`` with a hint naming the likely mistake when it is wrong — and only
  ``AssertionError``: a crash of the learner's code is reported as "your function raised X when
  called as …", and anything the learner returns that the checker cannot even use (a wrong type,
  shape or dtype) is a failed check with a hint, never a crash of the checker;
- prints "not implemented yet" and returns ``False`` while the function still raises
  ``NotImplementedError``, so Run All on a fresh worksheet runs from top to bottom.

Every outcome is also kept as a structured record (``RECORDS``, read by ``scoreboard()``) and, inside
a Jupyter kernel, displayed as a MIME bundle of type ``application/vnd.rmlib.check+json`` next to its
``text/plain`` line. The gradebook (``python -m tools grade``) reads those bundles from the outputs
of the executed notebook; nothing parses printed text.

Checkers seed their own probes and run inside ``torch.random.fork_rng``, so they are reproducible
and leave the notebook's global random state exactly as they found it.
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, NoReturn

import torch


CHECK_SEED = 1234
MIME_TYPE = "application/vnd.rmlib.check+json"
RECORD_VERSION = 1
STATUSES = ("passed", "failed", "not attempted")  # what a checker can record; the gradebook adds error, timeout


@dataclass(frozen=True)
class Task:
    """One checked task: its name (the learner's function), its checker and the module (worksheet) it belongs to."""

    name: str
    checker: str
    module: str


TASKS: dict[str, Task] = {}  # every task with a checker, in definition order (= worksheet order)
RECORDS: dict[str, dict] = {}  # the latest outcome of each task checked in this Python process


class _NotImplementedYet(Exception):
    """The learner's function still raises NotImplementedError."""


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # the checkers also run without IPython (plain Python, pytest)
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _emit(record: dict, line: str) -> None:
    """Keep the record; show the line (inside a kernel as a display carrying the structured record)."""
    RECORDS[record["task"]] = record
    if _in_kernel():
        from IPython.display import display

        display({MIME_TYPE: record, "text/plain": line}, raw=True)
    else:
        print(line)


def _hint_pointer(name: str) -> str:
    from rmlib.checks import available_hints  # the package collects HINTS from every checker module

    levels = available_hints().get(name, ())
    if not levels:
        return ""
    return f"\n  stuck? rmlib.checks.hint({name!r}) gives a first nudge; levels 2–{len(levels)} say more"


def _checker(name: str) -> Callable[[Callable[[Callable], str]], Callable[[Callable], bool]]:
    """Turn ``check(fn) -> success detail`` into a public checker with the shared contract."""

    def wrap(check: Callable[[Callable], str]) -> Callable[[Callable], bool]:
        module = check.__module__.rsplit(".", 1)[-1]
        TASKS[name] = Task(name=name, checker=check.__name__, module=module)

        @functools.wraps(check)
        def run(fn: Callable) -> bool:
            record = {"version": RECORD_VERSION, "task": name, "checker": check.__name__, "module": module}
            try:
                if not callable(fn):
                    _fail(f"{check.__name__} expects your function `{name}` itself, got {type(fn).__name__}: "
                          f"write {check.__name__}({name}), without calling {name}")
                try:
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed(CHECK_SEED)
                        detail = check(fn)
                except (AssertionError, _NotImplementedYet):
                    raise
                except Exception as exc:  # the checker choked on what came back: still the learner's mistake
                    _fail(f"what your function returned could not be checked ({type(exc).__name__}: {exc}); "
                          "compare its type, shape and dtype with the task statement")
            except _NotImplementedYet:
                _emit({**record, "status": "not attempted", "message": "not implemented yet"},
                      f"{name}: not implemented yet (replace `raise NotImplementedError` with your code, then rerun)")
                return False
            except AssertionError as exc:
                message = str(exc) + _hint_pointer(name)
                _emit({**record, "status": "failed", "message": str(exc)},
                      f"✗ {name}: not right yet — the hint is in the error below")
                raise AssertionError(message) from None
            _emit({**record, "status": "passed", "message": detail}, f"✓ {name}: {detail}")
            return True

        return run

    return wrap


def _call(fn: Callable, *args: Any, called_as: str, hint: str = "") -> Any:
    """Call the learner's function; a crash becomes an AssertionError saying how it was called."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise _NotImplementedYet from None
    except Exception as exc:  # any crash of the learner's code is a wrong answer, explained
        raise AssertionError(
            f"your function {getattr(fn, '__name__', '')} raised {type(exc).__name__}: {exc}\n"
            f"  when called as {called_as}" + (f"\n  hint: {hint}" if hint else "")
        ) from None


def _fail(message: str) -> NoReturn:
    raise AssertionError(message)


def _as_float(value: Any, what: str) -> float:
    """A Python float from a number or a one-element tensor, or a clear failure."""
    if value is None:
        _fail(f"{what} returned None: did you forget the `return` statement?")
    if torch.is_tensor(value):
        if value.numel() != 1:
            _fail(f"{what} must return one number, got a tensor of shape {tuple(value.shape)}")
        if value.is_complex():
            _fail(f"{what} must return a real number, got a complex tensor")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(f"{what} must return a number, got {type(value).__name__}")
    return float(value)


def _tensor(value: Any, what: str, *, shape: tuple[int, ...] | None = None, dtype: torch.dtype | None = None,
            device: torch.device | str | None = None, why_dtype: str = "") -> torch.Tensor:
    """``value`` as a tensor honouring the task's contract (shape, dtype, device), or a failure naming the breach."""
    if value is None:
        _fail(f"{what} returned None: did you forget the `return` statement?")
    if not torch.is_tensor(value):
        _fail(f"{what} must return a torch tensor, got {type(value).__name__}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        hint = " (transposed?)" if len(shape) == 2 and tuple(value.shape) == tuple(shape)[::-1] else ""
        _fail(f"{what} returned shape {tuple(value.shape)}, expected {tuple(shape)}{hint}")
    if dtype is not None and value.dtype != dtype:
        _fail(f"{what} returned a {_dtype_name(value.dtype)} tensor from {_dtype_name(dtype)} inputs: "
              + (why_dtype or "compute in the inputs' dtype"))
    if device is not None and value.device != torch.device(device):
        _fail(f"{what} returned a tensor on {value.device}, expected {torch.device(device)} (where the inputs live)")
    return value


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _expect_raises(fn: Callable, args: tuple, called_as: str, why: str, error: type[Exception] = ValueError) -> None:
    """The learner's guard must raise ``error`` on this bad input; anything else is a failure saying what to do."""
    try:
        out = fn(*args)
    except NotImplementedError:
        raise _NotImplementedYet from None
    except error:
        return
    except Exception as exc:  # the wrong kind of failure is a wrong answer, explained
        _fail(f"your function raised {type(exc).__name__}: {exc}\n  when called as {called_as}\n  hint: check the "
              f"input yourself and raise {error.__name__} with a message saying what is wrong ({why})")
    _fail(f"{called_as} returned {out!r} instead of raising {error.__name__}: {why}")


def _close(a: float, b: float, rel: float) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.0)


def relative_error(x: torch.Tensor, y: torch.Tensor) -> float:
    """cs231n's gradient-check metric: max |x − y| / max(1e-8, |x| + |y|), elementwise."""
    x, y = x.detach().double(), y.detach().double()
    return (x - y).abs().div((x.abs() + y.abs()).clamp_min(1e-8)).max().item()
