"""Pixel fingerprints: how a phantom's manifest checks pixels the same way on every CPU.

Real data are checked by sha256: the bytes a user downloaded must be the bytes the manifest
lists. The phantom is regenerated on each machine instead, and its bytes are not the same
everywhere: numpy picks its vectorised exp, sin, cos and arctan2 by CPU (AVX-512, AVX2,
NEON), and OpenBLAS its dot kernel, and their results differ in the last bit. Where a
pixel's float value lies that close to a rounding boundary, its stored integer differs by
one, and the file's sha256 with it. Measured on the demo phantom (40 x 40 slices), AVX-512 vs
AVX2 (``NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR"`` reproduces the latter on
the former): 14 of 1,600 files differ, each in 1 or 2 stored values, each off by one.

Two ways out: make the generator bit-identical everywhere (integer or fixed-point arithmetic
for every soft edge, partial volume, upsampling, texture, streak and rib angle), or check
the phantom's pixels within a stated tolerance, and its UIDs and labels exactly. We take the
second. The first would change every phantom, slow the generator, and still depend on the
bytes pydicom and OpenJPEG write (a new pydicom changes a header, a new OpenJPEG may encode
a lossless JPEG 2000 stream differently: same pixels, new sha256). A fingerprint of the
decoded pixels is indifferent to all three, and sha256 stays the check for real data.

The fingerprint of a slice: its HU (as :func:`pe_utils.data.dicom.read_hu` reads them,
padding as air) averaged over a :data:`GRID` x :data:`GRID` grid of blocks (64 x 64 pixels
for a 512 x 512 slice), each mean rounded to 0.01 HU, written as numbers separated by spaces,
row by row. The means themselves are exact on every machine: HU are integers here, so their
float64 sums are exact in any order, and one division and one decimal rounding are
correctly rounded.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..phantom.synthetic import read_marker

#: the manifest column holding a phantom file's fingerprint
COLUMN = "pixel_fingerprint"
#: blocks per side: 8 x 8 means per slice (a 512 x 512 slice gives 64 x 64-pixel blocks)
GRID = 8
#: Largest |difference| of any block mean (HU) that still counts as the same slice.
#: Loose enough for last-bit differences: a stored value off by one moves its 64 x 64 block's
#: mean by 1 / 4096 = 0.00024 HU, and the 0.01 HU rounding of the two fingerprints adds at
#: most 0.01 HU, so 0.1 HU leaves room for about 370 same-signed flips in one block where
#: 1 or 2 per file are seen (largest block difference measured: 0.00024 HU). A flip cannot
#: spread: no pixel value feeds back into the generator (the noise comes from the seed).
#: Tight enough to catch a changed generator: measured on the demo phantom (seed 0, patients
#: 0-2, 6 slices each), redrawing only the noise moves some block of every slice by 0.5-3.8 HU,
#: clots 10 HU denser by 2-4 HU, soft tissue 0.5 HU denser everywhere by 0.21-0.33 HU; a
#: 20 x 20-pixel patch of +100 HU moves its block by up to 9.8 HU.
TOLERANCE_HU = 0.1
#: what a phantom manifest's summary says about its pixel check
DESCRIPTION = (f"mean HU of each of {GRID} x {GRID} blocks (padding as -1000 HU), "
               "rounded to 0.01 HU; a file whose sha256 differs passes when every block "
               "mean lies within the tolerance")


def phantom_summary(rsna_root: str | Path) -> dict | None:
    """What a manifest of the phantom in ``rsna_root`` declares, or None when it holds none.

    Returns:
        ``{"kind": "phantom", "generator": {...}, "pixel_check": {...}}``: the generator
        version and arguments the folder's marker records, and the fingerprint and its
        tolerance (:data:`TOLERANCE_HU`) the manifest is checked with.
    """
    marker = read_marker(rsna_root)
    if marker is None:
        return None
    return dict(kind="phantom",
                generator=dict(package="pe_utils.phantom", version=marker.get("generator_version"),
                               arguments=marker.get("arguments")),
                pixel_check=dict(column=COLUMN, grid=GRID, fingerprint=DESCRIPTION,
                                 tolerance_hu=TOLERANCE_HU))


def pixel_tolerance(summary: dict | None) -> float | None:
    """The pixel tolerance (HU) a manifest's summary declares: a phantom's; None for real data."""
    if not summary or summary.get("kind") != "phantom":
        return None
    return float(summary["pixel_check"]["tolerance_hu"])


def average_blocks(hu: np.ndarray, grid: int = GRID) -> np.ndarray:
    """Mean of each block of a ``grid`` x ``grid`` partition of a slice.

    Args:
        hu: (H, W) HU, H and W >= ``grid``; blocks differ by at most one row or column
            when H or W is not a multiple of ``grid``.
        grid: blocks per side.

    Returns:
        (grid, grid) float64 block means.

    Raises:
        ValueError: ``hu`` is not 2-D or smaller than the grid.
    """
    if hu.ndim != 2 or min(hu.shape) < grid:
        raise ValueError(f"average_blocks: need a 2-D slice of at least {grid} x {grid}, "
                         f"got shape {hu.shape}")
    rows = (np.arange(grid) * hu.shape[0]) // grid
    cols = (np.arange(grid) * hu.shape[1]) // grid
    # float64 sums of integer HU are exact whatever numpy's summation order on this CPU
    sums = np.add.reduceat(np.add.reduceat(hu.astype(np.float64), rows, axis=0), cols, axis=1)
    counts = np.outer(np.diff(np.r_[rows, hu.shape[0]]), np.diff(np.r_[cols, hu.shape[1]]))
    return sums / counts


def format_fingerprint(means: np.ndarray) -> str:
    """Block means (grid, grid) -> the manifest's text: each rounded to 0.01, space-separated."""
    return " ".join(f"{v:.2f}" for v in np.asarray(means, dtype=np.float64).ravel())


