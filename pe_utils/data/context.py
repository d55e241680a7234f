"""2.5D input: a slice and its ``k`` neighbours of the same series, stacked as channels.

The thesis's networks see one slice (``k = 0``, the default everywhere). The RSNA PE
Kaggle winners read neighbouring slices too; ``context = k`` gives each slice the ``2k + 1``
slices at positions ``-k .. +k`` of its series, the slice itself in the middle.

- :func:`context_rows`: the table ``(N, 2k + 1)`` of cache rows, built once from the cache's
  index (:class:`pe_utils.data.slices.CacheSlices` reads its images through it);
- :func:`center_channel`: the slice's own channel(s) of such an input, for displays
  (galleries, Grad-CAM overlays), so a figure never shows a neighbour.

Positions are ranks along the series in ``slice_index`` order (the cache's order: by the
position on the slice normal, :mod:`pe_utils.data.cache`), so a slice missing from the cache
(``skipped.csv``) is stepped over, not repeated. At a series end the edge slice is repeated;
a neighbour is never a row of another series. Only images are gathered: labels stay the
slice's own, so the input never carries a neighbour's label.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["context_rows", "center_channel", "CONTEXT_COLUMNS"]

#: the index columns :func:`context_rows` reads
CONTEXT_COLUMNS = ("SeriesInstanceUID", "slice_index")


def context_rows(index: pd.DataFrame, k: int) -> np.ndarray:
    """For each cache row, the rows of its series at slice positions ``-k .. +k``.

    Args:
        index: the cache's ``index.csv`` (row i = image i), with ``SeriesInstanceUID`` and
            ``slice_index``; rows in any order (series may be interleaved).
        k: neighbours on each side, ``>= 0``; ``0`` is the single slice (the thesis).

    Returns:
        int64 ``(N, 2k + 1)``: row ``i``'s column ``k + o`` is the row ``o`` positions along
        ``i``'s series (``slice_index`` order), clipped to the series' first and last slices;
        column ``k`` is ``i`` itself. ``k = 0`` gives ``arange(N)[:, None]``.

    Raises:
        ValueError: ``k`` not a whole number ``>= 0``; a column of :data:`CONTEXT_COLUMNS`
            missing or with missing values; two rows at the same ``(SeriesInstanceUID,
            slice_index)`` (named).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"context k must be a whole number >= 0, got {k!r}")
    k = int(k)
    missing = [c for c in CONTEXT_COLUMNS if c not in index.columns]
    if missing:
        raise ValueError(f"context_rows needs the index column(s) {', '.join(missing)} "
                         f"(it has {', '.join(map(str, index.columns)) or 'none'})")
    empty = [c for c in CONTEXT_COLUMNS if index[c].isna().any()]
    if empty:
        raise ValueError(f"context_rows: missing values in the index column(s) {', '.join(empty)}")
    dup = index.duplicated(list(CONTEXT_COLUMNS), keep=False).to_numpy()
    if dup.any():
        pairs = index.loc[dup, list(CONTEXT_COLUMNS)].drop_duplicates().head(5)
        named = "; ".join(f"{s} slice_index {i}" for s, i in pairs.itertuples(index=False))
        raise ValueError(f"context_rows: {int(dup.sum())} rows share a (SeriesInstanceUID, slice_index), "
                         f"e.g. {named}: a series' slice order is ambiguous")
    n = len(index)
    series = pd.factorize(index["SeriesInstanceUID"].to_numpy())[0]
    order = np.lexsort((index["slice_index"].to_numpy(), series))  # by series, then slice_index
    s = series[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if n else np.zeros(0, dtype=np.int64)
    ends = np.r_[starts[1:], n] - 1                                  # last sorted position of each run
    run = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1 if n else np.zeros(0, dtype=np.int64)
    pos = np.arange(n)
    offsets = np.arange(-k, k + 1)
    neighbour = np.clip(pos[:, None] + offsets[None, :], starts[run][:, None], ends[run][:, None])
    out = np.empty((n, 2 * k + 1), dtype=np.int64)
    out[order] = order[neighbour]
    return out


def center_channel(x, k: int, channels: int | None = None):
    """The slice's own channel(s) of a context input, for displays.

    Args:
        x: ``((B,) (2k + 1) * C, H, W)`` tensor or array, as
            :class:`pe_utils.data.slices.CacheSlices` stacks it (neighbour-major: the ``C``
            channels of neighbour ``j`` are ``j * C .. (j + 1) * C - 1``).
        k: the context it was built with (``0``: returned unchanged).
        channels: ``C``, the cache's channels per slice; ``None``: worked out from ``x``.

    Returns:
        ``((B,) C, H, W)``: channels ``k * C .. (k + 1) * C - 1`` (a view).

    Raises:
        ValueError: ``k < 0``, ``x`` with fewer than 3 dimensions, or a channel count not a
            multiple of ``2k + 1`` (or not ``(2k + 1) * channels``).
    """
    if int(k) < 0:
        raise ValueError(f"context k must be >= 0, got {k}")
    if x.ndim < 3:
        raise ValueError(f"expected ((B,) channels, H, W), got shape {tuple(x.shape)}")
    k, width, total = int(k), 2 * int(k) + 1, int(x.shape[-3])
    c = total // width if channels is None else int(channels)
    if c * width != total or c < 1:
        raise ValueError(f"{total} channels are not {width} slices of "
                         f"{'equal channels' if channels is None else f'{channels} channel(s)'} (k={k})")
    return x[..., k * c:(k + 1) * c, :, :]
