"""Tests for pe_utils.data.fingerprint: block means of a slice, robust to +-1 flips, not to changes."""
from __future__ import annotations

import numpy as np
import pytest

from pe_utils.data.fingerprint import (GRID, TOLERANCE_HU, average_blocks, compare_fingerprints,
                                       format_fingerprint, parse_fingerprint, phantom_summary,
                                       pixel_tolerance)


def _naive_blocks(img: np.ndarray, grid: int) -> np.ndarray:
    rows = [(i * img.shape[0]) // grid for i in range(grid + 1)]
    cols = [(j * img.shape[1]) // grid for j in range(grid + 1)]
    return np.array([[img[rows[i]:rows[i + 1], cols[j]:cols[j + 1]].mean() for j in range(grid)]
                     for i in range(grid)])


@pytest.mark.parametrize("shape,grid", [((512, 512), 8), ((37, 45), 8), ((64, 48), 4)])
def test_block_means_match_a_naive_loop(shape, grid):
    img = np.random.default_rng(0).integers(-1024, 3000, shape).astype(np.float32)
    np.testing.assert_allclose(average_blocks(img, grid), _naive_blocks(img.astype(float), grid),
                               rtol=0, atol=1e-9)


def test_block_means_refuse_a_slice_smaller_than_the_grid():
    with pytest.raises(ValueError, match="at least"):
        average_blocks(np.zeros((4, 100)), grid=8)


def test_a_flipped_value_moves_a_block_by_one_4096th_a_patch_by_much_more():
    img = np.random.default_rng(1).integers(-1000, 400, (512, 512)).astype(np.float32)
    base = format_fingerprint(average_blocks(img))
    flipped = img.copy()
    flipped[[10, 300, 500], [20, 256, 7]] += [1, -1, 1]
    assert compare_fingerprints(base, format_fingerprint(average_blocks(flipped))) <= 1 / 4096 + 0.01
    patched = img.copy()
    patched[100:120, 100:120] += 100
    moved = compare_fingerprints(base, format_fingerprint(average_blocks(patched)))
    assert moved == pytest.approx(400 * 100 / 4096, abs=0.01) and moved > 50 * TOLERANCE_HU


def test_format_and_parse_round_trip_to_a_hundredth():
    means = np.array([[-1000.004, 3.14159], [0.005, 2.675]])
    text = format_fingerprint(means)
    assert len(text.split()) == 4
    np.testing.assert_allclose(parse_fingerprint(text), means.ravel(), atol=0.005 + 1e-12)


def test_an_empty_or_foreign_fingerprint_never_passes():
    a = format_fingerprint(np.zeros((GRID, GRID)))
    assert compare_fingerprints(a, a) == 0.0
    assert compare_fingerprints("", a) == float("inf")
    assert compare_fingerprints(a, format_fingerprint(np.zeros((4, 4)))) == float("inf")


def test_only_a_phantom_summary_declares_a_tolerance(tmp_path, synth_root):
    assert pixel_tolerance(None) is None
    assert pixel_tolerance({"kind": "real", "tolerance": {"n_images_rel": 0.005}}) is None
    assert phantom_summary(tmp_path) is None
    summary = phantom_summary(synth_root)
    assert summary["kind"] == "phantom" and pixel_tolerance(summary) == TOLERANCE_HU
