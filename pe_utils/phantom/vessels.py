"""The phantom's 3D tubes: capsule lists, branching trees, the mediastinum's and lungs' vessels.

Every vessel, airway and lesion of the phantom is a capsule (a segment with a radius),
rendered later by distance to its axis (:mod:`pe_utils.phantom.paint`). Coordinates are
patient millimetres: x to the patient's left, y posterior, z cranial, z = 0 at the
pulmonary bifurcation. Everything random comes from the caller's ``rng``, drawn in a fixed
order, so a plan is a function of its seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Tubes:
    """Capsules (segments with a radius), the primitive of every 3D structure.

    Parallel lists, one entry per capsule: ``p0``, ``p1`` end points in mm (x, y, z arrays);
    ``r`` radius in mm; ``w`` soft-edge width in mm; ``side`` 0 trunk, 1 right, 2 left,
    3 other; ``main`` True for the trunk and the two main pulmonary arteries.
    """

    p0: list = field(default_factory=list)
    p1: list = field(default_factory=list)
    r: list = field(default_factory=list)
    w: list = field(default_factory=list)
    side: list = field(default_factory=list)
    main: list = field(default_factory=list)

    def add(self, p0, p1, r, w=1.4, side=3, main=False):
        """Append one capsule from ``p0`` to ``p1`` (mm, (3,)) of radius ``r`` mm."""
        self.p0.append(np.asarray(p0, float))
        self.p1.append(np.asarray(p1, float))
        self.r.append(float(r))
        self.w.append(float(w))
        self.side.append(int(side))
        self.main.append(bool(main))

    def __len__(self):
        return len(self.r)


def unit(v):
    """``v`` (3,) scaled to length 1."""
    return v / math.sqrt(float(v @ v))


def perpendicular(rng, axis):
    """A random unit vector perpendicular to ``axis``."""
    v = rng.normal(size=3)
    v -= v.dot(axis) * axis
    return unit(v)


def inside_ellipsoid(p, centre, axes, scale=1.0):
    """Whether point ``p`` (3,) lies inside the ellipsoid (centre, semi-axes), axes scaled."""
    q = (p - centre) / axes  # plain arithmetic: called tens of thousands of times per patient
    return float(q @ q) < scale * scale


def grow_tree(rng, tubes, start, direction, length, radius, side, lung, heart, depth):
    """Grow a branching vessel from ``start`` inside the ``lung`` ellipsoid (centre, axes).

    Each branch splits in two, thinner and shorter, at 25-45 degrees; a branch that would
    leave the lung or enter the heart is turned (new random deviation) and shortened.
    """
    for attempt in range(6):
        end = start + direction * length
        if inside_ellipsoid(end, *lung, scale=0.92) and not inside_ellipsoid(end, *heart):
            break
        direction = unit(direction + 0.6 * perpendicular(rng, direction))
        length *= 0.8
    else:
        return
    tubes.add(start, end, radius, side=side)
    if depth == 0 or radius < 1.3:
        return
    for _ in range(2):
        new = unit(direction + rng.uniform(0.45, 1.0) * perpendicular(rng, direction))
        grow_tree(rng, tubes, end, new, length * rng.uniform(0.75, 0.92),
                   radius * rng.uniform(0.66, 0.8), side, lung, heart, depth - 1)


def point_in_window(rng, p0, p1, zlo, zhi):
    """A random point of segment p0-p1 whose z lies in [zlo, zhi], or None."""
    if abs(p1[2] - p0[2]) < 1e-6:
        ts = (0.0, 1.0) if zlo <= p0[2] <= zhi else None
    else:
        a, b = sorted(((zlo - p0[2]) / (p1[2] - p0[2]), (zhi - p0[2]) / (p1[2] - p0[2])))
        a, b = max(a, 0.0), min(b, 1.0)
        ts = (a, b) if a < b else None
    if ts is None:
        return None
    return p0 + rng.uniform(*ts) * (p1 - p0)


def draw_mediastinum(rng, body, sx, sy) -> tuple[Tubes, Tubes, Tubes]:
    """Aorta, superior vena cava and airways: ``(aorta, cava, airways)``."""
    aorta, cava, airways = Tubes(), Tubes(), Tubes()
    cy = body["cy"]
    asc = np.array([-27.0 * sx, cy - 45.0 * sy])
    desc = np.array([27.0 * sx, body["spine_y"] - 14.0])
    r_ao = rng.uniform(12.0, 16.0)
    aorta.add([*asc, -60.0], [*asc, 38.0], r_ao)
    aorta.add([*asc, 38.0], [*desc, 48.0], r_ao * 0.9)           # arch
    aorta.add([*desc, 48.0], [*desc, -250.0], r_ao * 0.8)
    cava.add([-44.0 * sx, cy - 35.0 * sy, -25.0], [-44.0 * sx, cy - 35.0 * sy, 250.0],
             rng.uniform(7.0, 10.0))
    carina = np.array([0.0, cy + 12.0, 20.0])
    airways.add([0.0, cy + 12.0, 250.0], carina, 9.0)
    for sign in (-1.0, 1.0):
        hilum = np.array([sign * 45.0 * sx, cy + 18.0, 2.0])
        airways.add(carina, hilum, 6.5)
        for d in ((sign * 0.3, 0.1, 0.9), (sign * 0.3, 0.35, -0.9), (sign * 0.6, -0.5, -0.4)):
            airways.add(hilum, hilum + 32.0 * unit(np.array(d)), 4.0)
    return aorta, cava, airways


def draw_pulmonary_vessels(rng, body, sx, sy, z) -> tuple[Tubes, Tubes]:
    """Pulmonary arteries (trunk, main arteries, trees) and veins: ``(arteries, veins)``."""
    cy, heart, lungs = body["cy"], body["heart"], body["lungs"]
    arteries, veins = Tubes(), Tubes()
    bif = np.array([5.0 * sx, cy - 20.0 * sy, 0.0]) + rng.uniform(-3, 3, 3)
    arteries.add([24.0 * sx, cy - 50.0 * sy, -45.0], bif, rng.uniform(15.0, 18.0), side=0,
                 main=True)
    for side, sign in ((1, -1.0), (2, 1.0)):
        hilum = np.array([sign * 55.0 * sx, cy - 4.0 + 6 * (side - 1), 6.0 * (side - 1) - 4.0])
        hilum += rng.uniform(-4, 4, 3)
        arteries.add(bif, hilum, rng.uniform(12.5, 15.0), side=side, main=True)
        lobes = ((sign * 0.35, -0.15, 0.92), (sign * 0.55, -0.65, -0.4), (sign * 0.35, 0.35, -0.88))
        for d in lobes:
            d = unit(np.array(d) + rng.normal(scale=0.12, size=3))
            grow_tree(rng, arteries, hilum, d, rng.uniform(35.0, 50.0), rng.uniform(8.0, 10.0),
                       side, lungs[side], heart, depth=5)
    # the veins: a second, less enhanced tree draining into the left atrium
    atrium = np.array([heart[0][0], cy - 2.0, -28.0])
    for side, sign in ((1, -1.0), (2, 1.0)):
        for d in ((sign * 0.8, 0.1, 0.5), (sign * 0.8, 0.35, -0.45)):
            d = unit(np.array(d) + rng.normal(scale=0.12, size=3))
            grow_tree(rng, veins, atrium, d, rng.uniform(45.0, 55.0), rng.uniform(5.5, 7.0),
                       3, lungs[side], heart, depth=4)
    # peripheral vessels, too small to model as a tree: short thin tubes scattered in the
    # scanned part of each lung, half arterial, half venous (the parenchyma's dots and lines)
    for side, (c, ax) in lungs.items():
        count = int(round(z[-1] - z[0] + 20.0))
        pts = c + ax * rng.uniform(-1, 1, (4 * count, 3))
        pts[:, 2] = rng.uniform(z[0] - 10.0, z[-1] + 10.0, 4 * count)
        q, h = (pts - c) / ax, (pts - heart[0]) / heart[1]
        keep = pts[((q * q).sum(1) < 0.81) & ((h * h).sum(1) >= 1.0)][:count]
        for i, p in enumerate(keep):
            d = unit(rng.normal(size=3)) * rng.uniform(4.0, 12.0)
            (arteries if i % 2 else veins).add(p - d, p + d, rng.uniform(1.3, 2.6), side=side)
    return arteries, veins

