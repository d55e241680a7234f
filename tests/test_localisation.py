"""Energy in the mask and the pointing game on hand-made maps: inside -> 1, outside -> 0,
dilation, ties decided without a scan order, empty masks left out and counted."""
from __future__ import annotations

import numpy as np
import pytest

from pe_utils.evaluate.localisation import (dilate_masks, energy_in_mask, localisation_scores,
                                            perfect_maps, pointing_game)


def _mask(h=16, w=16, rows=slice(4, 8), cols=slice(4, 8)):
    m = np.zeros((h, w), np.uint8)
    m[rows, cols] = 1
    return m


def test_map_inside_the_mask_scores_one_and_outside_zero():
    mask = _mask()
    inside = mask.astype(np.float32) * 0.7
    outside = np.zeros((16, 16), np.float32)
    outside[12:, 12:] = 1.0
    maps, masks = np.stack([inside, outside]), np.stack([mask, mask])
    np.testing.assert_allclose(energy_in_mask(maps, masks, dilate_px=2), [1.0, 0.0])
    assert pointing_game(maps, masks, dilate_px=2).tolist() == [True, False]


def test_energy_is_the_share_inside():
    mask = _mask()
    m = np.zeros((16, 16))
    m[5, 5] = 3.0         # inside
    m[15, 0] = 1.0        # far outside
    assert energy_in_mask(m[None], mask[None], dilate_px=0)[0] == pytest.approx(0.75)


def test_dilation_catches_a_near_miss_and_is_a_disk():
    mask = _mask()
    m = np.zeros((16, 16))
    m[9, 5] = 1.0         # two rows below the mask
    assert energy_in_mask(m[None], mask[None], dilate_px=0)[0] == 0.0
    assert energy_in_mask(m[None], mask[None], dilate_px=2)[0] == 1.0
    assert pointing_game(m[None], mask[None], dilate_px=1).tolist() == [False]
    assert pointing_game(m[None], mask[None], dilate_px=2).tolist() == [True]
    point = np.zeros((1, 9, 9), np.uint8)
    point[0, 4, 4] = 1
    d = dilate_masks(point, 2)[0]
    assert d.sum() == 13 and d[4, 6] and not d[6, 6]  # a disk of radius 2, not a square
    two = np.stack([point[0], np.zeros((9, 9), np.uint8)])
    assert dilate_masks(two, 2)[1].sum() == 0  # no dilation across slices


def test_ties_need_every_maximum_inside():
    mask = _mask()
    both_in = np.zeros((16, 16))
    both_in[4, 4] = both_in[7, 7] = 1.0
    one_out = both_in.copy()
    one_out[15, 15] = 1.0
    flat = np.full((16, 16), 0.3)
    zero = np.zeros((16, 16))
    maps = np.stack([both_in, one_out, flat, zero])
    hits = pointing_game(maps, np.stack([mask] * 4), dilate_px=0)
    assert hits.tolist() == [True, False, False, False]
    # transposing or flipping cannot change the verdict: no scan order decides
    flipped = pointing_game(maps[:, ::-1, ::-1], np.stack([mask[::-1, ::-1]] * 4), dilate_px=0)
    assert flipped.tolist() == hits.tolist()


def test_flat_map_scores_the_chance_level_and_zero_map_scores_zero():
    mask = _mask()
    flat = np.full((1, 16, 16), 0.5)
    e = energy_in_mask(flat, mask[None], dilate_px=0)[0]
    assert e == pytest.approx(16 / 256)
    assert energy_in_mask(np.zeros((1, 16, 16)), mask[None], dilate_px=0)[0] == 0.0
    scores = localisation_scores(flat, mask[None], dilate_px=0)
    assert scores["energy_chance"] == pytest.approx(16 / 256)
    assert scores["energy_mean"] == pytest.approx(scores["energy_chance"])


def test_empty_masks_are_nan_left_out_and_counted():
    mask = _mask()
    empty = np.zeros_like(mask)
    good = mask * 1.0
    bad = np.zeros((16, 16))
    bad[0, 0] = 1.0
    maps = np.stack([good, bad, good])
    masks = np.stack([mask, mask, empty])
    e = energy_in_mask(maps, masks)
    assert e[:2].tolist() == [1.0, 0.0] and np.isnan(e[2])
    assert pointing_game(maps, masks).tolist() == [True, False, False]
    s = localisation_scores(maps, masks)
    assert s["n"] == 2 and s["n_empty"] == 1
    assert s["energy_mean"] == pytest.approx(0.5) and s["pointing_rate"] == pytest.approx(0.5)
    none = localisation_scores(maps[2:], masks[2:])
    assert none["n"] == 0 and none["n_empty"] == 1 and none["energy_mean"] is None


def test_bad_input_is_refused_with_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 8, 8\) and \(2, 8, 9\)"):
        energy_in_mask(np.zeros((2, 8, 8)), np.zeros((2, 8, 9)))
    with pytest.raises(ValueError, match="non-negative"):
        pointing_game(-np.ones((1, 8, 8)), np.ones((1, 8, 8)))
    with pytest.raises(ValueError, match="dilate_px"):
        dilate_masks(np.ones((1, 4, 4)), -1)


@pytest.mark.parametrize("grid", [2, 4, 5])
def test_perfect_map_is_the_pooled_mask_upsampled_like_grad_cam(grid):
    import cv2

    mask = np.zeros((1, 64, 64), np.uint8)
    mask[0, 20:23, 40:42] = 1
    best = perfect_maps(mask, grid)
    assert best.shape == (1, 64, 64) and best.dtype == np.float32
    cells = np.zeros((grid, grid), np.float32)
    for i in range(grid):
        for j in range(grid):
            rows = slice(int(np.floor(i * 64 / grid)), int(np.ceil((i + 1) * 64 / grid)))
            cols = slice(int(np.floor(j * 64 / grid)), int(np.ceil((j + 1) * 64 / grid)))
            cells[i, j] = mask[0, rows, cols].any()
    assert cells.sum() >= 1
    # pytorch-grad-cam upsamples with OpenCV's bilinear resize: the same map
    np.testing.assert_allclose(best[0], cv2.resize(cells, (64, 64)), atol=1e-5)


def test_perfect_maps_set_the_ceiling_and_a_2x2_grid_cannot_point():
    mask = np.zeros((2, 64, 64), np.uint8)
    mask[0, 24:27, 36:39] = 1
    mask[1, 40:44, 20:23] = 1
    flat = np.full((2, 64, 64), 0.5)
    s4 = localisation_scores(flat, mask, dilate_px=2, grid=4)
    assert s4["grid"] == 4 and s4["energy_perfect"] > 3 * s4["energy_chance"]
    assert s4["energy_mean"] == pytest.approx(s4["energy_chance"])
    exact = localisation_scores(flat, mask, dilate_px=0, grid=64)  # a map as fine as the mask
    assert exact["energy_perfect"] == pytest.approx(1.0) and exact["pointing_perfect"] == 1.0
    # at 2 x 2 the upsampled maximum is a 16 x 16 corner plateau: no clot inside the
    # chest can contain it, even for the perfect map
    s2 = localisation_scores(flat, mask, dilate_px=2, grid=2)
    assert s2["pointing_perfect"] == 0.0
    assert "energy_perfect" not in localisation_scores(flat, mask)
    with pytest.raises(ValueError, match="grid"):
        perfect_maps(mask, 0)
