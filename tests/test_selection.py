"""Tests for pe_utils.data.selection: the patient search behind every manifest."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pe_utils.data.selection import pick_whole_patients, select_groups


def test_select_groups_hits_targets_and_handles_images_only():
    rng = np.random.default_rng(0)
    size = rng.integers(5, 50, 200)
    pos = rng.binomial(size, 0.2)
    chosen = select_groups(size, pos, 1000, 200, seed=0)
    assert (size[chosen].sum(), pos[chosen].sum()) == (1000, 200)
    assert size[select_groups(size, pos, 777, None, seed=1)].sum() == 777


def test_select_groups_is_deterministic_by_seed():
    rng = np.random.default_rng(1)
    size = rng.integers(5, 50, 300)
    pos = rng.binomial(size, 0.1)
    a, b = (select_groups(size, pos, 2000, 150, seed=4) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, select_groups(size, pos, 2000, 150, seed=5))


def test_pick_whole_patients_keeps_every_row_of_a_picked_patient():
    pool = pd.DataFrame({"StudyInstanceUID": np.repeat([f"s{i}" for i in range(40)], 10),
                         "pe_present_on_image": np.tile([1, 0, 0, 0, 0, 0, 0, 0, 0, 0], 40)})
    picked = pick_whole_patients(pool, 100, 10, seed=0)
    assert len(picked) == 100 and picked["pe_present_on_image"].sum() == 10
    assert (picked.groupby("StudyInstanceUID").size() == 10).all()
