"""Images in figures: arrays or tensors to PNG, galleries, the test-time views of one image.

Images are embedded as PNG data URIs (``go.Image(source=...)``), a fraction of the size of
a heatmap's JSON, so galleries keep exported pages small.
"""
from __future__ import annotations

import base64
import io
import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["to_uint8_image", "png_bytes", "png_uri", "image_gallery", "tta_views_figure"]


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
                  title: str | None = None, max_side: int = 128, tile_px: int = 150,
                  empty: str = "No slice to show: the selection is empty.") -> go.Figure:
    """A grid of images with a caption above each (e.g. the uncertain slices).

    Args:
        images: sequence (or array ``(N, H, W)`` / ``(N, C, H, W)``) of images, see
            :func:`to_uint8_image`.
        captions: one per image (``None``: the position).
        cols: images per row.
        max_side: images are shrunk to at most this side before embedding.
        tile_px: height and width of each tile on the page.
        empty: the sentence shown, in place of an empty grid under a heading, when there is
            no image (e.g. nothing is uncertain).

    Returns:
        Figure with one ``go.Image`` trace per image (none, and the ``empty`` sentence, for
        no image).
    """
    images = list(images)
    n = len(images)
    captions = [str(i) for i in range(n)] if captions is None else [str(c) for c in captions]
    if len(captions) != n:
        raise ValueError(f"{n} images but {len(captions)} captions")
    if cols < 1:
        raise ValueError("cols must be >= 1")
    if n == 0:
        fig = go.Figure()
        fig.add_annotation(text=empty, x=0, y=0.5, xref="paper", yref="paper", xanchor="left",
                           showarrow=False, font=dict(size=14))
        _hide_axes(fig)
        fig.update_layout(title=title, height=110 if title else 70, plot_bgcolor="rgba(0,0,0,0)",
                          margin=dict(l=10, r=10, t=50 if title else 10, b=10))
        return fig
    cols = max(1, min(cols, n))
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
