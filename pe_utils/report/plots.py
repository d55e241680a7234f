"""Every plotly figure the notebooks show: each function takes plain data and returns a ``go.Figure``.

Call :func:`setup_notebook` once at the top of a notebook: JupyterLab then renders figures
through plotly's mimetype renderer, and an exported HTML page carries plotly.js once,
offline. Images are embedded as PNG data URIs (``go.Image(source=...)``), a fraction of
the size of a heatmap's JSON, so galleries keep exported pages small.

Notebook 00 (preprocessing): :func:`hu_histogram`, :func:`window_panel`,
:func:`positives_per_patient`, :func:`positives_by_slice_position`, :func:`split_strip`.
Case1: :func:`learning_curves`, :func:`positives_per_batch_figure`,
:func:`confusion_matrix_figure`, :func:`roc_figure`, :func:`probability_histogram`,
:func:`triage_bars`, :func:`workload_table`, :func:`image_gallery`, :func:`tta_views_figure`.
Summary: :func:`rate_curve`, :func:`workload_comparison`.
"""
from __future__ import annotations

import base64
import io
import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

#: colours used throughout: train/val/test, true/false/uncertain, ours/thesis
COLORS = {
    "train": "#1f77b4", "val": "#ff7f0e", "test": "#2ca02c",
    "true": "#2ca02c", "false": "#d62728", "uncertain": "#ffbf00",
    "positive": "#d62728", "negative": "#7f7f7f", "ours": "#1f77b4", "thesis": "#7f7f7f",
}
#: HU range shown "without window": the 12-bit CT range (thesis Fig. 4.2)
FULL_HU_RANGE = (-1024.0, 3071.0)


def setup_notebook() -> None:
    """Render figures with ``plotly_mimetype+notebook``: live in JupyterLab, offline in HTML."""
    pio.renderers.default = "plotly_mimetype+notebook"


# ------------------------------------------------------------------------------------ images


def _to_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def to_uint8_image(img) -> np.ndarray:
    """An image as uint8 ``(H, W)`` or ``(H, W, 3)``.

    Accepts ``(H, W)``, ``(1, H, W)``, ``(3, H, W)``, ``(H, W, 3)`` arrays or tensors, uint8 or
    float in [0, 1] (clipped).
    """
    a = _to_numpy(img)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = np.moveaxis(a, 0, -1)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3):
        raise ValueError(f"expected an image (H, W) or with 1/3 channels, got shape {a.shape}")
    if a.dtype != np.uint8:
        a = np.round(np.clip(a.astype(np.float32), 0.0, 1.0) * 255).astype(np.uint8)
    return a


