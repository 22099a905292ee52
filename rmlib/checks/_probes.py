"""Probe seeds and the global state a check guards.

Each check runs under one probe seed (fresh, replayed with ``seed=``, or from ``RMLIB_CHECK_SEED``);
``_probe_generator(k)`` gives its k-th seeded generator. ``_global_state``/``_restore_state`` compare and
put back the global settings an answer must leave alone.
"""

from __future__ import annotations

import random
import secrets
from typing import Any

import numpy as np
import torch

CHECK_SEED = 1234  # the fixed part of every probe seed (see _probe_generator)
SEED_ENV = "RMLIB_CHECK_SEED"  # replay every check of a kernel with one probe seed


# ------------------------------------------------------------------------------------------ probe seeds

_CURRENT: dict[str, Any] = {"seed": None, "used": False}


def _fresh_seed() -> int:
    return secrets.randbelow(2**31)


def _probe_seed() -> int:
    """The probe seed of the check running now (fresh on every call unless replayed)."""
    if _CURRENT["seed"] is None:
        raise RuntimeError("_probe_seed() is only available inside a checker")
    _CURRENT["used"] = True
    return _CURRENT["seed"]


def _probe_generator(k: int = 0) -> torch.Generator:
    """The k-th generator of this check's probes: reproducible from the recorded probe seed."""
    return torch.Generator().manual_seed((_probe_seed() * 1_000_003 + CHECK_SEED + k) % 2**63)


# ------------------------------------------------------------------------------------------ global state

def _global_state() -> dict[str, Any]:
    return {
        "torch's default dtype": torch.get_default_dtype(),
        "torch's default device": torch.get_default_device(),
        "torch's grad mode": torch.is_grad_enabled(),
        "torch's deterministic-algorithms flag": torch.are_deterministic_algorithms_enabled(),
        "torch's anomaly mode": torch.is_anomaly_enabled(),
        "numpy's global random state": np.random.get_state(),
        "Python's global random state": random.getstate(),
    }


_STATE_HINTS = {
    "torch's default dtype": "torch.set_default_dtype(...) changes every later tensor of the notebook; pass "
                             "dtype=... to the calls that need it instead",
    "torch's default device": "torch.set_default_device(...) moves every later tensor of the notebook; pass "
                              "device=... to the calls that need it instead",
    "torch's grad mode": "torch.set_grad_enabled(False) left autograd off for the rest of the notebook; use "
                         "`with torch.no_grad():` around the lines that need it",
    "torch's deterministic-algorithms flag": "leave torch.use_deterministic_algorithms as the notebook set it",
    "torch's anomaly mode": "leave torch.autograd.set_detect_anomaly as the notebook set it",
    "numpy's global random state": "your function drew from (or seeded) numpy's global generator; draw with torch "
                                   "(the generator you are given, or torch's global generator)",
    "Python's global random state": "your function drew from (or seeded) Python's `random`; draw with torch (the "
                                    "generator you are given, or torch's global generator)",
}


def _same_state(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same_state(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def _restore_state(state: dict[str, Any]) -> list[str]:
    """Put back every global setting that changed; return the names of those that did."""
    now = _global_state()
    changed = [k for k in state if not _same_state(state[k], now[k])]
    torch.set_default_dtype(state["torch's default dtype"])
    if torch.get_default_device() != state["torch's default device"]:
        device = state["torch's default device"]
        torch.set_default_device(None if device.type == "cpu" else device)  # None: no mode left on
    torch.set_grad_enabled(state["torch's grad mode"])
    if torch.are_deterministic_algorithms_enabled() != state["torch's deterministic-algorithms flag"]:
        torch.use_deterministic_algorithms(state["torch's deterministic-algorithms flag"])
    torch.autograd.set_detect_anomaly(state["torch's anomaly mode"])
    np.random.set_state(state["numpy's global random state"])
    random.setstate(state["Python's global random state"])
    return changed
