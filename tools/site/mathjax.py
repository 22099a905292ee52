"""MathJax 3 served from the site: unpacked once from npm's ``mathjax`` package (``npm pack``) into ``_build/``.

``website/conf.py`` adds the folder to ``html_static_path`` and loads :data:`MATHJAX_SCRIPT`, so no page
fetches MathJax from a CDN.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

from tools import ROOT

MATHJAX_VERSION = "3.2.2"
MATHJAX_DIR = ROOT / "_build" / f".mathjax-{MATHJAX_VERSION}"  # holds mathjax/ for html_static_path
MATHJAX_SCRIPT = "mathjax/tex-chtml-full.js"  # every TeX extension in one file: nothing loaded lazily
# What the site serves of the package: the script, the fonts its CSS points at, and what the math
# menu loads when a reader turns on its accessibility options (a11y, the speech rule engine sre).
MATHJAX_FILES = ("es5/tex-chtml-full.js", "es5/output/chtml/fonts/woff-v2/", "es5/a11y/", "es5/sre/", "es5/ui/",
                 "es5/input/mml.js", "es5/input/mml/")


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
