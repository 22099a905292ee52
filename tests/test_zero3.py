"""Tests of rmlib.lab.zero3: lesson 07's ZeRO-3 experiment with the real DeepSpeed on one CPU rank.

The experiment itself needs the `zero3` extra (DeepSpeed). Without it the test skips on a laptop and
fails under CI (env ``CI`` set), where the extra is part of the environment.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import sys

import pytest

from rmlib.init import score_head_std
from rmlib.lab import zero3
from tests.fake_child import fake_children, fake_clock


def _require_extra() -> None:
    message = zero3.zero3_extra_message()
    if message:
        if os.environ.get("CI"):
            pytest.fail(f"the ZeRO-3 experiment cannot run under CI: {message}")
        pytest.skip(message)


# --- the optional extra and bad input ------------------------------------------------------------

def test_missing_dependencies_reported_by_pypi_name(monkeypatch):
    monkeypatch.setitem(sys.modules, "deepspeed", None)  # what a failed import leaves behind
    assert zero3.missing_zero3_dependencies()[0] == "deepspeed"
    message = zero3.zero3_extra_message()
    assert "\n" not in message and zero3.INSTALL_HINT in message and "deepspeed" in message
    assert "[zero3]" in message and zero3.INSTALL_HINT == 'pip install -e ".[zero3]"'
    with pytest.raises(ImportError, match="deepspeed"):
        zero3.run_zero3_experiment()


def test_accelerate_is_part_of_the_extra(monkeypatch):
    # transformers' HfDeepSpeedConfig subclasses accelerate's: without accelerate the child would fail.
    monkeypatch.setitem(sys.modules, "accelerate", None)
    assert "accelerate" in zero3.missing_zero3_dependencies()
    assert "accelerate" in zero3.zero3_extra_message()


def test_no_message_when_nothing_missing():
    assert zero3.zero3_extra_message(missing=[]) is None


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"hidden_size": 512.0}, TypeError, "hidden_size must be an int"),
        ({"hidden_size": True}, TypeError, "hidden_size must be an int"),
        ({"hidden_size": 6}, ValueError, "multiple of 4"),
        ({"hidden_size": 510}, ValueError, "multiple of 4"),
        ({"fan_in": 0}, ValueError, "fan_in"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": "0"}, TypeError, "seed must be an int"),
    ],
)
def test_bad_arguments_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        zero3.run_zero3_experiment(**kwargs)


def test_child_failure_and_timeout_are_reported(monkeypatch):
    monkeypatch.setattr(zero3, "missing_zero3_dependencies", lambda: [])
    child = functools.partial(fake_children, monkeypatch)

    child(returncode=1, output="log line\nTraceback: boom\n")
    with pytest.raises(RuntimeError, match=r"exit code 1(.|\n)*boom"):
        zero3.run_zero3_experiment()

    child(output="nothing\n")  # exit code 0 but no result line: still a failure
    with pytest.raises(RuntimeError, match="failed"):
        zero3.run_zero3_experiment()

    child(hangs=True)
    with pytest.raises(TimeoutError, match="did not finish in 5 s"):
        zero3.run_zero3_experiment(timeout=5)


def test_a_started_experiment_reports_the_childs_own_time_once(monkeypatch):
    monkeypatch.setattr(zero3, "missing_zero3_dependencies", lambda: [])
    fields = {f.name: 0 for f in dataclasses.fields(zero3.Zero3Result)} | {"seconds": 0.0}
    line = zero3.RESULT_TAG + json.dumps({**fields, "finished": 1e9 + 4.0})
    children = fake_children(monkeypatch, output=line)
    fake_clock(monkeypatch, 1e9)
    run = zero3.start_zero3_experiment()
    first = run.result()
    assert first.seconds == 4.0  # the child's end, not when result() was called
    assert run.result() is first and len(children) == 1  # waited for once


def test_a_child_that_finished_long_ago_is_read_not_timed_out(monkeypatch):
    # The lesson's last cell may run long after the timeout (a learner's break): the child exited in time,
    # and its result must be read, not reported as a timeout because the deadline has passed.
    monkeypatch.setattr(zero3, "missing_zero3_dependencies", lambda: [])
    fields = {f.name: 0 for f in dataclasses.fields(zero3.Zero3Result)} | {"seconds": 0.0}
    line = zero3.RESULT_TAG + json.dumps({**fields, "finished": 1e9 + 4.0})
    fake_children(monkeypatch, output=line)
    fake_clock(monkeypatch, 1e9, 1e9 + 3600.0)
    assert zero3.start_zero3_experiment(timeout=60).result().seconds == 4.0


# --- the experiment, for real ---------------------------------------------------------------------

def test_zero3_experiment():
    """Other sizes and seed than the lesson's, so the claims do not hang on one draw."""
    _require_extra()
    d, fan_in = 256, 1024
    z3 = zero3.run_zero3_experiment(hidden_size=d, fan_in=fan_in, seed=1)
    assert (z3.accelerator, z3.backend, z3.world_size) == ("cpu", "gloo", 1)
    # Outside GatheredParameters each rank holds a 0-element placeholder; the full shape is kept aside.
    assert z3.linear_local_numel == 0 and z3.linear_full_shape == [1, fan_in]
    assert z3.score_local_numel == 0 and z3.score_full_shape == [1, d]
    # PyTorch's default init ran on the full tensor: uniform, bound 1/sqrt(fan_in), std 1/sqrt(3 fan_in).
    # Relative standard error of a uniform sample's std: sqrt(0.2/n); allow 4 of them.
    assert abs(z3.linear_std * math.sqrt(3 * fan_in) - 1) < 4 * math.sqrt(0.2 / fan_in), z3.linear_std
    assert z3.linear_max_abs <= 1 / math.sqrt(fan_in)
    # Normal draws: relative standard error of the sample std 1/sqrt(2n); allow 4 of them.
    tol = 4 / math.sqrt(2 * d)
    # DeepSpeed gathers only tensors that carry a ds_id: state_dict() returns detached tensors without
    # one (transformers < 5.0 gathered nothing), state_dict(keep_vars=True) the parameters themselves.
    assert z3.detached_with_ds_id == 0 and z3.score_numel_in_detached_gather == 0
    assert z3.kept_with_ds_id == z3.n_state_tensors > 0 and z3.score_numel_in_kept_gather == d
    if tuple(int(p) for p in z3.transformers_version.split(".")[:2]) >= (5, 0):
        assert abs(z3.score_std_loaded / z3.initializer_range - 1) < tol, z3.score_std_loaded
    else:  # the trap: the head was never initialised (whatever memory held)
        assert not abs(z3.score_std_loaded / z3.initializer_range - 1) < tol, z3.score_std_loaded
    assert z3.target_std == score_head_std(d)
    # open-instruct's call changes nothing; the gathered one draws exactly the intended numbers.
    assert z3.naive_unchanged and z3.score_std_naive == z3.score_std_loaded
    assert abs(z3.score_std_naive / z3.target_std - 1) > tol  # outside the band the intended std must hit
    assert z3.gathered_equals_reference
    assert abs(z3.score_std_gathered / z3.target_std - 1) < tol, z3.score_std_gathered
    assert z3.modifier_none_changed_inside and z3.modifier_none_unchanged
    # DeepSpeed's sanity checks catch the init call, not a change through .data
    assert z3.sanity_checks_catch_init and not z3.sanity_checks_catch_data
    assert z3.seconds > 0
