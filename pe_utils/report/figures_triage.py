"""Figures of the triage and its workload: bars per threshold pair, workload tables, rates, the slider.

:func:`triage_bars` and :func:`workload_table` show one test (Figs 6.7, 6.8, Table 6.2);
:func:`rate_curve` and :func:`workload_comparison` compare sampling rates with the thesis
(the summary notebook), :func:`rate_overview` is the batch index's small summary; and
:func:`threshold_figure` is the static threshold explorer, a slider over the threshold pairs
that works in an exported HTML page.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pe_utils.evaluate.triaging import annotation_workload, triage_counts
from pe_utils.profiles import THESIS_THRESHOLD_PAIRS
from pe_utils.report.quality import AUC_FLOOR, F1_FLOOR, METHOD_NOTES, field_label
from pe_utils.report.style import COLORS, log_count_axis

__all__ = ["triage_bars", "workload_table", "rate_curve", "workload_comparison", "threshold_figure",
           "rate_overview"]


def triage_bars(table: pd.DataFrame, percent: bool = True,
                title: str = "True, false and uncertain predictions per threshold pair") -> go.Figure:
    """Stacked bars of true/false/uncertain predictions per threshold pair (Figs 6.7, 6.8).

    Args:
        table: ``pe_utils.evaluate.triage_table`` output.
        percent: bars in % of the test set (else counts).
    """
    x = [f"{u:g}/{lo:g}" for u, lo in zip(table["upper"], table["lower"])]
    fig = go.Figure()
    for kind in ("true", "false", "uncertain"):
        col = f"pct_{kind}" if percent else f"n_{kind}"
        fig.add_trace(go.Bar(x=x, y=table[col], name=f"{kind} predictions", marker_color=COLORS[kind],
                             text=[f"{v:.1f}" if percent else str(int(v)) for v in table[col]],
                             textposition="inside"))
    fig.update_layout(title=title, barmode="stack", xaxis_title="thresholds (upper/lower)",
                      yaxis_title="% of the test set" if percent else "images", xaxis_type="category")
    return fig


def _fmt(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        return "none" if math.isnan(v) else f"{v:.2f}".rstrip("0").rstrip(".")
    if isinstance(v, (tuple, list)) and len(v) == 2:
        return f"{v[0]:g}/{v[1]:g}"
    return "none" if v is None else str(v)


def workload_table(rows, title: str = "Annotation workload (as Table 6.2)", transpose: bool = True
                   ) -> go.Figure:
    """A ``go.Table`` of workload rows: readable names, at most 2 decimals, pairs as ``upper/lower``.

    Raw column names read as words (:func:`pe_utils.report.quality.field_label`), booleans as
    yes/no, NaN as "none". A table with a ``method`` column (``compare_threshold_choices``)
    gets the legend of the three threshold choices under it.

    Args:
        rows: DataFrame or list of dicts, one per test (e.g. test_name, pct_training_stage,
            pct_uncertain, workload_pct, thresholds).
        transpose: one column per test and one row per figure, as Table 6.2 lays it out; the
            first column of ``rows`` heads the columns.
    """
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    cells = df.map(_fmt) if hasattr(df, "map") else df.applymap(_fmt)
    names = [field_label(c) for c in df.columns]
    if transpose and len(df.columns) > 1:
        head = [names[0]] + list(cells.iloc[:, 0])
        values = [names[1:]] + [list(cells.iloc[i, 1:]) for i in range(len(df))]
    else:
        head = names
        values = [list(cells[c]) for c in df.columns]
    # the first column holds the longest words (the row names when transposed): twice as wide
    widths = [2.0] + [1.0] * (len(values) - 1)
    fig = go.Figure(go.Table(columnwidth=widths,
                             header=dict(values=head, fill_color="#dde6f0", align="center", height=28),
                             cells=dict(values=values, align=["left"] + ["center"] * (len(values) - 1),
                                        height=24)))
    # rows at a fixed height fill the plot area exactly, so the legend sits right under them
    height = 50 + 28 + 24 * max(len(values[0]), 1) + 20
    margin = dict(l=10, r=10, t=50, b=10)
    if "method" in df.columns:
        legend = "<br>".join(f"<b>{m}</b>: {_wrap(METHOD_NOTES[m])}" for m in ("oracle", "validation", "conformal"))
        fig.add_annotation(text=legend, x=0, y=0, xref="paper", yref="paper", yanchor="top", xanchor="left",
                           showarrow=False, align="left", font=dict(size=11))
        margin["b"] = 16 * (legend.count("<br>") + 1) + 20
        height += margin["b"]
    fig.update_layout(title=title, height=height, margin=margin)
    return fig


def _wrap(text: str, width: int = 110) -> str:
    """``text`` broken with ``<br>`` every ``width`` characters or so (annotations do not wrap)."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + len(word) > width:
            lines.append(line)
            line = ""
        line = f"{line} {word}".strip()
    return "<br>".join(lines + [line])


