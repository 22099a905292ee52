"""The course website (tools/site/, website/conf.py): the builder's parts, then one built site checked
statically (every page, every link, nothing loaded from the internet) and in headless Chromium.

The site is built once per test process (a session fixture) into a fresh temporary folder with a fresh
jupyter-cache, so nothing an earlier run left on disk (a failed build's state, a stale cache) changes
the result. It executes lesson 02, the page the browser opens, and worksheet 02 in both versions (their
check cells display the checkers' records); the other pages show their code without outputs. Skips when
the site packages (requirements-site.txt) or npm are missing, except under CI (env ``CI`` set).
"""

from __future__ import annotations

import base64
import functools
import http.server
import os
import re
import shutil
import threading
from pathlib import Path

import nbformat
import pytest

from tests.integration.test_browser import (  # the repo's chromium setup
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    _require_browser,
)
from tools import ROOT
from tools import __main__ as tools_main
from tools.catalogue import course_notebooks, load_catalogue
from tools.config import load_config
from tools.site import INTRO, build, execute, mathjax, pages
from tools.site import check as site_check

# Sphinx's and myst-parser's own deprecation notices about each other are not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")

LESSON = "notebooks/02_variance_of_initial_rewards.ipynb"  # executed by the test build, opened in the browser
WORKSHEETS = ("exercises/02_variance_monte_carlo.ipynb", "solutions/02_variance_monte_carlo.ipynb")  # check records
SITE_OUT: Path | None = None  # set by the `built` fixture


def _require_site_tools() -> None:
    missing = [m for m in ("sphinx", "myst_nb", "jupyter_cache", "sphinx_book_theme") if not _importable(m)]
    reason = f"site packages missing: {missing} (pip install -r requirements-site.txt)" if missing else None
    if reason is None and shutil.which("npm") is None and not (mathjax.MATHJAX_DIR / mathjax.MATHJAX_SCRIPT).exists():
        reason = "npm not found: the site fetches MathJax with `npm pack`"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the site cannot be built under CI: {reason}")
        pytest.skip(reason)


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> build.Build:
    global SITE_OUT
    _require_site_tools()
    folder = tmp_path_factory.mktemp("site")
    SITE_OUT = folder / "html"
    return build.build(SITE_OUT, folder / "cache", jobs=2, execute=[LESSON, *WORKSHEETS], quiet=True)


def _page(path: str) -> str:
    return (SITE_OUT / Path(path).with_suffix(".html")).read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------------
# The builder's parts (no build)
# ---------------------------------------------------------------------------------------------------


def test_site_is_the_one_builder():
    assert tools_main.COMMANDS["site"][0] == "tools.site"
    assert "html" not in tools_main.COMMANDS and not (ROOT / "tools" / "build_html.py").exists()


def test_every_site_module_is_small():
    import ast

    for module in sorted((ROOT / "tools" / "site").glob("*.py")):
        text = module.read_text(encoding="utf-8")
        assert len(text.splitlines()) <= 400, module
        functions = [f for f in ast.walk(ast.parse(text)) if isinstance(f, ast.FunctionDef)]
        long = [f.name for f in functions if f.end_lineno - f.lineno >= 60]
        assert not long, f"{module.name}: functions over 60 lines: {long}"


def test_reader_hides_only_the_stamped_launch_cells():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 09 — Title"),
        nbformat.v4.new_markdown_cell("[![badge](https://x/badge.svg)](https://x)", metadata={"course": {"launch_stamp": "badges"}}),
        nbformat.v4.new_code_cell("pass", metadata={"course": {"launch_stamp": "setup"}, "tags": ["keep"]}),
        nbformat.v4.new_code_cell("1 + 1"),
    ])
    read = pages.read_notebook(nbformat.writes(nb))
    assert [c.metadata.get("tags", []) for c in read.cells] == [[], ["remove-cell"], ["keep", "remove-cell"], []]
    assert [c.source for c in read.cells] == [c.source for c in nb.cells], "the cells still run"


