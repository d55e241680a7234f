"""The embedded default dataset: a procedural CTPA phantom written as RSNA-layout DICOM.

Without the RSNA data (a 900 GB download behind a licence) the course would have nothing to
run on, so this module draws one: each patient is a 3D chest, cut into axial slices and
written exactly as the RSNA-STR PE challenge ships its data, ``train.csv`` (17 columns) plus
``train/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``.

The phantom, in patient millimetres (x to the patient's left, y posterior, z cranial; z = 0
at the pulmonary bifurcation):

* body: an ellipse of subcutaneous fat (about -100 HU) around soft tissue (40 HU), lying on
  the scanner table; sternum, spine (vertebral bodies and discs, canal, posterior arch) and
  ribs sloping down towards the front, so their sections move from slice to slice (bone
  300-900 HU);
* lungs (about -850 HU, denser at the back) with trachea and bronchi, the heart (contrast in
  the right ventricle, less in the left), liver and spleen domes in the lowest slices, the
  aorta and a dense superior vena cava;
* the pulmonary arteries (250-400 HU): a trunk, the two main arteries and a tree of lobar,
  segmental and subsegmental branches grown at random inside each lung.  Every vessel is a
  3D tube rendered by distance to its axis, so its sections move and merge continuously
  along z, and each slice averages two sub-slices (partial volume, also at branchings);
* emboli in positive patients: low-density (25-65 HU) capsules inside arteries, central or
  stuck to the wall, spanning several contiguous slices.  ``pe_present_on_image`` is
  computed from what was rendered: a slice is positive when its pixels at least half filled
  by clot (after partial volume) cover at least :data:`MIN_DEFECT_MM2`;
* look-alikes, in negatives and positives alike: lymph nodes (soft-tissue blobs touching an
  artery from outside), contrast-mixing (flow) artefacts inside arteries (blurred, 100-200
  HU), streaks from the dense vena cava, respiratory motion ghosts, patient-specific noise.

``difficulty`` in [0, 1] moves emboli from big central clots in wide arteries (0) to small
clots down to segmental arteries with more, darker look-alikes and more noise (1).  The
default was tuned so that a ResNet18 trained for a minute on 64x64 gray images of the demo
profile (40 patients x 40 slices) classifies slices well at sampling rate 9/10 but leaves
uncertain cases at 1/4 (see ``DEFAULT_DIFFICULTY``).

Everything is drawn from ``numpy.random.SeedSequence([seed, patient])``: the same seed gives
byte-identical files whatever the number of worker processes.  Every file carries a fake,
realistic-looking identity (name, ID, birth date, institution, study date) so that the
de-identification of the pipeline is exercised on every run.
"""
from __future__ import annotations

import argparse
import csv
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: the 17 columns of the RSNA-STR ``train.csv``, in order
RSNA_COLUMNS: tuple[str, ...] = (
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "pe_present_on_image",
    "negative_exam_for_pe", "qa_motion", "qa_contrast", "flow_artifact", "rv_lv_ratio_gte_1",
    "rv_lv_ratio_lt_1", "leftsided_pe", "chronic_pe", "true_filling_defect_not_pe",
    "rightsided_pe", "acute_and_chronic_pe", "central_pe", "indeterminate",
)
#: exam-level columns: identical on every row of a study
EXAM_COLUMNS: tuple[str, ...] = RSNA_COLUMNS[4:]

DEFAULT_DIFFICULTY = 0.3  # tuned on the demo profile, see the module docstring
IMAGE_SIZE = 512          # pixels per side in the DICOM files
RENDER_SIZE = 256         # anatomy is drawn at half resolution, then upsampled smoothly
Z_SUBSAMPLES = 2          # sub-slices averaged per slice (partial volume along z)
HU_INTERCEPT = -1024      # RescaleIntercept: stored = HU + 1024
PADDING_STORED = -2000    # PixelPaddingValue outside the reconstruction circle
MIN_DEFECT_MM2 = 10.0     # smallest visible filling defect (mm^2 on a slice) labelled as PE
INSTITUTION = "Synthetic General Hospital"
MARKER = ".pe_phantom"    # written in out_dir: lets a re-run replace its own old phantom

_FIRST = ("Jane", "John", "Maria", "Ahmed", "Li", "Olga", "Pierre", "Fatima", "Kenji", "Ana",
          "Lucas", "Noor", "Elena", "Samuel", "Ines", "Tomas", "Aisha", "Victor", "Mei", "Hugo")
_LAST = ("Doe", "Roe", "Smith", "Peeters", "Janssens", "Garcia", "Nowak", "Dubois", "Rossi",
         "Novak", "Kim", "Okafor", "Silva", "Muller", "Haddad", "Ivanova", "Tanaka", "Moreau")
_RLE, _J2K = "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90"


# --------------------------------------------------------------------------- planning

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
        self.p0.append(np.asarray(p0, float))
        self.p1.append(np.asarray(p1, float))
        self.r.append(float(r))
        self.w.append(float(w))
        self.side.append(int(side))
        self.main.append(bool(main))

    def __len__(self):
        return len(self.r)


