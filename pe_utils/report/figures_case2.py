"""Figures of Cases 2 and 4 (notebook 07): each metric against the training-set percentage with
95 % intervals over seeds beside Table 6.4's means, and the paired difference per fraction.

They take the summary wing's plain frames (``pe_utils.fraction_summary``,
``pe_utils.paired_comparison``) and return a ``go.Figure``; a method or fraction without a
value is simply absent (the notebook says what is missing and how to run it).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pe_utils.experiments.summary_case2 import METRIC_LABELS, fraction_label, fraction_order
from pe_utils.report.figures_training import METHOD_COLORS
from pe_utils.report.style import COLORS

__all__ = ["CASE24_COLORS", "fraction_curves", "paired_figure", "ablation_figure"]

#: supervised (Case2) in the course's "ours" blue, contrastive (Case4) in its own colour
CASE24_COLORS = {"supervised": METHOD_COLORS["supervised"], "contrastive": "#d62728"}


def _bars(low: pd.Series, mean: pd.Series, high: pd.Series) -> dict:
    """Asymmetric error bars from interval bounds; none where a bound is missing (one seed)."""
    up = (pd.to_numeric(high, errors="coerce") - mean).to_numpy(dtype=float)
    down = (mean - pd.to_numeric(low, errors="coerce")).to_numpy(dtype=float)
    return dict(type="data", symmetric=False, array=np.nan_to_num(up), arrayminus=np.nan_to_num(down),
                visible=bool(np.isfinite(up).any()))


def fraction_curves(summary: pd.DataFrame, thesis: pd.DataFrame | None = None,
                    metrics: Sequence[str] = ("auc", "f1"), title: str | None = None) -> go.Figure:
    """One panel per metric against the training-set percentage (largest first), per method:
    ours as mean with its 95 % t interval over seeds (solid), the thesis's mean dashed.

    Args:
        summary: ``pe_utils.fraction_summary`` (``method, fraction, metric, mean, low, high, n``).
        thesis: ``thesis_numbers.TABLE_6_4`` (long: ``train_fraction, method, <metrics>``).
        metrics: the panels.
    """
    fractions = fraction_order([*summary["fraction"],
                                *(thesis["train_fraction"].map(fraction_label) if thesis is not None else [])])
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[METRIC_LABELS.get(m, m) for m in metrics])
    for col, m in enumerate(metrics, start=1):
        for method, colour in CASE24_COLORS.items():
            ours = summary[(summary.metric == m) & (summary.method == method)]
            ours = ours[pd.to_numeric(ours["mean"], errors="coerce").notna()]
            if len(ours):
                mean = ours["mean"].astype(float)
                fig.add_trace(go.Scatter(
                    x=ours["fraction"], y=mean, mode="lines+markers", name=f"{method} (ours)",
                    legendgroup=f"{method} ours", showlegend=col == 1, line=dict(color=colour),
                    error_y=_bars(ours["low"], mean, ours["high"]), customdata=ours["n"],
                    hovertemplate="%{x} %: %{y:.3f} (n=%{customdata})<extra>" + method + "</extra>"),
                    row=1, col=col)
            if thesis is not None and m in thesis:
                t = thesis[thesis.method == method]
                fig.add_trace(go.Scatter(
                    x=t["train_fraction"].map(fraction_label), y=t[m], mode="lines+markers",
                    name=f"{method} (thesis)", legendgroup=f"{method} thesis", showlegend=col == 1,
                    line=dict(color=colour, dash="dash"), marker=dict(symbol="circle-open", size=8),
                    opacity=0.7), row=1, col=col)
    fig.update_xaxes(title_text="training set %", type="category", categoryorder="array", categoryarray=fractions)
    fig.update_layout(title=title or "Cases 2 and 4 by training-set size<br><sup>ours: mean and 95 % t interval "
                      "over seeds; thesis: mean of 3 supervised / 2 contrastive runs (Table 6.4)</sup>",
                      height=450)
    return fig


def paired_figure(comparison: pd.DataFrame, metrics: Sequence[str] = ("auc", "f1", "accuracy"),
                  title: str | None = None) -> go.Figure:
    """The mean paired difference contrastive - supervised per fraction, one trace per metric,
    with its 95 % t interval; the zero line is "no difference". An interval across zero is a
    fraction where the runs cannot tell the methods apart.

    Args:
        comparison: ``pe_utils.paired_comparison`` (its pooled row is drawn last).
    """
    fig = go.Figure()
    rows = comparison[pd.to_numeric(comparison["mean"], errors="coerce").notna()] if len(comparison) else comparison
    order = fraction_order([f for f in rows["fraction"] if f != "every fraction"]) if len(rows) else []
    order += ["every fraction"] if len(rows) and (rows["fraction"] == "every fraction").any() else []
    palette = {"auc": COLORS["ours"], "f1": COLORS["val"], "accuracy": COLORS["test"]}
    for m in metrics:
        part = rows[rows.metric == m] if len(rows) else rows
        if not len(part):
            continue
        mean = part["mean"].astype(float)
        fig.add_trace(go.Scatter(
            x=part["fraction"], y=mean, mode="markers", name=METRIC_LABELS.get(m, m),
            marker=dict(size=9, color=palette.get(m)), error_y=_bars(part["low"], mean, part["high"]),
            customdata=np.stack([part["n"], part["verdict"]], axis=-1),
            hovertemplate="%{x}: %{y:+.3f} (n=%{customdata[0]})<br>%{customdata[1]}<extra></extra>"))
    fig.add_hline(y=0, line_dash="dash", line_color=COLORS["thesis"])
    fig.update_layout(title=title or "Contrastive - supervised, seed by seed<br><sup>mean paired difference and "
                      "its 95 % t interval; an interval across 0: the runs cannot tell the two apart</sup>",
                      xaxis=dict(title="training set %", type="category", categoryorder="array", categoryarray=order),
                      yaxis_title="difference (contrastive - supervised)", height=420)
    return fig


def ablation_figure(summary: pd.DataFrame, thesis: pd.DataFrame, metric: str = "auc",
                    title: str | None = None) -> go.Figure:
    """Table 6.3's path as bars: per experiment the thesis's single run (grey) and ours (mean with
    its 95 % t interval over seeds), so each step's gain or loss can be read against the noise.

    Args:
        summary: ``pe_utils.ablation_summary``; thesis: ``thesis_numbers.TABLE_6_3``.
        metric: ``"auc"``, ``"f1"`` or ``"accuracy"``.
    """
    label = METRIC_LABELS.get(metric, metric)
    x = [str(e) for e in thesis["experiment"]]
    fig = go.Figure(go.Bar(x=x, y=thesis[metric], name="thesis (one run)", marker_color=COLORS["thesis"],
                           hovertext=thesis["table"].map(lambda t: f"Table {t}")))
    ours = summary[(summary.metric == metric) & pd.to_numeric(summary["mean"], errors="coerce").notna()] \
        if len(summary) else summary
    if len(ours):
        mean = ours["mean"].astype(float)
        fig.add_trace(go.Bar(x=ours["experiment"].astype(str), y=mean, name="ours", marker_color=COLORS["ours"],
                             error_y=_bars(ours["low"], mean, ours["high"]), customdata=ours["n"],
                             hovertemplate="experiment %{x}: %{y:.3f} (n=%{customdata})<extra>ours</extra>"))
    fig.update_layout(barmode="group", title=title or f"Table 6.3 and C.1: test {label} along the ablation path"
                      "<br><sup>thesis: one run each; ours: mean and 95 % t interval over seeds</sup>",
                      xaxis=dict(title="experiment", type="category", categoryorder="array", categoryarray=x),
                      yaxis_title=f"test {label}", height=420)
    return fig