def rate_curve(df: pd.DataFrame, y: str, x: str = "sampling_rate", thesis: pd.DataFrame | None = None,
               thesis_y: str | None = None, group: str | None = None, title: str | None = None,
               y_title: str | None = None, x_order: Sequence | None = None) -> go.Figure:
    """A metric against the sampling rate: ours (mean and std over repeats) beside the thesis's.

    Args:
        df: our runs, one row per run, with columns ``x`` and ``y``; several rows per rate
            are averaged, the std drawn as error bars.
        thesis: the thesis's published values (e.g. ``thesis_numbers.FIG_6_15``) with column
            ``x`` and ``thesis_y`` (default ``y``); drawn as a second, dashed trace.
        group: column splitting ``df`` into one trace per value (e.g. the method).
        x_order: order of the rates on the x axis (default: as they first appear,
            thesis first).
    """
    order = list(x_order) if x_order is not None else list(dict.fromkeys(
        ([] if thesis is None else list(thesis[x])) + list(df[x])))
    fig = go.Figure()
    groups = [(None, df)] if group is None else list(df.groupby(group, sort=False))
    for name, part in groups:
        g = part.groupby(x, sort=False)[y].agg(["mean", "std", "size"]).reindex(order).dropna(subset=["mean"])
        fig.add_trace(go.Scatter(
            x=g.index.astype(str), y=g["mean"], mode="lines+markers", name="ours" if name is None else str(name),
            error_y=dict(type="data", array=g["std"].fillna(0), visible=bool((g["size"] > 1).any())),
            line_color=COLORS["ours"] if name is None else None))
    if thesis is not None:
        ty = thesis_y or y
        t = thesis.set_index(x)[ty].reindex(order).dropna()
        fig.add_trace(go.Scatter(x=t.index.astype(str), y=t.values, mode="lines+markers", name="thesis",
                                 line=dict(color=COLORS["thesis"], dash="dash")))
    fig.update_layout(title=title or f"{y} by sampling rate", xaxis_title="sampling rate",
                      yaxis_title=y_title or y, xaxis=dict(type="category", categoryorder="array",
                                                           categoryarray=[str(o) for o in order]))
    return fig


def workload_comparison(df: pd.DataFrame, x: str = "sampling_rate", columns: Sequence[str] | None = None,
                        title: str = "% of the dataset annotated by hand", y_title: str = "% of the dataset"
                        ) -> go.Figure:
    """Grouped bars per rate, one bar per column (e.g. ours oracle, ours conformal, thesis).

    Columns whose name contains "thesis" are drawn in greys, ours in colour.

    Args:
        df: one row per rate with column ``x`` and numeric columns to compare.
        columns: which columns (default: every numeric column but ``x``).
    """
    cols = list(columns) if columns is not None else [
        c for c in df.columns if c != x and pd.api.types.is_numeric_dtype(df[c])]
    xs = df[x].astype(str)
    fig = go.Figure()
    greys = iter(["#7f7f7f", "#b0b0b0", "#4d4d4d", "#d0d0d0", "#2b2b2b"] * 4)
    for c in cols:
        colour = next(greys) if "thesis" in str(c) else None  # the thesis's columns in greys
        fig.add_trace(go.Bar(x=xs, y=df[c], name=str(c), marker_color=colour,
                             text=[_fmt(v) for v in df[c]], textposition="outside"))
    fig.update_layout(title=title, barmode="group", xaxis_title=x.replace("_", " "), yaxis_title=y_title,
                      xaxis_type="category")
    return fig


