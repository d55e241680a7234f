"""The look every figure shares: its colours, and how a notebook renders figures.

Call :func:`setup_notebook` once at the top of a notebook. Figures are then shown as plotly's
mimetype only (``application/vnd.plotly.v1+json``: the figure's JSON, which JupyterLab draws
natively): the saved ``.ipynb`` no longer carries plotly.js (4.8 MB, once per notebook, with
the former ``"plotly_mimetype+notebook"`` renderer). The offline HTML export adds plotly.js
once per page and draws each figure from its JSON (:mod:`pe_utils.batch.html`).
"""
from __future__ import annotations

import os
import sys

__all__ = ["COLORS", "setup_notebook"]

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
