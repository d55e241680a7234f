"""Clot masks in the cache: the phantom's masks at the cache's resolution, beside the images.

A phantom root holds the clot mask of every slice (:mod:`pe_utils.phantom.masks`:
``masks/masks.json`` and one ``.npz`` per series). Preprocessing then writes ``masks.npy``
beside ``images.npy``: uint8 (N, size, size), row i the mask of image i (1 = clot at that
pixel), made in the same chunks, resumably, as the images (:mod:`pe_utils.data.chunks`).
Real RSNA data has no masks: no ``masks.npy`` is written and ``load_cache(dir).masks`` is
None; nothing in training reads masks.

Resizing keeps every clot: the mask is padded and resized like the image (area average for
whole factors, else PIL's antialiased bilinear, whose weights are all positive on a pixel's
footprint) and a cache pixel is clot when any clot pixel contributes to it (> 0), so a slice
positive at 512 px stays positive at 64 or 128 px (a small clot grows to a whole cache
pixel rather than vanishing).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import sha256_file
from .resize import resize

__all__ = ["mask_source", "MaskReader", "resize_mask"]

MASKS_DIR, MARKER = "masks", "masks.json"  # as pe_utils.phantom.masks writes them


def mask_source(root: str | Path) -> str | None:
    """The sha256 of ``<root>/masks/masks.json`` when the root holds clot masks, else None."""
    marker = Path(root) / MASKS_DIR / MARKER
    return sha256_file(marker) if marker.is_file() else None


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A clot mask (H, W) at ``size`` x ``size``: uint8, 1 where any clot pixel falls.

    Equal to ``resize(mask, size, fill=0) > 0`` (:func:`pe_utils.data.resize.resize`); an
    empty mask and a square one shrunk by a whole factor (any-pooling of the blocks) take a
    shortcut.
    """
    mask = np.asarray(mask)
    h, w = mask.shape
    if not mask.any():
        return np.zeros((size, size), np.uint8)
    if h == w and h % size == 0:
        k = h // size
        return mask.reshape(size, k, size, k).any((1, 3)).astype(np.uint8)
    return (resize(mask.astype(np.float32), size, 0.0) > 0).astype(np.uint8)


class MaskReader:
    """Reads the masks of one root, one series file at a time (the last few kept in memory).

    ``get(study, series, sop, shape, size)`` -> ``(mask at the cache's size, "")``, or
    ``(None, reason)`` when the slice has no usable mask (no file for its series, not
    listed, another grid).
    """

    def __init__(self, root: str | Path, keep: int = 4):
        self.root, self.keep = Path(root), keep
        self._series: dict[tuple[str, str], object] = {}

    def _load(self, study: str, series: str):
        from ..phantom.masks import SeriesMasks, mask_path

        key = (study, series)
        if key not in self._series:
            if len(self._series) >= self.keep:
                self._series.pop(next(iter(self._series)))
            path = mask_path(self.root, study, series)
            try:
                self._series[key] = SeriesMasks(path) if path.is_file() else "no mask file"
            except Exception:  # a corrupt zip, a foreign file: that series has no mask
                self._series[key] = "unreadable mask file"
        return self._series[key]

    def get(self, study: str, series: str, sop: str, shape: tuple[int, int], size: int
            ) -> tuple[np.ndarray | None, str]:
        """The mask of a slice of ``shape`` (Rows, Columns) at the cache's ``size``
        (:func:`resize_mask`): ``(uint8 (size, size), "")``, or ``(None, reason)``."""
        masks = self._load(study, series)
        if isinstance(masks, str):
            return None, masks
        clot = masks.has_clot(sop)
        if clot is None:
            return None, "slice not in its series' mask file"
        if masks.shape != tuple(shape):
            return None, f"mask {masks.shape} for a {tuple(shape)} slice"
        if not clot:  # most slices: nothing to unpack or resize
            return np.zeros((size, size), np.uint8), ""
        return resize_mask(masks.get(sop), size), ""


def mask_settings(index, source_sha256: str, size: int, work: Path) -> dict:
    """The ``masks`` entry of ``settings.json``: what ``masks.npy`` holds, which slices lack
    a mask (their rows are all zero) with the reasons counted, and how masks and labels agree.

    Args:
        index: the cache's index (its ``slot`` column points into ``work``).
        work: the run's mask work array (``progress/masks.npy``), read in blocks.
    """
    missing = index["mask_missing"].dropna() if "mask_missing" in index else index.iloc[:0, 0]
    masks, slots = np.load(work, mmap_mode="r"), index["slot"].to_numpy()
    nonempty = np.concatenate([masks[slots[i:i + 4096]].any((1, 2))
                               for i in range(0, len(slots), 4096)] or [np.zeros(0, bool)])
    label = index["pe_present_on_image"].to_numpy()
    del masks
    return {"file": "masks.npy", "shape": [len(index), size, size], "dtype": "uint8",
            "meaning": "1 = clot at that pixel (a slice is positive exactly when its mask is "
                       "non-empty); pe_utils.phantom.masks",
            "resize": "padded and resized like the image (area average or antialiased "
                      "bilinear), then > 0: a cache pixel is clot when any clot pixel falls in it",
            "source_sha256": source_sha256, "missing": int(len(missing)),
            "missing_reasons": {str(k): int(v) for k, v in missing.value_counts().items()},
            "non_empty": int(nonempty.sum()),
            "positive_with_empty_mask": int(((label == 1) & ~nonempty).sum()),
            "negative_with_clot": int(((label == 0) & nonempty).sum())}
