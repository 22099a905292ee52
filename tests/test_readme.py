"""README promises two commands; CI must run exactly the test command it shows."""

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # requirements.txt installs tomli on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_exactly_the_readme_test_command():
    start = ROOT.joinpath("README.md").read_text(encoding="utf-8").split("## Start", 1)[1].split("\n## ", 1)[0]
    install_and_open, install_and_test = bash_blocks(start)
    assert "requirements.txt" in install_and_open and "jupyter lab" in install_and_open
    assert "requirements.txt" in install_and_test and "pytest" in install_and_test
    commands = [line.strip() for line in ROOT.joinpath(".ci/run").read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == install_and_test, ".ci/run must end with README's test command, verbatim"


def test_lesson_table_links_every_lesson():
    readme = ROOT.joinpath("README.md").read_text(encoding="utf-8")
    lessons = sorted(p.name for p in ROOT.joinpath("notebooks").glob("*.ipynb"))
    assert lessons, "no lessons found"
    for name in lessons:
        assert f"](notebooks/{name})" in readme, f"README's lesson table does not link {name}"


def test_the_test_command_runs_in_parallel_with_each_notebook_whole():
    # README's `python3 -m pytest` is parallel through addopts; nbval needs a notebook's cells in one
    # worker and one kernel, which --dist loadfile (or loadscope) guarantees and --dist load does not.
    ini = tomllib.loads(ROOT.joinpath("pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    opts = ini["addopts"].split()
    assert opts[opts.index("-n") + 1] == "auto", "the README's test command must run in parallel"
    assert opts[opts.index("--dist") + 1] in ("loadfile", "loadscope"), "a notebook must run whole in one worker"