@dataclass
class PatientPlan:
    """Everything drawn at random for one patient; :func:`render_patient` is deterministic."""

    index: int
    positive: bool
    fov: float                 # mm covered by the 512 pixels
    dz: float                  # slice spacing = thickness, mm
    z: np.ndarray              # (M,) slice centres, ascending, mm
    body: dict                 # scalar anatomy parameters (sizes, HU levels)
    arteries: Tubes            # pulmonary arteries (contrast)
    aorta: Tubes               # aorta (body["aorta_hu"])
    cava: Tubes                # superior vena cava, dense contrast inflow (body["svc_hu"])
    veins: Tubes               # pulmonary veins (body["aorta_hu"])
    airways: Tubes             # trachea and bronchi
    emboli: Tubes              # filling defects (side of their artery)
    flows: Tubes               # contrast-mixing artefacts
    nodes: Tubes               # lymph nodes
    noise: float               # HU, white-equivalent noise level
    motion: tuple[int, int, float, float] | None   # (first, last slice, dy mm, ghost weight)
    streaks: tuple[int, int, float] | None         # (first, last slice, amplitude HU)
    exam: dict = field(default_factory=dict)       # qa_motion, qa_contrast, flow_artifact, ...


# Task knobs at three anchor difficulties; _difficulty interpolates linearly between them.
# The middle one is DEFAULT_DIFFICULTY, tuned on the demo profile (see the module docstring).
_KNOBS = {
    #                  easy (0)      default        hard (1)
    "clot_radius": ((0.85, 0.97), (0.80, 0.95), (0.55, 0.70)),  # fraction of artery radius
    "clot_artery_min": (11.0, 10.0, 4.0),       # mm, narrowest artery that gets a clot
    "clot_count": ((3, 5), (3, 4), (1, 2)),       # emboli per positive patient
    "clot_half_length": ((14.0, 26.0), (12.0, 24.0), (6.0, 16.0)),  # mm along the artery
    "nodes": (0.5, 1.0, 6.0),                   # mean lymph nodes per patient
    "flow_p": (0.1, 0.2, 0.6),                  # chance of a contrast-mixing artefact
    "flow_drop": ((0.2, 0.4), (0.25, 0.45), (0.6, 0.8)),  # HU drop, fraction of (artery - 40)
    "noise": ((6.0, 14.0), (8.0, 18.0), (20.0, 40.0)),     # HU
    "streak_p": (0.1, 0.2, 0.5),
    "streak_hu": (60.0, 80.0, 300.0),
    "motion_p": (0.05, 0.2, 0.3),
}


def _difficulty(d: float) -> dict:
    """Task knobs at ``difficulty`` d in [0, 1]: piecewise linear through the anchors."""
    if d <= DEFAULT_DIFFICULTY:
        i, t = 0, d / DEFAULT_DIFFICULTY
    else:
        i, t = 1, (d - DEFAULT_DIFFICULTY) / (1.0 - DEFAULT_DIFFICULTY)
    knobs = {}
    for name, anchors in _KNOBS.items():
        lo, hi = np.asarray(anchors[i], float), np.asarray(anchors[i + 1], float)
        value = lo * (1.0 - t) + hi * t
        knobs[name] = tuple(value.tolist()) if value.ndim else float(value)
    knobs["clot_count"] = tuple(int(round(c)) for c in knobs["clot_count"])
    return knobs


def _unit(v):
    return v / np.linalg.norm(v)


def _perpendicular(rng, axis):
    """A random unit vector perpendicular to ``axis``."""
    v = rng.normal(size=3)
    v -= v.dot(axis) * axis
    return _unit(v)


def _inside_ellipsoid(p, centre, axes, scale=1.0):
    return float(np.sum(((p - centre) / (np.asarray(axes) * scale)) ** 2)) < 1.0


def _grow_tree(rng, tubes, start, direction, length, radius, side, lung, heart, depth):
    """Grow a branching vessel from ``start`` inside the ``lung`` ellipsoid (centre, axes).

    Each branch splits in two, thinner and shorter, at 25-45 degrees; a branch that would
    leave the lung or enter the heart is turned (new random deviation) and shortened.
    """
    for attempt in range(6):
        end = start + direction * length
        if _inside_ellipsoid(end, *lung, scale=0.92) and not _inside_ellipsoid(end, *heart):
            break
        direction = _unit(direction + 0.6 * _perpendicular(rng, direction))
        length *= 0.8
    else:
        return
    tubes.add(start, end, radius, side=side)
    if depth == 0 or radius < 1.3:
        return
    for _ in range(2):
        new = _unit(direction + rng.uniform(0.45, 1.0) * _perpendicular(rng, direction))
        _grow_tree(rng, tubes, end, new, length * rng.uniform(0.75, 0.92),
                   radius * rng.uniform(0.66, 0.8), side, lung, heart, depth - 1)


def _point_in_window(rng, p0, p1, zlo, zhi):
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


def _mediastinum(rng, body, sx, sy) -> tuple[Tubes, Tubes, Tubes]:
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
            airways.add(hilum, hilum + 32.0 * _unit(np.array(d)), 4.0)
    return aorta, cava, airways


