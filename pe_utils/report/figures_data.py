"""Figures of the data (notebook 00): HU histogram, the windows, where the positives are, a split.

Each function takes plain data (arrays, the cache index) and returns a ``go.Figure``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pe_utils.report.images import _hide_axes, _to_numpy, png_uri
from pe_utils.report.style import COLORS, log_count_axis

__all__ = ["FULL_HU_RANGE", "hu_histogram", "window_panel", "positives_per_patient",
           "positives_by_slice_position", "split_strip"]

#: HU range shown "without window": the 12-bit CT range (thesis Fig. 4.2)
FULL_HU_RANGE = (-1024.0, 3071.0)


def hu_histogram(hu, names: Sequence[str] | None = None, bins: int = 200,
                 hu_range: tuple[float, float] = FULL_HU_RANGE, windows: bool = True,
                 title: str = "Hounsfield units") -> go.Figure:
    """Histogram of HU values (one trace per image or volume), with the thesis's windows shaded.

    Args:
        hu: an array of HU values, or a list of them (compared as overlaid histograms).
        names: legend name per array.
        bins: bins over ``hu_range``; values outside are clipped into the end bins.
        windows: shade ``pe_utils.data.dicom.THESIS_WINDOWS`` (lung, mediastinum, PE).
    """
    arrays = [hu] if isinstance(hu, np.ndarray) or hasattr(hu, "detach") else list(hu)
    names = [f"image {i}" for i in range(len(arrays))] if names is None else list(names)
    edges = np.linspace(hu_range[0], hu_range[1], bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure()
    tallest = 1
    for a, name in zip(arrays, names, strict=True):
        v = np.clip(_to_numpy(a).ravel().astype(np.float32), *hu_range)
        counts, _ = np.histogram(v, bins=edges)
        tallest = max(tallest, int(counts.max(initial=1)))
        fig.add_trace(go.Bar(x=centres, y=counts, name=name, opacity=0.6,
                             width=edges[1] - edges[0]))
    if windows:
        from pe_utils.data.dicom import LUNG_WINDOW, MEDIASTINUM_WINDOW, PE_WINDOW

        for label, w, colour in (("lung", LUNG_WINDOW, "#1f77b4"),
                                 ("mediastinum", MEDIASTINUM_WINDOW, "#2ca02c"),
                                 ("PE", PE_WINDOW, "#d62728")):
            fig.add_vrect(x0=w.level - w.width / 2, x1=w.level + w.width / 2, fillcolor=colour,
                          opacity=0.12, line_width=0, annotation_text=label,
                          annotation_position="top left")
    fig.update_layout(title=title, barmode="overlay", xaxis_title="HU",
                      yaxis=dict(title="pixels (log scale)", **log_count_axis(tallest)))
    return fig


def window_panel(hu, max_side: int = 256, title: str = "One slice under each window") -> go.Figure:
    """The same slice without window, under the lung, mediastinum and PE windows, the RGB
    composite and its gray conversion (thesis Figs 4.2, 4.3).

    Args:
        hu: ``(H, W)`` HU values.
        max_side: each panel is shrunk to at most this side.
    """
    from pe_utils.data.dicom import LUNG_WINDOW, MEDIASTINUM_WINDOW, PE_WINDOW, apply_window, to_gray, to_rgb

    hu = _to_numpy(hu).astype(np.float32)
    lo, hi = FULL_HU_RANGE
    panels = [
        (f"no window ({lo:g}..{hi:g} HU)", apply_window(hu, (lo + hi) / 2, hi - lo)),
        (f"lung (WL {LUNG_WINDOW.level:g}, WW {LUNG_WINDOW.width:g})", apply_window(hu, *LUNG_WINDOW)),
        (f"mediastinum (WL {MEDIASTINUM_WINDOW.level:g}, WW {MEDIASTINUM_WINDOW.width:g})",
         apply_window(hu, *MEDIASTINUM_WINDOW)),
        (f"PE (WL {PE_WINDOW.level:g}, WW {PE_WINDOW.width:g})", apply_window(hu, *PE_WINDOW)),
        ("RGB composite (R lung, G mediastinum, B PE)", to_rgb(hu)),
        ("gray (BT.601 luma of the RGB)", to_gray(hu)),
    ]
    fig = make_subplots(rows=2, cols=3, subplot_titles=[p[0] for p in panels],
                        horizontal_spacing=0.02, vertical_spacing=0.08)
    for i, (_, img) in enumerate(panels):
        fig.add_trace(go.Image(source=png_uri(img, max_side), hoverinfo="skip"),
                      row=i // 3 + 1, col=i % 3 + 1)
    _hide_axes(fig)
    fig.update_annotations(font_size=11)
    fig.update_layout(title=title, height=620, width=900, margin=dict(l=10, r=10, t=80, b=10))
    return fig


_LABEL = "pe_present_on_image"


def positives_per_patient(index: pd.DataFrame, title: str = "Slices and positive slices per patient"
                          ) -> go.Figure:
    """Bars per patient: all slices and the positive ones (cache index with ``patient_id``)."""
    g = index.groupby("patient_id", sort=True)[_LABEL].agg(["size", "sum"])
    x = g.index.astype(str)
    fig = go.Figure([
        go.Bar(x=x, y=g["size"], name="slices", marker_color=COLORS["negative"], opacity=0.5),
        go.Bar(x=x, y=g["sum"], name="positive slices", marker_color=COLORS["positive"]),
    ])
    fig.update_layout(title=title, barmode="overlay", xaxis_title="patient", yaxis_title="slices",
                      xaxis_type="category")
    return fig


def positives_by_slice_position(index: pd.DataFrame, bins: int = 10,
                                title: str = "Where positives sit along the series") -> go.Figure:
    """Positives by relative slice position (0 = first slice of a series, 1 = last).

    Bars: positive slices per bin; line (right axis): % of the bin's slices that are positive.
    Needs ``SeriesInstanceUID`` (or ``patient_id``), ``slice_index`` and the label.
    """
    key = "SeriesInstanceUID" if "SeriesInstanceUID" in index else "patient_id"
    n = index.groupby(key)["slice_index"].transform("max").clip(lower=1)
    rel = index["slice_index"] / n
    b = np.minimum((rel * bins).astype(int), bins - 1)
    g = index.assign(_bin=b).groupby("_bin")[_LABEL].agg(["size", "sum"]).reindex(range(bins), fill_value=0)
    x = [f"{i / bins:.1f}-{(i + 1) / bins:.1f}" for i in range(bins)]
    pct = np.where(g["size"] > 0, 100 * g["sum"] / g["size"].where(g["size"] > 0, 1), np.nan)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=x, y=g["sum"], name="positive slices", marker_color=COLORS["positive"]),
                  secondary_y=False)
    fig.add_trace(go.Scatter(x=x, y=pct, name="% positive", mode="lines+markers",
                             line_color="black"), secondary_y=True)
    fig.update_layout(title=title, xaxis_title="relative slice position")
    fig.update_yaxes(title_text="positive slices", secondary_y=False)
    fig.update_yaxes(title_text="% positive", secondary_y=True, rangemode="tozero")
    return fig


def split_strip(index: pd.DataFrame, split_labels: Sequence[str],
                title: str = "Case1 split of one series") -> go.Figure:
    """One series as a strip of slices coloured train/val/test, positives marked above.

    Args:
        index: cache index rows (``SeriesInstanceUID``, ``slice_index``, label): one series, or a
            whole cache's, of which the first row's series is drawn.
        split_labels: ``"train"``/``"val"``/``"test"`` per row of ``index`` (e.g.
            ``case1_split``'s output).
    """
    df = index.assign(_split=np.asarray(split_labels))
    if "SeriesInstanceUID" in df:
        df = df[df["SeriesInstanceUID"] == df["SeriesInstanceUID"].iloc[0]]
    df = df.sort_values("slice_index")
    fig = go.Figure()
    for split in ("train", "val", "test"):
        part = df[df["_split"] == split]
        fig.add_trace(go.Bar(x=part["slice_index"], y=np.ones(len(part)), name=split, width=0.9,
                             marker_color=COLORS[split],
                             hovertemplate="slice %{x}<extra>" + split + "</extra>"))
    pos = df[df[_LABEL] == 1]
    fig.add_trace(go.Scatter(x=pos["slice_index"], y=np.full(len(pos), 1.15), mode="markers",
                             name="PE on slice", marker=dict(symbol="triangle-down", size=9,
                                                             color=COLORS["positive"])))
    fig.update_layout(title=title, barmode="overlay", height=260, xaxis_title="slice index (along z)",
                      yaxis=dict(visible=False, range=[0, 1.3]), bargap=0)
    return fig
