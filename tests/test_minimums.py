"""The declared versions agree everywhere: pyproject.toml's lower bounds, the lowest-versions requirement
files generated from them, the Colab setup cells, requirements.txt's pins and the version facts of README.md and INSTALL.md.

Each test names the file to regenerate or fix when it fails (a drift between them is a bug: a learner
would install versions the course never ran on)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tools import config as course_config
from tools import minimums, stamp
from tools.launch import course_notebooks

ROOT = Path(__file__).resolve().parents[1]
CONFIG = course_config.load_config()


def _pins(path: Path) -> dict[str, str]:
    """name -> exact version of a requirements file (markers ignored: the min files have none)."""
    out = {}
    for line in (raw.split("#", 1)[0].strip() for raw in path.read_text().splitlines()):
        if line and not line.startswith("-"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{path.name}: {line} is not an exact pin"
            out[canonicalize_name(req.name)] = spec.version
    return out


def _lower_bounds(requirements) -> dict[str, Version]:
    return {canonicalize_name(name): version for name, version in minimums.minimums(list(requirements)).items()}


def test_every_declared_requirement_has_exactly_one_lower_bound():
    for requirement in [*CONFIG.dependencies, *(r for reqs in CONFIG.extras.values() for r in reqs)]:
        minimums.lower_bound(requirement)  # raises StampError naming the requirement otherwise


def test_a_requirement_without_a_lower_bound_is_refused_by_name():
    with pytest.raises(course_config.StampError, match="'torch' needs exactly one '>=' lower bound"):
        minimums.lower_bound("torch")
    with pytest.raises(course_config.StampError, match="needs exactly one"):
        minimums.lower_bound("numpy==2.0.0")


def test_highest_lower_bound_wins_and_order_is_kept():
    found = minimums.minimums(["torch>=2.3.0", "numpy>=2.0", "Torch>=2.5.0", "deepspeed>=0.19.8,<0.20"])
    assert list(found) == ["torch", "numpy", "deepspeed"]
    assert found["torch"] == Version("2.5.0") and found["deepspeed"] == Version("0.19.8")


@pytest.mark.parametrize("name, lists", [("requirements-min-base.txt", "core"), ("requirements-min.txt", "all")])
def test_lowest_versions_files_pin_exactly_pyprojects_lower_bounds(name, lists):
    requirements = list(CONFIG.dependencies)
    if lists == "all":
        requirements += [r for reqs in CONFIG.extras.values() for r in reqs]
    expected = {key: str(version) for key, version in _lower_bounds(requirements).items()}
    assert _pins(ROOT / name) == expected, f"{name} disagrees with pyproject.toml: run `python -m tools launch`"


def test_colab_cells_ask_for_pyprojects_lower_bounds():
    """Every stamped Colab cell passes exactly the lower bounds of the core plus the notebook's extras."""
    for path in course_notebooks(ROOT):
        nb = nbformat.read(path, as_version=4)
        extras = course_config.colab_extras(nb, str(path), CONFIG)
        (setup,) = [c for c in nb.cells if c.get("metadata", {}).get("course", {}).get("launch_stamp") == "setup"]
        asked = re.findall(r'"([A-Za-z0-9._-]+(?:[<>=!~][^"]*))"', setup.source)
        bounds = {canonicalize_name(Requirement(r).name): r for r in asked}
        wanted = _lower_bounds([*CONFIG.dependencies, *(r for e in extras for r in CONFIG.extras[e])])
        assert {k: lower for k, lower in wanted.items()} == {
            k: Version(next(s.version for s in Requirement(r).specifier if s.operator == ">=")) for k, r in bounds.items()
        }, f"{path.name}: its Colab cell disagrees with pyproject.toml: run `python -m tools launch`"
        assert setup.source == stamp.setup_source(CONFIG, extras)


def test_pinned_versions_meet_the_declared_minimums():
    """requirements.txt (the tested environment) must satisfy every lower bound pyproject declares."""
    from packaging.markers import default_environment

    env = default_environment()
    pinned = {}
    for line in (raw.split("#", 1)[0].strip() for raw in (ROOT / "requirements.txt").read_text().splitlines()):
        if line and not line.startswith("-"):
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(env):
                pinned[canonicalize_name(req.name)] = Version(next(iter(req.specifier)).version)
    for requirement in [*CONFIG.dependencies, *(r for reqs in CONFIG.extras.values() for r in reqs)]:
        req = Requirement(requirement)
        key = canonicalize_name(req.name)
        if key in pinned:  # sentence-transformers is deliberately not installed (requirements-nodeps.txt)
            assert req.specifier.contains(pinned[key], prereleases=True), (
                f"requirements.txt pins {req.name}=={pinned[key]}, outside pyproject's {requirement}")


def test_install_guide_states_the_minimums_pyproject_declares():
    """INSTALL.md's version facts (transformers >= 5.0 for lessons 07/08, ipywidgets 7 works) follow pyproject."""
    readme = (ROOT / "INSTALL.md").read_text()
    bounds = _lower_bounds([*CONFIG.dependencies, *(r for reqs in CONFIG.extras.values() for r in reqs)])
    core = _lower_bounds(CONFIG.dependencies)
    assert readme.count("**Lowest versions.**") == 1
    line = readme.split("**Lowest versions.**")[1].split("\n\n")[0].replace("\n", " ")  # its paragraph
    for name in ("torch", "numpy", "matplotlib", "ipywidgets", "transformers", "trl", "deepspeed"):
        version = core.get(name) or bounds[name]
        assert f"{name} ≥ {version}" in line, f"INSTALL.md's lowest-versions paragraph does not say {name} ≥ {version}: {line}"
    assert f"torch ≥ {bounds['torch']}" in line, "INSTALL.md must give the extras' torch minimum too"


def test_readme_python_versions_are_those_the_pins_support():
    """README's and INSTALL.md's 'Python 3.10–3.14' is requires-python's floor and the classifiers' range;
    the pins' markers only split at 3.11 (numpy, matplotlib, ipykernel, transformers, TRL), within it."""
    readme = (ROOT / "README.md").read_text() + (ROOT / "INSTALL.md").read_text()
    claims = set(re.findall(r"Python 3\.(\d+)–3\.(\d+)", readme))
    assert claims == {("10", "14")}, claims
    text = (ROOT / "pyproject.toml").read_text()
    classifiers = set(re.findall(r'"Programming Language :: Python :: 3\.(\d+)"', text))
    assert classifiers == {str(m) for m in range(10, 15)}, classifiers
    assert 'requires-python = ">=3.10"' in text
    markers = set(re.findall(r'python_version\s*([<>=]+)\s*"3\.(\d+)"', (ROOT / "requirements.txt").read_text()))
    assert markers and all(10 <= int(minor) <= 14 for _, minor in markers), markers
    assert sys.version_info[:2] >= (3, 10)
