#!/usr/bin/env python3
"""Set up and run the course in a virtual environment inside this clone. Standard library only.

    python3 course.py lab [ARGS]      create (or reuse) .venv, install the learner environment
                                      (requirements.txt), open JupyterLab on notebooks/
    python3 course.py test [ARGS]     the same with the developer environment (requirements-dev.txt),
                                      then run the test suite in parallel: python -m pytest -n auto … ARGS
    python3 course.py install [--dev] only create or update .venv

On Windows type ``py`` instead of ``python3``. It runs with any Python 3.10 or newer, including a
system Python that refuses ``pip install`` (PEP 668, "externally-managed-environment", as on Debian 12
and Ubuntu 23.04+): everything goes into ``.venv`` and nothing outside it changes.

On Linux, PyTorch comes from PyTorch's CPU wheel index (754 MiB installed, without the several GB
of NVIDIA libraries that PyPI's CUDA build brings); ``--cuda`` takes PyPI's build instead. Where that
index cannot be reached, pip takes torch from PyPI (or the indexes pip is configured with), and the
install still succeeds.

An unchanged environment is not reinstalled: .venv remembers a hash of the requirement files it was
built from. Delete .venv to start afresh.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LEARNER = "requirements.txt"
DEVELOPER = "requirements-dev.txt"
NO_DEPS = "requirements-nodeps.txt"  # installed with --no-deps after the others
# The suite runs in parallel (pytest-xdist, a developer tool): one worker per core, at most 4 (each worker
# and its notebook kernel hold torch in memory), and `--dist loadfile` keeps each notebook whole in one
# worker so its cells run in order in one kernel (conftest.py refuses a mode that would split one).
# `--no-loadscope-reorder` keeps conftest.py's longest-first order. `course.py test -n 0` runs serially.
PARALLEL = ("-n", "auto", "--maxprocesses", "4", "--dist", "loadfile", "--no-loadscope-reorder")
FILES = {LEARNER: [LEARNER, NO_DEPS], DEVELOPER: [DEVELOPER, LEARNER, NO_DEPS]}  # what each one reads
STAMP = "course-install.json"  # in .venv: what the environment was built from
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
MIN_PYTHON, NEWEST_TESTED_PYTHON = (3, 10), (3, 14)
MIN_MACOS = 14  # torch 2.13.0's macOS wheels are tagged macosx_14_0_arm64


class SetupError(Exception):
    """A problem the learner has to fix; the message says how."""


def check_platform(version: tuple[int, int] = sys.version_info[:2], system: str = platform.system(),
                   machine: str = platform.machine(), macos: str = platform.mac_ver()[0]) -> list[str]:
    """Refuse a Python or platform PyTorch has no wheel for; return warnings for untested ones."""
    if version < MIN_PYTHON:
        raise SetupError(f"the course needs Python 3.10 or newer; this is Python {version[0]}.{version[1]} "
                         f"({sys.executable}). Install a newer Python (python.org) and run this again with it.")
    if system == "Darwin" and machine.lower() in ("x86_64", "amd64"):
        raise SetupError("PyTorch publishes no wheels for Intel Macs after 2.2, so the course cannot be "
                         "installed here. Use an Apple-silicon Mac (with an arm64 Python, not one running "
                         "under Rosetta), or open the course on Colab or Binder (README, 'Run it in the cloud').")
    if system == "Darwin" and macos and int(macos.split(".")[0]) < MIN_MACOS:
        raise SetupError(f"PyTorch's macOS wheels of the pinned release need macOS {MIN_MACOS} or newer; "
                         f"this is macOS {macos}. Update macOS, or open the course on Colab or Binder.")
    if version > NEWEST_TESTED_PYTHON:
        return [f"Python {version[0]}.{version[1]} is newer than any the course was checked on "
                f"(3.10-3.14); pip will fail if PyTorch has no wheel for it yet."]
    return []


def venv_python(venv: Path = VENV) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _works(python: Path) -> bool:
    """Whether ``python`` exists and runs pip (a venv made without ensurepip has no pip)."""
    if not python.exists():
        return False
    return subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True).returncode == 0


def ensure_venv(venv: Path = VENV) -> Path:
    """Create ``venv`` with pip, or reuse it if it works. Returns its Python."""
    python = venv_python(venv)
    if _works(python):
        return python
    if venv.exists():
        if not (venv / "pyvenv.cfg").exists():
            raise SetupError(f"{venv} exists but is not a virtual environment; move it away and run this again")
        print(f"course.py: {venv.name} is incomplete (no working pip); creating it again", flush=True)
        shutil.rmtree(venv)
    print(f"course.py: creating the virtual environment {venv} with {sys.executable} "
          f"(Python {platform.python_version()})", flush=True)
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
    if made.returncode != 0 or not _works(python):
        shutil.rmtree(venv, ignore_errors=True)
        raise SetupError(venv_help(made.stdout + made.stderr))
    return python


def venv_help(output: str) -> str:
    """The message for a Python that cannot make a virtual environment with pip in it."""
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    text = f"{sys.executable} cannot create a virtual environment with pip in it."
    if sys.platform.startswith("linux"):
        text += (f"\nOn Debian and Ubuntu the system Python needs the venv package first:\n"
                 f"    sudo apt install python3-venv      (if that is not enough: python{minor}-venv)\n"
                 f"then run this command again.")
    return text + (f"\n\nWhat Python said:\n{output.strip()}" if output.strip() else "")


def torch_pin(requirements: str) -> str:
    """The version in requirements.txt's one ``torch==X`` line (course.py has no `packaging`)."""
    pins = re.findall(r"^torch==([^\s;#]+)\s*(?:#.*)?$", requirements, flags=re.M)
    if len(pins) != 1:
        raise SetupError(f"{LEARNER} must pin torch on exactly one unmarked line 'torch==X'; found {pins}")
    return pins[0]


