"""rmlib.utils.validation: one set of argument checks; wrong type → TypeError, wrong value → ValueError, the name in the message."""

import math

import pytest
import torch

from rmlib.utils import validation


@pytest.mark.parametrize("value, kwargs, error, fragment", [
    ("1", {}, TypeError, "must be a real number, got str"),
    (True, {}, TypeError, "got bool"),
    (math.nan, {}, ValueError, "finite"),
    (math.inf, {}, ValueError, "finite"),
    (math.nan, {"finite": False}, ValueError, "finite"),  # nan is never a usable number
    (0.0, {"positive": True}, ValueError, "positive"),
    (-0.5, {"minimum": 0.0}, ValueError, "≥ 0.0"),
])
def test_real_rejects(value, kwargs, error, fragment):
    with pytest.raises(error, match="lr") as info:
        validation.real("lr", value, **kwargs)
    assert fragment in str(info.value)


def test_real_accepts_and_converts():
    assert validation.real("lr", 1) == 1.0 and type(validation.real("lr", 1)) is float
    assert validation.real("x", math.inf, finite=False) == math.inf
    assert validation.real("std", 0.0, minimum=0.0) == 0.0


@pytest.mark.parametrize("value, error", [(2.0, TypeError), (True, TypeError), ("3", TypeError), (0, ValueError), (-2, ValueError)])
def test_integer_rejects(value, error):
    with pytest.raises(error, match="steps"):
        validation.integer("steps", value)


def test_integer_minimum():
    assert validation.integer("seed", 0, minimum=0) == 0
    assert validation.integer("k", -5, minimum=None) == -5


@pytest.mark.parametrize("value, kwargs, error, fragment", [
    ([1.0], {}, TypeError, "torch.Tensor"),
    (torch.ones(3, dtype=torch.long), {}, TypeError, "floating-point"),
    (torch.ones(3), {"ndim": 2}, ValueError, "2-D"),
    (torch.ones(0), {}, ValueError, "empty"),
    (torch.tensor([1.0, math.inf]), {"finite": True}, ValueError, "non-finite"),
])
def test_float_tensor_rejects(value, kwargs, error, fragment):
    with pytest.raises(error, match="rewards") as info:
        validation.float_tensor("rewards", value, **kwargs)
    assert fragment in str(info.value)


def test_float_tensor_returns_the_same_tensor():
    t = torch.ones(2, 3)
    assert validation.float_tensor("h", t, ndim=2, finite=True) is t


def test_same_shape_and_one_of():
    with pytest.raises(ValueError, match="chosen and rejected must have the same shape"):
        validation.same_shape(("chosen", "rejected"), torch.ones(2), torch.ones(3))
    assert validation.one_of("optimizer", "adam", ("adam", "sgd")) == "adam"
    with pytest.raises(ValueError, match="optimizer must be one of 'adam', 'sgd'; got 'rmsprop'"):
        validation.one_of("optimizer", "rmsprop", ("adam", "sgd"))
