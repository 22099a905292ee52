"""README promises two commands per platform; CI (.ci/run and the GitHub workflow) must run exactly the
test command it shows. The README stays a short first page: the details live in INSTALL.md, TEACHING.md,
CONTRIBUTING.md and benchmarks/README.md, and its table of lessons is generated from the catalogue."""

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # requirements.txt installs tomli on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def blocks(text: str, language: str) -> list[str]:
    return [b.strip() for b in re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)]


def start_section() -> str:
    return ROOT.joinpath("README.md").read_text(encoding="utf-8").split("## Start", 1)[1].split("\n## ", 1)[0]


def readme_commands() -> dict[str, tuple[str, str]]:
    """{"posix": (start, test), "windows": (start, test)} from README's Start section."""
    start = start_section()
    return {"posix": tuple(blocks(start, "bash")), "windows": tuple(blocks(start, "powershell"))}


def test_readme_start_section_has_a_start_and_a_test_command_per_platform():
    commands = readme_commands()
    for platform, python in (("posix", "python3"), ("windows", "py")):
        install_and_open, install_and_test = commands[platform]
        assert install_and_open == f"{python} course.py lab", platform
        assert install_and_test == f"{python} course.py test", platform
    section = start_section()
    for words in ("Colab", "Binder", "macOS", "Windows", "PowerShell", "python3-venv", "INSTALL.md"):
        assert words in section, f"README's Start section does not mention {words}"


def test_install_guide_covers_every_platform_and_the_cpu_build():
    guide = ROOT.joinpath("INSTALL.md").read_text(encoding="utf-8")
    for words in ("## Platforms", "macOS", "Windows", "PowerShell", "python3-venv", "download.pytorch.org/whl/cpu",
                  "python3 course.py lab", "py course.py test", "## Environment sizes"):
        assert words in guide, f"INSTALL.md does not mention {words}"


def test_readme_is_short_and_points_to_where_the_details_moved():
    readme = ROOT.joinpath("README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200, "README.md is a first page: keep it under 200 lines"
    homes = {"INSTALL.md": "## Platforms", "TEACHING.md": "## Collect and grade",
             "CONTRIBUTING.md": "## Run the suite under three CPU kernel sets", "benchmarks/README.md": "sweep_speed.py",
             "CHANGELOG.md": "## [Unreleased]"}
    for path, heading in homes.items():
        assert heading in ROOT.joinpath(path).read_text(encoding="utf-8"), f"{path} lost {heading!r}"
        assert f"]({path})" in readme, f"README does not link {path}"
    for stale in ("rmlib/explorers.py", "## For teachers", "## Platforms", "Before this split"):
        assert stale not in readme, f"README still holds {stale!r}"


def test_docs_name_only_files_that_exist():
    names = re.compile(r"`((?:rmlib|tools|tests|benchmarks|website|binder)/[\w/.-]+\.(?:py|md|txt|ipynb))`")
    for doc in ("README.md", "INSTALL.md", "TEACHING.md", "CONTRIBUTING.md", "benchmarks/README.md"):
        for name in names.findall(ROOT.joinpath(doc).read_text(encoding="utf-8")):
            assert ROOT.joinpath(name).exists(), f"{doc} names {name}, which does not exist"


def test_readme_title_is_the_catalogue_title():
    from tools.catalogue import load_catalogue

    readme = ROOT.joinpath("README.md").read_text(encoding="utf-8")
    assert readme.splitlines()[0] == f"# {load_catalogue().title}"


def test_ci_runs_exactly_the_readme_test_command():
    _, install_and_test = readme_commands()["posix"]
    commands = [line.strip() for line in ROOT.joinpath(".ci/run").read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == install_and_test, ".ci/run must end with README's test command, verbatim"


def test_github_workflow_runs_the_readme_test_command_on_every_platform():
    workflow = ROOT.joinpath(".github/workflows/ci.yml").read_text(encoding="utf-8")
    matrix = dict(re.findall(r"- os: (\S+).*\n\s+command: (.+)", workflow))
    commands = readme_commands()
    assert set(matrix) == {"ubuntu-latest", "macos-latest", "windows-latest"}
    assert matrix["ubuntu-latest"] == matrix["macos-latest"] == commands["posix"][1]
    assert matrix["windows-latest"] == commands["windows"][1]
    assert "run: ${{ matrix.command }}" in workflow


def test_lesson_table_links_every_lesson_and_worksheet():
    readme = ROOT.joinpath("README.md").read_text(encoding="utf-8")
    paths = [p.relative_to(ROOT).as_posix() for folder in ("notebooks", "exercises", "solutions")
             for p in ROOT.joinpath(folder).glob("*.ipynb")]
    assert len(paths) >= 8, "no lessons found"
    for path in paths:
        assert f"]({path})" in readme, f"README's lesson table does not link {path}"


def test_quick_loop_leaves_out_exactly_the_integration_tests():
    import conftest

    ini = tomllib.loads(ROOT.joinpath("pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert any(marker.startswith("slow:") for marker in ini["markers"]), "the slow marker is registered"
    assert "tests" in ini["testpaths"], "tests/integration/ is collected with the rest of tests/"
    integration = sorted(p.name for p in ROOT.joinpath(conftest.INTEGRATION).glob("test_*.py"))
    assert integration == ["test_browser.py", "test_grade.py", "test_install.py", "test_site.py"]
    missing = [p for p in conftest.LONG_FIRST if not ROOT.joinpath(p).exists()]
    assert not missing, f"conftest.LONG_FIRST names files that moved or went away: {missing}"


def test_the_test_command_runs_in_parallel_with_each_notebook_whole():
    # README's `python3 course.py test` runs pytest with course.py's PARALLEL options; nbval needs a
    # notebook's cells in one worker and one kernel, which --dist loadfile (or loadscope) guarantees and
    # --dist load does not. A bare pytest (learner environment, no xdist) must stay serial and runnable.
    import course

    opts = list(course.PARALLEL)
    assert opts[opts.index("-n") + 1] == "auto", "the README's test command must run in parallel"
    assert opts[opts.index("--dist") + 1] in ("loadfile", "loadscope"), "a notebook must run whole in one worker"
    ini = tomllib.loads(ROOT.joinpath("pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert "-n" not in ini["addopts"].split(), "addopts must not need pytest-xdist, a developer-only tool"

def test_quick_loop_deselects_every_integration_test():
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "not slow", "tests/integration"],
                          cwd=ROOT, capture_output=True, text=True)
    assert "no tests collected" in proc.stdout and "deselected" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_website_home_page_gives_the_readme_commands():
    intro = ROOT.joinpath("website/intro.md").read_text(encoding="utf-8")
    for command in (*readme_commands()["posix"], readme_commands()["windows"][0]):
        assert f"`{command}`" in intro, f"website/intro.md does not give {command!r}"