def test_home_page_is_generated_from_the_catalogue():
    catalogue = load_catalogue()
    home = pages.home_page(catalogue, INTRO.read_text(encoding="utf-8"))
    assert home.splitlines()[2] == f"# {catalogue.title}"
    assert "README" not in home.split("-->", 1)[1], "nothing on the home page comes from README.md"
    for lesson in catalogue.lessons:
        row = next(line for line in home.splitlines() if line.startswith(f"| {lesson.number} | "))
        assert f"[{lesson.title}]({lesson.notebook}) ({lesson.minutes} min)" in row
        assert lesson.objectives.replace("|", r"\|") in row
        if lesson.worksheet:
            assert f"[{lesson.worksheet.title}]({lesson.worksheet.notebook}) ({lesson.worksheet.minutes} min" in row
    assert "$\\operatorname{Var}(X) =" in home, "lesson 02's background (with its math) is on the map"
    assert "lessons 01, 02, 03" in home, "lesson 04's prerequisites"
    toc = re.findall(r"```\{toctree\}\n:caption: ([^\n]+)\n:hidden:\n\n(.*?)```", home, re.DOTALL)
    assert [caption for caption, _ in toc] == ["Lessons and worksheets", "Solutions"]
    course = toc[0][1].split()
    assert course[:3] == ["notebooks/01_anatomy_of_a_reward_model", "notebooks/02_variance_of_initial_rewards",
                          "exercises/02_variance_monte_carlo"], "each lesson is followed by its worksheet"
    assert sorted(course + toc[1][1].split()) == sorted(p.removesuffix(".ipynb") for p in course_notebooks())