def png_bytes(img, max_side: int | None = None) -> bytes:
    """PNG encoding of :func:`to_uint8_image` ``(img)``, shrunk so no side exceeds ``max_side``."""
    from PIL import Image

    pil = Image.fromarray(to_uint8_image(img))
    if max_side is not None and max(pil.size) > max_side:
        pil.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def png_uri(img, max_side: int | None = None) -> str:
    """``data:image/png;base64,...`` for ``go.Image(source=...)``."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(img, max_side)).decode("ascii")


def _hide_axes(fig: go.Figure) -> None:
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)


def image_gallery(images, captions: Sequence[str] | None = None, cols: int = 6,
                  title: str | None = None, max_side: int = 128, tile_px: int = 150) -> go.Figure:
    """A grid of images with a caption above each (e.g. the uncertain slices).

    Args:
        images: sequence (or array ``(N, H, W)`` / ``(N, C, H, W)``) of images, see
            :func:`to_uint8_image`.
        captions: one per image (``None``: the position).
        cols: images per row.
        max_side: images are shrunk to at most this side before embedding.
        tile_px: height and width of each tile on the page.

    Returns:
        Figure with one ``go.Image`` trace per image.
    """
    images = list(images)
    n = len(images)
    captions = [str(i) for i in range(n)] if captions is None else [str(c) for c in captions]
    if len(captions) != n:
        raise ValueError(f"{n} images but {len(captions)} captions")
    if cols < 1:
        raise ValueError("cols must be >= 1")
    cols = max(1, min(cols, n)) if n else 1
    rows = max(1, math.ceil(n / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=captions or None,
                        horizontal_spacing=0.01, vertical_spacing=0.3 / rows)
    for i, img in enumerate(images):
        fig.add_trace(go.Image(source=png_uri(img, max_side), hoverinfo="skip"),
                      row=i // cols + 1, col=i % cols + 1)
    _hide_axes(fig)
    fig.update_annotations(font_size=11)
    fig.update_layout(title=title, height=tile_px * rows + 80, width=max(400, tile_px * cols + 40),
                      margin=dict(l=10, r=10, t=70 if title else 40, b=10))
    return fig


def tta_views_figure(views, names: Sequence[str] | None = None, title: str = "Test-time views") -> go.Figure:
    """The test-time views of one image side by side (thesis 4.1.1: five views).

    Args:
        views: sequence of V images ``(C, H, W)`` or ``(H, W)`` (e.g. ``[v[0] for v in
            tta_views(x)]``).
        names: one per view (e.g. ``pe_utils.data.transforms.TTA_VIEW_NAMES``).
    """
    views = list(views)
    return image_gallery(views, names, cols=len(views) or 1, title=title, max_side=256, tile_px=180)


# ---------------------------------------------------------------------------- preprocessing


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
    for a, name in zip(arrays, names, strict=True):
        v = np.clip(_to_numpy(a).ravel().astype(np.float32), *hu_range)
        counts, _ = np.histogram(v, bins=edges)
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
    fig.update_layout(title=title, barmode="overlay", xaxis_title="HU", yaxis_title="pixels",
                      yaxis_type="log")
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


def split_strip(index_of_one_series: pd.DataFrame, split_labels: Sequence[str],
                title: str = "Case1 split of one series") -> go.Figure:
    """One series as a strip of slices coloured train/val/test, positives marked above.

    Args:
        index_of_one_series: the cache index rows of one series (``slice_index``, label).
        split_labels: ``"train"``/``"val"``/``"test"`` per row (e.g. the rows of
            ``case1_split``'s output for that series).
    """
    df = index_of_one_series.assign(_split=np.asarray(split_labels)).sort_values("slice_index")
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


# ------------------------------------------------------------------------------------ Case1


def learning_curves(history: Sequence[Mapping], f1_bound: float | None = None,
                    title: str = "Learning curves") -> go.Figure:
    """Loss, accuracy, F1 (of the epoch's confusion matrix and per-batch mean) and learning rate.

    Args:
        history: one dict per epoch (``fit``'s output) with any of ``train_loss, val_loss,
            train_accuracy, val_accuracy, train_f1, val_f1, train_f1_batch_mean,
            val_f1_batch_mean, lr``; missing keys are skipped.
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
            if key not in df:
                continue
            split = "val" if key.startswith("val") else "train"
            dash = "dot" if key.endswith("batch_mean") else "solid"
            fig.add_trace(go.Scatter(x=epochs, y=df[key], name=name, mode="lines+markers",
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
    fig.update_layout(title=title, xaxis_title="positive images in the batch", yaxis_title="batches",
                      xaxis=dict(dtick=1))
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


def roc_figure(y_true, y_prob, youden: float | bool | None = None, title: str = "ROC curve") -> go.Figure:
    """ROC curve with the AUC in the legend, the chance diagonal and Youden's point.

    Args:
        youden: a threshold to mark (e.g. ``youden_threshold(...)``), ``True`` to compute it,
            ``None`` for no point.
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
                                 name=f"Youden threshold {t:.3f} (J = {tp_rate - fp_rate:.3f})",
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
    fig.update_layout(title=title, barmode="overlay", xaxis_title="probability", yaxis_title="images",
                      yaxis_type="log")
    return fig


def triage_bars(table: pd.DataFrame, percent: bool = True,
                title: str = "True, false and uncertain predictions per threshold pair") -> go.Figure:
    """Stacked bars of true/false/uncertain predictions per threshold pair (Figs 6.7, 6.8).

    Args:
        table: ``uncertainty.triage_table`` output.
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
    if isinstance(v, (float, np.floating)):
        return "" if math.isnan(v) else f"{v:.2f}"
    if isinstance(v, (tuple, list)) and len(v) == 2:
        return f"{v[0]:g}/{v[1]:g}"
    return "" if v is None else str(v)


def workload_table(rows, title: str = "Annotation workload (as Table 6.2)", transpose: bool = True
                   ) -> go.Figure:
    """A ``go.Table`` of workload rows (floats to 2 decimals, pairs as ``upper/lower``).

    Args:
        rows: DataFrame or list of dicts, one per test (e.g. test_name, pct_training_stage,
            pct_uncertain, workload_pct, thresholds).
        transpose: one column per test and one row per figure, as Table 6.2 lays it out; the
            first column of ``rows`` heads the columns.
    """
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    cells = df.map(_fmt) if hasattr(df, "map") else df.applymap(_fmt)
    if transpose and len(df.columns) > 1:
        head = [str(df.columns[0])] + list(cells.iloc[:, 0])
        values = [list(df.columns[1:])] + [list(cells.iloc[i, 1:]) for i in range(len(df))]
    else:
        head = [str(c) for c in df.columns]
        values = [list(cells[c]) for c in df.columns]
    fig = go.Figure(go.Table(header=dict(values=head, fill_color="#dde6f0", align="center"),
                             cells=dict(values=values, align=["left"] + ["center"] * (len(values) - 1))))
    fig.update_layout(title=title, height=120 + 30 * max(len(values[0]), 1), margin=dict(l=10, r=10, t=50, b=10))
    return fig


# ---------------------------------------------------------------------------------- summary


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
