"""How often a saliency map looks at the clot: energy in the mask and the pointing game.

The thesis could only circle "potential" emboli by eye (Fig 6.19); the phantom knows where
every clot is (``load_cache(dir).masks``), so each Grad-CAM map (:mod:`.gradcam`) is scored
against the true clot:

- :func:`energy_in_mask`: the share of the map's energy (the sum of its values) inside the
  mask dilated by ``dilate_px`` pixels (a disk), as in Score-CAM's energy-based pointing game
  (Wang et al. 2020). A uniform map scores the dilated mask's share of the image
  (``energy_chance`` of :func:`localisation_scores`), the level to beat.
- :func:`pointing_game` (Zhang et al. 2018): a hit when the map's maximum falls inside the
  dilated mask. Ties are decided without any scan order: a hit needs every pixel at the
  maximum inside, so a flat map (all zero: no positive evidence anywhere) never hits.

The dilation (``scipy.ndimage.binary_dilation``) forgives the few pixels a 4 x 4 Grad-CAM
map, upsampled, is off by; at a cache of 64-128 px a clot covers a handful of pixels.

What a map of that resolution could score: Grad-CAM on ResNet's ``layer4`` is a g x g grid
(g = side / 32 rounded up: 2 x 2 at 48-64 px, 4 x 4 at 128 px) upsampled bilinearly, so even a perfect map
spreads over a whole cell. :func:`perfect_maps` builds that perfect map (1 on the grid cells
the clot touches, 0 elsewhere, upsampled the same way), and ``localisation_scores(...,
grid=g)`` scores it beside the model (``energy_perfect``, ``pointing_perfect``): the level a
model's map is to be read against, with ``energy_chance`` below. At 2 x 2 the upsampled
maximum is a 16 x 16 plateau in a corner of a 64 px slice, so the pointing game cannot hit
a clot there even for the perfect map; pick the dilation in proportion to the cell
(measured on the demo phantom in README.md).

A slice with an empty mask (a negative slice, or a positive one without a mask) has no clot
to look at: its scores are NaN (``pointing_game`` gives False, and ``localisation_scores``
leaves it out and counts it in ``n_empty``). A map of zero energy on a non-empty mask scores
energy 0 (it puts nothing on the clot).
"""
from __future__ import annotations

import numpy as np

__all__ = ["dilate_masks", "energy_in_mask", "pointing_game", "localisation_scores", "perfect_maps"]


def _check(maps, masks) -> tuple[np.ndarray, np.ndarray]:
    maps, masks = np.asarray(maps, dtype=np.float64), np.asarray(masks)
    if maps.ndim == 2:
        maps = maps[None]
    if masks.ndim == 2:
        masks = masks[None]
    if maps.ndim != 3 or maps.shape != masks.shape:
        raise ValueError(f"maps and masks must both be (N, H, W) of the same shape, got "
                         f"{maps.shape} and {masks.shape}")
    if np.isnan(maps).any() or (maps < 0).any():
        raise ValueError("maps must be non-negative and free of NaN (Grad-CAM maps are in [0, 1])")
    return maps, masks


def dilate_masks(masks, dilate_px: int = 2) -> np.ndarray:
    """(N, H, W) bool: each mask dilated by a disk of radius ``dilate_px`` (0: as it is).

    Raises:
        ValueError: a negative ``dilate_px``.
    """
    masks = np.asarray(masks) > 0
    if dilate_px < 0:
        raise ValueError(f"dilate_px must be >= 0, got {dilate_px}")
    if dilate_px == 0 or not masks.any():
        return masks
    from scipy.ndimage import binary_dilation

    r = int(dilate_px)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = (yy ** 2 + xx ** 2) <= r * r
    structure = disk[None] if masks.ndim == 3 else disk  # no dilation across slices
    return binary_dilation(masks, structure=structure)


def energy_in_mask(maps, masks, dilate_px: int = 2) -> np.ndarray:
    """Share of each map's energy inside its dilated mask.

    Args:
        maps: (N, H, W) non-negative saliency maps (e.g. :func:`.gradcam.grad_cam`'s).
        masks: (N, H, W) clot masks (non-zero = clot), same shape.
        dilate_px: radius of the dilation, pixels.

    Returns:
        float64 (N,) in [0, 1]; NaN where the mask is empty; 0 where the map is all zero.

    Raises:
        ValueError: shapes differ, or a map has negative or NaN values.
    """
    maps, masks = _check(maps, masks)
    region = dilate_masks(masks, dilate_px)
    total = maps.sum((1, 2))
    inside = (maps * region).sum((1, 2))
    share = np.divide(inside, total, out=np.zeros_like(total), where=total > 0)
    share[~region.any((1, 2))] = np.nan
    return np.clip(share, 0.0, 1.0)


