"""The look every figure shares: its colours, and how a notebook renders figures.

Call :func:`setup_notebook` once at the top of a notebook: JupyterLab then renders figures
through plotly's mimetype renderer, and an exported HTML page carries plotly.js once,
offline. Shorter than 50 lines because the figure modules all import it and nothing else
belongs here.
"""
from __future__ import annotations

import plotly.io as pio

__all__ = ["COLORS", "setup_notebook"]

#: colours used throughout: train/val/test, true/false/uncertain, ours/thesis
COLORS = {
    "train": "#1f77b4", "val": "#ff7f0e", "test": "#2ca02c",
    "true": "#2ca02c", "false": "#d62728", "uncertain": "#ffbf00",
    "positive": "#d62728", "negative": "#7f7f7f", "ours": "#1f77b4", "thesis": "#7f7f7f",
}


def setup_notebook() -> None:
    """Render figures with ``plotly_mimetype+notebook``: live in JupyterLab, offline in HTML."""
    pio.renderers.default = "plotly_mimetype+notebook"
