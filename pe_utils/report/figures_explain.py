"""Figures of notebook 06: representation maps (Figs 6.11-6.12), their measures, Grad-CAM grids.

- :func:`embedding_figure`: one checkpoint, rows = layers, columns = t-SNE | UMAP, points
  coloured by source slice, each panel titled by layer, method and checkpoint with its measures;
- :func:`embedding_scores_figure`: silhouette, k-NN accuracy and linear-probe AUC per layer
  and checkpoint, as grouped bars with their chance levels;
- :func:`gradcam_grid`: rows = slices, columns = models (the thesis's Figs 6.20-6.22, and our
  Case1 against Case3); the slice (PNG), the Grad-CAM map over it (a semi-transparent heatmap,
  values rounded to keep pages small) and the true clot mask's outline (a contour);
- :func:`localisation_summary`: the localisation rows of notebook 06's ``metrics.json`` beside
  each model's workload (notebook 07).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .images import png_uri

__all__ = ["embedding_figure", "embedding_scores_figure", "gradcam_grid", "localisation_summary"]

LAYER_NAMES = {"encoder": "encoder output", "head1": "head layer 1", "head2": "head layer 2"}
METHOD_NAMES = {"tsne": "t-SNE", "umap": "UMAP"}
#: one colour per source slice (A, B, C, D, ...)
SLICE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def embedding_figure(coords: pd.DataFrame, scores: pd.DataFrame, checkpoint: str,
                     slices: pd.DataFrame | None = None) -> go.Figure:
    """The 2-D maps of one checkpoint: a row per layer, t-SNE | UMAP side by side.

    Args:
        coords: :func:`pe_utils.experiments.representations.embedding_study`'s coordinates.
        scores: its measures (the panel titles carry silhouette and k-NN accuracy).
        checkpoint: which checkpoint ("before pretraining", "after 150 epochs", ...).
        slices: :func:`pe_utils.experiments.representations.probe_slices`'s table (legend names).
    """
    part = coords[coords.checkpoint == checkpoint]
    layers = list(dict.fromkeys(part.layer))
    methods = list(dict.fromkeys(part.method))
    titles = []
    for layer in layers:
        s = scores[(scores.checkpoint == checkpoint) & (scores.layer == layer)].iloc[0]
        titles += [f"{LAYER_NAMES.get(layer, layer)} · {METHOD_NAMES.get(m, m)} · {checkpoint}<br>"
                   f"<sup>silhouette {s.silhouette:.2f}, k-NN accuracy {s.knn_accuracy:.2f} "
                   f"(chance {s.chance:.2f})</sup>" for m in methods]
    fig = make_subplots(rows=max(1, len(layers)), cols=max(1, len(methods)), subplot_titles=titles,
                        vertical_spacing=0.12, horizontal_spacing=0.06)
    for r, layer in enumerate(layers, start=1):
        for c, method in enumerate(methods, start=1):
            panel = part[(part.layer == layer) & (part.method == method)]
            for g in sorted(panel.group.unique()):
                pts = panel[panel.group == g]
                name = f"slice {chr(65 + int(g))}"
                if slices is not None:
                    row = slices.iloc[int(g)]
                    name = f"{row['slice']}: {row['source']}, {row['label']}"
                fig.add_trace(go.Scatter(x=pts.x.round(3), y=pts.y.round(3), mode="markers", name=name,
                                         legendgroup=name, showlegend=(r == 1 and c == 1),
                                         marker=dict(color=SLICE_COLORS[int(g) % len(SLICE_COLORS)], size=6)),
                              row=r, col=c)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(title=f"Views of the four slices, {checkpoint}: each colour is one slice's 20 views",
                      height=300 * max(1, len(layers)) + 80, legend=dict(orientation="h", y=-0.03))
    return fig


def embedding_scores_figure(scores: pd.DataFrame) -> go.Figure:
    """Grouped bars per layer, one colour per checkpoint: silhouette, k-NN accuracy, probe AUC.

    Args:
        scores: one row per (checkpoint, layer) with ``silhouette``, ``knn_accuracy``,
            ``chance`` and (optional) ``probe_auc``.
    """
    panels = [("silhouette", "silhouette (full space)", None), ("knn_accuracy", "k-NN accuracy of the source", "chance"),
              ("probe_auc", "linear-probe test AUC", 0.5)]
    panels = [p for p in panels if p[0] in scores and scores[p[0]].notna().any()]
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[p[1] for p in panels])
    checkpoints = list(dict.fromkeys(scores.checkpoint))
    blues = ["#9ecae1", "#4292c6", "#1f77b4", "#08306b"]  # grey before pretraining, darker with more epochs
    colours = ["#7f7f7f"] + blues[-(len(checkpoints) - 1):] if 1 < len(checkpoints) <= 5 else None
    for c, (key, _, chance) in enumerate(panels, start=1):
        for i, ck in enumerate(checkpoints):
            part = scores[scores.checkpoint == ck]
            fig.add_trace(go.Bar(x=[LAYER_NAMES.get(v, v) for v in part.layer], y=part[key], name=ck, legendgroup=ck,
                                 showlegend=c == 1, marker_color=colours[i] if colours else None,
                                 text=[f"{v:.2f}" if pd.notna(v) else "n/a" for v in part[key]], textposition="outside"),
                          row=1, col=c)
        if chance is not None:
            level = float(scores[chance].iloc[0]) if isinstance(chance, str) else chance
            fig.add_hline(y=level, line_dash="dot", line_color="#444", row=1, col=c,
                          annotation_text="chance", annotation_position="bottom right")
    fig.update_yaxes(range=[0, 1.1])
    if panels and panels[0][0] == "silhouette":  # a silhouette may be negative (views nearer other slices')
        fig.update_yaxes(range=[min(-0.2, float(scores.silhouette.min()) - 0.05), 1.1], row=1, col=1)
    fig.update_layout(barmode="group", height=420, title="Clustering of the views and the linear probe, per layer "
                      "and checkpoint", legend=dict(orientation="h", y=-0.15))
    return fig


def gradcam_grid(images: Sequence[np.ndarray], maps: Sequence[np.ndarray], masks: Sequence[np.ndarray] | None,
                 row_titles: Sequence[str], col_titles: Sequence[str], captions: Sequence[Sequence[str]] | None = None,
                 title: str = "Grad-CAM on the last convolutional layer", tile_px: int = 190) -> go.Figure:
    """Rows = slices, columns = models: each cell the slice, its Grad-CAM map and the clot outline.

    Args:
        images: per model ``(S, H, W)`` float slices in [0, 1] (as the network saw them).
        maps: per model ``(S, H, W)`` Grad-CAM maps in [0, 1].
        masks: per model ``(S, H, W)`` bool clot masks (None: no outline, e.g. real data).
        row_titles: one per slice; col_titles: one per model.
        captions: per model, per slice (e.g. the predicted probability), shown under each cell title.
        title: the figure's; :func:`pe_utils.gradcam_comparison`'s panels carry theirs ("Fig 6.20: ...",
            "Figs 6.21-6.22: ...", "Beyond the thesis: ...").
    """
    n_rows, n_cols = len(row_titles), len(col_titles)
    heads = [str(t).replace(", ", "<br>", 1) for t in col_titles]  # "Case1 (supervised)<br>9/10 (Test90)"
    titles = [(f"<b>{heads[c]}</b><br>" if r == 0 else "") + (captions[c][r] if captions else "")
              for r in range(n_rows) for c in range(n_cols)]
    fig = make_subplots(rows=max(1, n_rows), cols=max(1, n_cols), subplot_titles=titles, row_titles=list(row_titles),
                        horizontal_spacing=0.01, vertical_spacing=0.06)
    for c in range(n_cols):
        for r in range(n_rows):
            img, cam = np.asarray(images[c][r]), np.asarray(maps[c][r])
            fig.add_trace(go.Image(source=png_uri(img), hoverinfo="skip"), row=r + 1, col=c + 1)
            # percent as uint8: a typed array of one byte per pixel keeps the page small
            fig.add_trace(go.Heatmap(z=np.rint(np.clip(cam, 0, 1) * 100).astype(np.uint8), colorscale="Jet", zmin=0,
                                     zmax=100, opacity=0.45, showscale=(r == 0 and c == 0),
                                     colorbar=dict(title="Grad-CAM %", len=0.5),
                                     hovertemplate="Grad-CAM %{z} %<extra></extra>"), row=r + 1, col=c + 1)
            if masks is not None and np.asarray(masks[c][r]).any():
                fig.add_trace(go.Contour(z=np.asarray(masks[c][r]).astype(np.uint8), contours=dict(
                    start=0.5, end=0.5, size=1, coloring="lines"), line=dict(width=2),
                    colorscale=[[0, "#00ff00"], [1, "#00ff00"]],  # "lines" colours by the scale, not line.color
                    showscale=False, hoverinfo="skip", name="clot"), row=r + 1, col=c + 1)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed")
    for i in range(1, n_rows * n_cols + 1):  # square pixels: each panel's y axis follows its own x axis
        fig.layout[f"yaxis{i if i > 1 else ''}"].scaleanchor = f"x{i if i > 1 else ''}"
    fig.update_annotations(font_size=12)
    fig.update_layout(title=title + (" (green: the true clot)" if masks is not None else ""),
                      height=tile_px * max(1, n_rows) + 200, width=max(480, tile_px * n_cols + 160),
                      margin=dict(t=150))
    return fig


def localisation_summary(reports_dir: str | Path):
    """Notebook 06's localisation rows under ``reports_dir`` beside each model's AUC and workload.

    Returns:
        A :class:`~pe_utils.report.tables.Table` drawn whole (one row per model of the newest 06
        run; a missing score in words), or a ``Markdown`` sentence saying why there is none;
        either shows with ``display``.
    """
    from IPython.display import Markdown

    from .schema import read_metrics
    from .tables import display_table

    runs = read_metrics(reports_dir, notebook="06_explain") if Path(reports_dir).is_dir() else pd.DataFrame()
    if not len(runs):
        return Markdown(f"No notebook 06 run under `{reports_dir}`: run `06_explain` (the batch's `--cases 06`).")
    last = runs.sort_values("path").iloc[-1]
    rows = last.get("localisation")
    if not isinstance(rows, list) or not rows:
        return Markdown("Notebook 06 scored no Grad-CAM map: " + str(last.get("localisation_note") or "no model."))
    table = pd.DataFrame(rows)
    names = {"model": "model", "energy_mean": "energy on the clot", "energy_chance": "chance level (flat map)",
             "energy_perfect": "ceiling (perfect map)", "pointing_rate": "pointing rate",
             "pointing_perfect": "pointing ceiling (perfect map)", "cam_grid": "Grad-CAM grid",
             "n": "positive test slices", "auc": "AUC",
             "oracle_workload_pct": "workload % (oracle)", "practical_workload_pct": "workload % (validation)"}
    table = table[[k for k in names if k in table]].round(3).astype(object)
    # Cases 2/4 classify without a triage, so they have no workload; a missing score says so in words
    for key in ("oracle_workload_pct", "practical_workload_pct"):
        if key in table:
            table[key] = table[key].where(table[key].notna(), "no triage (Cases 2/4)")
    return display_table(table.rename(columns=names), missing="not measured", index=False)
