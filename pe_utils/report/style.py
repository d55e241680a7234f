"""The look every figure shares: its colours, and how a notebook renders figures.

Call :func:`setup_notebook` once at the top of a notebook. Figures are then shown as plotly's
mimetype only (``application/vnd.plotly.v1+json``: the figure's JSON, which JupyterLab draws
natively): the saved ``.ipynb`` no longer carries plotly.js (4.8 MB, once per notebook, with
the former ``"plotly_mimetype+notebook"`` renderer). The offline HTML export adds plotly.js
once per page and draws each figure from its JSON (:mod:`pe_utils.batch.html`).
"""
from __future__ import annotations

import math
import os
import sys

__all__ = ["COLORS", "setup_notebook", "log_count_axis"]

#: colours used throughout: train/val/test, true/false/uncertain, ours/thesis
COLORS = {
    "train": "#1f77b4", "val": "#ff7f0e", "test": "#2ca02c",
    "true": "#2ca02c", "false": "#d62728", "uncertain": "#ffbf00",
    "positive": "#d62728", "negative": "#7f7f7f", "ours": "#1f77b4", "thesis": "#7f7f7f",
}

#: the renderer of :func:`setup_notebook`: the figure's JSON only, no plotly.js
RENDERER = "plotly_mimetype"


def _show_mimetype(fig) -> bool:
    """Display ``fig`` as plotly's ``plotly_mimetype`` renderer would: its JSON under
    plotly's mimetype (numpy arrays as plotly's typed arrays). An IPython display hook."""
    from IPython.display import display
    from plotly.io._base_renderers import PlotlyRenderer

    display(PlotlyRenderer().to_mimebundle(fig.to_dict()), raw=True)
    return True


def setup_notebook(embed_plotlyjs: bool = False) -> None:
    """Make the notebook show plotly figures as their JSON only (module docstring).

    Args:
        embed_plotlyjs: the former behaviour: ``"plotly_mimetype+notebook"``, which also
            writes plotly.js into the notebook (about 5 MB per executed notebook).

    A figure shown as a cell's value or with ``display`` goes through an IPython display
    hook, not plotly's renderer registry, whose import pulls in nbformat and jsonschema
    (about 1.4 s of CPU per kernel). ``fig.show()`` gets the same renderer: set in plotly if
    its registry is loaded, else through ``PLOTLY_RENDERER``, which plotly reads when it
    loads it. Outside IPython only plotly's renderer is set.
    """
    if embed_plotlyjs or "plotly.io._renderers" in sys.modules:
        import plotly.io as pio

        pio.renderers.default = "plotly_mimetype+notebook" if embed_plotlyjs else RENDERER
    else:
        os.environ["PLOTLY_RENDERER"] = RENDERER
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        from plotly.basedatatypes import BaseFigure

        hooks = shell.display_formatter.ipython_display_formatter
        if embed_plotlyjs:
            hooks.pop(BaseFigure, None)  # back to the figure's own _ipython_display_
        else:
            hooks.for_type(BaseFigure, _show_mimetype)


def log_count_axis(max_count: int) -> dict:
    """A log axis for counts with readable ticks: 1, 2, 5, 10, 20, 50, ... (decades only past
    10^4), never plotly's own minor labels ("5 4 3 2 10 9 8 ...") on a short range."""
    top = max(int(max_count), 1)
    ticks = [m * 10 ** e for e in range(len(str(top)) + 1) for m in (1, 2, 5)]
    if top >= 10 ** 4:
        ticks = [10 ** e for e in range(len(str(top)) + 1)]
    ticks = [t for t in ticks if t <= 1.4 * top]  # the axis ends at 1.4 x the tallest bar
    return dict(type="log", tickvals=ticks, ticktext=[f"{t:,}" for t in ticks], minor=dict(showgrid=False),
                range=[-0.1, math.log10(top) + 0.15])
