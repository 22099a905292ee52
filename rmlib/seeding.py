"""Seeding: every random draw in the course goes through a seeded ``torch.Generator``."""

from __future__ import annotations

import random

import numpy as np
import torch

from rmlib.utils import validation

DEFAULT_SEED = 0


def make_generator(seed: int = DEFAULT_SEED) -> torch.Generator:
    """A CPU generator seeded with ``seed``: pass it to every sampling call you want reproducible."""
    return torch.Generator().manual_seed(validation.integer("seed", seed, minimum=None))


def seed_everything(seed: int = DEFAULT_SEED) -> torch.Generator:
    """Seed Python, NumPy and torch's global generators, and return a fresh seeded generator.

    Notebooks call this once at the top so that code which draws from the global state
    (``nn.Linear``'s default init, for example) gives the same numbers on every run.
    """
    gen = make_generator(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return gen
