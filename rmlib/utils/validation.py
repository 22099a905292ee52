"""The one home of argument checks in ``rmlib`` (in the spirit of scikit-learn's ``utils/validation.py``).

Every public function checks what it is given with these helpers, so a bad argument gets the same
kind of error everywhere: ``TypeError`` when the type is wrong, ``ValueError`` when the value is,
and the message names the argument and what was received.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
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


def integer(name: str, value: Any, *, minimum: int | None = 1, maximum: int | None = None) -> int:
    """``value`` as an int: an integral number (not a bool) in ``minimum`` … ``maximum``.

    The default minimum 1 fits the counts most arguments are (steps, sizes); pass ``minimum=0`` for
    an index or a seed and ``minimum=None`` for any int. ``maximum=None``: no upper bound.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise ValueError(f"{name} must be an int in {minimum}..{maximum}, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an int ≥ {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an int ≤ {maximum}, got {value}")
    return value


def boolean(name: str, value: Any) -> bool:
    """``value`` itself if it is True or False (1, 0 and other truthy values are refused: they hide mistakes)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def string(name: str, value: Any, *, nonempty: bool = True) -> str:
    """``value`` itself if it is a str (non-empty unless ``nonempty=False``)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    if nonempty and not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def strings(name: str, value: Any) -> list[str]:
    """``value`` as a list: a non-empty sequence of strings (a lone string is refused, not split into letters)."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of strings, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must hold at least one string")
    wrong = next((item for item in value if not isinstance(item, str)), None)
    if wrong is not None:
        raise TypeError(f"{name} must be a sequence of strings; it holds a {type(wrong).__name__}")
    return list(value)


def instance(name: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    """``value`` itself if it is an instance of ``kind``."""
    if not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        expected = " or ".join(("nn." if k.__module__.startswith("torch.nn") else "") + k.__qualname__ for k in kinds)
        raise TypeError(f"{name} must be a {expected}, got {type(value).__name__}")
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


def index_tensor(name: str, value: Any, *, ndim: int | None = None) -> torch.Tensor:
    """``value`` itself if it is an integer tensor (token ids, indices) of ``ndim`` dimensions."""
    if not torch.is_tensor(value):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, got dtype {value.dtype}")
    if ndim is not None and value.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(value.shape)}")
    return value


def bool_tensor(name: str, value: Any, *, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """``value`` itself if it is a torch.bool tensor (of ``shape``, when given)."""
    if not torch.is_tensor(value):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor, got dtype {value.dtype}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(value.shape)}")
    return value


def grid(name: str, value: Any, *, ndim: int = 2) -> np.ndarray:
    """A torch tensor or NumPy array of ``ndim`` dimensions, as a float64 NumPy array.

    NumPy because the statistics over a grid are single-threaded there: many small torch reductions
    stall on a busy 2-core machine.
    """
    if not isinstance(value, (torch.Tensor, np.ndarray)):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(value).__name__}")
    if value.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(value.shape)}")
    return (value.detach().cpu().numpy() if torch.is_tensor(value) else value).astype(np.float64)


def features(name: str, value: torch.Tensor, size: int) -> None:
    """A tensor whose last dimension is ``size``: the features a head of that width reads."""
    if value.dim() == 0 or value.shape[-1] != size:
        raise ValueError(f"{name} must have {size} features (last dimension), got shape {tuple(value.shape)}")


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