def _pulmonary_vessels(rng, body, sx, sy, z) -> tuple[Tubes, Tubes]:
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
            d = _unit(np.array(d) + rng.normal(scale=0.12, size=3))
            _grow_tree(rng, arteries, hilum, d, rng.uniform(35.0, 50.0), rng.uniform(8.0, 10.0),
                       side, lungs[side], heart, depth=5)
    # the veins: a second, less enhanced tree draining into the left atrium
    atrium = np.array([heart[0][0], cy - 2.0, -28.0])
    for side, sign in ((1, -1.0), (2, 1.0)):
        for d in ((sign * 0.8, 0.1, 0.5), (sign * 0.8, 0.35, -0.45)):
            d = _unit(np.array(d) + rng.normal(scale=0.12, size=3))
            _grow_tree(rng, veins, atrium, d, rng.uniform(45.0, 55.0), rng.uniform(5.5, 7.0),
                       3, lungs[side], heart, depth=4)
    # peripheral vessels, too small to model as a tree: short thin tubes scattered in the
    # scanned part of each lung, half arterial, half venous (the parenchyma's dots and lines)
    for side, (c, ax) in lungs.items():
        count = int(round(z[-1] - z[0] + 20.0))
        pts = c + ax * rng.uniform(-1, 1, (4 * count, 3))
        pts[:, 2] = rng.uniform(z[0] - 10.0, z[-1] + 10.0, 4 * count)
        keep = [p for p in pts if _inside_ellipsoid(p, c, ax, 0.9)
                and not _inside_ellipsoid(p, *heart)][:count]
        for i, p in enumerate(keep):
            d = _unit(rng.normal(size=3)) * rng.uniform(4.0, 12.0)
            (arteries if i % 2 else veins).add(p - d, p + d, rng.uniform(1.3, 2.6), side=side)
    return arteries, veins


def _lesions(rng, knobs, arteries, zlo, zhi, positive, pa_hu):
    """Emboli (positives only), contrast-mixing artefacts and lymph nodes in [zlo, zhi].

    Returns:
        ``(emboli, flows, nodes, flow_hu)``: three :class:`Tubes` and the HU of the flows.
    """
    emboli, flows, nodes = Tubes(), Tubes(), Tubes()
    seen = [i for i in range(len(arteries))
            if _point_in_window(rng, arteries.p0[i], arteries.p1[i], zlo, zhi) is not None]
    pool = [i for i in seen if arteries.r[i] >= knobs["clot_artery_min"]]
    if not pool:  # a short scan that misses the wide arteries: take the widest it sees
        pool = sorted(seen, key=lambda i: -arteries.r[i])[:6]
    if positive and pool:
        weight = np.array([arteries.r[i] for i in pool]) ** 2  # clots lodge in wide arteries
        for _ in range(rng.integers(knobs["clot_count"][0], knobs["clot_count"][1] + 1)):
            i = pool[rng.choice(len(pool), p=weight / weight.sum())]
            p0, p1, rv = arteries.p0[i], arteries.p1[i], arteries.r[i]
            axis = _unit(p1 - p0)
            c = _point_in_window(rng, p0, p1, zlo, zhi)
            re = rv * rng.uniform(*knobs["clot_radius"])
            if rng.random() < 0.5:  # stuck to the wall rather than floating in the lumen
                c = c + (rv - re) * rng.uniform(0.7, 1.0) * _perpendicular(rng, axis)
            half = rng.uniform(*knobs["clot_half_length"])
            emboli.add(c - half * axis, c + half * axis, re, w=1.0, side=arteries.side[i],
                       main=arteries.main[i])
    flow_pool = [i for i in seen if arteries.r[i] >= 6.0] or seen
    if flow_pool and rng.random() < knobs["flow_p"]:
        i = flow_pool[rng.integers(len(flow_pool))]
        axis = _unit(arteries.p1[i] - arteries.p0[i])
        c = _point_in_window(rng, arteries.p0[i], arteries.p1[i], zlo, zhi)
        half = rng.uniform(8.0, 18.0)
        flows.add(c - half * axis, c + half * axis, arteries.r[i] * rng.uniform(0.6, 0.9), w=4.0)
    flow_hu = pa_hu - (pa_hu - 40.0) * rng.uniform(*knobs["flow_drop"])
    node_pool = [i for i in range(len(arteries)) if arteries.r[i] >= 4.0
                 and _point_in_window(rng, arteries.p0[i], arteries.p1[i], zlo, zhi) is not None]
    for _ in range(rng.poisson(knobs["nodes"]) if node_pool else 0):  # touching an artery
        i = node_pool[rng.integers(len(node_pool))]
        axis = _unit(arteries.p1[i] - arteries.p0[i])
        c = _point_in_window(rng, arteries.p0[i], arteries.p1[i], zlo, zhi)
        rn = rng.uniform(3.5, 7.5)
        c = c + (arteries.r[i] + 0.7 * rn) * _perpendicular(rng, axis)
        d = _unit(rng.normal(size=3)) * rng.uniform(0.0, 5.0)
        nodes.add(c - d, c + d, rn, w=1.4)
    return emboli, flows, nodes, flow_hu


