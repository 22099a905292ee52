"""The one home of argument checks in ``rmlib`` (in the spirit of scikit-learn's ``utils/validation.py``).

Every public function checks what it is given with these helpers, so a bad argument gets the same
kind of error everywhere: ``TypeError`` when the type is wrong, ``ValueError`` when the value is,
and the message names the argument and what was received.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import Any

import torch


def real(name: str, value: Any, *, minimum: float | None = None, positive: bool = False,
         finite: bool = True) -> float:
    """``value`` as a float: a real number (not a bool), finite unless ``finite=False``.

    ``positive`` requires value > 0; ``minimum`` requires value ≥ minimum.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be positive, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be ≥ {minimum}, got {value}")
    return value


def integer(name: str, value: Any, *, minimum: int | None = 1) -> int:
    """``value`` as an int: an integral number (not a bool) ≥ ``minimum`` (default 1; None: any)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an int ≥ {minimum}, got {value}")
    return value


def float_tensor(name: str, value: Any, *, ndim: int | None = None, nonempty: bool = True,
                 finite: bool = False) -> torch.Tensor:
    """``value`` itself if it is a floating-point tensor (of ``ndim`` dimensions, non-empty, finite as asked)."""
    if not torch.is_tensor(value):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if ndim is not None and value.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(value.shape)}")
    if nonempty and value.numel() == 0:
        raise ValueError(f"{name} is empty")
    if finite and not torch.isfinite(value).all():
        raise ValueError(f"{name} holds non-finite values (nan or inf)")
    return value


def same_shape(names: tuple[str, str], a: torch.Tensor, b: torch.Tensor) -> None:
    """Two tensors that pair up element by element (chosen and rejected rewards, say)."""
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def same_dtype(names: tuple[str, str], a: torch.Tensor, b: torch.Tensor) -> None:
    """Two tensors that meet in one matrix product: torch refuses mixed dtypes with a bare RuntimeError."""
    if a.dtype != b.dtype:
        raise TypeError(f"{names[0]} and {names[1]} must have the same dtype, got {a.dtype} and {b.dtype}: "
                        "convert one of them (.to(other.dtype))")


def one_of(name: str, value: Any, options: Collection[Any]) -> Any:
    """``value`` if it is one of ``options``."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value
