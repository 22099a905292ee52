"""The contract every worksheet checker shares: each one probes a learner's function with its own seeded inputs.

Every checker takes the learner's function and

- prints one line and returns ``True`` when the answer is right;
- raises ``AssertionError`` with a hint naming the likely mistake when it is wrong;
- prints "not implemented yet" and returns ``False`` while the function still raises
  ``NotImplementedError``, so Run All on a fresh worksheet runs from top to bottom.

Checkers seed their own probes and run inside ``torch.random.fork_rng``, so they are reproducible
and leave the notebook's global random state exactly as they found it.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Callable, NoReturn

import torch


CHECK_SEED = 1234


class _NotImplementedYet(Exception):
    """The learner's function still raises NotImplementedError."""


def _checker(name: str) -> Callable[[Callable[[Callable], str]], Callable[[Callable], bool]]:
    """Turn ``check(fn) -> success detail`` into a public checker with the shared contract."""

    def wrap(check: Callable[[Callable], str]) -> Callable[[Callable], bool]:
        @functools.wraps(check)
        def run(fn: Callable) -> bool:
            if not callable(fn):
                raise TypeError(f"{check.__name__} expects your function `{name}` itself, got {type(fn).__name__}")
            try:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(CHECK_SEED)
                    detail = check(fn)
            except _NotImplementedYet:
                print(f"{name}: not implemented yet (replace `raise NotImplementedError` with your code, then rerun)")
                return False
            print(f"✓ {name}: {detail}")
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
            f"{getattr(fn, '__name__', 'your function')} raised {type(exc).__name__}: {exc}\n"
            f"  called as {called_as}" + (f"\n  hint: {hint}" if hint else "")
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
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(f"{what} must return a number, got {type(value).__name__}")
    return float(value)


def _close(a: float, b: float, rel: float) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=0.0)


def relative_error(x: torch.Tensor, y: torch.Tensor) -> float:
    """cs231n's gradient-check metric: max |x − y| / max(1e-8, |x| + |y|), elementwise."""
    x, y = x.detach().double(), y.detach().double()
    return (x - y).abs().div((x.abs() + y.abs()).clamp_min(1e-8)).max().item()
