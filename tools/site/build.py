"""``python -m tools site``: stage, execute what the cache lacks, run Sphinx into ``--out``, check the site.

Sphinx's source folder and incremental state live beside the output (``_build/.html-work``). A build
that did not finish (a notebook failed, Sphinx warned, the site check failed, or it was interrupted)
leaves no ``complete`` marker there, and the next build starts that folder afresh, so nothing a failed
run left behind can break the next one. The jupyter-cache only ever holds notebooks that ran through.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tools.site import CONF_DIR, DEFAULT_CACHE, DEFAULT_OUT, JOBS, __doc__ as SITE_DOC
from tools.site.check import SiteCheck, check_site
from tools.site.execute import cached_record, execute_missing, open_cache
from tools.site.pages import stage

COMPLETE = "complete"  # written into the working folder when a build succeeded


@dataclass
class Build:
    out: Path
    executed: dict[str, float]  # notebook -> seconds, for those executed in this build
    unexecuted: list[str]  # shown without outputs: not selected and not in the cache
    seconds: float
    check: SiteCheck


def selected(notebooks: list[str], prefixes: list[str] | None) -> list[str]:
    """The notebooks whose path starts with one of ``prefixes`` (all of them without prefixes)."""
    if not prefixes:
        return list(notebooks)
    chosen = [p for p in notebooks if any(p.startswith(prefix) for prefix in prefixes)]
    if not chosen:
        raise SystemExit(f"no notebook matches {prefixes}; paths look like {notebooks[0]}")
    return chosen


def working_folder(out: Path) -> Path:
    """Sphinx's source and state folder for ``out``, emptied unless the last build there succeeded."""
    work = out.parent / f".{out.name}-work"
    if work.exists() and not (work / COMPLETE).exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / COMPLETE).unlink(missing_ok=True)
    return work


def mark_changed_outputs(work: Path, src: Path, records: dict) -> dict:
    """Touch the staged copy of every notebook whose cached outputs changed, so that Sphinx re-reads it."""
    state = {p: (f"{r.hashkey}@{r.created.timestamp()}" if r else None) for p, r in records.items()}
    state_file = work / "outputs.json"
    old = json.loads(state_file.read_text()) if state_file.exists() else {}
    for p in records:
        if old.get(p, "missing") != state[p]:
            os.utime(src / p)
    return state


def run_sphinx(work: Path, out: Path, cache_dir: Path, unexecuted: list[str], jobs: int, quiet: bool) -> None:
    """Sphinx into ``out``; any warning fails the build."""
    from sphinx.application import Sphinx

    warnings = io.StringIO()
    app = Sphinx(
        str(work / "src"), str(CONF_DIR), str(out), str(work / "doctrees"), "html",
        confoverrides={
            "nb_execution_cache_path": str(cache_dir),
            "nb_execution_excludepatterns": unexecuted,  # so myst-nb itself never executes anything
        },
        status=io.StringIO() if quiet else sys.stdout, warning=warnings, parallel=jobs,
    )
    app.build()
    if app.statuscode or warnings.getvalue().strip():
        raise SystemExit(f"the site build failed (status {app.statuscode}); Sphinx said:\n{warnings.getvalue()}")


def build(out: Path = DEFAULT_OUT, cache_dir: Path = DEFAULT_CACHE, jobs: int = JOBS,
          execute: list[str] | None = None, quiet: bool = False) -> Build:
    """Stage, execute what the cache lacks, run Sphinx into ``out``, then check the site."""
    start = time.perf_counter()
    work = working_folder(out)
    src = work / "src"
    notebooks = stage(src)
    cache = open_cache(cache_dir)
    executed = execute_missing(cache, src, notebooks, selected(list(notebooks), execute), jobs)
    records = {p: cached_record(cache, nb) for p, nb in notebooks.items()}
    unexecuted = [p for p, record in records.items() if record is None]
    state = mark_changed_outputs(work, src, records)
    run_sphinx(work, out, cache_dir, unexecuted, jobs, quiet)
    (work / "outputs.json").write_text(json.dumps(state, indent=1) + "\n")
    check = check_site(out)
    if check.problems:
        raise SystemExit("the built site is not self-contained:\n" + "\n".join(check.problems))
    (work / COMPLETE).write_text("")
    return Build(out, executed, unexecuted, time.perf_counter() - start, check)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools site", description=SITE_DOC.splitlines()[0])
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