def test_check_records_are_dropped_and_their_text_line_kept():
    from rmlib.checks import MIME_TYPE

    record = {"output_type": "display_data", "metadata": {},
              "data": {MIME_TYPE: {"task": "x", "status": "passed"}, "text/plain": "✓ x: fine"}}
    figure = {"output_type": "display_data", "metadata": {}, "data": {"image/png": "AAAA", "text/plain": "<Figure>"}}
    nb = nbformat.from_dict({"cells": [{"cell_type": "code", "source": "", "metadata": {}, "execution_count": 1,
                                        "outputs": [record, figure]}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    execute.drop_unrenderable(nb)
    assert [o["data"] for o in nb.cells[0].outputs] == [{"text/plain": "✓ x: fine"}, figure["data"]]


def _fake_site(root: Path, body: str, css: str = "") -> Path:
    (root / "_static").mkdir(parents=True)
    (root / "_static" / "theme.css").write_text(css)
    (root / "_static" / "macros.html").write_text('<script src="{{ pathto(x) }}"></script>')  # a theme template
    (root / "other.html").write_text('<h2 id="there">x</h2>')
    (root / "index.html").write_text(f'<link rel="stylesheet" href="_static/theme.css"><p id="here">{body}</p>')
    return root


def test_site_check_accepts_local_resources_and_plain_links(tmp_path):
    body = ('<a href="https://colab.research.google.com/github/x">Colab</a> <a href="other.html#there">x</a> '
            '<a href="#here">top</a> <img src="data:image/png;base64,AAAA"> <a href="mailto:a@b.c">mail</a>')
    check = site_check.check_site(_fake_site(tmp_path, body, css="@font-face { src: url(fonts/x.woff2) }"))
    assert check.pages == 2 and check.problems == []


@pytest.mark.parametrize("body, css, problem", [
    ('<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>', "", "loads from the internet: index.html: https://cdn"),
    ('<link rel="stylesheet" href="//fonts.googleapis.com/css?family=Lato">', "", "loads from the internet: index.html: //fonts"),
    ('<img src="https://colab.research.google.com/assets/colab-badge.svg">', "", "loads from the internet: index.html: https://colab"),
    ('<div style="background: url(https://x.org/a.png)"></div>', "", "loads from the internet: index.html: https://x.org"),
    ("", '@import "https://fonts.googleapis.com/css2";', "loads from the internet: _static/theme.css: https://fonts"),
    ("", "@font-face { src: url('https://x.org/f.woff2') }", "loads from the internet: _static/theme.css: https://x.org"),
    ('<a href="missing.html">x</a>', "", "broken link: index.html: missing.html"),
    ('<a href="other.html#nowhere">x</a>', "", "broken link: index.html: other.html#nowhere (no such anchor)"),
    ('<a href="#nowhere">x</a>', "", "broken link: index.html: #nowhere (no such anchor)"),
    ('<img src="_images/missing.png">', "", "broken link: index.html: _images/missing.png"),
])
def test_site_check_finds_external_resources_and_broken_links(tmp_path, body, css, problem):
    problems = site_check.check_site(_fake_site(tmp_path, body, css)).problems
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_cache_is_emptied_when_rmlib_or_the_kernel_startup_change(tmp_path, monkeypatch):
    pytest.importorskip("jupyter_cache")
    cache_dir = tmp_path / "cache"
    execute.open_cache(cache_dir)
    (cache_dir / "marker").write_text("old outputs")
    execute.open_cache(cache_dir)
    assert (cache_dir / "marker").exists(), "same fingerprint: the cache is kept"
    monkeypatch.setattr(execute, "fingerprint", lambda: "changed")
    execute.open_cache(cache_dir)
    assert not (cache_dir / "marker").exists(), "a new fingerprint empties the cache"
    assert (cache_dir / "course-fingerprint.txt").read_text().strip() == "changed"


def test_fingerprint_covers_rmlib_the_kernel_startup_and_the_output_format(tmp_path, monkeypatch):
    before = execute.fingerprint()
    startup = tmp_path / "startup.py"
    startup.write_text(execute.KERNEL_STARTUP.read_text() + "\n# changed\n")
    monkeypatch.setattr(execute, "KERNEL_STARTUP", startup)
    assert execute.fingerprint() != before
    monkeypatch.undo()
    monkeypatch.setattr(execute, "OUTPUTS_VERSION", execute.OUTPUTS_VERSION + 1)
    assert execute.fingerprint() != before


def test_progress_bar_leaves_its_final_line_not_a_frozen_zero(tmp_path):
    """The build kernel's startup file turns tqdm.auto's widget into one final text line."""
    pytest.importorskip("myst_nb")
    from myst_nb.core.utils import coalesce_streams

    path = tmp_path / "bar.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 99 — bars"),
        nbformat.v4.new_code_cell("from tqdm.auto import tqdm, trange\nfor _ in tqdm(range(300), desc='steps'): pass\n"
                                  "for _ in trange(5, desc='hidden', disable=True): pass"),
    ]), path)
    nb, _ = execute.execute(path)
    outputs = coalesce_streams(nb.cells[1].outputs)
    assert [o.get("name") for o in outputs] == ["stdout"], outputs
    assert outputs[0].text.strip().startswith("steps: 100%|") and "300/300" in outputs[0].text
    assert "0%|" not in outputs[0].text.replace("100%|", "") and outputs[0].text.count("\n") == 1


def test_a_failing_notebook_stops_the_build_with_its_name_and_error(tmp_path):
    pytest.importorskip("jupyter_cache")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 99 — x"), nbformat.v4.new_code_cell("1 / 0")])
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / "99_bad.ipynb")
    cache = execute.open_cache(tmp_path / "cache")
    with pytest.raises(SystemExit, match=r"(?s)notebooks/99_bad.ipynb failed to execute.*ZeroDivisionError"):
        execute.execute_missing(cache, tmp_path, {"notebooks/99_bad.ipynb": nb}, ["notebooks/99_bad.ipynb"], jobs=1)
    assert execute.cached_record(cache, nb) is None, "nothing cached for a failed notebook"


