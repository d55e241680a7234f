"""Neighbour-aware triage: features from the nearest annotated slices, the fixed rule, its triage."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pe_utils.data.splits import periodic_mask
from pe_utils.evaluate.neighbours import (NEIGHBOUR_RULES, nearest_label, neighbour_features,
                                          neighbour_probability)
from pe_utils.evaluate.triaging import expected_workload, triage, triage_table

NAN = np.nan
COLUMNS = ["label_below", "dist_below", "label_above", "dist_above"]


def _distances(f: pd.DataFrame) -> set[float]:
    """The neighbour distances present (NaN: no neighbour on that side, left out)."""
    d = f[["dist_below", "dist_above"]].to_numpy().ravel()
    return set(d[~np.isnan(d)].tolist())


def _series(uid: str, n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"SeriesInstanceUID": uid, "slice_index": np.arange(start, start + n)})


# one 9-slice series at rate 1/3: annotated 0, 3, 6 (periodic_mask); the clot spans slices 2..7
NINE = _series("S", 9)
TRUTH = np.array([0, 0, 1, 1, 1, 1, 1, 1, 0])
ANNOTATED = periodic_mask(np.arange(9), "1/3")
TEST = np.flatnonzero(~ANNOTATED)                                  # slices 1 2 4 5 7 8
# by hand: annotated labels 0 (slice 0), 1 (slice 3), 1 (slice 6)
TEST_FEATURES = [
    [0, 1, 1, 2],        # 1: below 0 (d1), above 3 (d2)
    [0, 2, 1, 1],        # 2: below 0 (d2), above 3 (d1)
    [1, 1, 1, 2],        # 4: below 3, above 6
    [1, 2, 1, 1],        # 5
    [1, 1, NAN, NAN],    # 7: nothing annotated above (series end)
    [1, 2, NAN, NAN],    # 8
]
# validation geometry: each annotated slice left out of its own search sees the others q = 3 away
VAL_FEATURES = [
    [NAN, NAN, 1, 3],    # 0: nothing below
    [0, 3, 1, 3],        # 3
    [1, 3, NAN, NAN],    # 6: nothing annotated above
]


def test_the_split_is_the_periodic_one():
    assert np.flatnonzero(ANNOTATED).tolist() == [0, 3, 6]


def test_test_features_by_hand():
    f = neighbour_features(NINE, ANNOTATED, TEST, TRUTH)
    assert list(f.columns) == COLUMNS and len(f) == len(TEST)
    np.testing.assert_array_equal(f.to_numpy(), np.array(TEST_FEATURES, dtype=float))


def test_validation_slices_leave_themselves_out():
    f = neighbour_features(NINE, ANNOTATED, np.flatnonzero(ANNOTATED), TRUTH)
    np.testing.assert_array_equal(f.to_numpy(), np.array(VAL_FEATURES, dtype=float))
    # the geometry the docstring admits: q away on validation, 1..q-1 on test
    assert _distances(f) == {3.0}
    t = neighbour_features(NINE, ANNOTATED, TEST, TRUTH)
    assert _distances(t) == {1.0, 2.0}


def test_masks_and_positions_give_the_same_features():
    by_mask = neighbour_features(NINE, ANNOTATED, ~ANNOTATED, TRUTH)
    by_rows = neighbour_features(NINE, np.flatnonzero(ANNOTATED), TEST, TRUTH)
    pd.testing.assert_frame_equal(by_mask, by_rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_test_slice_label_is_never_read(seed):
    rng = np.random.default_rng(seed)
    probs = rng.uniform(size=TEST.size)
    before = neighbour_features(NINE, ANNOTATED, TEST, TRUTH)
    shuffled = TRUTH.copy()
    shuffled[TEST] = rng.permutation(1 - TRUTH[TEST])              # every test label flipped, then shuffled
    assert (shuffled[TEST] != TRUTH[TEST]).any()
    after = neighbour_features(NINE, ANNOTATED, TEST, shuffled)
    pd.testing.assert_frame_equal(before, after)
    for rule in NEIGHBOUR_RULES:
        np.testing.assert_array_equal(neighbour_probability(probs, before, rule),
                                      neighbour_probability(probs, after, rule))
    # and a query label that is no label at all (unknown test slices) is fine
    unknown = TRUTH.astype(float)
    unknown[TEST] = NAN
    pd.testing.assert_frame_equal(before, neighbour_features(NINE, ANNOTATED, TEST, unknown))


def test_a_validation_slice_own_label_is_never_read():
    """Flip one annotated slice's label: its own features stay, only its neighbours' change."""
    val = np.flatnonzero(ANNOTATED)
    before = neighbour_features(NINE, ANNOTATED, val, TRUTH)
    for k, row in enumerate(val):
        flipped = TRUTH.copy()
        flipped[row] = 1 - flipped[row]
        after = neighbour_features(NINE, ANNOTATED, val, flipped)
        pd.testing.assert_series_equal(before.iloc[k], after.iloc[k])
        # the label is read, by the others: a test that cannot pass by reading nothing
        assert not before.drop(index=k).equals(after.drop(index=k))


def test_a_series_boundary_is_never_crossed():
    # A: slices 0..3, annotated at 0 only; B continues the numbering (4..7) so that the nearest
    # annotated slice by slice_index alone would lie in the other series; rows interleaved
    index = pd.concat([_series("A", 4), _series("B", 4, start=4)], ignore_index=True)
    labels = np.array([1, 0, 0, 0, 0, 0, 0, 0])
    annotated = np.array([True, False, False, False, False, False, True, False])  # A0 (pos), B6 (neg)
    perm = np.array([4, 0, 7, 3, 1, 6, 2, 5])
    index, labels, annotated = index.iloc[perm].reset_index(drop=True), labels[perm], annotated[perm]
    query = np.flatnonzero(~annotated)
    f = neighbour_features(index, annotated, query, labels)
    got = {(index.SeriesInstanceUID[r], index.slice_index[r]): tuple(f.iloc[k]) for k, r in enumerate(query)}
    want = {
        ("A", 1): (1, 1, NAN, NAN), ("A", 2): (1, 2, NAN, NAN), ("A", 3): (1, 3, NAN, NAN),  # not B6
        ("B", 4): (NAN, NAN, 0, 2), ("B", 5): (NAN, NAN, 0, 1), ("B", 7): (0, 1, NAN, NAN),  # not A0
    }
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=str(k))


def test_series_ends_fall_back_to_the_probability():
    probs = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    f = pd.DataFrame([[NAN, NAN, NAN, NAN],       # no annotated slice in its series at all
                      [NAN, NAN, 1, 2],           # one side only: the mean of the one
                      [0, 1, NAN, NAN],
                      [1, 1, 0, 2],
                      [1, 3, 1, 1],
                      [0, 2, 0, 2]], columns=COLUMNS)
    np.testing.assert_allclose(neighbour_probability(probs, f),
                               [0.1, 0.6, 0.15, 0.45, 0.75, 0.3])
    # nearest: tie (last row) goes below
    np.testing.assert_allclose(neighbour_probability(probs, f, rule="nearest"),
                               [0.1, 0.6, 0.15, 0.7, 0.75, 0.3])
    np.testing.assert_array_equal(nearest_label(f), [NAN, 1, 0, 1, 1, 0])


def test_discordant_neighbours_stay_between_a_quarter_and_three_quarters():
    f = pd.DataFrame([[0, 1, 1, 2]] * 3, columns=COLUMNS)
    np.testing.assert_allclose(neighbour_probability([0.0, 0.5, 1.0], f), [0.25, 0.5, 0.75])


# network probabilities of the six test slices 1 2 4 5 7 8 (truth 0 1 1 1 1 0)
PROBS = np.array([0.15, 0.55, 0.75, 0.85, 0.70, 0.30])
# mean rule by hand: (p + m) / 2 with m = 0.5, 0.5, 1, 1, 1, 1 (7 and 8: slice 6 alone)
COMBINED = np.array([0.325, 0.525, 0.875, 0.925, 0.85, 0.65])


def test_combined_probability_by_hand():
    f = neighbour_features(NINE, ANNOTATED, TEST, TRUTH)
    np.testing.assert_allclose(neighbour_probability(PROBS, f), COMBINED)


def test_the_triage_of_the_combined_probability_by_hand():
    pair = (0.8, 0.2)
    combined = neighbour_probability(PROBS, neighbour_features(NINE, ANNOTATED, TEST, TRUTH))
    # image only: 1 sure neg (0.15), 5 sure pos (0.85), 2 4 7 8 uncertain -> (3 + 4) / 9
    # combined:   4 5 7 sure pos (0.875 0.925 0.85), 1 2 8 uncertain        -> (3 + 3) / 9
    assert triage(PROBS, *pair).tolist() == [0, -1, -1, 1, -1, -1]
    assert triage(combined, *pair).tolist() == [-1, -1, 1, 1, 1, -1]
    assert expected_workload(PROBS, *pair, n_dataset=9, n_training_stage=3) == pytest.approx(700 / 9)
    assert expected_workload(combined, *pair, n_dataset=9, n_training_stage=3) == pytest.approx(600 / 9)
    row = triage_table(combined, TRUTH[TEST], [pair], n_dataset=9, n_training_stage=3).iloc[0]
    assert row.workload_pct == pytest.approx(600 / 9)
    assert (row.n_true, row.n_false, row.n_uncertain) == (3, 0, 3) and row.perfect


def test_a_clot_ending_between_annotated_slices_can_fool_the_rule():
    """Slice 8 is negative but sits next to a positive annotated slice: a network wrong on it
    (0.7) is made sure positive by the rule, the error the thresholds must price in."""
    probs = np.append(PROBS[:-1], 0.70)
    combined = neighbour_probability(probs, neighbour_features(NINE, ANNOTATED, TEST, TRUTH))
    assert combined[-1] == pytest.approx(0.85)
    row = triage_table(combined, TRUTH[TEST], [(0.8, 0.2)], n_dataset=9, n_training_stage=3).iloc[0]
    assert (row.n_false_pos, row.perfect) == (1, False)


def test_features_on_a_case1_split(smoke_cache):
    """The real index at rate 1/3: test slices see neighbours 1..2 away, validation ones 3 away."""
    from pe_utils.data.cache import load_cache
    from pe_utils.data.splits import LABEL, case1_split

    index = load_cache(smoke_cache).index
    split = case1_split(index, "1/3", seed=0)
    labels = index[LABEL].to_numpy()
    annotated = split != "test"
    test = neighbour_features(index, annotated, split == "test", labels)
    val = neighbour_features(index, annotated, split == "val", labels)
    assert _distances(test) == {1.0, 2.0}
    assert _distances(val) == {3.0}
    assert test.label_below.notna().all()                           # slice 0 is always annotated
    combined = neighbour_probability(np.full(len(test), 0.5), test)
    assert ((combined >= 0) & (combined <= 1)).all()


def test_bad_inputs_are_refused():
    f = neighbour_features(NINE, ANNOTATED, TEST, TRUTH)
    with pytest.raises(ValueError, match="slice_index"):
        neighbour_features(NINE.drop(columns="slice_index"), ANNOTATED, TEST, TRUTH)
    with pytest.raises(ValueError, match="mask of 8"):
        neighbour_features(NINE, ANNOTATED[:-1], TEST, TRUTH)
    with pytest.raises(ValueError, match="outside"):
        neighbour_features(NINE, ANNOTATED, [9], TRUTH)
    with pytest.raises(ValueError, match="labels has 8"):
        neighbour_features(NINE, ANNOTATED, TEST, TRUTH[:-1])
    with pytest.raises(ValueError, match="only 0 and 1"):
        neighbour_features(NINE, ANNOTATED, TEST, np.where(ANNOTATED, 2, 0))
    twice = pd.concat([NINE, NINE.iloc[[3]]], ignore_index=True)
    with pytest.raises(ValueError, match="share"):
        neighbour_features(twice, np.append(ANNOTATED, True), TEST, np.append(TRUTH, 1))
    with pytest.raises(ValueError, match="valid: mean, nearest"):
        neighbour_probability(PROBS, f, rule="logistic")
    with pytest.raises(ValueError, match="6 feature rows"):
        neighbour_probability(PROBS[:-1], f)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        neighbour_probability(np.append(PROBS[:-1], NAN), f)
    with pytest.raises(ValueError, match="lack"):
        neighbour_probability(PROBS, f.drop(columns="dist_above"))