def threshold_figure(probs, labels=None, n_dataset: int | None = None, n_training_stage: int = 0,
                     pairs: Sequence[Sequence[float]] = THESIS_THRESHOLD_PAIRS,
                     title: str = "Two-threshold triage") -> go.Figure:
    """Static explorer: a slider over threshold pairs updating bars, threshold lines and title.

    Left: stacked bars of true/false/uncertain (or sure +/sure -/uncertain without labels);
    right: histogram of the probabilities by label with the two thresholds. Works in a static
    HTML page (slider steps restyle the bars and relayout the lines and title).

    Args:
        probs: (N,) mean TTA probabilities; labels: (N,) 0/1 labels or None.
        n_dataset, n_training_stage: with ``n_dataset``, each step's title gives the workload
            (``annotation_workload``, Table 6.2).
        pairs: ``(upper, lower)`` pairs, one slider step each; the first is shown.

    Returns:
        ``go.Figure`` with three bar traces, the histogram trace(s) and one slider.

    Raises:
        ValueError: no pair, a bad pair, labels misaligned or other than 0/1.
    """
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    y = None if labels is None else np.asarray(labels).reshape(-1).astype(np.int8)
    pairs = [tuple(map(float, q)) for q in pairs]
    if not pairs:
        raise ValueError("no threshold pairs")
    kinds = (("true", "n_true"), ("false", "n_false"), ("uncertain", "n_uncertain")) if y is not None else (
        ("sure positive", "n_sure_pos"), ("sure negative", "n_sure_neg"), ("uncertain", "n_uncertain"))
    colours = [COLORS["true"], COLORS["false"], COLORS["uncertain"]]
    states = []
    for upper, lower in pairs:
        s = triage_counts(p, y, upper, lower)
        t = f"{title}: {upper:g}/{lower:g}, uncertain {s['n_uncertain']} ({s['pct_uncertain']:.2f} %)"
        if y is not None:
            t += f", false {s['n_false']}"
        if n_dataset is not None:
            t += f", workload {annotation_workload(n_dataset, n_training_stage, s['n_uncertain']):.2f} %"
        states.append((s, t))

    fig = make_subplots(rows=1, cols=2, column_widths=[0.4, 0.6],
                        subplot_titles=("predictions", "mean probability"))
    s0, t0 = states[0]
    for (name, key), colour in zip(kinds, colours):
        fig.add_trace(go.Bar(x=[name], y=[s0[key]], name=name, marker_color=colour, text=[s0[key]],
                             textposition="outside", showlegend=False), row=1, col=1)
    xbins = dict(start=0, end=1 + 1e-9, size=0.02)
    if y is None:
        fig.add_trace(go.Histogram(x=p, xbins=xbins, name="all", marker_color=COLORS["ours"]), row=1, col=2)
    else:
        for c, name in ((0, "negative"), (1, "positive")):
            fig.add_trace(go.Histogram(x=p[y == c], xbins=xbins, name=name, opacity=0.7,
                                       marker_color=COLORS[name]), row=1, col=2)

    def lines(upper, lower):
        return [dict(type="line", xref="x2", yref="y2 domain", x0=v, x1=v, y0=0, y1=1,
                     line=dict(dash="dash", color="black")) for v in (upper, lower)]

    steps = []
    for (upper, lower), (s, t) in zip(pairs, states):
        ys = [[s[key]] for _, key in kinds]
        steps.append(dict(method="update", label=f"{upper:g}/{lower:g}",
                          args=[{"y": ys, "text": ys}, {"title.text": t, "shapes": lines(upper, lower)},
                                [0, 1, 2]]))
    fig.update_layout(title=t0, shapes=lines(*pairs[0]), barmode="overlay", height=480,
                      sliders=[dict(active=0, steps=steps, currentvalue=dict(prefix="upper/lower: "),
                                    pad=dict(t=50))])
    fig.update_yaxes(title_text="images", row=1, col=1)
    counts = [np.histogram(p if y is None else p[y == c], bins=50, range=(0, 1))[0].max(initial=0)
              for c in ((None,) if y is None else (0, 1))]
    fig.update_yaxes(title_text="images (log scale)", row=1, col=2, **log_count_axis(max(counts)))
    fig.update_xaxes(title_text="probability", range=[0, 1], row=1, col=2)
    return fig


