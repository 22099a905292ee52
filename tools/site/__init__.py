"""Build the course website: every lesson, worksheet and solution, executed, as a Sphinx book.

Usage::

    python -m tools site                          # everything -> _build/html/index.html
    python -m tools site --execute notebooks/02   # execute only these (others: cached outputs or none)

Sphinx + myst-nb + sphinx-book-theme (``website/conf.py``), pinned in requirements-site.txt. One module
per step:

=============  =====================================================================================
``pages``      stage Sphinx's source folder: the notebooks (launch cells hidden) and the home page,
               generated from the course catalogue and ``website/intro.md``
``execute``    run each notebook in a fresh kernel, ``--jobs`` at a time, into a jupyter-cache that
               myst-nb reads; outputs a static page cannot render are dropped first
``mathjax``    MathJax 3, unpacked from npm's ``mathjax`` package and served from the site
``check``      the built site loads nothing from elsewhere and has no broken link or anchor
``build``      the command: stage, execute what the cache lacks, run Sphinx, check
=============  =====================================================================================

The constants every step shares live here.
"""

import os

from tools import ROOT

CONF_DIR = ROOT / "website"
DEFAULT_OUT = ROOT / "_build" / "html"
DEFAULT_CACHE = ROOT / "_build" / ".jupyter_cache"
KERNEL_STARTUP = CONF_DIR / "kernel_startup.py"
INTRO = CONF_DIR / "intro.md"
JOBS = max(2, min(4, os.cpu_count() or 2))  # notebooks at once: each kernel uses one thread (OMP_NUM_THREADS=1)
TIMEOUT = 600  # seconds per cell: a lesson is meant to take seconds, this only catches a hang


def main(argv: list[str] | None = None) -> int:
    """``python -m tools site``: see :mod:`tools.site.build`."""
    from tools.site.build import main as build_main

    return build_main(argv)
