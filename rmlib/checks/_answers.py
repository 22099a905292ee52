"""Reading a learner's answer: calling it safely, taking apart what it returns, and telling the stub apart.

``_call`` runs the answer on the real inputs (a crash or an in-place change becomes a failed check saying
how it was called), ``_expect_raises`` checks a guard, ``_as_float``/``_tensor`` turn the return value into
something checkable or fail naming the breach, and ``_is_stub`` recognises the untouched generated stub
(a body that is exactly ``raise NotImplementedError``) from its bytecode.
"""

from __future__ import annotations

import dis
import inspect
import math
import numbers
from typing import Any, Callable, NoReturn

import numpy as np
import torch


class _NotImplementedYet(Exception):
    """The learner's function is still the untouched stub."""


# The bytecode of the generated stub: a body that is exactly `raise NotImplementedError` (or `...()`),
# whatever the docstring and comments around it.
_STUB_OPS = {"RESUME", "NOP", "CACHE", "LOAD_GLOBAL", "PUSH_NULL", "PRECALL", "CALL", "RAISE_VARARGS"}


def _is_stub(fn: Any) -> bool:
    """True for an untouched stub: a plain function whose whole body is ``raise NotImplementedError``."""
    return _is_stub_code(getattr(fn, "__code__", None))


def _is_stub_code(code: Any) -> bool:
    if code is None or getattr(code, "co_names", None) != ("NotImplementedError",):
        return False
    try:
        ops = [i.opname for i in dis.get_instructions(code)]
    except Exception:  # an unusual code object: not the generated stub
        return False
    return ops.count("RAISE_VARARGS") == 1 and set(ops) <= _STUB_OPS


def _stub_in_traceback(tb: Any) -> str:
    """The name of a stub function the traceback passed through (a task not done yet), or ""."""
    while tb is not None:
        code = tb.tb_frame.f_code
        if _is_stub_code(code):
            return code.co_name
        tb = tb.tb_next
    return ""


def _not_implemented_failure(fn: Callable, exc: BaseException, called_as: str) -> NoReturn:
    """A finished answer raised NotImplementedError: a failure, saying which stub it came from if any."""
    stub = _stub_in_traceback(exc.__traceback__)
    if stub:
        _fail(f"your function {getattr(fn, '__name__', '')} calls {stub}, which is still the stub "
              f"(raise NotImplementedError)\n  when called as {called_as}\n  hint: finish {stub} first")
    _fail(f"your function {getattr(fn, '__name__', '')} raised NotImplementedError{': ' + str(exc) if str(exc) else ''}"
          f"\n  when called as {called_as}\n  hint: only the untouched stub counts as \"not attempted\"; "
          "a finished answer handles every input the task describes")


def _function_name(fn: Any) -> str:
    """Where the checked function was defined, ``module.qualname`` (``__main__.x`` for a notebook cell): the
    gradebook uses it to tell the learner's function from a library's (``check_x(rmlib.x)``)."""
    module = getattr(fn, "__module__", None) or type(fn).__module__
    return f"{module}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"


def _snapshot(args: tuple) -> list[tuple[int, torch.Tensor]]:
    return [(i, a.detach().clone()) for i, a in enumerate(args) if torch.is_tensor(a)]


def _unchanged(a: torch.Tensor, before: torch.Tensor) -> bool:
    if a.shape != before.shape or a.dtype != before.dtype:
        return False
    if a.is_floating_point() or a.is_complex():
        return torch.equal(a.isnan(), before.isnan()) and torch.equal(a.nan_to_num(), before.nan_to_num())
    return torch.equal(a, before)


def _argument_name(fn: Callable, i: int) -> str:
    try:
        params = list(inspect.signature(fn).parameters)
        return f"`{params[i]}`" if i < len(params) else f"argument {i + 1}"
    except (TypeError, ValueError):
        return f"argument {i + 1}"


def _call(fn: Callable, *args: Any, called_as: str, hint: str | Callable[[BaseException], str] = "",
          may_modify: bool = False) -> Any:
    """Call the learner's function on the real inputs; a crash becomes an AssertionError saying how it was called.

    Tensors are passed as they are and compared afterwards: an answer that changed one in place fails
    (unless ``may_modify``, for a task that works in place). ``hint`` is shown with a crash; a callable
    ``hint(exc)`` returns it for that exception, "" when the exception is no evidence of the mistake it names.
    """
    before = [] if may_modify else _snapshot(args)
    name = getattr(fn, "__name__", "")
    try:
        out = fn(*args)
    except KeyboardInterrupt:
        raise
    except NotImplementedError as exc:
        _not_implemented_failure(fn, exc, called_as)
    except SystemExit as exc:
        raise AssertionError(
            f"your function {name} raised SystemExit ({exc.code!r})\n  when called as {called_as}\n  hint: "
            "sys.exit()/exit()/quit() end the program; return a value, or raise the error the task names"
        ) from None
    except BaseException as exc:  # any crash of the learner's code is a wrong answer, explained
        text = hint(exc) if callable(hint) else hint
        raise AssertionError(
            f"your function {name} raised {type(exc).__name__}: {exc}\n"
            f"  when called as {called_as}" + (f"\n  hint: {text}" if text else "")
        ) from None
    for i, copy in before:
        if not _unchanged(args[i], copy):
            _fail(f"your function {name} changed its input {_argument_name(fn, i)} in place\n  when called as "
                  f"{called_as}\n  hint: compute a new tensor (x = x - m, not x -= m or x.sub_(m)); the caller "
                  "still needs its tensors as they were")
    return out


def _diagnose(matches: list[tuple[bool, str]]) -> str | None:
    """The hint of the first wrong formula that reproduces the answer on every probe (the evidence), else None.

    ``matches`` holds (does this formula reproduce the answer on every probe, and differ from the right
    value on at least one?, hint) per candidate; the caller decides what "reproduces" means.
    """
    return next((hint for ok, hint in matches if ok), None)


def _fail(message: str) -> NoReturn:
    raise AssertionError(message)


def _as_float(value: Any, what: str) -> float:
    """A Python float from a number, a one-element tensor or a one-element numpy array, or a clear failure."""
    if value is None:
        _fail(f"{what} returned None: did you forget the `return` statement?")
    if isinstance(value, (np.ndarray, np.generic)):
        if value.size != 1:
            _fail(f"{what} must return one number, got a numpy array of shape {value.shape}")
        if np.iscomplexobj(value):
            _fail(f"{what} must return a real number, got a complex array")
        value = value.item()
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
    except KeyboardInterrupt:
        raise
    except error:
        return
    except NotImplementedError as exc:
        _not_implemented_failure(fn, exc, called_as)
    except BaseException as exc:  # the wrong kind of failure (SystemExit included) is a wrong answer, explained
        _fail(f"your function raised {type(exc).__name__}: {exc}\n  when called as {called_as}\n  hint: check the "
              f"input yourself and raise {error.__name__} with a message saying what is wrong ({why})")
    _fail(f"{called_as} returned {out!r} instead of raising {error.__name__}: {why}")


def _close(a: float, b: float, rel: float) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.0)


def relative_error(x: torch.Tensor, y: torch.Tensor) -> float:
    """cs231n's gradient-check metric: max |x − y| / max(1e-8, |x| + |y|), elementwise."""
    x, y = x.detach().double(), y.detach().double()
    return (x - y).abs().div((x.abs() + y.abs()).clamp_min(1e-8)).max().item()
