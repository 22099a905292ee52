"""Sphinx configuration of the course website. Build it with ``python -m tools site`` (see tools/site/),
which lays out the source folder, executes the notebooks into the jupyter-cache and runs Sphinx here."""

from tools import site as course_site
from tools.catalogue import parse_catalogue
from tools.config import load_config, read_pyproject
from tools.site.mathjax import MATHJAX_SCRIPT, mathjax_folder

course = load_config()  # [tool.course] in pyproject.toml: where the launch buttons point

project = parse_catalogue(read_pyproject()).title
html_title = project
author = "the course authors"
copyright = "the course authors, MIT licence"
extensions = ["myst_nb"]
exclude_patterns = ["**.ipynb_checkpoints"]

# Markdown cells: $…$ and $$…$$ math, LaTeX environments, and links to headings (#a-heading).
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# Notebooks: outputs come from the jupyter-cache that tools.site fills (it executes in parallel).
nb_execution_mode = "cache"
nb_execution_cache_path = str(course_site.DEFAULT_CACHE)  # tools.site passes its --cache
nb_execution_timeout = course_site.TIMEOUT
nb_execution_raise_on_error = True
nb_merge_streams = True  # one output block per stream, not one per print
nb_custom_formats = {".ipynb": ("tools.site.pages.read_notebook", {}, False)}  # hides the stamped Colab cells
# No live widgets on a static page: the explorers' figure (text/html from website/kernel_startup.py)
# is shown, and no widget JavaScript is loaded (its default comes from a CDN).
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
# The checkers' structured record (application/vnd.rmlib.check+json) never reaches myst-nb: with the
# Sphinx builder myst-nb renders every type of a display before choosing one, and warns on a type it
# has no renderer for, so a priority override cannot silence it. tools.site.execute drops the record
# before caching; its text/plain line is what the page shows.
nb_ipywidgets_js = {}

# MathJax 3 served from the site (tools.site.mathjax unpacks it from npm's mathjax package).
mathjax_path = MATHJAX_SCRIPT
html_static_path = ["_static", str(mathjax_folder())]
html_css_files = ["course.css"]

html_theme = "sphinx_book_theme"
html_theme_options = {
    "repository_url": course.repository,
    "repository_branch": course.branch,
    "path_to_docs": "",  # the source folder mirrors the repository: notebooks/, exercises/, solutions/
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {
        "colab_url": "https://colab.research.google.com",
        "binderhub_url": "https://mybinder.org",
        "notebook_interface": "jupyterlab",
    },
    "home_page_in_toc": True,
    "secondary_sidebar_items": {"**": ["page-toc"], "index": []},  # the course map gets the width
    "show_navbar_depth": 1,
}
html_last_updated_fmt = None