def parse_fingerprint(text: str) -> np.ndarray:
    """The manifest's text -> (n,) float64 block means; empty text gives an empty array."""
    return np.array([float(v) for v in str(text).split()], dtype=np.float64)


def fingerprint_file(path: str | Path, grid: int = GRID) -> str:
    """The fingerprint of the CT slice in ``path`` (see the module docstring).

    Raises:
        DicomReadError: the file cannot be read as a CT slice.
    """
    from .dicom import read_hu

    return format_fingerprint(average_blocks(read_hu(path), grid))


def compare_fingerprints(expected: str, actual: str) -> float:
    """Largest |difference| of the block means of two fingerprints, in HU.

    Returns:
        The largest difference; ``inf`` when they do not hold the same number of blocks
        (an empty or foreign fingerprint never passes).
    """
    a, b = parse_fingerprint(expected), parse_fingerprint(actual)
    if a.size == 0 or a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b)))


def check_pixels(path: str | Path, uids: tuple[str, str, str], expected: str,
                 tolerance_hu: float) -> str | None:
    """Whether a phantom file whose bytes differ from its manifest's still holds the same slice.

    Args:
        path: the DICOM file.
        uids: the manifest's (StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID), compared
            exactly with the file's header.
        expected: the manifest's fingerprint of the file.
        tolerance_hu: the largest block-mean difference allowed (:data:`TOLERANCE_HU`).

    Returns:
        None when it does; else the problem: ``"pixel data unreadable"``, ``"UIDs differ from
        manifest"`` or ``"pixel data differs beyond tolerance"``.
    """
    from .dicom import DicomReadError, read_slice

    try:
        hu, meta = read_slice(path)
    except DicomReadError:
        return "pixel data unreadable"
    if (meta.study_instance_uid, meta.series_instance_uid, meta.sop_instance_uid) != tuple(uids):
        return "UIDs differ from manifest"
    if compare_fingerprints(expected, format_fingerprint(average_blocks(hu))) > tolerance_hu:
        return "pixel data differs beyond tolerance"
    return None
