"""Stamp launch badges and the Colab setup cell into every notebook, and the table of lessons into README.md.

The repository URL and branch live in one place, ``[tool.course]`` in pyproject.toml. This command
derives everything else from them:

* right after each notebook's title cell, a Markdown cell with "Open in Colab" and Binder badges
  pointing to that notebook's own path, then a code cell that installs the course package from the
  repository only when running on Colab (without touching torch, numpy, matplotlib or ipywidgets,
  which Colab already has) and does nothing anywhere else;
* in README.md, the block between ``<!-- launch:begin -->`` and ``<!-- launch:end -->``: the Binder
  badge and the table of lessons and worksheets, with their Colab/Binder links, generated from the
  course catalogue (``[[tool.course.lessons]]``, see ``tools.catalogue``), which is first checked
  against the notebooks (every one listed, under its own title);
* ``binder/requirements.txt``: the pins of requirements.txt for Binder's one Python version
  (``binder/runtime.txt``), with torch taken from PyTorch's CPU-only wheel index;
* ``requirements-min.txt`` and ``requirements-min-base.txt``: every dependency pinned at its lower bound
  in pyproject.toml, for the lowest-versions job (``tools/minimums.py``).

Usage::

    python -m tools launch          # stamp (idempotent: a second run changes nothing)
    python -m tools launch --check   # exit 1 and list what is stale, change nothing

A notebook may ask for an optional dependency group on Colab with notebook metadata
``{"course": {"colab_extras": ["real"]}}`` (a string is accepted too); the setup cell then also
installs that extra's requirements from ``[project.optional-dependencies]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from tools import ROOT
from tools.binder import binder_python, binder_requirements
from tools.catalogue import course_notebooks, load_catalogue
from tools.config import StampError, load_config
from tools.minimums import min_files
from tools.stamp import readme_block, stamp_notebook, stamp_readme


def run(root: Path | None = None, check: bool = False) -> list[str]:
    """Stamp (or, with ``check``, only compare) every notebook and README; return the stale paths."""
    root = root or ROOT
    config = load_config(root / "pyproject.toml")
    stale, notebooks = [], {}
    for rel in course_notebooks(root):
        nb = nbformat.read(root / rel, as_version=4)
        stamped = stamp_notebook(nb, rel, config)
        notebooks[rel] = stamped
        if stamped != nb:
            stale.append(rel)
            if not check:
                nbformat.write(stamped, root / rel)
    catalogue = load_catalogue(root, notebooks)
    binder = root / "binder"
    python = binder_python((binder / "runtime.txt").read_text(encoding="utf-8"))
    requirements = (root / "requirements.txt").read_text(encoding="utf-8")
    generated = [
        (root / "README.md", lambda text: stamp_readme(text, readme_block(config, catalogue))),
        (binder / "requirements.txt", lambda _: binder_requirements(requirements, python)),
    ]
    for name, content in min_files(list(config.dependencies), config.extras).items():
        generated.append((root / name, lambda _, content=content: content))
    for path, make in generated:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        new = make(text)
        if new != text:
            stale.append(path.relative_to(root).as_posix())
            if not check:
                path.write_text(new, encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools launch", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report what is stale; exit 1 if anything is")
    args = parser.parse_args(argv)
    try:
        stale = run(check=args.check)
    except StampError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.check and stale:
        print("Out of date with [tool.course] in pyproject.toml; run `python -m tools launch`:")
        print("\n".join(f"  {p}" for p in stale))
        return 1
    print(f"{'stale' if args.check else 'stamped'}: {len(stale)} file(s)" + "".join(f"\n  {p}" for p in stale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
