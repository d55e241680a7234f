"""Hounsfield units -> display values: the thesis's three windows, RGB and gray.

The thesis (4.1.1) maps three fixed windows (lung, mediastinum, PE) to the R, G and B
channels, then converts RGB to gray "to alleviate computations". A window is a fixed
mapping, ``clip(hu, WL - WW/2, WL + WW/2)`` scaled to [0, 1], never a per-image min/max.

:func:`window_table` computes the same chain in float64 over every stored pixel value at
once: :mod:`pe_utils.data.dicom` turns it into a lookup table, so a slice costs one
``np.take`` however many windows it has.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Window", "LUNG_WINDOW", "MEDIASTINUM_WINDOW", "PE_WINDOW", "THESIS_WINDOWS",
           "GRAY_WEIGHTS", "apply_window", "to_rgb", "to_gray", "window_table"]


class Window(NamedTuple):
    """A display window in HU: ``level`` (WL, centre) and ``width`` (WW)."""

    level: float
    width: float


LUNG_WINDOW = Window(-600.0, 1500.0)  # thesis 4.1.1, R channel
MEDIASTINUM_WINDOW = Window(40.0, 400.0)  # thesis 4.1.1, G channel
PE_WINDOW = Window(100.0, 700.0)  # thesis 4.1.1, B channel
THESIS_WINDOWS = (LUNG_WINDOW, MEDIASTINUM_WINDOW, PE_WINDOW)  # order = R, G, B
GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma, as in PIL's "L" conversion


def apply_window(hu: np.ndarray, level: float, width: float) -> np.ndarray:
    """Fixed window: clip ``hu`` to [level - width/2, level + width/2], scale to [0, 1].

    Args:
        hu: HU values, any shape.
        level: window level (centre), HU.
        width: window width, HU, > 0.

    Returns:
        float32 array of ``hu``'s shape in [0, 1]. Never rescaled by the image's own range.

    Raises:
        ValueError: ``width`` is not positive.
    """
    if width <= 0:
        raise ValueError(f"window width must be positive, got {width}")
    lo = np.float32(level - width / 2.0)
    out = np.clip(np.asarray(hu, dtype=np.float32), lo, lo + np.float32(width))
    out -= lo
    out *= np.float32(1.0 / width)
    return out


def to_rgb(hu: np.ndarray, windows: tuple[Window, ...] = THESIS_WINDOWS) -> np.ndarray:
    """Stack one windowed image per window: (H, W) HU -> (len(windows), H, W) float32.

    With the default windows the channels are R = lung, G = mediastinum, B = PE.
    """
    return np.stack([apply_window(hu, *w) for w in windows])


def _luma(rgb: np.ndarray) -> np.ndarray:
    r, g, b = rgb
    gray = r * np.float32(GRAY_WEIGHTS[0]) + g * np.float32(GRAY_WEIGHTS[1])
    gray += b * np.float32(GRAY_WEIGHTS[2])
    return np.clip(gray, 0.0, 1.0, out=gray)


def to_gray(hu: np.ndarray, windows: tuple[Window, ...] = THESIS_WINDOWS) -> np.ndarray:
    """The thesis's gray image: :func:`to_rgb` then BT.601 luma 0.299 R + 0.587 G + 0.114 B.

    Args:
        hu: (H, W) HU values.
        windows: exactly three windows, taken as R, G, B.

    Returns:
        float32 (H, W) in [0, 1].

    Raises:
        ValueError: not three windows.
    """
    if len(windows) != 3:
        raise ValueError("gray conversion needs exactly three windows (R, G, B)")
    return _luma(to_rgb(hu, windows))


def _window64(hu: np.ndarray, level: float, width: float) -> np.ndarray:
    lo = level - width / 2.0
    return (np.clip(hu, lo, lo + width) - lo) / width


def window_table(hu: np.ndarray, kind: str, windows: tuple[Window, ...]) -> np.ndarray:
    """The display values of HU values, computed in float64 and stored as float32.

    Args:
        hu: (K,) float64 HU, one per stored pixel value (a lookup table's domain).
        kind: ``"hu"`` (``hu`` itself), ``"gray"`` (:func:`to_gray`'s values) or ``"rgb"``
            (:func:`to_rgb`'s).
        windows: the windows (three for ``"gray"``).

    Returns:
        float32 (K,) for ``"hu"`` and ``"gray"``, (len(windows), K) for ``"rgb"``; equal to
        the float32 functions up to their rounding.
    """
    if kind == "hu":
        return hu.astype(np.float32)
    channels = [_window64(hu, w.level, w.width) for w in windows]
    if kind == "gray":
        table = np.clip(sum(c * w for c, w in zip(channels, GRAY_WEIGHTS)), 0.0, 1.0)
    else:
        table = np.stack(channels)
    return table.astype(np.float32)
