"""Emboli: where clots lodge, how long they are, and which slices they make positive.

A positive patient gets a few clots, each in an artery of one class (:data:`CLASSES`):
central (trunk, main arteries: long saddle-like clots), lobar, segmental and subsegmental
(short clots, often on one or two 5 mm slices only). The class mix, count and length
follow the difficulty knobs (:data:`pe_utils.phantom.anatomy.KNOBS`); an artery is picked
by its length, so clots spread along the whole scan, wherever the tree runs.

A slice is positive when its pixels at least half filled by clot, after partial volume,
cover at least :data:`MIN_DEFECT_MM2` (:func:`visible_area`). :func:`clot_area` computes it
from the plan alone, on the clots' boxes (the same arithmetic as the full render, value for
value), so a plan knows its labels before any pixel is painted. :func:`place_emboli` uses
that to keep the share of positive slices of a positive series inside
:data:`SHARE_BOUNDS`, like Dataset1's exams (thesis 4.1.1; RSNA: about 13 % of an exam's
slices), by redrawing the clots (never the anatomy) when a draw falls outside.
"""
from __future__ import annotations

import math

import numpy as np

from .paint import RENDER_SIZE, Grid, capsule_occupancy, capsules
from .vessels import Tubes, perpendicular, unit

MIN_DEFECT_MM2 = 10.0     # smallest visible filling defect (mm^2 on a slice) labelled as PE
SHARE_BOUNDS = (0.05, 0.30)  # share of a positive series' slices that are positive
ATTEMPTS = 40             # clot redraws before the draw closest to SHARE_BOUNDS is kept

#: artery classes: (name, host artery radius range in mm, clot half-length range in mm).
#: Central means the trunk and the two main arteries (whatever their radius).
CLASSES: tuple[tuple[str, tuple[float, float], tuple[float, float]], ...] = (
    ("central", (0.0, math.inf), (8.0, 22.0)),
    ("lobar", (6.5, math.inf), (4.0, 12.0)),
    ("segmental", (3.5, 6.5), (2.0, 7.0)),
    ("subsegmental", (2.3, 3.5), (1.0, 4.0)),
)


def visible_area(defect: np.ndarray, px2: float) -> np.ndarray:
    """Clot area per slice (mm^2) counting pixels at least half filled by clot: (M,)."""
    return np.where(defect >= 0.5, defect, 0.0).sum((1, 2)) * px2


def positive_bounds(slices: int) -> tuple[int, int]:
    """Least and most positive slices of a positive series of ``slices`` slices (>= 1 each)."""
    lo = max(1, math.ceil(SHARE_BOUNDS[0] * slices - 1e-9))
    return lo, max(lo, math.floor(SHARE_BOUNDS[1] * slices + 1e-9))


def _window(p0, p1, zlo, zhi) -> tuple[float, float] | None:
    """The parameter range [a, b] of segment p0-p1 whose z lies in [zlo, zhi], or None."""
    if abs(p1[2] - p0[2]) < 1e-6:
        return (0.0, 1.0) if zlo <= p0[2] <= zhi else None
    a, b = sorted(((zlo - p0[2]) / (p1[2] - p0[2]), (zhi - p0[2]) / (p1[2] - p0[2])))
    a, b = max(a, 0.0), min(b, 1.0)
    return (a, b) if a < b else None


def artery_pools(arteries: Tubes, zlo: float, zhi: float) -> list[tuple[list[int], np.ndarray]]:
    """Per class of :data:`CLASSES`: the arteries the window [zlo, zhi] sees and their weights.

    Returns:
        One ``(indices, weights)`` per class; weights are the lengths inside the window.
    """
    pools = []
    for name, (rlo, rhi), _ in CLASSES:
        idx, wts = [], []
        for i, (p0, p1, r, main) in enumerate(zip(arteries.p0, arteries.p1, arteries.r, arteries.main)):
            if bool(main) != (name == "central") or not rlo <= r < rhi:
                continue
            win = _window(p0, p1, zlo, zhi)
            if win is not None:
                idx.append(i)
                wts.append((win[1] - win[0]) * float(np.linalg.norm(p1 - p0)) + 1e-3)
        pools.append((idx, np.asarray(wts, float)))
    return pools