def test_a_failed_build_leaves_nothing_the_next_build_reads(tmp_path):
    out = tmp_path / "html"
    work = build.working_folder(out)
    (work / "doctrees").mkdir()
    (work / "doctrees" / "environment.pickle").write_text("half-written by a build that failed")
    assert not (build.working_folder(out) / "doctrees").exists(), "an unfinished build's state is removed"
    (work / "doctrees").mkdir()
    (work / build.COMPLETE).write_text("")
    again = build.working_folder(out)
    assert (again / "doctrees").exists(), "a finished build's state is kept (incremental rebuilds)"
    assert not (again / build.COMPLETE).exists(), "until this build finishes too"


def test_execute_selects_notebooks_by_path_prefix():
    paths = course_notebooks()
    assert build.selected(paths, None) == paths
    assert build.selected(paths, ["notebooks/02"]) == [LESSON]
    with pytest.raises(SystemExit, match="no notebook matches"):
        build.selected(paths, ["notebook/02"])


def test_pages_workflow_publishes_what_the_same_command_builds():
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text(encoding="utf-8"))
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    runs = [step.get("run", "") for step in steps]
    assert any(run.strip() == "python -m tools site" for run in runs), runs
    assert any("requirements-site.txt" in run for run in runs), "the workflow installs the site packages"
    upload = next(step for step in steps if step.get("uses", "").startswith("actions/upload-pages-artifact"))
    from tools.site import DEFAULT_OUT

    assert Path(upload["with"]["path"]) == DEFAULT_OUT.relative_to(ROOT)
    assert any(step.get("uses", "").startswith("actions/deploy-pages") for step in steps)


def test_site_requirements_are_pinned():
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements-site.txt").read_text().splitlines()]
    pins = [line for line in lines if line]
    assert pins and all(re.fullmatch(r"[\w.-]+==[\w.]+(; .+)?", pin) for pin in pins), pins
    assert {pin.split("==")[0] for pin in pins} >= {"sphinx", "myst-nb", "jupyter-cache", "sphinx-book-theme"}


# ---------------------------------------------------------------------------------------------------
# The built site
# ---------------------------------------------------------------------------------------------------


def test_every_notebook_has_a_page_and_the_site_is_self_contained(built):
    assert built.check.pages >= len(course_notebooks()) + 1
    for path in course_notebooks():
        assert (SITE_OUT / Path(path).with_suffix(".html")).exists(), path
    assert set(built.executed) == {LESSON, *WORKSHEETS}, "a fresh cache: exactly the selected notebooks ran"
    # build() refuses a site with problems; check again here so that this test can fail on its own.
    assert site_check.check_site(SITE_OUT).problems == []


def test_lesson_page_has_launch_buttons_download_and_previous_next(built):
    config, page = load_config(), _page(LESSON)
    assert f'href="{config.colab_url(LESSON)}"' in page
    assert f'href="https://mybinder.org/v2/gh/{config.owner}/{config.repo}/{config.branch}?urlpath=lab/tree/{LESSON}"' in page
    download = re.search(r'href="(\.\./_sources/[^"]+\.ipynb)"', page)[1]
    assert (SITE_OUT / "notebooks" / download).resolve().read_bytes() == (ROOT / LESSON).read_bytes(), \
        "the download is the repository's notebook"
    prev = re.search(r'<a class="left-prev"\s+href="([^"]+)"', page)[1]
    nxt = re.search(r'<a class="right-next"\s+href="([^"]+)"', page)[1]
    assert (prev, nxt) == ("01_anatomy_of_a_reward_model.html", "../exercises/02_variance_monte_carlo.html")
    assert "colab-badge.svg" not in page and "google.colab" not in page, "the stamped Colab cells are hidden"


