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


def test_integer_maximum():
    assert validation.integer("layer", 6, minimum=0, maximum=6) == 6
    with pytest.raises(ValueError, match=r"layer must be an int in 0\.\.6, got 7"):
        validation.integer("layer", 7, minimum=0, maximum=6)
    with pytest.raises(ValueError, match="≤ 6"):
        validation.integer("layer", 7, minimum=None, maximum=6)


@pytest.mark.parametrize("value", [1, 0, "True", None, 1.0])
def test_boolean_refuses_truthy_non_bools(value):
    with pytest.raises(TypeError, match="whiten must be True or False"):
        validation.boolean("whiten", value)


def test_boolean_accepts_bools():
    import numpy as np

    assert validation.boolean("whiten", True) is True
    assert validation.boolean("whiten", np.bool_(False)) is False


def test_string_and_strings():
    assert validation.string("model_id", "a/b") == "a/b"
    assert validation.string("text", "", nonempty=False) == ""
    with pytest.raises(TypeError, match="model_id must be a string, got int"):
        validation.string("model_id", 3)
    with pytest.raises(ValueError, match="non-empty"):
        validation.string("model_id", "")
    assert validation.strings("sentences", ("a", "b")) == ["a", "b"]
    with pytest.raises(TypeError, match="sequence of strings, got str"):
        validation.strings("sentences", "one string")
    with pytest.raises(TypeError, match="holds a int"):
        validation.strings("sentences", ["a", 2])
    with pytest.raises(ValueError, match="at least one"):
        validation.strings("sentences", [])


def test_instance_names_the_class():
    layer = torch.nn.Linear(2, 1)
    assert validation.instance("layer", layer, torch.nn.Linear) is layer
    with pytest.raises(TypeError, match="layer must be a nn.Linear, got Conv1d"):
        validation.instance("layer", torch.nn.Conv1d(1, 1, 1), torch.nn.Linear)
    with pytest.raises(TypeError, match="int or str"):
        validation.instance("x", 1.0, (int, str))


def test_index_and_bool_tensors():
    ids = torch.zeros(2, 3, dtype=torch.long)
    assert validation.index_tensor("input_ids", ids, ndim=2) is ids
    for bad in (ids.float(), ids.bool()):
        with pytest.raises(TypeError, match="input_ids must be an integer tensor"):
            validation.index_tensor("input_ids", bad)
    with pytest.raises(ValueError, match="2-D"):
        validation.index_tensor("input_ids", ids[0], ndim=2)
    mask = torch.ones(2, 3, dtype=torch.bool)
    assert validation.bool_tensor("mask", mask, shape=(2, 3)) is mask
    with pytest.raises(TypeError, match="bool tensor"):
        validation.bool_tensor("mask", mask.float())
    with pytest.raises(ValueError, match=r"mask must have shape \(3, 2\)"):
        validation.bool_tensor("mask", mask, shape=(3, 2))


def test_grid_and_features():
    import numpy as np

    out = validation.grid("values", torch.ones(2, 3, dtype=torch.float32))
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    with pytest.raises(TypeError, match="got list"):
        validation.grid("values", [[1.0]])
    with pytest.raises(ValueError, match="2-D"):
        validation.grid("values", np.ones(3))
    validation.features("states", torch.ones(4, 5), 5)
    with pytest.raises(ValueError, match=r"states must have 5 features \(last dimension\), got shape \(4, 3\)"):
        validation.features("states", torch.ones(4, 3), 5)
