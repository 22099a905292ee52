"""The widget shell both explorers share: controls, an HTML readout and a PNG figure, recomputed together.

Core ipywidgets only, so it works in JupyterLab, Colab (ipywidgets 7), VS Code and Binder; where widgets
cannot render (a static page, GitHub's viewer) its display falls back to the PNG of the current state.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

PNG_DPI = 80


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (no pyplot: nothing is shown or left open)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PNG_DPI)
    return buf.getvalue()


class Explorer(widgets.VBox):
    """Controls, a numeric readout and a figure; recomputes whenever a control changes.

    ``compute(**values)`` turns control values into a result, ``plot(result)`` draws it and
    ``readout(result)`` summarises it as HTML. ``.result`` and ``.png`` hold the current state.
    """

    def __init__(
        self,
        controls: dict[str, widgets.ValueWidget],
        compute: Callable[..., Any],
        plot: Callable[[Any], Figure],
        readout: Callable[[Any], str],
        css_class: str,
    ) -> None:
        self.controls = controls
        self._compute, self._plot, self._readout = compute, plot, readout
        self.readout = widgets.HTML()
        self.figure = widgets.Output()
        self.result: Any = None
        self.png = b""
        super().__init__([widgets.HBox([widgets.VBox(list(controls.values())), self.readout]), self.figure])
        self.add_class(css_class)
        self._hold = False
        for control in controls.values():
            control.observe(self.update, names="value")
        self.update()

    def values(self) -> dict[str, Any]:
        return {name: control.value for name, control in self.controls.items()}

    def update(self, change: object = None) -> None:
        """Recompute from the controls and redraw (``_hold`` batches programmatic changes)."""
        if self._hold:
            return
        self.result = self._compute(**self.values())
        self.readout.value = self._readout(self.result)
        self.png = figure_png(self._plot(self.result))
        # Setting the Output's outputs directly works with or without a kernel (and in tests).
        self.figure.outputs = (
            {
                "output_type": "display_data",
                "data": {"image/png": base64.b64encode(self.png).decode(), "text/plain": "<explorer figure>"},
                "metadata": {},
            },
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        # Live frontends render the widget view; a static page without widget state shows the PNG.
        widget_bundle = getattr(super(), "_repr_mimebundle_", None)
        data = widget_bundle(**kwargs) if widget_bundle is not None else self._widget_view_bundle()
        if data is not None:
            data["image/png"] = base64.b64encode(self.png).decode()
        return data

    def _widget_view_bundle(self) -> dict[str, Any] | None:
        """ipywidgets 7 has no _repr_mimebundle_: the same bundle its _ipython_display_ builds."""
        if self._view_name is None:
            return None
        return {
            "text/plain": repr(self)[:110],
            "application/vnd.jupyter.widget-view+json": {
                "version_major": 2, "version_minor": 0, "model_id": self._model_id,
            },
        }

    if not hasattr(widgets.Widget, "_repr_mimebundle_"):
        # ipywidgets 7 (Colab's) displays widgets through _ipython_display_, which IPython prefers to any
        # _repr_mimebundle_: display the bundle with the PNG ourselves, then do what its display does.
        def _ipython_display_(self, **kwargs: Any) -> None:
            from IPython.display import display

            data = self._repr_mimebundle_()
            if data is not None:
                display(data, raw=True)
                self._handle_displayed(**kwargs)