def test_lesson_02_shows_its_outputs_and_the_explorer_as_a_figure(built):
    from rmlib.lab import explorers

    page = _page(LESSON)
    assert len(re.findall(r'<img [^>]*src="\.\./_images/[^"]+\.png"', page)) >= 2, "the executed lesson's figures"
    figure = re.search(r'<figure class="course-explorer"><img src="data:image/png;base64,([^"]+)"[^>]*>'
                       r"<figcaption>([^<]+)</figcaption>", page)
    assert figure, "the variance explorer's static figure is missing"
    assert figure[1] == base64.b64encode(explorers.variance_explorer().png).decode(), "its default setting"
    assert "open this notebook in Jupyter, Colab or Binder" in figure[2]
    assert "widget-view+json" not in page and "require.min.js" not in page, "no live widget on a static page"


# ---------------------------------------------------------------------------------------------------
# In a real browser
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def served(built):
    """The built site on 127.0.0.1 (a local http.server); yields its base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(SITE_OUT)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


RAW_MATH = re.compile(r"\$[^$\n]+\$|\\\(|\\\[|\\begin\{")
TEXT_OUTSIDE_CODE = """() => {
    const clone = document.querySelector('article').cloneNode(true);
    clone.querySelectorAll('pre, code, mjx-container, script, style').forEach(e => e.remove());
    return clone.innerText;
}"""


def test_site_in_chromium_math_images_search_and_nothing_from_the_internet(served):
    _require_browser()
    from playwright.sync_api import sync_playwright

    requests, failed = [], []
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.on("request", lambda r: requests.append(r.url))
            page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico") and failed.append(f"{r.status} {r.url}"))
            page.on("requestfailed", lambda r: failed.append(f"failed {r.url}"))
            pages = (("index.html", "site_home.png", 0), (Path(LESSON).with_suffix(".html").as_posix(), "site_lesson02.png", 3))
            for name, shot, least in pages:
                page.goto(f"{served}/{name}")
                page.wait_for_function("() => window.MathJax?.startup?.promise")
                page.evaluate("() => MathJax.startup.promise")  # resolves when the page is typeset
                typeset = page.locator("mjx-container").count()
                assert typeset > 0, f"{name}: no formula typeset"
                leftover = RAW_MATH.findall(page.evaluate(TEXT_OUTSIDE_CODE))
                assert not leftover, f"{name}: raw TeX left on the page: {leftover[:5]}"
                images = page.evaluate("() => [...document.images].map(i => [i.currentSrc.slice(0, 80), i.complete && i.naturalWidth])")
                assert len(images) >= least and all(width > 0 for _, width in images), f"{name}: images not loaded: {images}"
                page.screenshot(path=str(ARTIFACTS / shot))
            explorer = page.locator("figure.course-explorer img")
            explorer.scroll_into_view_if_needed()
            assert explorer.evaluate("img => img.naturalWidth") > 0

            page.goto(f"{served}/search.html?q=layer_init")
            page.wait_for_selector("ul.search li a")
            hits = page.eval_on_selector_all("ul.search li a", "links => links.map(a => a.getAttribute('href'))")
        finally:
            browser.close()

    assert any(h.startswith("notebooks/03_implementing_layer_init.html") for h in hits), hits
    offsite = sorted({u for u in requests if not u.startswith((served, "data:", "blob:"))})
    assert not offsite, f"requests that leave the site: {offsite}"
    assert not failed, f"failed requests: {failed}"
    print(f"browser check: lesson 02 shows {len(images)} images; search for layer_init: {len(hits)} hits; {len(requests)} requests, all local")


def test_worksheet_pages_show_each_check_line(built):
    from rmlib.checks import MIME_TYPE

    solution, exercise = _page(WORKSHEETS[1]), _page(WORKSHEETS[0])
    assert re.search(r"✓ predict_reward_variance", solution), "the worked solution's checks pass on the page"
    assert "not implemented yet" in exercise, "the blank worksheet's checks say so"
    assert MIME_TYPE not in solution and MIME_TYPE not in exercise


def test_home_page_shows_the_course_map(built):
    home = (SITE_OUT / "index.html").read_text(encoding="utf-8")
    for lesson in load_catalogue().lessons:
        assert f'href="{Path(lesson.notebook).with_suffix(".html").as_posix()}"' in home, lesson.notebook
