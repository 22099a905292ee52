"""The sweep engine's former home, kept so that ``from rmlib.lab.engine import run_sweep`` still works.

The engine lives in :mod:`rmlib.lab.sweep`; every name here is the same object, listed once, there.
"""

from rmlib.lab.sweep import *  # noqa: F403 (the whole public API of rmlib.lab.sweep)
from rmlib.lab.sweep import __all__  # noqa: F401
