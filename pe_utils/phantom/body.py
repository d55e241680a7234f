"""The static body of every slice: table, body wall, lungs, heart, spine, ribs, liver, spleen.

What does not depend on the vessels is painted here, slice by slice, from the plan's
``body`` parameters; ribs slope down towards the front, so their sections slide round the
chest from slice to slice. :func:`pe_utils.phantom.render.render_patient` paints the tubes
over it.
"""
from __future__ import annotations

import numpy as np

from .anatomy import PatientPlan
from .paint import Grid, ellipse, paint, paint_ellipse, section

def paint_background(plan: PatientPlan, grid: Grid) -> np.ndarray:
    """Static anatomy of every slice (no vessels): (M, n, n) float32 HU."""
    bd, x, y, w = plan.body, grid.x, grid.y, grid.px
    a, b, cy, sy = bd["a"], bd["b"], bd["cy"], bd["spine_y"]
    n = len(x)
    # what does not change along z: table, body wall, the lung density field
    base = np.full((n, n), -1000.0, np.float32)
    paint_ellipse(base, x, y, 0.0, cy + b + 16.0, 0.42 * plan.fov, 3.0, 150.0, w)  # table
    paint_ellipse(base, x, y, 0.0, cy, a, b, bd["fat_hu"], w)
    paint_ellipse(base, x, y, 0.0, cy, a - bd["fat"], b - bd["fat"], bd["soft_hu"], w)
    inner = ellipse(x, y, 0.0, cy, a - bd["fat"] - 12.0, b - bd["fat"] - 12.0, w)
    tex = bd["lung_tex"]
    lung_hu = (bd["lung_hu"] + 60.0 * np.clip((y[:, None] - cy) / b, -1, 1)  # dependent part
               + 15.0 * np.sin(x[None, :] / 23.0 + tex[0]) * np.cos(y[:, None] / 19.0 + tex[1])
               ).astype(np.float32)
    # ribs: a ring just inside the body wall, cut along the angle into rib sections; each
    # rib's posterior end is high and it slopes 100 mm down towards the front, one every
    # 28 mm, so its sections slide round the ring from slice to slice
    ra, rb = a - bd["fat"] - 6.0, b - bd["fat"] - 6.0
    ring = (ellipse(x, y, 0.0, cy, ra + 5.0, rb + 5.0, w)
            * (1.0 - ellipse(x, y, 0.0, cy, ra - 5.0, rb - 5.0, w)))
    bins = np.linspace(-np.pi, np.pi, 361)
    theta = (bins[:-1] + bins[1:]) / 2
    angle = np.arctan2((y[:, None] - cy) / rb, x[None, :] / ra)
    angle_bin = np.clip(np.searchsorted(bins, angle) - 1, 0, 359)
    rib_drop = 100.0 * (1.0 - np.sin(theta)) / 2.0
    rib_allowed = (np.abs(theta - np.pi / 2) > 0.3) & (np.abs(theta + np.pi / 2) > 0.45)
    hc, ha = bd["heart"]
    out = np.empty((len(plan.z), n, n), np.float32)
    for k, z in enumerate(plan.z):
        img = out[k]
        img[:] = base
        for c, ax in bd["lungs"].values():
            s = section(c, ax, z)
            if s is not None:
                paint_ellipse(img, x, y, c[0], c[1], *s, lung_hu, w, within=inner)
        for centre, axes, hu in (((-40.0, cy + 10.0, bd["liver_top"] - 90.0), (110.0, 85.0, 90.0), 65.0),
                                 ((50.0, cy + 15.0, bd["liver_top"] - 105.0), (80.0, 70.0, 90.0), 50.0)):
            s = section(np.array(centre), axes, z)
            if s is not None:
                paint_ellipse(img, x, y, centre[0], centre[1], *s, hu, w, within=inner)
        s = section(hc, ha, z)
        if s is not None:
            paint_ellipse(img, x, y, hc[0], hc[1], *s, 40.0, w)
            paint_ellipse(img, x, y, hc[0] - 0.3 * s[0], hc[1] - 0.35 * s[1], 0.45 * s[0],
                           0.45 * s[1], bd["pa_hu"], w)       # right ventricle
            paint_ellipse(img, x, y, hc[0] + 0.3 * s[0], hc[1] + 0.2 * s[1], 0.4 * s[0],
                           0.4 * s[1], bd["aorta_hu"], w)     # left ventricle
        paint_ellipse(img, x, y, 0.0, cy - 62.0, 22.0, 28.0, bd["fat_hu"] + 20.0, w)  # mediastinal fat
        paint_ellipse(img, x, y, 0.0, sy + 18.0, 34.0, 38.0, bd["soft_hu"], w)      # paraspinal
        disc = (z - bd["disc_z0"]) % 28.0 < 6.0
        paint_ellipse(img, x, y, 0.0, sy, 19.0, 16.0, 80.0 if disc else bd["bone_hu"], w)
        if not disc:
            paint_ellipse(img, x, y, 0.0, sy, 15.5, 12.5, 0.4 * bd["bone_hu"], w)
        paint_ellipse(img, x, y, 0.0, sy + 26.0, 9.0, 8.0, 20.0, w)               # canal
        for cx_, cy_, ax_, ay_ in ((-15.0, sy + 31.0, 8.0, 5.0), (15.0, sy + 31.0, 8.0, 5.0),
                                   (0.0, sy + 44.0, 4.5, 10.0)):
            paint_ellipse(img, x, y, cx_, cy_, ax_, ay_, 0.85 * bd["bone_hu"], w)
        paint_ellipse(img, x, y, 0.0, cy - b + bd["fat"] + 8.0, 14.0, 5.0, 0.7 * bd["bone_hu"], w)
        dz = (z - bd["rib_z0"] + rib_drop) % 28.0
        on = rib_allowed & (np.minimum(dz, 28.0 - dz) < 4.0)
        paint(img, ring * on[angle_bin], bd["bone_hu"])
    return out