def draw_emboli(rng, knobs: dict, arteries: Tubes, pools, zlo: float, zhi: float) -> Tubes:
    """Clots of one positive patient: capsules inside arteries, central or stuck to the wall.

    Args:
        pools: :func:`artery_pools` of the scanned window [zlo, zhi] (mm).

    Returns:
        :class:`Tubes` with ``side`` and ``main`` of the host artery.
    """
    emboli = Tubes()
    mix = np.array([w if len(pool[0]) else 0.0 for w, pool in zip(knobs["clot_mix"], pools)])
    if mix.sum() <= 0:  # a scan so short it sees no artery wide enough
        return emboli
    for _ in range(rng.integers(knobs["clot_count"][0], knobs["clot_count"][1] + 1)):
        k = rng.choice(len(CLASSES), p=mix / mix.sum())
        idx, wts = pools[k]
        i = idx[rng.choice(len(idx), p=wts / wts.sum())]
        p0, p1, rv = arteries.p0[i], arteries.p1[i], arteries.r[i]
        axis = unit(p1 - p0)
        c = p0 + rng.uniform(*_window(p0, p1, zlo, zhi)) * (p1 - p0)
        re = rv * rng.uniform(*knobs["clot_radius"])
        if rng.random() < 0.5:  # stuck to the wall rather than floating in the lumen
            c = c + (rv - re) * rng.uniform(0.7, 1.0) * perpendicular(rng, axis)
        half = rng.uniform(*CLASSES[k][2]) * knobs["clot_length"]
        emboli.add(c - half * axis, c + half * axis, re, w=1.0, side=arteries.side[i],
                   main=arteries.main[i])
    return emboli


def _lumen_in(grid: Grid, arteries: Tubes, bounds: np.ndarray, box, lo, hi) -> np.ndarray:
    """Arterial occupancy on ``box`` (the grid box of [lo, hi] mm) only: the render's
    ``lumen[box]``, value for value."""
    shape = tuple(s.stop - s.start for s in box)
    lumen = np.zeros(shape, np.float32)
    # grid boxes are rounded out to whole pixels and slices: a margin of two keeps every artery
    # whose box may touch this one (the exact test follows)
    dz = float(grid.z[1] - grid.z[0]) * grid.sub if len(grid.z) > 1 else 0.0
    margin = np.array([2 * grid.px, 2 * grid.px, 2 * dz])
    near = np.nonzero(((bounds[:, 0] <= hi + margin) & (bounds[:, 1] >= lo - margin)).all(1))[0]
    for i in near:
        own = grid.box(bounds[i, 0], bounds[i, 1])
        if own is None:
            continue
        inter = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(own, box))
        if any(s.start >= s.stop for s in inter):
            continue
        occ = capsule_occupancy(grid, arteries.p0[i], arteries.p1[i], arteries.r[i],
                                arteries.w[i], inter)
        local = tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(inter, box))
        np.maximum(lumen[local], occ, out=lumen[local])
    return lumen


def clot_area(plan) -> tuple[np.ndarray, set, bool]:
    """Visible clot area per slice of a plan, without rendering the rest of the patient.

    Args:
        plan: a :class:`pe_utils.phantom.anatomy.PatientPlan` (its ``emboli`` and ``arteries``).

    Returns:
        ``(area, sides, central)``: (M,) mm^2 as :func:`visible_area` of the rendered clots,
        the artery sides with a visible clot and whether one of them is central.
    """
    grid = Grid(plan)
    m = len(plan.z)
    defect = np.zeros((m, RENDER_SIZE, RENDER_SIZE), np.float32)
    sides, central = set(), False
    art = plan.arteries
    bounds = np.zeros((0, 2, 3))
    if len(art):  # (A, 2, 3): each artery's box in mm, as paint.capsules pads it
        p0, p1, pad = np.array(art.p0), np.array(art.p1), (np.array(art.r) + np.array(art.w))[:, None]
        bounds = np.stack([np.minimum(p0, p1) - pad, np.maximum(p0, p1) + pad], 1)
    emb = plan.emboli
    for (box, occ), p0, p1, r, w, side, main in zip(capsules(grid, emb), emb.p0, emb.p1, emb.r,
                                                    emb.w, emb.side, emb.main):
        lo, hi = np.minimum(p0, p1) - (r + w), np.maximum(p0, p1) + (r + w)
        occ = occ * _lumen_in(grid, art, bounds, box, lo, hi)  # seen where it displaces contrast
        np.maximum(defect[box], occ, out=defect[box])
        if visible_area(occ, grid.px ** 2).max() >= MIN_DEFECT_MM2:
            sides.add(side)
            central |= bool(main)
    return visible_area(defect, grid.px ** 2), sides, central


def place_emboli(plan, knobs: dict, seed: int, zlo: float, zhi: float) -> None:
    """Draw the clots of a positive ``plan`` (in place) and set its ``labels``.

    Each attempt draws from ``SeedSequence([seed, plan.index, 3, attempt])``; the first
    whose positive slices number within :func:`positive_bounds` is kept, else the closest.
    """
    pools = artery_pools(plan.arteries, zlo, zhi)
    lo, hi = positive_bounds(len(plan.z))
    best = None
    for attempt in range(ATTEMPTS):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(plan.index), 3, attempt]))
        plan.emboli = draw_emboli(rng, knobs, plan.arteries, pools, zlo, zhi)
        labels = (clot_area(plan)[0] >= MIN_DEFECT_MM2).astype(np.uint8)
        miss = max(lo - int(labels.sum()), int(labels.sum()) - hi, 0)
        if best is None or miss < best[0]:
            best = (miss, plan.emboli, labels)
        if miss == 0:
            break
    _, plan.emboli, plan.labels = best