def pointing_game(maps, masks, dilate_px: int = 2) -> np.ndarray:
    """Whether each map's maximum lies inside its dilated mask.

    Ties: a hit needs every pixel at the maximum inside the dilated mask (no scan order
    decides), so a flat map never hits. An empty mask gives False (and is left out by
    :func:`localisation_scores`).

    Returns:
        bool (N,).

    Raises:
        ValueError: as :func:`energy_in_mask`.
    """
    maps, masks = _check(maps, masks)
    region = dilate_masks(masks, dilate_px)
    at_max = maps == maps.max((1, 2), keepdims=True)
    flat = at_max.all((1, 2))
    return (~(at_max & ~region).any((1, 2))) & ~flat & region.any((1, 2))


def perfect_maps(masks, grid: int) -> np.ndarray:
    """The best a ``grid`` x ``grid`` saliency map can show: 1 on the cells a clot touches.

    Args:
        masks: (N, H, W) square clot masks.
        grid: cells per side of the map before upsampling (Grad-CAM on ``layer4``: H / 32 rounded up).

    Returns:
        float32 (N, H, W): the cells' any-pooled masks upsampled bilinearly (half-pixel
        centres, edges clamped: what pytorch-grad-cam's OpenCV resize does).

    Raises:
        ValueError: non-square masks or a grid outside [1, H].
    """
    from ..data.resize import resize

    masks = np.asarray(masks) > 0
    n, h, w = masks.shape
    if h != w or not 1 <= int(grid) <= h:
        raise ValueError(f"perfect_maps needs square masks and 1 <= grid <= side, got "
                         f"{masks.shape} and grid {grid}")
    g = int(grid)
    lo = np.floor(np.arange(g) * h / g).astype(int)      # adaptive cells, as torch pools them
    hi = np.ceil((np.arange(g) + 1) * h / g).astype(int)
    cells = np.zeros((n, g, g), np.float32)
    for i in range(g):
        for j in range(g):
            cells[:, i, j] = masks[:, lo[i]:hi[i], lo[j]:hi[j]].any((1, 2))
    return np.stack([resize(c, h) for c in cells]).clip(0.0, 1.0) if n else np.zeros((0, h, w), np.float32)


def localisation_scores(maps, masks, dilate_px: int = 2, grid: int | None = None) -> dict:
    """Energy share and pointing rate over the slices whose mask is not empty.

    Args:
        maps, masks, dilate_px: as :func:`energy_in_mask`.
        grid: the map's cells per side before upsampling (``pe_utils.experiments.gradcam_runs.cam_grid``);
            given, the perfect map of that grid (:func:`perfect_maps`) is scored too.

    Returns:
        ``dict(energy_mean, pointing_rate, n, n_empty, energy_chance, dilate_px)``: the mean
        of :func:`energy_in_mask` and the share of :func:`pointing_game` hits over the ``n``
        slices with a clot; ``n_empty`` slices had an empty mask and are left out;
        ``energy_chance`` is the mean share of the image the dilated mask covers (what a
        uniform map scores in both). With ``grid``: ``grid``, ``energy_perfect`` and
        ``pointing_perfect``. Means are None when ``n`` is 0.
    """
    maps, masks = _check(maps, masks)
    region = dilate_masks(masks, dilate_px)
    keep = region.any((1, 2))
    n = int(keep.sum())
    energy = energy_in_mask(maps[keep], masks[keep], dilate_px) if n else np.zeros(0)
    hits = pointing_game(maps[keep], masks[keep], dilate_px) if n else np.zeros(0, bool)
    out = dict(energy_mean=float(energy.mean()) if n else None,
               pointing_rate=float(hits.mean()) if n else None,
               n=n, n_empty=int(len(keep) - n),
               energy_chance=float(region[keep].mean((1, 2)).mean()) if n else None,
               dilate_px=int(dilate_px))
    if grid is not None:
        best = perfect_maps(masks[keep], grid)
        out.update(grid=int(grid),
                   energy_perfect=float(energy_in_mask(best, masks[keep], dilate_px).mean()) if n else None,
                   pointing_perfect=float(pointing_game(best, masks[keep], dilate_px).mean()) if n else None)
    return out
