"""Rendering a plan: the tubes painted over the static body, artefacts, noise, stored values.

:func:`render_patient` is deterministic in its plan. It also returns the masks of what it
painted (clots, arterial lumen, contrast-mixing artefacts, lymph nodes), and labels each
slice from the clots as rendered: a slice is positive when its pixels at least half filled
by clot (after partial volume) cover at least :data:`MIN_DEFECT_MM2`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .anatomy import DEFAULT_DIFFICULTY, PatientPlan, plan_patient
from .body import paint_background
from .emboli import MIN_DEFECT_MM2, visible_area
from .paint import RENDER_SIZE, Grid, capsules, ellipse, paint, upsample2
from .vessels import Tubes

IMAGE_SIZE = 512          # pixels per side in the DICOM files
HU_INTERCEPT = -1024      # RescaleIntercept: stored = HU + 1024
PADDING_STORED = -2000    # PixelPaddingValue outside the reconstruction circle


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


def render_patient(plan: PatientPlan) -> RenderedPatient:
    """Render the slices of ``plan`` and label them from the rendered clots.

    Returns:
        A :class:`RenderedPatient`.
    """
    grid = Grid(plan)
    m, n = len(plan.z), RENDER_SIZE
    bd = plan.body
    hu = paint_background(plan, grid)
    walls = Tubes(plan.airways.p0, plan.airways.p1, [r + 1.5 for r in plan.airways.r], plan.airways.w)
    for tubes, value in ((walls, bd["soft_hu"]), (plan.airways, -1000.0),
                         (plan.veins, bd["aorta_hu"]), (plan.aorta, bd["aorta_hu"]),
                         (plan.cava, bd["svc_hu"])):
        for box, occ in capsules(grid, tubes):
            paint(hu[box], occ, value)
    lumen = np.zeros((m, n, n), np.float32)
    for box, occ in capsules(grid, plan.arteries):
        paint(hu[box], occ, bd["pa_hu"])
        np.maximum(lumen[box], occ, out=lumen[box])
    flow = np.zeros_like(lumen)
    for box, occ in capsules(grid, plan.flows):  # mixing artefact: only inside the lumen
        occ = occ * lumen[box]
        paint(hu[box], occ, bd["flow_hu"])
        np.maximum(flow[box], occ, out=flow[box])
    defect = np.zeros_like(lumen)
    sides, central = set(), False
    px2 = grid.px ** 2
    for (box, occ), side, main in zip(capsules(grid, plan.emboli), plan.emboli.side,
                                      plan.emboli.main):
        occ = occ * lumen[box]  # a clot is only seen where it displaces contrast
        paint(hu[box], occ, bd["emb_hu"])
        np.maximum(defect[box], occ, out=defect[box])
        if visible_area(occ, px2).max() >= MIN_DEFECT_MM2:
            sides.add(side)
            central |= bool(main)
    node = np.zeros_like(lumen)
    for box, occ in capsules(grid, plan.nodes):  # lymph nodes sit outside the lumen
        occ = occ * (1.0 - lumen[box])
        paint(hu[box], occ, bd["node_hu"])
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
        body = ellipse(grid.x, grid.y, 0.0, bd["cy"], bd["a"], bd["b"], grid.px)
        for k in range(first, last + 1):
            field_ = np.zeros((n, n), np.float32)
            for t, s in zip(rng.uniform(-np.pi, np.pi, 8), rng.choice([-1.0, 1.0], 8)):
                da = np.angle(np.exp(1j * (ang - t)))
                field_ += s * np.exp(-(da / 0.012) ** 2)
            hu[k] += amp * field_ * np.exp(-dist / 120.0) * body
    # noise: half correlated (drawn at render resolution), half fine-grained
    hu += rng.standard_normal(hu.shape, np.float32) * np.float32(plan.noise * 0.8)
    big = upsample2(hu)
    big += 0.5 - HU_INTERCEPT  # + 0.5: astype truncates, and stored values are >= 0 here
    stored = np.clip(big, 0.0, 4095.0, out=big).astype(np.int16)
    # fine-grained noise: uniform integers are 5x cheaper than normals at 512x512, and
    # averaging over pixels makes them Gaussian anyway; std = k / sqrt(3)
    k = max(1, int(round(plan.noise * 0.6 * np.sqrt(3))))
    stored += rng.integers(-k, k + 1, stored.shape, dtype=np.int16)
    c = (np.arange(IMAGE_SIZE) + 0.5 - IMAGE_SIZE / 2)
    stored[:, (c[:, None] ** 2 + c[None, :] ** 2) > (IMAGE_SIZE / 2) ** 2] = PADDING_STORED

    area = visible_area(defect, px2)
    return RenderedPatient(stored, (area >= MIN_DEFECT_MM2).astype(np.uint8), area, defect,
                           lumen, flow, node, sides, central)


def make_patient(seed: int, index: int, positive: bool, slices: int,
                 difficulty: float = DEFAULT_DIFFICULTY) -> tuple[PatientPlan, RenderedPatient]:
    """Plan and render one patient (:func:`plan_patient`, :func:`render_patient`).

    Returns:
        ``(plan, rendered)``; deterministic in its arguments. ``rendered.labels`` equals
        ``plan.labels``: the plan computed them from the same clots on the same grid.
    """
    plan = plan_patient(seed, index, positive, slices, difficulty)
    return plan, render_patient(plan)
