"""Image transforms: the training augmentation, the evaluation preset and the TTA views.

Every transform here works on float tensors ``(C, H, W)`` (one image) or ``(B, C, H, W)``
(a batch) with values in [0, 1], as :class:`pe_utils.data.CacheDataset` produces them.

- :func:`train_transform` / :func:`eval_transform`: the named pair used by Case1/Case2
  (THESIS 4.1.1: rotation 10 degrees, shift 10 %, zoom 20 %).
- :func:`tta_views`: the five fixed test-time views of THESIS 4.1.1 (original, 10-degree
  rotation, vertical shift, horizontal shift, 75 % central crop resized back).

Randomness: the random transforms draw from torch's global CPU generator;
:class:`pe_utils.data.CacheDataset` seeds it per sample from ``(seed, epoch, position)`` so that
augmentation is reproducible and independent of the number of DataLoader workers.
(Case3's contrastive two-view transforms will live here too.)
"""
from __future__ import annotations

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

#: names of the TTA views, in the order :func:`tta_views` returns them (THESIS 4.1.1)
TTA_VIEW_NAMES: tuple[str, ...] = ("original", "rotate10", "shift_v10px", "shift_h10px", "crop75")

#: 10 px at 128 px (THESIS 4.1.1) as a fraction of the image side: 10 / 128 = 7.8 %
TTA_SHIFT_FRACTION = 0.078
#: rotation of the TTA "rotate10" view, degrees (counter-clockwise)
TTA_ROTATION = 10.0
#: side of the central crop of the "crop75" view, as a fraction of the image side
TTA_CROP_FRACTION = 0.75


def train_transform(rotation: float = 10, shift: float = 0.1, zoom: float = 0.2,
                    fill: float = 0.0) -> v2.Transform:
    """Training augmentation of THESIS 4.1.1 (Keras ``ImageDataGenerator`` ranges).

    Args:
        rotation: maximum rotation, degrees; the angle is uniform in [-rotation, rotation].
        shift: maximum horizontal and vertical shift, as a fraction of the image side.
        zoom: zoom range; the scale is uniform in [1 - zoom, 1 + zoom].
        fill: value of the pixels that come from outside the image. Keras fills by
            repeating the edge (``fill_mode="nearest"``); torchvision only fills with a
            constant, so 0 (black) is *our choice*.

    Returns:
        A ``RandomAffine`` (bilinear) acting on ``(C, H, W)`` or ``(B, C, H, W)`` tensors;
        on a batch one set of parameters is drawn for the whole batch.

    Raises:
        ValueError: a negative range, or ``zoom >= 1`` (a scale of zero or less).
    """
    if rotation < 0 or shift < 0 or zoom < 0:
        raise ValueError(f"ranges must be >= 0, got rotation={rotation}, shift={shift}, zoom={zoom}")
    if zoom >= 1:
        raise ValueError(f"zoom must be < 1 (scale 1 - zoom must stay positive), got {zoom}")
    if shift > 1:
        raise ValueError(f"shift is a fraction of the image side (<= 1), got {shift}")
    return v2.RandomAffine(
        degrees=rotation,
        translate=(shift, shift) if shift > 0 else None,
        scale=(1.0 - zoom, 1.0 + zoom) if zoom > 0 else None,
        interpolation=v2.InterpolationMode.BILINEAR,
        fill=fill,
    )


def eval_transform() -> v2.Transform:
    """Evaluation preset: no augmentation, only make sure the tensor is float32."""
    return v2.ToDtype(torch.float32, scale=False)


def tta_shift_pixels(size: int) -> int:
    """Pixels of the TTA shift for an image side of ``size``: ``max(1, round(0.078 * size))``.

    10 px at 128 (THESIS 4.1.1), 5 px at 64, 2 px at 32.
    """
    return max(1, round(TTA_SHIFT_FRACTION * size))


def tta_views(x: torch.Tensor) -> list[torch.Tensor]:
    """The five fixed test-time-augmentation views of THESIS 4.1.1.

    Args:
        x: images, ``(B, C, H, W)`` (or ``(C, H, W)``), float.

    Returns:
        Five tensors shaped like ``x``, in the order of :data:`TTA_VIEW_NAMES`:
        ``original``; ``rotate10``: 10 degrees counter-clockwise about the centre;
        ``shift_v10px``: moved down by :func:`tta_shift_pixels` (H) pixels;
        ``shift_h10px``: moved right by :func:`tta_shift_pixels` (W) pixels;
        ``crop75``: the central 75 % (per side) resized back to ``(H, W)`` (bilinear,
        antialiased). Pixels from outside the image are 0. The thesis gives no direction
        for the shifts; down/right is *our choice*.

    Raises:
        ValueError: ``x`` has fewer than 3 dimensions.
    """
    if x.ndim < 3:
        raise ValueError(f"expected (B, C, H, W) or (C, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    dy, dx = tta_shift_pixels(h), tta_shift_pixels(w)
    bilinear = v2.InterpolationMode.BILINEAR
    # integer translations sample exactly on pixel centres: nearest keeps values intact
    nearest = v2.InterpolationMode.NEAREST
    rotated = F.rotate(x, TTA_ROTATION, interpolation=bilinear, fill=0.0)
    shift_v = F.affine(x, angle=0.0, translate=[0, dy], scale=1.0, shear=[0.0, 0.0],
                       interpolation=nearest, fill=0.0)
    shift_h = F.affine(x, angle=0.0, translate=[dx, 0], scale=1.0, shear=[0.0, 0.0],
                       interpolation=nearest, fill=0.0)
    crop = F.center_crop(x, [max(1, round(TTA_CROP_FRACTION * h)), max(1, round(TTA_CROP_FRACTION * w))])
    crop = F.resize(crop, [h, w], interpolation=bilinear, antialias=True)
    return [x, rotated, shift_v, shift_h, crop]