def index_reachable(url: str = TORCH_CPU_INDEX, timeout: float = 5.0) -> bool:
    """A quick TCP probe. pip itself retries an unreachable index five times per package (~10 s each)."""
    host = re.match(r"https?://([^/:]+)", url)[1]
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def use_cpu_index(cuda: bool, system: str = platform.system()) -> bool:
    """PyPI's Linux torch wheel is the CUDA build; macOS and Windows wheels on PyPI are CPU builds."""
    return system == "Linux" and not cuda


def fingerprint(files: list[str], cuda: bool, root: Path = ROOT) -> str:
    digest = hashlib.sha256(f"cuda={cuda};python={sys.version_info[:2]}".encode())
    for name in [*files, "pyproject.toml"]:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes())
    return digest.hexdigest()


def pip(python: Path, *args: str) -> None:
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", *args]
    print("course.py: " + " ".join(command[1:]), flush=True)
    subprocess.run(command, cwd=ROOT, check=True)


def install(dev: bool, cuda: bool = False) -> Path:
    """Make .venv hold the learner (or developer) environment; skip the work when it already does."""
    for warning in check_platform():
        print(f"course.py: warning: {warning}", flush=True)
    python = ensure_venv()
    stamp_file = VENV / STAMP
    stamp = json.loads(stamp_file.read_text()) if stamp_file.exists() else {}
    # The developer environment contains the learner one, so either satisfies `lab`.
    for kind in ([DEVELOPER] if dev else [LEARNER, DEVELOPER]):
        if stamp.get(kind) == fingerprint(FILES[kind], cuda):
            print(f"course.py: {VENV.name} is up to date with {kind}", flush=True)
            return python
    if use_cpu_index(cuda):
        pin = torch_pin((ROOT / LEARNER).read_text(encoding="utf-8"))
        if index_reachable():
            # torch alone first, so that only torch and its few dependencies consult the extra index.
            pip(python, f"torch=={pin}", "--extra-index-url", TORCH_CPU_INDEX)
        else:
            print(f"course.py: note: PyTorch's CPU wheel index ({TORCH_CPU_INDEX}) cannot be reached; "
                  "pip takes torch from PyPI or the indexes it is configured with. On Linux PyPI's torch "
                  "is the CUDA build (several GB).", flush=True)
    kind = DEVELOPER if dev else LEARNER
    pip(python, "-r", kind)
    pip(python, "--no-deps", "-r", NO_DEPS)
    stamp[kind] = fingerprint(FILES[kind], cuda)
    stamp_file.write_text(json.dumps(stamp, indent=1) + "\n")
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="course.py", description="Set up and run the course in .venv inside this clone.",
        allow_abbrev=False, epilog="Anything after the command goes to JupyterLab (lab) or pytest (test).")
    parser.add_argument("command", choices=["lab", "test", "install"])
    parser.add_argument("--cuda", action="store_true",
                        help="on Linux, take PyPI's torch (the CUDA build) instead of the CPU build")
    parser.add_argument("--dev", action="store_true", help="install: the developer environment")
    args, rest = parser.parse_known_args(argv)
    try:
        python = install(dev=args.dev or args.command == "test", cuda=args.cuda)
    except SetupError as err:
        print(f"course.py: error: {err}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as err:
        print(f"course.py: error: pip failed (exit code {err.returncode}); its messages are above.",
              file=sys.stderr)
        return err.returncode or 1
    if args.command == "install":
        if rest:
            parser.error(f"unrecognised arguments: {' '.join(rest)}")
        return 0
    # `-m jupyterlab`, not `-m jupyter lab`: the latter looks `jupyter-lab` up on PATH and can start
    # another environment's JupyterLab (and kernel) instead of this one's.
    tail = ["jupyterlab", "notebooks", *rest] if args.command == "lab" else ["pytest", *PARALLEL, *rest]
    print("course.py: " + " ".join(["python", "-m", *tail]), flush=True)
    return subprocess.run([str(python), "-m", *tail], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
