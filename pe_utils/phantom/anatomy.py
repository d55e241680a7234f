"""The anatomy plan: everything drawn at random for one patient, before any pixel is painted.

:func:`plan_patient` draws a patient's body sizes and HU levels, its vessels
(:mod:`pe_utils.phantom.vessels`), its look-alikes (lymph nodes, contrast-mixing
artefacts) and its scan artefacts (motion, streaks) from
``numpy.random.SeedSequence([seed, index, 1])``, then its emboli and the labels they give
(:mod:`pe_utils.phantom.emboli`); :func:`pe_utils.phantom.render.render_patient` then paints
the plan deterministically. ``difficulty`` moves the task knobs between three
anchors (:data:`KNOBS`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .emboli import place_emboli
from .vessels import (Tubes, draw_mediastinum, draw_pulmonary_vessels, perpendicular, point_in_window,
                      unit)

DEFAULT_DIFFICULTY = 0.3  # tuned on the demo profile, see pe_utils.phantom's docstring
SCAN_MM = 300.0           # a CTPA covers the whole chest, apex to diaphragm
MAX_DZ = 5.0              # thickest slices (short series); thinner ones when there are more
LOOKALIKE_MM = 120.0      # the look-alike rates below are per this many mm of scan


@dataclass
class PatientPlan:
    """Everything drawn at random for one patient; rendering it is deterministic."""

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
    labels: np.ndarray | None = None               # (M,) uint8 pe_present_on_image, as rendered


# Task knobs at three anchor difficulties; difficulty_knobs interpolates linearly between them.
# The middle one is DEFAULT_DIFFICULTY (every profile but the demo, the thesis's among them:
# at exactly that difficulty only the middle column is used, so the easy column never reaches it).
# The easy column (0) is the demo's phantom (generator 2.2), made for a CPU network trained for a
# minute: central clots only (the trunk and the two main arteries), partly occluding (a dark defect
# inside a rim of contrast, the "polo mint" sign, where a near-occlusive clot looks like the soft
# tissue around it), with few look-alikes and little noise. Generator 2.1's easy column also put 40 %
# of the clots in lobar arteries, at 0.50-0.75 of the radius: a lobar clot is 34-78 mm^2, 2-4 pixels
# across at the demo's 48 px, and the demo's ResNet10 ranked them with the negatives (1/3, seed 0:
# positives under 20 mask pixels at 128 px had mean probability 0.38; test AUC 0.919 and F1 0.49,
# and 0.92-0.93 whatever the lr, optimizer, epochs or 64 px). This column: test AUC 0.982 and F1 0.83
# at the same settings (measured 2026-12-03; README, "The demo profile, measured"). Before 2.1, generator
# 2.0's easy column (0.85-0.97 of the radius; 30/40/25/5 % central/lobar/segmental/subsegmental;
# nodes 0.5, flows 0.1, noise 6-14 HU) gave a ResNet18 (64 px, central 75 % crop, 8 epochs) test AUC
# 0.84 at 1/3 with F1 0.51, where 2.1's gave 0.89 and 0.60 (measured 2026-12-02)
KNOBS = {
    #                  easy (0)      default        hard (1)
    "clot_radius": ((0.60, 0.80), (0.80, 0.95), (0.55, 0.70)),  # fraction of artery radius
    # chance of each artery class of emboli.CLASSES: central, lobar, segmental, subsegmental
    "clot_mix": ((1.0, 0.0, 0.0, 0.0), (0.12, 0.30, 0.40, 0.18), (0.04, 0.16, 0.45, 0.35)),
    "clot_count": ((2, 4), (1, 4), (1, 4)),       # emboli per positive patient
    "clot_length": (1.3, 1.0, 0.8),             # scales the class's half-length range
    "nodes": (0.2, 1.0, 6.0),                   # mean lymph nodes per LOOKALIKE_MM of scan
    "flow_p": (0.05, 0.2, 0.6),                 # mean contrast-mixing artefacts per LOOKALIKE_MM
    "flow_drop": ((0.2, 0.4), (0.25, 0.45), (0.6, 0.8)),  # HU drop, fraction of (artery - 40)
    "noise": ((4.0, 8.0), (8.0, 18.0), (20.0, 40.0)),      # HU
    "streak_p": (0.05, 0.2, 0.5),
    "streak_hu": (60.0, 80.0, 300.0),
    "motion_p": (0.02, 0.2, 0.3),
}


def difficulty_knobs(d: float) -> dict:
    """Task knobs at ``difficulty`` d in [0, 1]: piecewise linear through the anchors."""
    if d <= DEFAULT_DIFFICULTY:
        i, t = 0, d / DEFAULT_DIFFICULTY
    else:
        i, t = 1, (d - DEFAULT_DIFFICULTY) / (1.0 - DEFAULT_DIFFICULTY)
    knobs = {}
    for name, anchors in KNOBS.items():
        lo, hi = np.asarray(anchors[i], float), np.asarray(anchors[i + 1], float)
        value = lo * (1.0 - t) + hi * t
        knobs[name] = tuple(value.tolist()) if value.ndim else float(value)
    knobs["clot_count"] = tuple(int(round(c)) for c in knobs["clot_count"])
    return knobs


def draw_lookalikes(rng, knobs, arteries, zlo, zhi, pa_hu, scale):
    """Contrast-mixing artefacts and lymph nodes in [zlo, zhi], in negatives and positives alike.

    Args:
        scale: scan length in units of :data:`LOOKALIKE_MM` (the knobs are rates per unit).

    Returns:
        ``(flows, nodes, flow_hu)``: two :class:`Tubes` and the HU of the flows.
    """
    flows, nodes = Tubes(), Tubes()
    seen = [i for i in range(len(arteries))
            if point_in_window(rng, arteries.p0[i], arteries.p1[i], zlo, zhi) is not None]
    flow_pool = [i for i in seen if arteries.r[i] >= 6.0] or seen
    for _ in range(rng.poisson(knobs["flow_p"] * scale) if flow_pool else 0):
        i = flow_pool[rng.integers(len(flow_pool))]
        axis = unit(arteries.p1[i] - arteries.p0[i])
        c = point_in_window(rng, arteries.p0[i], arteries.p1[i], zlo, zhi)
        half = rng.uniform(8.0, 18.0)
        flows.add(c - half * axis, c + half * axis, arteries.r[i] * rng.uniform(0.6, 0.9), w=4.0)
    flow_hu = pa_hu - (pa_hu - 40.0) * rng.uniform(*knobs["flow_drop"])
    node_pool = [i for i in seen if arteries.r[i] >= 4.0]
    for _ in range(rng.poisson(knobs["nodes"] * scale) if node_pool else 0):  # touching an artery
        i = node_pool[rng.integers(len(node_pool))]
        axis = unit(arteries.p1[i] - arteries.p0[i])
        c = point_in_window(rng, arteries.p0[i], arteries.p1[i], zlo, zhi)
        rn = rng.uniform(3.5, 7.5)
        c = c + (arteries.r[i] + 0.7 * rn) * perpendicular(rng, axis)
        d = unit(rng.normal(size=3)) * rng.uniform(0.0, 5.0)
        nodes.add(c - d, c + d, rn, w=1.4)
    return flows, nodes, flow_hu


def plan_patient(seed: int, index: int, positive: bool, slices: int,
                 difficulty: float = DEFAULT_DIFFICULTY) -> PatientPlan:
    """Draw the anatomy, emboli and artefacts of patient ``index`` (deterministic).

    The anatomy and look-alikes come from ``SeedSequence([seed, index, 1])`` whether the
    patient is positive or not; the clots from their own stream
    (:func:`pe_utils.phantom.emboli.place_emboli`), which also sets ``labels``.

    Args:
        seed: dataset seed.
        index: patient number; patient ``index`` is the same for any dataset size.
        positive: whether to place emboli.
        slices: number of axial slices M.
        difficulty: task difficulty in [0, 1] (see :data:`KNOBS`).

    Returns:
        A :class:`PatientPlan`.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 1]))
    knobs = difficulty_knobs(difficulty)
    sx, sy = rng.uniform(0.9, 1.08), rng.uniform(0.9, 1.08)
    fov = float(np.clip(rng.uniform(330.0, 380.0) * max(sx, sy), 320.0, 420.0))
    # the whole chest (SCAN_MM) in MAX_DZ slices, thinner slices for longer series; a short
    # series covers less, about the hila (z = 0)
    dz = float(min(MAX_DZ, max(0.625, SCAN_MM / slices)))
    zc = rng.uniform(-5.0, 15.0)  # centre of the scanned range: apex to upper abdomen
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
    aorta, cava, airways = draw_mediastinum(rng, body, sx, sy)
    arteries, veins = draw_pulmonary_vessels(rng, body, sx, sy, z)

    # lesions and look-alikes only where the scan sees them, away from its ends
    zlo, zhi = z[0] + 1.5 * dz, z[-1] - 1.5 * dz
    if zlo > zhi:
        zlo = zhi = (z[0] + z[-1]) / 2
    flows, nodes, body["flow_hu"] = draw_lookalikes(rng, knobs, arteries, zlo, zhi, pa_hu,
                                                    slices * dz / LOOKALIKE_MM)
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
                       Tubes(), flows, nodes, noise, motion, streaks)
    plan.exam = dict(qa_motion=int(motion is not None), qa_contrast=int(pa_hu < 275.0),
                     flow_artifact=int(len(flows) > 0),
                     rv_lv_ratio_gte_1=int(rng.random() < 0.4))
    plan.labels = np.zeros(m, np.uint8)
    if positive:
        place_emboli(plan, knobs, seed, zlo, zhi)
    return plan

