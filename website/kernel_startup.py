"""IPython startup file of the kernels that execute the notebooks for the website (``python -m tools site``).

A static page has no widget frontend, so two things that are live in Jupyter need a static form:

* progress bars: ``tqdm.auto`` would draw a widget whose saved text is its first state (a frozen
  0 %). Here it is the plain text bar, on stdout, redrawn only when it closes; the page then shows
  its final line (myst-nb's ``nb_merge_streams`` applies the carriage returns).
* explorers (:class:`rmlib.lab.explorers.Explorer`): their default setting as a figure, with one
  line saying how to make them live. Registered by name, so ``rmlib`` is imported only if a notebook
  does.

Nothing here changes what a notebook computes. tools.site fingerprints this file: editing it
re-executes every notebook.
"""

import base64
import sys

import tqdm.auto
import tqdm.std


class _FinalLineBar(tqdm.std.tqdm):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("file", sys.stdout)
        kwargs.setdefault("mininterval", float("inf"))  # draw at the start and at the end only
        super().__init__(*args, **kwargs)


def _trange(*args, **kwargs):
    return _FinalLineBar(range(*args), **kwargs)


tqdm.auto.tqdm, tqdm.auto.trange = _FinalLineBar, _trange

LIVE = (
    "The explorer at its default setting. To move its controls, open this notebook in Jupyter, "
    "Colab or Binder (the buttons at the top of the page) and run it."
)


def _explorer_html(explorer) -> str:
    png = base64.b64encode(explorer.png).decode()
    return (
        f'<figure class="course-explorer"><img src="data:image/png;base64,{png}" '
        f'alt="explorer at its default setting"><figcaption>{LIVE}</figcaption></figure>'
    )


get_ipython().display_formatter.formatters["text/html"].for_type_by_name(  # noqa: F821 (IPython global)
    "rmlib.lab.explorers", "Explorer", _explorer_html
)
