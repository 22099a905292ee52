"""The course's tools, one package run as ``python -m tools COMMAND``.

=============  =====================================================================================
command        what it does
=============  =====================================================================================
launch         stamp Colab/Binder badges and the Colab setup cell into every notebook, the table of
               lessons into README.md (from the catalogue) and binder/requirements.txt (``--check``:
               report what is stale, or where the catalogue disagrees with the notebooks)
exercises      generate ``exercises/`` from ``solutions/`` (``--check``: report what is stale)
site           execute every notebook (cached) and build the course website into ``_build/html``
grade          execute submitted worksheets (each in its own kernel, with a timeout) and write a
               gradebook CSV from the checkers' structured records, plus a summary table
=============  =====================================================================================

Modules: ``config`` (where the course is published, read from pyproject.toml), ``catalogue`` (the
course catalogue, ``[[tool.course.lessons]]``, checked against the notebooks; the one place that lists
the course notebooks and reads a notebook's title), ``stamp`` (badge and setup cells, README table),
``binder`` (the Binder environment), ``launch``, ``exercises``, ``site`` (a package, one module per
step; its Sphinx configuration is ``website/conf.py``), ``grade``. The constants every tool shares
live here.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("notebooks", "solutions", "exercises")  # every folder of course notebooks, in course order
STAMP_KEY = "launch_stamp"  # cell.metadata["course"][STAMP_KEY] marks the cells tools.stamp owns
