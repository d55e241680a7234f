"""Image transforms: the training augmentation, the evaluation preset and the TTA views.

Every transform here works on float tensors ``(C, H, W)`` (one image) or ``(B, C, H, W)``
(a batch) with values in [0, 1], as :class:`pe_utils.data.CacheDataset` produces them.

- :func:`train_transform` / :func:`eval_transform`: the named pair used by Case1/Case2
  (THESIS 4.1.1: rotation 10 degrees, shift 10 %, zoom 20 %).
- :func:`tta_views` (now :func:`pe_utils.data.augment.tta_views`, batched on the device,
  re-exported here): the five fixed test-time views of THESIS 4.1.1.

Randomness: the random transforms draw from torch's global CPU generator;
:class:`pe_utils.data.CacheDataset` seeds it per sample from ``(seed, epoch, position)`` so that
augmentation is reproducible and independent of the number of DataLoader workers.
The batched, per-sample-keyed augmentation on the training device (Case1's affine, Case3's
two views) is :mod:`pe_utils.data.augment`; this CPU path stays for backward compatibility.
"""
from __future__ import annotations

import torch

# the TTA views moved to the batched augmentation module; these names keep working from here
from .augment import (AUG_ROTATION, AUG_SHIFT, AUG_ZOOM,  # noqa: F401
                      TTA_CROP_FRACTION, TTA_ROTATION, TTA_SHIFT_FRACTION,
                      TTA_VIEW_NAMES, tta_shift_pixels, tta_views)


def train_transform(rotation: float = AUG_ROTATION, shift: float = AUG_SHIFT, zoom: float = AUG_ZOOM,
                    fill: float = 0.0) -> "v2.Transform":
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
    from torchvision.transforms import v2  # lazily: torchvision's import costs ~1.5 s

    return v2.RandomAffine(
        degrees=rotation,
        translate=(shift, shift) if shift > 0 else None,
        scale=(1.0 - zoom, 1.0 + zoom) if zoom > 0 else None,
        interpolation=v2.InterpolationMode.BILINEAR,
        fill=fill,
    )


def eval_transform() -> "v2.Transform":
    """Evaluation preset: no augmentation, only make sure the tensor is float32."""
    from torchvision.transforms import v2  # lazily, as above

    return v2.ToDtype(torch.float32, scale=False)