def rate_overview(df: pd.DataFrame, x: str = "sampling_rate", title: str | None = None) -> go.Figure:
    """The batch index's summary of one case (300 px high): workload % and AUC/F1 by rate.

    Runs that need a check (:func:`pe_utils.report.quality.quality_checks`) are drawn as open
    markers with their reasons on hover, so a dip reads as a weak model, not as the rate's
    effect; the AUC and F1 floors are dotted lines.

    Args:
        df: one row per run, in the order to draw, with column ``x`` and any of ``auc``, ``f1``,
            ``oracle_workload_pct``, ``practical_workload_pct``, ``conformal_workload_pct``
            (NaN: no pair, drawn at 100 %), and ``check`` (the reasons joined, "" for none).
        x: the column on the x axis.
    """
    order = list(dict.fromkeys(df[x].astype(str)))
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("% of the dataset annotated by hand", "test AUC and F1"))
    checks = df.get("check", pd.Series([""] * len(df), index=df.index)).fillna("")
    series = [("oracle_workload_pct", "oracle (test labels)", "#1f77b4", 1),
              ("practical_workload_pct", "validation", "#ff7f0e", 1),
              ("conformal_workload_pct", "conformal", "#9467bd", 1),
              ("auc", "AUC", COLORS["ours"], 2), ("f1", "F1", COLORS["false"], 2)]
    for key, name, colour, col in series:
        if key not in df:
            continue
        values = pd.to_numeric(df[key], errors="coerce")
        words = ["no pair: 100 %" if math.isnan(v) else "" for v in values]
        values = values.fillna(100.0) if col == 1 else values
        fig.add_trace(go.Scatter(
            x=df[x].astype(str), y=values, name=name, mode="lines+markers", line=dict(color=colour),
            legendgroup=str(col), marker=dict(size=9, symbol=["circle-open" if c else "circle" for c in checks]),
            customdata=[f"{w} check: {c}" if c else w for w, c in zip(words, checks)],
            hovertemplate=f"{name} %{{x}}: %{{y:.2f}}{' %' if col == 1 else ''} %{{customdata}}<extra></extra>"),
            row=1, col=col)
    for floor, name in ((AUC_FLOOR, "AUC floor"), (F1_FLOOR, "F1 floor")):
        fig.add_hline(y=floor, line=dict(dash="dot", color="#999", width=1), row=1, col=2,
                      annotation_text=f"{name} {floor:g}", annotation_font_size=10)
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=order, title_text=x.replace("_", " "))
    fig.update_yaxes(range=[0, 105], row=1, col=1, title_text="%")
    fig.update_yaxes(range=[0, 1.05], row=1, col=2)
    fig.update_layout(title=title, height=300, margin=dict(l=50, r=20, t=60 if title else 40, b=40),
                      legend=dict(orientation="h", y=-0.3, font_size=11))
    return fig
