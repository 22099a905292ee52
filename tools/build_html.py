"""Execute every lesson and build a browsable HTML version of the course, with figures and an index.

Usage::

    python -m tools html                       # all lessons -> _build/html/index.html
    python -m tools html --out DIR --only 02   # lessons whose file name starts with 02

Each lesson in ``notebooks/`` runs top to bottom in a fresh kernel (nbclient), then nbconvert's
``lab`` template turns it into one self-contained page (figures are embedded PNGs). Widget state is
not stored, so the explorers show their static figure instead of needing a live kernel. Links
between lessons (``02_x.ipynb``) are rewritten to the built pages. A lesson that fails stops the
build with its error.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from tools import ROOT

DEFAULT_OUT = ROOT / "_build" / "html"
TIMEOUT = 600  # seconds per cell: a lesson is meant to take seconds, this only catches a hang


@dataclass(frozen=True)
class Page:
    """One built lesson."""

    source: Path
    html_name: str
    title: str
    seconds: float


def lesson_paths(folder: Path = ROOT / "notebooks", only: list[str] | None = None) -> list[Path]:
    """The lessons to build, in order; ``only`` keeps those whose file name starts with one of the prefixes."""
    paths = sorted(folder.glob("*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in only)]
    if not paths:
        raise SystemExit(f"no lessons to build in {folder}" + (f" matching {only}" if only else ""))
    return paths


def title_of(nb: nbformat.NotebookNode, path: Path) -> str:
    first = nb.cells[0] if nb.cells else None
    if first is None or first.cell_type != "markdown" or not first.source.lstrip().startswith("# "):
        raise ValueError(f"{path}: the first cell must be a Markdown title '# NN — Title'")
    return first.source.lstrip().splitlines()[0].lstrip("#").strip()


def link_pages(body: str, names: set[str]) -> str:
    """Point relative links to built lessons (``href="02_x.ipynb#part"``) at their HTML pages."""

    def swap(match: re.Match) -> str:
        stem = match["stem"]
        return f'href="{stem}.html{match["frag"] or ""}"' if f"{stem}.ipynb" in names else match[0]

    return re.sub(r'href="(?:\./)?(?P<stem>[\w.-]+)\.ipynb(?P<frag>#[^"]*)?"', swap, body)


def build_page(path: Path, out: Path, names: set[str]) -> Page:
    """Execute one lesson in its own folder and write its HTML page into ``out``."""
    nb = nbformat.read(path, as_version=4)
    title = title_of(nb, path)
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=TIMEOUT, kernel_name="python3", store_widget_state=False,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    seconds = time.perf_counter() - start
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb, resources={"metadata": {"name": title}})
    name = f"{path.stem}.html"
    (out / name).write_text(link_pages(body, names), encoding="utf-8")
    return Page(path, name, title, seconds)


def _inline_code(title: str) -> str:
    """Escape a Markdown title for HTML, keeping its `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(title))


def index_html(pages: list[Page]) -> str:
    rows = "\n".join(
        f'<li><a href="{p.html_name}">{_inline_code(p.title)}</a> <small>(executed in {p.seconds:.0f} s)</small></li>'
        for p in pages
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Initialising a reward model's score head</title>
<style>body{{font-family:system-ui,sans-serif;max-width:46em;margin:3em auto;line-height:1.5}}li{{margin:.4em 0}}</style>
</head><body>
<h1>Initialising a reward model's score head</h1>
<p>A hands-on course: how should a reward model's score head be initialised, and what does that choice
do to Bradley-Terry training? These pages are the lessons executed top to bottom, with their figures;
the interactive explorers appear as static figures here (open a lesson in Jupyter, Colab or Binder to
move their sliders).</p>
<ol>
{rows}
</ol>
<p><small>Built {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} by <code>python -m tools html</code>.</small></p>
</body></html>
"""


def build(paths: list[Path], out: Path = DEFAULT_OUT, jobs: int = 1) -> list[Page]:
    """Execute and convert ``paths`` (``jobs`` kernels at a time), then write ``out/index.html``."""
    out.mkdir(parents=True, exist_ok=True)
    names = {p.name for p in paths}
    if jobs > 1 and len(paths) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            pages = list(pool.map(build_page, paths, [out] * len(paths), [names] * len(paths)))
    else:
        pages = [build_page(p, out, names) for p in paths]
    (out / "index.html").write_text(index_html(pages), encoding="utf-8")
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools html", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--only", nargs="+", metavar="PREFIX", help="build only lessons whose name starts so")
    parser.add_argument("--jobs", type=int, default=2, help="lessons executed at once (default 2)")
    args = parser.parse_args(argv)
    pages = build(lesson_paths(only=args.only), args.out, args.jobs)
    for page in pages:
        print(f"{page.seconds:6.1f} s  {page.html_name}")
    print(f"open {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
