"""IPython startup file of the kernels that execute the notebooks for the website (``python -m tools site``).

A static page has no widget frontend, so two things that are live in Jupyter need a static form:

* progress bars: ``tqdm.auto`` would draw a widget whose saved text is its first state (a frozen
  0 %). Here it is a text bar that prints one line, its final state, when it closes.
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
    """A text bar that never redraws (``delay=inf``) and prints its final state as one line when it closes."""

    def __init__(self, *args, **kwargs):
        kwargs["delay"] = float("inf")
        super().__init__(*args, **kwargs)

    def close(self):
        if not self.disable:
            print(self, file=sys.stdout, flush=True)
        super().close()


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
    "rmlib.lab.explorers.widget", "Explorer", _explorer_html
)