def plan_patient(seed: int, index: int, positive: bool, slices: int,
                 difficulty: float = DEFAULT_DIFFICULTY) -> PatientPlan:
    """Draw the anatomy, emboli and artefacts of patient ``index`` (deterministic).

    Args:
        seed: dataset seed.
        index: patient number; patient ``index`` is the same for any dataset size.
        positive: whether to place emboli.
        slices: number of axial slices M.
        difficulty: task difficulty in [0, 1] (see :data:`_KNOBS`).

    Returns:
        A :class:`PatientPlan`.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 1]))
    knobs = _difficulty(difficulty)
    sx, sy = rng.uniform(0.9, 1.08), rng.uniform(0.9, 1.08)
    fov = float(np.clip(rng.uniform(330.0, 380.0) * max(sx, sy), 320.0, 420.0))
    # thin slices for long series, so that any series spans about the hila (<= 120 mm)
    dz = float(min(2.5, max(0.625, 120.0 / slices)))
    zc = rng.uniform(-25.0, 5.0)  # centre of the scanned range
    z = zc + dz * (np.arange(slices) - (slices - 1) / 2)
    pa_hu = rng.uniform(255.0, 395.0)
    body = dict(
        a=150.0 * sx, b=108.0 * sy, cy=rng.uniform(-12.0, 0.0), fat=rng.uniform(8.0, 24.0),
        fat_hu=rng.uniform(-115.0, -85.0), soft_hu=rng.uniform(35.0, 50.0),
        lung_hu=rng.uniform(-875.0, -825.0), pa_hu=pa_hu,
        aorta_hu=pa_hu * rng.uniform(0.45, 0.75),  # CTPA timing: systemic arteries less dense
        svc_hu=min(1200.0, pa_hu * rng.uniform(1.0, 2.6)),  # undiluted contrast inflow
        bone_hu=rng.uniform(650.0, 900.0), rib_z0=rng.uniform(0.0, 28.0),
        disc_z0=rng.uniform(0.0, 28.0), liver_top=rng.uniform(-95.0, -60.0),
        lung_tex=rng.normal(size=8),
    )
    cy, a, b = body["cy"], body["a"], body["b"]
    body["spine_y"] = cy + b - 58.0
    body["heart"] = (np.array([15.0 * sx, cy - 30.0 * sy, -58.0 + rng.uniform(-8, 8)]),
                     np.array([62.0 * sx, 52.0 * sy, 50.0]))
    body["lungs"] = {1: (np.array([-0.5 * a, cy + 5.0, 15.0]), np.array([0.42 * a, 0.8 * b, 150.0])),
                     2: (np.array([0.52 * a, cy + 8.0, 15.0]), np.array([0.4 * a, 0.78 * b, 150.0]))}
    aorta, cava, airways = _mediastinum(rng, body, sx, sy)
    arteries, veins = _pulmonary_vessels(rng, body, sx, sy, z)

    # lesions and look-alikes only where the scan sees them, away from its ends
    zlo, zhi = z[0] + 1.5 * dz, z[-1] - 1.5 * dz
    if zlo > zhi:
        zlo = zhi = (z[0] + z[-1]) / 2
    emboli, flows, nodes, body["flow_hu"] = _lesions(rng, knobs, arteries, zlo, zhi, positive,
                                                     pa_hu)
    body["node_hu"] = rng.uniform(30.0, 60.0)
    body["emb_hu"] = rng.uniform(25.0, 65.0)

    noise = rng.uniform(*knobs["noise"])
    motion = streaks = None
    m = len(z)
    if rng.random() < knobs["motion_p"]:
        first = int(rng.integers(0, m))
        motion = (first, min(m - 1, first + int(rng.integers(2, 8))), rng.uniform(3.0, 8.0),
                  rng.uniform(0.3, 0.5))
    if rng.random() < knobs["streak_p"]:
        first = int(rng.integers(0, m))
        streaks = (first, min(m - 1, first + int(rng.integers(3, 12))),
                   knobs["streak_hu"] * rng.uniform(0.5, 1.0))
    plan = PatientPlan(index, positive, fov, dz, z, body, arteries, aorta, cava, veins, airways,
                       emboli, flows, nodes, noise, motion, streaks)
    plan.exam = dict(qa_motion=int(motion is not None), qa_contrast=int(pa_hu < 275.0),
                     flow_artifact=int(len(flows) > 0),
                     rv_lv_ratio_gte_1=int(rng.random() < 0.4))
    return plan


# --------------------------------------------------------------------------- rendering

class _Grid:
    """Pixel-centre coordinates (mm) of the render grid and the sub-slice z positions."""

    def __init__(self, plan: PatientPlan, n: int = RENDER_SIZE, sub: int = Z_SUBSAMPLES):
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


def _capsules(grid: _Grid, tubes: Tubes):
    """Yield ``(box, occ)`` per capsule of ``tubes`` that the scan sees.

    ``occ``: soft occupancy in [0, 1] on the capsule's bounding box, (slices, rows, cols),
    averaged over the sub-slices of each slice (partial volume along z).
    """
    sub = grid.sub
    for p0, p1, r, w in zip(tubes.p0, tubes.p1, tubes.r, tubes.w):
        pad = r + w
        box = grid.box(np.minimum(p0, p1) - pad, np.maximum(p0, p1) + pad)
        if box is None:
            continue
        zs = grid.z[box[0].start * sub: box[0].stop * sub]
        zz = (zs - p0[2]).astype(np.float32)[:, None, None]
        yy = grid.y[box[1]][None, :, None] - np.float32(p0[1])
        xx = grid.x[box[2]][None, None, :] - np.float32(p0[0])
        d = (p1 - p0).astype(np.float32)
        l2 = float(d @ d)
        t = np.clip((xx * d[0] + yy * d[1] + zz * d[2]) / l2, 0.0, 1.0) if l2 > 0 else 0.0
        dist = np.sqrt((xx - t * d[0]) ** 2 + (yy - t * d[1]) ** 2 + (zz - t * d[2]) ** 2)
        occ = np.clip(0.5 + (r - dist) / w, 0.0, 1.0)
        yield box, occ.reshape(-1, sub, *occ.shape[1:]).mean(1)


def _paint(img, occ, value):
    """Blend ``value`` into ``img`` with occupancy ``occ`` (in place)."""
    img += occ * (value - img)


def _ellipse(x, y, cx, cy, ax, ay, w):
    """Soft occupancy of an axis-aligned ellipse on the grid (x: (nx,), y: (ny,)) -> (ny, nx)."""
    u = (x[None, :] - cx) / ax
    v = (y[:, None] - cy) / ay
    q = u * u + v * v
    grad = 2.0 * np.sqrt((u / ax) ** 2 + (v / ay) ** 2)
    return np.clip(0.5 - (q - 1.0) / np.maximum(grad, 1e-6) / w, 0.0, 1.0)


def _paint_ellipse(img, x, y, cx, cy, ax, ay, value, w, within=None):
    """Paint an ellipse into ``img`` (ny, nx), touching only its bounding box.

    ``value`` is a scalar or an (ny, nx) array; ``within`` an optional (ny, nx) occupancy
    that limits the ellipse (lungs inside the ribcage).
    """
    iy = np.searchsorted(y, [cy - ay - w, cy + ay + w])
    ix = np.searchsorted(x, [cx - ax - w, cx + ax + w])
    sl = (slice(*iy), slice(*ix))
    occ = _ellipse(x[sl[1]], y[sl[0]], cx, cy, ax, ay, w)
    if within is not None:
        occ = occ * within[sl]
    _paint(img[sl], occ, value if np.isscalar(value) else value[sl])


def _section(centre, axes, z):
    """Axes of the section of an ellipsoid at height z, or None when z misses it."""
    k = 1.0 - ((z - centre[2]) / axes[2]) ** 2
    return None if k <= 0.02 else (axes[0] * np.sqrt(k), axes[1] * np.sqrt(k))


def _background(plan: PatientPlan, grid: _Grid) -> np.ndarray:
    """Static anatomy of every slice (no vessels): (M, n, n) float32 HU."""
    bd, x, y, w = plan.body, grid.x, grid.y, grid.px
    a, b, cy, sy = bd["a"], bd["b"], bd["cy"], bd["spine_y"]
    n = len(x)
    # what does not change along z: table, body wall, the lung density field
    base = np.full((n, n), -1000.0, np.float32)
    _paint_ellipse(base, x, y, 0.0, cy + b + 16.0, 0.42 * plan.fov, 3.0, 150.0, w)  # table
    _paint_ellipse(base, x, y, 0.0, cy, a, b, bd["fat_hu"], w)
    _paint_ellipse(base, x, y, 0.0, cy, a - bd["fat"], b - bd["fat"], bd["soft_hu"], w)
    inner = _ellipse(x, y, 0.0, cy, a - bd["fat"] - 12.0, b - bd["fat"] - 12.0, w)
    tex = bd["lung_tex"]
    lung_hu = (bd["lung_hu"] + 60.0 * np.clip((y[:, None] - cy) / b, -1, 1)  # dependent part
               + 15.0 * np.sin(x[None, :] / 23.0 + tex[0]) * np.cos(y[:, None] / 19.0 + tex[1])
               ).astype(np.float32)
    # ribs: a ring just inside the body wall, cut along the angle into rib sections; each
    # rib's posterior end is high and it slopes 100 mm down towards the front, one every
    # 28 mm, so its sections slide round the ring from slice to slice
    ra, rb = a - bd["fat"] - 6.0, b - bd["fat"] - 6.0
    ring = (_ellipse(x, y, 0.0, cy, ra + 5.0, rb + 5.0, w)
            * (1.0 - _ellipse(x, y, 0.0, cy, ra - 5.0, rb - 5.0, w)))
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
            s = _section(c, ax, z)
            if s is not None:
                _paint_ellipse(img, x, y, c[0], c[1], *s, lung_hu, w, within=inner)
        for centre, axes, hu in (((-40.0, cy + 10.0, bd["liver_top"] - 90.0), (110.0, 85.0, 90.0), 65.0),
                                 ((50.0, cy + 15.0, bd["liver_top"] - 105.0), (80.0, 70.0, 90.0), 50.0)):
            s = _section(np.array(centre), axes, z)
            if s is not None:
                _paint_ellipse(img, x, y, centre[0], centre[1], *s, hu, w, within=inner)
        s = _section(hc, ha, z)
        if s is not None:
            _paint_ellipse(img, x, y, hc[0], hc[1], *s, 40.0, w)
            _paint_ellipse(img, x, y, hc[0] - 0.3 * s[0], hc[1] - 0.35 * s[1], 0.45 * s[0],
                           0.45 * s[1], bd["pa_hu"], w)       # right ventricle
            _paint_ellipse(img, x, y, hc[0] + 0.3 * s[0], hc[1] + 0.2 * s[1], 0.4 * s[0],
                           0.4 * s[1], bd["aorta_hu"], w)     # left ventricle
        _paint_ellipse(img, x, y, 0.0, cy - 62.0, 22.0, 28.0, bd["fat_hu"] + 20.0, w)  # mediastinal fat
        _paint_ellipse(img, x, y, 0.0, sy + 18.0, 34.0, 38.0, bd["soft_hu"], w)      # paraspinal
        disc = (z - bd["disc_z0"]) % 28.0 < 6.0
        _paint_ellipse(img, x, y, 0.0, sy, 19.0, 16.0, 80.0 if disc else bd["bone_hu"], w)
        if not disc:
            _paint_ellipse(img, x, y, 0.0, sy, 15.5, 12.5, 0.4 * bd["bone_hu"], w)
        _paint_ellipse(img, x, y, 0.0, sy + 26.0, 9.0, 8.0, 20.0, w)               # canal
        for cx_, cy_, ax_, ay_ in ((-15.0, sy + 31.0, 8.0, 5.0), (15.0, sy + 31.0, 8.0, 5.0),
                                   (0.0, sy + 44.0, 4.5, 10.0)):
            _paint_ellipse(img, x, y, cx_, cy_, ax_, ay_, 0.85 * bd["bone_hu"], w)
        _paint_ellipse(img, x, y, 0.0, cy - b + bd["fat"] + 8.0, 14.0, 5.0, 0.7 * bd["bone_hu"], w)
        dz = (z - bd["rib_z0"] + rib_drop) % 28.0
        on = rib_allowed & (np.minimum(dz, 28.0 - dz) < 4.0)
        _paint(img, ring * on[angle_bin], bd["bone_hu"])
    return out


@dataclass
class RenderedPatient:
    """Output of :func:`render_patient` (slices ascending in z).

    ``stored``: (M, 512, 512) int16 stored values (HU + 1024, padding outside the circle);
    ``labels``: (M,) uint8 pe_present_on_image; ``defect_mm2``: (M,) visible clot area;
    ``defect``, ``lumen``, ``flow``, ``node``: (M, 256, 256) float32 occupancies of clots,
    arteries, mixing artefacts and lymph nodes at render resolution;
    ``sides``: set of artery sides (0 trunk, 1 right, 2 left) with a visible clot;
    ``central``: whether a visible clot sits in the trunk or a main pulmonary artery.
    """

    stored: np.ndarray
    labels: np.ndarray
    defect_mm2: np.ndarray
    defect: np.ndarray
    lumen: np.ndarray
    flow: np.ndarray
    node: np.ndarray
    sides: set
    central: bool


def _upsample2(img: np.ndarray) -> np.ndarray:
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


def _visible_area(defect: np.ndarray, px2: float) -> np.ndarray:
    """Clot area per slice (mm^2) counting pixels at least half filled by clot: (M,)."""
    return np.where(defect >= 0.5, defect, 0.0).sum((1, 2)) * px2


def render_patient(plan: PatientPlan) -> RenderedPatient:
    """Render the slices of ``plan`` and label them from the rendered clots.

    Returns:
        A :class:`RenderedPatient`.
    """
    grid = _Grid(plan)
    m, n = len(plan.z), RENDER_SIZE
    bd = plan.body
    hu = _background(plan, grid)
    walls = Tubes(plan.airways.p0, plan.airways.p1, [r + 1.5 for r in plan.airways.r], plan.airways.w)
    for tubes, value in ((walls, bd["soft_hu"]), (plan.airways, -1000.0),
                         (plan.veins, bd["aorta_hu"]), (plan.aorta, bd["aorta_hu"]),
                         (plan.cava, bd["svc_hu"])):
        for box, occ in _capsules(grid, tubes):
            _paint(hu[box], occ, value)
    lumen = np.zeros((m, n, n), np.float32)
    for box, occ in _capsules(grid, plan.arteries):
        _paint(hu[box], occ, bd["pa_hu"])
        np.maximum(lumen[box], occ, out=lumen[box])
    flow = np.zeros_like(lumen)
    for box, occ in _capsules(grid, plan.flows):  # mixing artefact: only inside the lumen
        occ = occ * lumen[box]
        _paint(hu[box], occ, bd["flow_hu"])
        np.maximum(flow[box], occ, out=flow[box])
    defect = np.zeros_like(lumen)
    sides, central = set(), False
    px2 = grid.px ** 2
    for (box, occ), side, main in zip(_capsules(grid, plan.emboli), plan.emboli.side,
                                      plan.emboli.main):
        occ = occ * lumen[box]  # a clot is only seen where it displaces contrast
        _paint(hu[box], occ, bd["emb_hu"])
        np.maximum(defect[box], occ, out=defect[box])
        if _visible_area(occ, px2).max() >= MIN_DEFECT_MM2:
            sides.add(side)
            central |= bool(main)
    node = np.zeros_like(lumen)
    for box, occ in _capsules(grid, plan.nodes):  # lymph nodes sit outside the lumen
        occ = occ * (1.0 - lumen[box])
        _paint(hu[box], occ, bd["node_hu"])
        np.maximum(node[box], occ, out=node[box])
    # the field of view was drawn from the dataset seed, so the noise differs between seeds
    rng = np.random.default_rng(np.random.SeedSequence([plan.index, 7, int(plan.fov * 1000)]))
    if plan.motion is not None:  # respiratory ghost: the slice mixed with a shifted copy
        first, last, dy, g = plan.motion
        shift = max(1, int(round(dy / grid.px)))
        for k in range(first, last + 1):
            hu[k] = (1 - g) * hu[k] + g * np.roll(hu[k], shift, axis=0)
    if plan.streaks is not None:  # bright/dark streaks radiating from the dense vena cava
        first, last, amp = plan.streaks
        cx, cy = -44.0, bd["cy"] - 35.0
        ang = np.arctan2(grid.y[:, None] - cy, grid.x[None, :] - cx)
        dist = np.hypot(grid.y[:, None] - cy, grid.x[None, :] - cx)
        body = _ellipse(grid.x, grid.y, 0.0, bd["cy"], bd["a"], bd["b"], grid.px)
        for k in range(first, last + 1):
            field_ = np.zeros((n, n), np.float32)
            for t, s in zip(rng.uniform(-np.pi, np.pi, 8), rng.choice([-1.0, 1.0], 8)):
                da = np.angle(np.exp(1j * (ang - t)))
                field_ += s * np.exp(-(da / 0.012) ** 2)
            hu[k] += amp * field_ * np.exp(-dist / 120.0) * body
    # noise: half correlated (drawn at render resolution), half fine-grained
    hu += rng.standard_normal(hu.shape, np.float32) * np.float32(plan.noise * 0.8)
    big = _upsample2(hu)
    big += 0.5 - HU_INTERCEPT  # + 0.5: astype truncates, and stored values are >= 0 here
    stored = np.clip(big, 0.0, 4095.0, out=big).astype(np.int16)
    # fine-grained noise: uniform integers are 5x cheaper than normals at 512x512, and
    # averaging over pixels makes them Gaussian anyway; std = k / sqrt(3)
    k = max(1, int(round(plan.noise * 0.6 * np.sqrt(3))))
    stored += rng.integers(-k, k + 1, stored.shape, dtype=np.int16)
    c = (np.arange(IMAGE_SIZE) + 0.5 - IMAGE_SIZE / 2)
    stored[:, (c[:, None] ** 2 + c[None, :] ** 2) > (IMAGE_SIZE / 2) ** 2] = PADDING_STORED

    area = _visible_area(defect, px2)
    return RenderedPatient(stored, (area >= MIN_DEFECT_MM2).astype(np.uint8), area, defect,
                           lumen, flow, node, sides, central)


def make_patient(seed: int, index: int, positive: bool, slices: int,
                 difficulty: float = DEFAULT_DIFFICULTY) -> tuple[PatientPlan, RenderedPatient]:
    """Plan and render one patient; a positive whose clots all miss the scan is redrawn.

    Returns:
        ``(plan, rendered)``; deterministic in its arguments.
    """
    plan = plan_patient(seed, index, positive, slices, difficulty)
    rendered = render_patient(plan)
    for attempt in range(1, 6):
        if not positive or rendered.labels.any():
            break
        plan = plan_patient(seed + 7919 * attempt, index, positive, slices, difficulty)
        rendered = render_patient(plan)
    return plan, rendered


def assign(patients: int, positive_fraction: float, compressed_fraction: float,
           seed: int) -> tuple[set[int], dict[int, str]]:
    """Which patients get emboli, and which series are compressed with which transfer syntax.

    Returns:
        ``(positives, syntax)``: the indices of positive patients (exactly
        ``round(positive_fraction * patients)``) and ``{index: transfer syntax UID}`` for the
        compressed series.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0]))
    positives = set(rng.permutation(patients)[: int(round(positive_fraction * patients))].tolist())
    compressed = rng.permutation(patients)[: int(round(compressed_fraction * patients))]
    # RLE twice as often as JPEG 2000, whose encoder costs 50 ms a slice
    syntax = {int(i): (_RLE, _RLE, _J2K)[j % 3] for j, i in enumerate(compressed)}
    return positives, syntax


