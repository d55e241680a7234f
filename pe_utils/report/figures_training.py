"""Figures of a training run: learning curves (Case1; Case3's contrastive pretraining), batches,
confusion matrix, ROC, probabilities; and the trained methods side by side across rates (07).

Each function takes plain data (``fit``'s history, ``binary_metrics``' dict, labels and
probabilities) and returns a ``go.Figure``.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pe_utils.report.style import COLORS, log_count_axis

__all__ = ["learning_curves", "contrastive_curves", "method_curves", "positives_per_batch_figure",
           "confusion_matrix_figure", "roc_figure", "probability_histogram"]


def learning_curves(history: Sequence[Mapping], f1_bound: float | None = None,
                    title: str = "Learning curves") -> go.Figure:
    """Loss, accuracy, F1 (of the epoch's confusion matrix and per-batch mean) and learning rate.

    Args:
        history: one dict per epoch (``fit``'s output) with any of ``train_loss, val_loss,
            train_accuracy, val_accuracy, train_f1, val_f1, train_f1_batch_mean,
            val_f1_batch_mean, lr``; missing keys are skipped, and so are the epochs
            without a value (``fit`` with ``val_every`` > 1 validates some epochs only: the
            validation curve joins the validated epochs).
        f1_bound: the per-batch F1 bound of Appendix B, drawn dashed on the F1 panel.
    """
    df = pd.DataFrame(list(history))
    epochs = df["epoch"] if "epoch" in df else pd.Series(range(1, len(df) + 1))
    fig = make_subplots(rows=2, cols=2, subplot_titles=("loss", "accuracy", "F1", "learning rate"))
    panels = {
        (1, 1): [("train_loss", "train"), ("val_loss", "val")],
        (1, 2): [("train_accuracy", "train"), ("val_accuracy", "val")],
        (2, 1): [("train_f1", "train (epoch)"), ("val_f1", "val (epoch)"),
                 ("train_f1_batch_mean", "train (batch mean)"), ("val_f1_batch_mean", "val (batch mean)")],
        (2, 2): [("lr", "lr")],
    }
    for (r, c), keys in panels.items():
        for key, name in keys:
            values = pd.to_numeric(df[key], errors="coerce") if key in df else None
            if values is None or values.isna().all():
                continue
            known = values.notna()   # None/NaN: an epoch without the figure, not a point at 0
            split = "val" if key.startswith("val") else "train"
            dash = "dot" if key.endswith("batch_mean") else "solid"
            fig.add_trace(go.Scatter(x=epochs[known], y=values[known], name=name, mode="lines+markers",
                                     line=dict(color=COLORS[split], dash=dash),
                                     legendgroup=name, showlegend=(r, c) != (2, 2)), row=r, col=c)
    if f1_bound is not None:
        fig.add_trace(go.Scatter(x=[epochs.min(), epochs.max()], y=[f1_bound, f1_bound],
                                 mode="lines", name=f"per-batch F1 bound ({f1_bound:.3f})",
                                 line=dict(color="black", dash="dash")), row=2, col=1)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", row=1, col=2)
    fig.update_yaxes(title_text="F1", row=2, col=1, range=[0, 1.02])
    fig.update_yaxes(title_text="lr", row=2, col=2, type="log")
    fig.update_layout(title=title, height=620)
    return fig


def contrastive_curves(history: Sequence[Mapping], batch_size: int | None = None,
                       snapshot_epochs: Sequence[int] = (),
                       title: str = "Contrastive pretraining (SimCLR)") -> go.Figure:
    """The NT-Xent loss and the pretext task's accuracy per epoch, on two panels.

    Pretraining has no labels, so :func:`learning_curves`' accuracy and F1 panels would stay
    empty; its accuracy is the twin top-1: the share of views whose nearest other view is
    their twin (``pe_utils.contrastive_figures``).

    Args:
        history: one dict per epoch (``run_pretraining``'s output) with ``train_loss`` and
            ``train_twin_top1`` (``epoch`` optional: default 1, 2, ...); a missing key
            leaves its panel empty.
        batch_size: images per step N; draws the twin top-1 of a random guess, 1 / (2N - 1)
            (each view picks one of the other 2N - 1 views), dashed.
        snapshot_epochs: epochs whose encoder was kept (the thesis's 75 of 150), as dotted lines.

    Returns:
        A figure with two panels (loss, twin top-1 in [0, 1]).

    Raises:
        ValueError: ``batch_size`` below 1.
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    df = pd.DataFrame(list(history))
    epochs = df["epoch"] if "epoch" in df else pd.Series(range(1, len(df) + 1))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("NT-Xent loss", "twin top-1 (pretext accuracy)"))
    for col, key, name in ((1, "train_loss", "NT-Xent loss"), (2, "train_twin_top1", "twin top-1")):
        if key in df:
            fig.add_trace(go.Scatter(x=epochs, y=df[key], name=name, mode="lines+markers",
                                     line_color=COLORS["train"]), row=1, col=col)
    if batch_size is not None and len(df):
        chance = 1 / max(2 * batch_size - 1, 1)
        fig.add_trace(go.Scatter(x=[epochs.min(), epochs.max()], y=[chance, chance], mode="lines",
                                 name=f"random guess (1/{2 * batch_size - 1})",
                                 line=dict(color=COLORS["thesis"], dash="dash")), row=1, col=2)
    for e in snapshot_epochs:
        if len(df) and epochs.min() <= e <= epochs.max():   # a snapshot beyond the run was never written
            fig.add_vline(x=e, line_dash="dot", line_color=COLORS["thesis"], annotation_text=f"epoch {e} kept")
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text="share of views", row=1, col=2, range=[0, 1.02])
    fig.update_layout(title=title, height=420)
    return fig


#: one colour per method, ours and the thesis's alike (the thesis's dashed); other methods take
#: the next unused colour of ``_SPARE_COLORS`` in order of appearance
METHOD_COLORS = {"supervised": COLORS["ours"], "contrastive (75 epochs)": "#ff7f0e",
                 "contrastive (150 epochs)": "#2ca02c"}
_SPARE_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#d62728")


def method_curves(long: pd.DataFrame, x: str = "sampling_rate", x_order: Sequence | None = None,
                  y_title: str = "value", title: str | None = None) -> go.Figure:
    """A figure against the sampling rate, one line per method: ours solid with mean +- std
    across seeds, the thesis's dashed in the same colour, a baseline dotted in grey.

    Args:
        long: ``pe_utils.method_long``'s output: columns ``x``, ``method``, ``source``
            (``"ours"``, ``"thesis"``, ``"baseline"``) and ``value`` (NaN: a run lacking the
            figure, left out of that rate's mean); several rows per (method, source, rate)
            are seeds.
        x_order: the rates on the axis, in order (default: as they first appear).

    Returns:
        One trace per (method, source) with any value, named ``"<method> (ours)"``,
        ``"<method> (thesis)"`` or the baseline's name; error bars where a rate has two
        values or more.
    """
    order = [str(o) for o in (x_order if x_order is not None else dict.fromkeys(long[x].astype(str)))]
    fig = go.Figure()
    styles = {"ours": ("solid", "circle"), "thesis": ("dash", "circle-open"), "baseline": ("dot", "x")}
    spare = iter(_SPARE_COLORS * 4)
    colours = {m: METHOD_COLORS.get(m) or next(spare) for m in dict.fromkeys(long["method"])}
    for (method, source), part in long.groupby(["method", "source"], sort=False):
        g = part.assign(**{x: part[x].astype(str)}).groupby(x)["value"].agg(["mean", "std", "count"])
        g = g.reindex(order).dropna(subset=["mean"])
        if g.empty:
            continue
        dash, symbol = styles.get(source, ("solid", "circle"))
        colour = COLORS["thesis"] if source == "baseline" else colours[method]
        name = method if source == "baseline" else f"{method} ({source})"
        fig.add_trace(go.Scatter(
            x=g.index, y=g["mean"], mode="lines+markers", name=name,
            line=dict(color=colour, dash=dash), marker=dict(symbol=symbol, size=8),
            error_y=dict(type="data", array=g["std"].fillna(0), visible=bool((g["count"] > 1).any()))))
    fig.update_layout(title=title, xaxis_title="sampling rate", yaxis_title=y_title,
                      xaxis=dict(type="category", categoryorder="array", categoryarray=order))
    return fig


def positives_per_batch_figure(counts, title: str | None = None) -> go.Figure:
    """How many batches hold 0, 1, 2, ... positives (Appendix B), with the F1 bound in the title.

    Args:
        counts: positives per batch (``metrics.positives_per_batch(loader)``).
    """
    from pe_utils.evaluate.metrics import f1_batch_upper_bound

    counts = np.asarray(counts, dtype=int).reshape(-1)
    values, freq = np.unique(counts, return_counts=True)
    bound = f1_batch_upper_bound(counts) if counts.size else float("nan")
    colours = [COLORS["false"] if v == 0 else COLORS["ours"] for v in values]
    fig = go.Figure(go.Bar(x=values, y=freq, marker_color=colours, name="batches"))
    title = title or (f"Positives per batch: {int((counts > 0).sum())} of {counts.size} batches hold "
                      f"one or more, so a per-batch F1 is at most {bound:.4f}")
    # whole numbers on both axes: a batch holds 0, 1, 2 ... positives, never 0.5
    fig.update_layout(title=title, xaxis=dict(title="positive images in the batch", tick0=0, dtick=1),
                      yaxis=dict(title="batches", tick0=0, rangemode="tozero",
                                 dtick=max(1, math.ceil(int(freq.max(initial=1)) / 6))))
    return fig


def confusion_matrix_figure(metrics: Mapping, title: str | None = None) -> go.Figure:
    """2x2 confusion matrix with counts and row percentages (as Fig. 6.5).

    Args:
        metrics: a dict with ``tn, fp, fn, tp`` (``binary_metrics``' output; ``accuracy``,
            ``f1``, ``threshold`` used in the title when present).
    """
    tn, fp, fn, tp = (int(metrics[k]) for k in ("tn", "fp", "fn", "tp"))
    z = np.array([[tn, fp], [fn, tp]], dtype=float)  # rows: actual 0, 1; cols: predicted 0, 1
    rows = z.sum(axis=1, keepdims=True)
    pct = np.divide(100 * z, rows, out=np.zeros_like(z), where=rows > 0)
    names = [["TN", "FP"], ["FN", "TP"]]
    text = [[f"{names[i][j]}<br>{int(z[i, j])}<br>{pct[i, j]:.2f} %" for j in range(2)] for i in range(2)]
    fig = go.Figure(go.Heatmap(z=pct, x=["predicted 0", "predicted 1"], y=["actual 0", "actual 1"],
                               text=text, texttemplate="%{text}", colorscale="Blues", zmin=0, zmax=100,
                               colorbar=dict(title="row %")))
    if title is None:
        parts = [f"{k} {metrics[k]:.4f}" for k in ("accuracy", "f1") if k in metrics]
        if "threshold" in metrics:
            parts.append(f"threshold {metrics['threshold']:.2f}")
        title = "Confusion matrix" + (" (" + ", ".join(parts) + ")" if parts else "")
    fig.update_layout(title=title, xaxis_title="prediction", yaxis_title="label",
                      yaxis_autorange="reversed", width=520, height=440)
    return fig


def roc_figure(y_true, y_prob, youden: float | bool | None = None, title: str = "ROC curve",
               youden_label: str = "Youden threshold") -> go.Figure:
    """ROC curve with the AUC in the legend, the chance diagonal and Youden's point.

    Args:
        youden: a threshold to mark (e.g. ``youden_threshold(...)``), ``True`` to compute it
            on these labels (an oracle when they are test labels), ``None`` for no point.
        youden_label: the point's name in the legend, e.g. where its threshold was chosen.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    from pe_utils.evaluate.metrics import youden_threshold

    y = np.asarray(y_true).reshape(-1)
    p = np.asarray(y_prob, dtype=float).reshape(-1)
    fpr, tpr, _ = roc_curve(y, p)
    auc = roc_auc_score(y, p)
    fig = go.Figure([
        go.Scatter(x=fpr, y=tpr, mode="lines", name=f"ROC (AUC = {auc:.4f})", line_color=COLORS["ours"]),
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line=dict(color="gray", dash="dash")),
    ])
    if youden is not None and youden is not False:
        t = youden_threshold(y, p) if youden is True else float(youden)
        pred = p >= t
        tp_rate = (pred & (y == 1)).sum() / max((y == 1).sum(), 1)
        fp_rate = (pred & (y == 0)).sum() / max((y == 0).sum(), 1)
        fig.add_trace(go.Scatter(x=[fp_rate], y=[tp_rate], mode="markers",
                                 name=f"{youden_label} {t:.3f} (J = {tp_rate - fp_rate:.3f})",
                                 marker=dict(size=11, color=COLORS["false"], symbol="x")))
    fig.update_layout(title=title, xaxis_title="false positive rate", yaxis_title="true positive rate",
                      width=560, height=500, legend=dict(x=0.35, y=0.05))
    return fig


def probability_histogram(probs, labels=None, upper: float | None = None, lower: float | None = None,
                          bins: int = 50, title: str = "Mean TTA probability") -> go.Figure:
    """Histogram of probabilities by label, with the two triage thresholds as vertical lines."""
    p = np.asarray(probs, dtype=float).reshape(-1)
    fig = go.Figure()
    xbins = dict(start=0, end=1 + 1e-9, size=1 / bins)
    if labels is None:
        fig.add_trace(go.Histogram(x=p, xbins=xbins, name="all", marker_color=COLORS["ours"]))
    else:
        y = np.asarray(labels).reshape(-1)
        for c, name in ((0, "negative"), (1, "positive")):
            fig.add_trace(go.Histogram(x=p[y == c], xbins=xbins, name=name, opacity=0.7,
                                       marker_color=COLORS[name]))
    for t, name in ((upper, "upper"), (lower, "lower")):
        if t is not None:
            fig.add_vline(x=t, line_dash="dash", annotation_text=f"{name} {t:g}")
    edges = np.linspace(0, 1, bins + 1)
    groups = [p] if labels is None else [p[y == c] for c in (0, 1)]
    tallest = max((int(np.histogram(g, bins=edges)[0].max()) for g in groups if g.size), default=1)
    fig.update_layout(title=title, barmode="overlay", xaxis_title="probability",
                      yaxis=dict(title="images (log scale)", **log_count_axis(tallest)))
    return fig

