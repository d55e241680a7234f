"""The phantom's clot masks: where each slice's embolus is, written beside the DICOM files.

The thesis could only circle "potential" emboli by eye (Fig 6.19); the phantom knows where
every clot is, so it writes it down, and preprocessing carries it into the cache
(:mod:`pe_utils.data.masks`), where Grad-CAM maps are scored against it
(:mod:`pe_utils.evaluate.localisation`). Real RSNA data has no masks; nothing needs them.

What a mask is (:func:`clot_masks`): the render-grid pixels at least half filled by clot
after partial volume, the very pixels whose area decides ``pe_present_on_image``
(:func:`pe_utils.phantom.emboli.visible_area` >= ``MIN_DEFECT_MM2``), each covering 2 x 2
pixels of the 512 x 512 DICOM grid, on the slices labelled positive. A slice is positive
exactly when its mask is non-empty. A slice that a clot only grazes (some pixels at least
half filled, but less than ``MIN_DEFECT_MM2`` of them) is labelled negative, so its mask is
empty too: a mask that disagreed with the label would score a map against a clot the labels
say is not there. Such slices are listed in the file (``faint``), so they can be counted.

Layout, one file per series (RSNA's 1.8 million slices are 7,279 series: a file per slice
would add millions of files, and most slices have no clot):

- ``<root>/masks/masks.json``: the marker (format, meaning, grid, generator version);
  preprocessing uses masks only when it is there;
- ``<root>/masks/<StudyInstanceUID>/<SeriesInstanceUID>.npz`` (``numpy.savez_compressed``):
  ``sop`` (M,) the SOPInstanceUIDs of every slice of the series, ``rows`` (K,) the indices in
  ``sop`` of the slices with a clot, ``bits`` (K, H, ceil(W / 8)) uint8 their masks packed
  along the columns (``numpy.packbits``), ``shape`` (H, W) = (Rows, Columns) of the DICOM,
  ``faint`` the indices of the grazed slices. A slice in ``sop`` but not in ``rows`` has an
  empty mask; a slice not in ``sop`` has no known mask.

Masks do not change the DICOM files (same bytes, same manifest).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ..io import write_atomic
from .emboli import MIN_DEFECT_MM2
from .paint import RENDER_SIZE

MASKS_DIR = "masks"        # under the phantom's root, beside train/
MARKER = "masks.json"      # in MASKS_DIR
FORMAT = 1


def clot_masks(rendered, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The clot mask of every slice on the DICOM grid, and the grazed slices.

    Args:
        rendered: a :class:`pe_utils.phantom.render.RenderedPatient` (``defect``, ``labels``).
        image_size: the DICOM side (a whole multiple of the render grid's).

    Returns:
        ``(masks, faint)``: bool (M, image_size, image_size), non-empty exactly on the slices
        whose label is 1; int (J,) slices with clot pixels but below the label's threshold.
    """
    k = image_size // RENDER_SIZE
    if k * RENDER_SIZE != image_size:
        raise ValueError(f"image_size {image_size} is not a multiple of {RENDER_SIZE}")
    full = rendered.defect >= 0.5                        # what visible_area counts
    positive = rendered.labels.astype(bool)
    faint = np.nonzero(full.any((1, 2)) & ~positive)[0]
    small = full & positive[:, None, None]
    masks = small.repeat(k, axis=1).repeat(k, axis=2) if k > 1 else small
    return masks, faint


def mask_path(root: str | Path, study: str, series: str) -> Path:
    """Where the masks of one series live under a phantom root."""
    return Path(root) / MASKS_DIR / study / f"{series}.npz"


def write_marker(root: str | Path, generator_version: str) -> Path:
    """``<root>/masks/masks.json``: says the folder holds clot masks, and what they mean."""
    return write_atomic(Path(root) / MASKS_DIR / MARKER, json.dumps(dict(
        format=FORMAT, generator_version=generator_version,
        meaning=f"clot pixels: at least half filled by clot; a slice is positive "
                f"(pe_present_on_image) exactly when its mask is non-empty "
                f"(visible clot area >= {MIN_DEFECT_MM2} mm^2)",
        grid="DICOM pixels (Rows x Columns), one file per series, masks/<Study>/<Series>.npz",
        keys=dict(sop="SOPInstanceUIDs of the series", rows="indices in sop with a clot",
                  bits="packbits(mask, axis=-1) of those rows", shape="(Rows, Columns)",
                  faint="indices in sop with clot pixels below the label's threshold")),
        indent=1) + "\n")


def write_series_masks(root: str | Path, study: str, series: str, sops: list[str],
                       masks: np.ndarray, faint: np.ndarray) -> Path:
    """Write one series' masks (:func:`clot_masks`, slices in the order of ``sops``)."""
    masks = np.asarray(masks, bool)
    if masks.shape[0] != len(sops):
        raise ValueError(f"{len(sops)} SOPInstanceUIDs for {masks.shape[0]} masks")
    rows = np.nonzero(masks.any((1, 2)))[0]
    buf = io.BytesIO()
    np.savez_compressed(buf, sop=np.asarray(sops, dtype=str), rows=rows.astype(np.int32),
                        bits=np.packbits(masks[rows], axis=-1),
                        shape=np.asarray(masks.shape[1:], np.int32),
                        faint=np.asarray(faint, np.int32))
    return write_atomic(mask_path(root, study, series), buf.getvalue())


class SeriesMasks:
    """One series' mask file, read once: ``get(sop)`` -> bool (H, W), or None if not listed.

    Raises (on construction):
        ValueError: the file is not a mask file (keys missing or inconsistent), naming it.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            with np.load(self.path, allow_pickle=False) as z:
                sop, rows, bits = z["sop"], z["rows"], z["bits"]
                self.shape = tuple(int(v) for v in z["shape"])
                self.faint = z["faint"]
        except (KeyError, ValueError, OSError) as exc:
            raise ValueError(f"{self.path}: not a clot-mask file ({exc})") from None
        if len(self.shape) != 2 or bits.shape[:1] != rows.shape or (
                len(rows) and bits.shape[1:] != (self.shape[0], -(-self.shape[1] // 8))):
            raise ValueError(f"{self.path}: inconsistent clot-mask file (shape {self.shape}, "
                             f"rows {rows.shape}, bits {bits.shape})")
        self._index = {str(s): i for i, s in enumerate(sop)}
        self._packed = dict(zip(rows.tolist(), bits))

    def has_clot(self, sop: str) -> bool | None:
        """Whether slice ``sop`` has a clot (without unpacking it), or None if not listed."""
        i = self._index.get(str(sop))
        return None if i is None else i in self._packed

    def get(self, sop: str) -> np.ndarray | None:
        """The mask of slice ``sop`` (all False when it has no clot), or None if not listed."""
        i = self._index.get(str(sop))
        if i is None:
            return None
        bits = self._packed.get(i)
        if bits is None:
            return np.zeros(self.shape, bool)
        return np.unpackbits(bits, axis=-1, count=self.shape[1]).astype(bool)