# --------------------------------------------------------------------------- writing

def _identity(rng, index: int) -> dict:
    """A fake but realistic-looking identity, so that de-identification is always exercised."""
    female = bool(rng.random() < 0.5)
    first = _FIRST[rng.integers(len(_FIRST))]
    birth = f"{rng.integers(1935, 2000)}{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}"
    study = f"{rng.integers(2014, 2021)}{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}"
    return dict(
        PatientName=f"{_LAST[rng.integers(len(_LAST))]}^{first}-{index:04d}",
        PatientID=f"PHX-{rng.integers(10000, 100000)}",
        PatientBirthDate=birth, PatientSex="F" if female else "M",
        StudyDate=study, SeriesDate=study, ContentDate=study,
        StudyTime=f"{rng.integers(7, 20):02d}{rng.integers(0, 60):02d}{rng.integers(0, 60):02d}",
        AccessionNumber=f"ACC{rng.integers(10**6, 10**7)}",
        InstitutionName=INSTITUTION,
        ReferringPhysicianName=f"{_LAST[rng.integers(len(_LAST))]}^{_FIRST[rng.integers(len(_FIRST))]}",
    )


def _uid(seed: int, *parts) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["pe-phantom", str(seed), *map(str, parts)]))


def _series_header(plan: PatientPlan, ident: dict, study: str, series: str, frame: str):
    """The DICOM dataset shared by every slice of a series (per-slice fields set later)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, PYDICOM_IMPLEMENTATION_UID

    ps = round(plan.fov / IMAGE_SIZE, 6)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SOPClassUID = CTImageStorage
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
    for key, value in ident.items():
        setattr(ds, key, value)
    ds.Modality, ds.Manufacturer = "CT", "PE-PHANTOM"
    ds.StudyDescription = "CT PULMONARY ANGIOGRAM (synthetic phantom)"
    ds.SeriesDescription, ds.BodyPartExamined = "CTPA 512 axial", "CHEST"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PatientPosition, ds.KVP, ds.SeriesNumber = "HFS", 100, 1
    ds.ImagePositionPatient = [round(-plan.fov / 2 + ps / 2, 4)] * 2 + [0.0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceThickness = ds.SpacingBetweenSlices = round(plan.dz, 4)
    ds.PixelSpacing = [ps, ps]
    ds.Rows = ds.Columns = IMAGE_SIZE
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = HU_INTERCEPT, 1, "HU"
    ds.WindowCenter, ds.WindowWidth = 100, 700
    ds.add_new(0x00280120, "SS", PADDING_STORED)  # PixelPaddingValue
    return ds


def _write_series(out_dir: Path, seed: int, index: int, positive: bool, slices: int,
                  difficulty: float, transfer_syntax: str | None) -> list[dict]:
    """Plan, render and write one patient; return its ``train.csv`` rows (sorted by SOP UID)."""
    from pydicom.uid import ExplicitVRLittleEndian

    plan, rendered = make_patient(seed, index, positive, slices, difficulty)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 2]))
    ident = _identity(rng, index)
    study, series, frame = (_uid(seed, index, k) for k in ("study", "series", "frame"))
    series_dir = out_dir / "train" / study / series
    series_dir.mkdir(parents=True, exist_ok=True)

    pe = bool(rendered.labels.any())
    exam = {c: 0 for c in EXAM_COLUMNS}
    exam.update(plan.exam)
    exam["negative_exam_for_pe"] = int(not pe)
    exam["rv_lv_ratio_gte_1"] = int(pe and plan.exam["rv_lv_ratio_gte_1"])
    exam["rv_lv_ratio_lt_1"] = int(pe and not plan.exam["rv_lv_ratio_gte_1"])
    exam["rightsided_pe"] = int(1 in rendered.sides)
    exam["leftsided_pe"] = int(2 in rendered.sides)
    exam["central_pe"] = int(rendered.central)

    ds = _series_header(plan, ident, study, series, frame)
    m = len(plan.z)
    rows = []
    for k in range(m):  # InstanceNumber 1 is the most cranial slice, as scanners number them
        sop = _uid(seed, index, "sop", k)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = sop
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.InstanceNumber = m - k
        ds.ImagePositionPatient = ds.ImagePositionPatient[:2] + [round(float(plan.z[k]), 4)]
        ds.SliceLocation = round(float(plan.z[k]), 4)
        arr = rendered.stored[k]
        ds.PixelData = arr.tobytes()
        if transfer_syntax is not None:
            ds.compress(transfer_syntax, arr, encoding_plugin="pylibjpeg",
                        generate_instance_uid=False)
        ds.save_as(series_dir / f"{sop}.dcm", enforce_file_format=True)
        rows.append(dict(StudyInstanceUID=study, SeriesInstanceUID=series, SOPInstanceUID=sop,
                         pe_present_on_image=int(rendered.labels[k]), **exam))
    return sorted(rows, key=lambda r: r["SOPInstanceUID"])


def _write_series_task(args: tuple) -> list[dict]:
    return _write_series(*args)


def generate(out_dir, patients: int = 40, slices_per_patient: int = 40,
             positive_fraction: float = 0.5, seed: int = 0, *,
             difficulty: float = DEFAULT_DIFFICULTY, compressed_fraction: float = 0.25,
             workers: int = 1, progress: bool = False) -> Path:
    """Write the phantom as an RSNA-layout folder.

    Args:
        out_dir: target folder; gets ``train.csv`` and ``train/<Study>/<Series>/<SOP>.dcm``.
            A previous phantom there is replaced; any other ``train/`` folder is refused.
        patients: number of patients (one study with one series each).
        slices_per_patient: axial slices per series (512x512 each).
        positive_fraction: share of patients with emboli (rounded to whole patients).
        seed: everything is a function of it; the same seed gives identical files.
        difficulty: in [0, 1]; see the module docstring.
        compressed_fraction: share of series written with a lossless compressed transfer
            syntax (RLE Lossless, and JPEG 2000 Lossless for every third), as in RSNA data.
        workers: processes, one patient per task; the output does not depend on it.
        progress: show a progress bar.

    Returns:
        The path of ``train.csv``.

    Raises:
        ValueError: a count below 1, or a fraction or difficulty outside [0, 1].
        FileExistsError: ``out_dir/train`` exists and was not written by this module.
    """
    if patients < 1 or slices_per_patient < 1 or workers < 1:
        raise ValueError("patients, slices_per_patient and workers must be >= 1")
    for name, value in (("positive_fraction", positive_fraction), ("difficulty", difficulty),
                        ("compressed_fraction", compressed_fraction)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    out_dir = Path(out_dir)
    if (out_dir / "train").exists():
        if not (out_dir / MARKER).exists():
            raise FileExistsError(f"{out_dir / 'train'} exists and is not a phantom; "
                                  "choose an empty folder")
        shutil.rmtree(out_dir / "train")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text("written by pe_utils.phantom.synthetic; safe to delete\n")

    positives, syntax = assign(patients, positive_fraction, compressed_fraction, seed)
    tasks = [(out_dir, int(seed), i, i in positives, int(slices_per_patient), float(difficulty),
              syntax.get(i)) for i in range(patients)]
    if workers == 1:
        results = map(_write_series_task, tasks)
    else:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=workers)
        results = pool.map(_write_series_task, tasks)
    if progress:
        from tqdm.auto import tqdm

        results = tqdm(results, total=patients, desc="phantom", unit="patient")
    try:
        rows = [row for series_rows in results for row in series_rows]
    finally:
        if workers > 1:
            pool.shutdown()
    path = out_dir / "train.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RSNA_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m pe_utils synth --out DIR [--patients N] ...``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m pe_utils synth", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output folder (RSNA layout)")
    parser.add_argument("--patients", type=int, default=40)
    parser.add_argument("--slices-per-patient", type=int, default=40)
    parser.add_argument("--positive-fraction", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--difficulty", type=float, default=DEFAULT_DIFFICULTY,
                        help="0 easy (big central clots) .. 1 hard (small clots, more look-alikes)")
    parser.add_argument("--compressed-fraction", type=float, default=0.25)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        path = generate(args.out, args.patients, args.slices_per_patient, args.positive_fraction,
                        args.seed, difficulty=args.difficulty,
                        compressed_fraction=args.compressed_fraction, workers=args.workers,
                        progress=args.progress)
    except (ValueError, FileExistsError) as err:
        print(f"error: {err}")
        return 2
    print(f"wrote {path}")
    return 0
