"""Painting on the render grid: the grid, capsules by distance to their axis, soft ellipses.

The anatomy is drawn at :data:`RENDER_SIZE` pixels and :data:`Z_SUBSAMPLES` sub-slices per
slice, with soft edges (a linear ramp of width ``w`` mm across each boundary), so a
structure's occupancy of a pixel is a fraction in [0, 1]: partial volume, in plane and
along z. :func:`upsample2` brings the result to the DICOM size.
"""
from __future__ import annotations

import numpy as np

from .vessels import Tubes

RENDER_SIZE = 256         # anatomy is drawn at half resolution, then upsampled smoothly
Z_SUBSAMPLES = 2          # sub-slices averaged per slice (partial volume along z)


class Grid:
    """Pixel-centre coordinates (mm) of the render grid and the sub-slice z positions."""

    def __init__(self, plan, n: int = RENDER_SIZE, sub: int = Z_SUBSAMPLES):
        """``plan``: a :class:`pe_utils.phantom.anatomy.PatientPlan` (its fov, dz and z)."""
        self.px = plan.fov / n
        self.x = ((np.arange(n) + 0.5) * self.px - plan.fov / 2).astype(np.float32)
        self.y = self.x.copy()
        offsets = ((np.arange(sub) + 0.5) / sub - 0.5) * plan.dz
        self.z = (plan.z[:, None] + offsets[None, :]).ravel()  # (M*sub,) ascending
        self.sub = sub

    def box(self, lo, hi):
        """Index slices (slices, rows, columns) of the box [lo, hi] in mm, or None if empty.

        Along z the box is in whole slices: all sub-slices of a slice are in or out together.
        """
        ix = np.searchsorted(self.x, [lo[0], hi[0]])
        iy = np.searchsorted(self.y, [lo[1], hi[1]])
        iz = np.searchsorted(self.z, [lo[2], hi[2]])
        iz = iz[0] // self.sub, -(-iz[1] // self.sub)
        if ix[0] >= ix[1] or iy[0] >= iy[1] or iz[0] >= iz[1]:
            return None
        return slice(*iz), slice(*iy), slice(*ix)


def capsule_occupancy(grid: Grid, p0, p1, r: float, w: float, box) -> np.ndarray:
    """Soft occupancy in [0, 1] of one capsule on ``box`` (slices, rows, cols) of the grid.

    Averaged over the sub-slices of each slice (partial volume along z). Each value depends
    on its own pixel only, so any box gives the same value at the same pixel.
    """
    sub = grid.sub
    zs = grid.z[box[0].start * sub: box[0].stop * sub]
    zz = (zs - p0[2]).astype(np.float32)[:, None, None]
    yy = grid.y[box[1]][None, :, None] - np.float32(p0[1])
    xx = grid.x[box[2]][None, None, :] - np.float32(p0[0])
    d = (p1 - p0).astype(np.float32)
    l2 = float(d @ d)
    t = np.clip((xx * d[0] + yy * d[1] + zz * d[2]) / l2, 0.0, 1.0) if l2 > 0 else 0.0
    dist = np.sqrt((xx - t * d[0]) ** 2 + (yy - t * d[1]) ** 2 + (zz - t * d[2]) ** 2)
    occ = np.clip(0.5 + (r - dist) / w, 0.0, 1.0)
    return occ.reshape(-1, sub, *occ.shape[1:]).mean(1)


def capsules(grid: Grid, tubes: Tubes):
    """Yield ``(box, occ)`` per capsule of ``tubes`` that the scan sees.

    ``occ``: :func:`capsule_occupancy` on the capsule's bounding box.
    """
    for p0, p1, r, w in zip(tubes.p0, tubes.p1, tubes.r, tubes.w):
        pad = r + w
        box = grid.box(np.minimum(p0, p1) - pad, np.maximum(p0, p1) + pad)
        if box is not None:
            yield box, capsule_occupancy(grid, p0, p1, r, w, box)


def paint(img, occ, value):
    """Blend ``value`` into ``img`` with occupancy ``occ`` (in place)."""
    img += occ * (value - img)


def ellipse(x, y, cx, cy, ax, ay, w):
    """Soft occupancy of an axis-aligned ellipse on the grid (x: (nx,), y: (ny,)) -> (ny, nx)."""
    u = (x[None, :] - cx) / ax
    v = (y[:, None] - cy) / ay
    q = u * u + v * v
    grad = 2.0 * np.sqrt((u / ax) ** 2 + (v / ay) ** 2)
    return np.clip(0.5 - (q - 1.0) / np.maximum(grad, 1e-6) / w, 0.0, 1.0)


def paint_ellipse(img, x, y, cx, cy, ax, ay, value, w, within=None):
    """Paint an ellipse into ``img`` (ny, nx), touching only its bounding box.

    ``value`` is a scalar or an (ny, nx) array; ``within`` an optional (ny, nx) occupancy
    that limits the ellipse (lungs inside the ribcage).
    """
    iy = np.searchsorted(y, [cy - ay - w, cy + ay + w])
    ix = np.searchsorted(x, [cx - ax - w, cx + ax + w])
    sl = (slice(*iy), slice(*ix))
    occ = ellipse(x[sl[1]], y[sl[0]], cx, cy, ax, ay, w)
    if within is not None:
        occ = occ * within[sl]
    paint(img[sl], occ, value if np.isscalar(value) else value[sl])


def section(centre, axes, z):
    """Axes of the section of an ellipsoid at height z, or None when z misses it."""
    k = 1.0 - ((z - centre[2]) / axes[2]) ** 2
    return None if k <= 0.02 else (axes[0] * np.sqrt(k), axes[1] * np.sqrt(k))


def upsample2(img: np.ndarray) -> np.ndarray:
    """Bilinear x2 upsampling of (M, n, n) (half-pixel centres, edges clamped) -> (M, 2n, 2n).

    Each output pixel is (3 * nearest + next) / 4 along each axis; the two interleaved
    phases are written through strided views of one output array (no copies).
    """
    m, n, _ = img.shape
    p = np.pad(img, ((0, 0), (1, 1), (1, 1)), mode="edge")
    p *= 0.25
    c = p[:, :, 1:-1] * 3.0
    r = np.empty((m, n + 2, n, 2), np.float32)  # columns upsampled first
    np.add(c, p[:, :, :-2], out=r[..., 0])
    np.add(c, p[:, :, 2:], out=r[..., 1])
    r = r.reshape(m, n + 2, 2 * n)
    r *= 0.25
    c = r[:, 1:-1] * 3.0
    out = np.empty((m, n, 2, 2 * n), np.float32)
    np.add(c, r[:, :-2], out=out[:, :, 0])
    np.add(c, r[:, 2:], out=out[:, :, 1])
    return out.reshape(m, 2 * n, 2 * n)

