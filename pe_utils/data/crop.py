"""A fixed crop of every slice before the network's resize: more of the input's pixels for the chest.

The cache holds whole slices (128 x 128 in the thesis, 4.1.1); a slice is mostly the chest, but
its border is air, the scanner table and the reconstruction circle's edge. A small network input
(the demo's 64 px) then spends a quarter of its pixels on them, and a clot in a lobar artery
shrinks to a pixel. ``crop`` cuts one box, the same for every image, out of the slice before
it is resized to the network's side, so the same compute sees the lungs at a finer scale.

A crop is ``(top, left, height, width)``, fractions of the slice's height and width
(``(0.125, 0.125, 0.75, 0.75)``: the central 75 % per side, 96 of 128 pixels); ``None`` keeps
the whole slice, the thesis's input. The box is fixed, not found per image: it is deterministic,
needs no body detection that could fail on real data, and is applied identically wherever a
slice reaches a network: the training and evaluation batches (including the TTA views, made
from the cropped batch) of :class:`pe_utils.data.slices.DeviceLoader`, the galleries of
:class:`pe_utils.data.datasets.CacheDataset`, and Case3's pretraining and fine-tuning loaders.
A box that cuts off part of the lungs would hide clots from the network: check it on the data.
On the demo phantom (generator 2.2) every clot pixel of the cache's masks lies in rows 35-68 and
columns 33-91 of 128 (measured 2026-12-03; 2.1's lobar clots reached rows 35-78, columns 28-106):
the demo's box (:data:`pe_utils.profiles.DEMO_CROP`, rows 17-96 and columns 27-106, 80 x 80
pixels) holds them all; the phantom's smallest peripheral vessels, which hold no demo clot,
reach 7 % from the edge.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["CropBox", "check_crop", "crop_pixels", "apply_crop"]

CropBox = tuple[float, float, float, float]


def check_crop(crop: Sequence[float] | None) -> CropBox | None:
    """Validate a crop box and return it as a tuple of floats (``None`` stays ``None``).

    Raises:
        ValueError: not four numbers, a side not in (0, 1], or a box reaching outside the
            slice (``top + height > 1`` or ``left + width > 1``).
    """
    if crop is None:
        return None
    try:
        box = tuple(float(v) for v in crop)
    except (TypeError, ValueError):
        raise ValueError(f"crop must be (top, left, height, width) fractions or None, got {crop!r}") from None
    if len(box) != 4:
        raise ValueError(f"crop must be (top, left, height, width) fractions, got {crop!r}")
    top, left, height, width = box
    if not (0 < height <= 1 and 0 < width <= 1 and top >= 0 and left >= 0):
        raise ValueError(f"crop sides must lie in (0, 1] and its corner at >= 0, got {crop!r}")
    if top + height > 1 + 1e-9 or left + width > 1 + 1e-9:
        raise ValueError(f"crop {crop!r} reaches outside the slice (top + height and left + width must be <= 1)")
    return box


def crop_pixels(crop: Sequence[float] | None, h: int, w: int) -> tuple[int, int, int, int]:
    """The box in whole pixels of an ``h`` x ``w`` slice: ``(top, left, height, width)``.

    Each value is rounded to the nearest pixel (half up), height and width at least 1 and
    the box kept inside the slice; ``None`` gives the whole slice ``(0, 0, h, w)``.
    """
    box = check_crop(crop)
    if box is None:
        return 0, 0, int(h), int(w)
    top, left = int(box[0] * h + 0.5), int(box[1] * w + 0.5)
    height = min(max(1, int(box[2] * h + 0.5)), h - min(top, h - 1))
    width = min(max(1, int(box[3] * w + 0.5)), w - min(left, w - 1))
    return min(top, h - 1), min(left, w - 1), height, width


def apply_crop(x: torch.Tensor, crop: Sequence[float] | None) -> torch.Tensor:
    """``x`` (..., H, W) cut to the crop box (a view: no copy); ``None`` returns ``x`` itself."""
    if crop is None:
        return x
    top, left, height, width = crop_pixels(crop, x.shape[-2], x.shape[-1])
    return x[..., top:top + height, left:left + width]
