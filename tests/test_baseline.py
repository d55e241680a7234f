"""The no-image baseline: each test slice takes its nearest annotated slice's label (hand-made index)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pe_utils.evaluate.baseline import baseline_metrics, nearest_annotated_labels


def _index(rows) -> tuple[pd.DataFrame, np.ndarray]:
    """(series, slice_index, label, split) rows -> a cache-like index and its split."""
    df = pd.DataFrame(rows, columns=["SeriesInstanceUID", "slice_index", "pe_present_on_image", "split"])
    return df.drop(columns="split"), df["split"].to_numpy()


# series A: annotated at 0 (neg), 3 (pos, val), 6 (neg); test at 1, 2, 4, 5, 7
# series B (rows shuffled, slice_index with gaps): annotated at 10 (pos), 20 (neg); test at 12, 15, 18, 30
ROWS = [
    ("A", 0, 0, "train"), ("A", 1, 0, "test"), ("A", 2, 1, "test"), ("A", 3, 1, "val"),
    ("A", 4, 1, "test"), ("A", 5, 0, "test"), ("A", 6, 0, "train"), ("A", 7, 0, "test"),
    ("B", 18, 0, "test"), ("B", 10, 1, "train"), ("B", 30, 1, "test"), ("B", 12, 1, "test"),
    ("B", 20, 0, "train"), ("B", 15, 1, "test"),
]
# test rows in index order: A1 A2 A4 A5 A7 B18 B30 B12 B15
#   A1: 0 (d=1) not 3 (d=2) -> 0;  A2: 3 (d=1) -> 1;  A4: 3 (d=1) not 6 (d=2) -> 1
#   A5: 6 (d=1) not 3 (d=2) -> 0;  A7: 6 -> 0 (after the last annotated slice)
#   B18: 20 (d=2) -> 0;  B30: 20 -> 0;  B12: 10 (d=2) -> 1;  B15: 10 and 20 both d=5: tie -> earlier, 10 -> 1
EXPECTED = [0, 1, 1, 0, 0, 0, 0, 1, 1]
TRUTH = [0, 1, 1, 0, 0, 0, 1, 1, 1]


def test_nearest_annotated_labels_by_hand():
    index, split = _index(ROWS)
    np.testing.assert_array_equal(nearest_annotated_labels(index, split), EXPECTED)
    # aligned with the test ids order
    assert index.pe_present_on_image.to_numpy()[split == "test"].tolist() == TRUTH


def test_a_tie_goes_to_the_earlier_slice():
    index, split = _index([("S", 0, 1, "train"), ("S", 1, 0, "test"), ("S", 2, 0, "train")])
    assert nearest_annotated_labels(index, split).tolist() == [1]
    index, split = _index([("S", 0, 0, "train"), ("S", 1, 1, "test"), ("S", 2, 1, "train")])
    assert nearest_annotated_labels(index, split).tolist() == [0]


def test_only_annotated_labels_are_read():
    index, split = _index(ROWS)
    flipped = index.copy()
    test = split == "test"
    flipped.loc[test, "pe_present_on_image"] = 1 - flipped.loc[test, "pe_present_on_image"]
    np.testing.assert_array_equal(nearest_annotated_labels(flipped, split), EXPECTED)


def test_the_row_order_does_not_matter():
    index, split = _index(ROWS)
    perm = np.random.default_rng(0).permutation(len(index))
    shuffled = nearest_annotated_labels(index.iloc[perm].reset_index(drop=True), split[perm])
    by_row = dict(zip(np.flatnonzero(split == "test"), EXPECTED))
    assert shuffled.tolist() == [by_row[r] for r in perm if split[r] == "test"]


def test_baseline_metrics_by_hand():
    index, split = _index(ROWS)
    m = baseline_metrics(index, split)
    # predicted EXPECTED vs TRUTH: one error (B30: predicted 0, truth 1): tp 4, fn 1, fp 0, tn 4
    assert m["baseline_f1"] == pytest.approx(2 * 4 / (2 * 4 + 1))
    assert m["baseline_accuracy"] == pytest.approx(8 / 9)
    assert m["baseline_error_rate"] == pytest.approx(100 / 9)
    assert m["baseline_workload_pct"] == pytest.approx(100 * 5 / 14)  # the training stage alone
    assert set(m) == {"baseline_f1", "baseline_accuracy", "baseline_error_rate", "baseline_workload_pct"}


def test_baseline_on_a_case1_split(smoke_cache):
    from pe_utils.data.cache import load_cache
    from pe_utils.data.splits import case1_split

    index = load_cache(smoke_cache).index
    split = case1_split(index, "1/3", seed=0)
    predicted = nearest_annotated_labels(index, split)
    assert predicted.shape == ((split == "test").sum(),) and set(predicted) <= {0, 1}
    m = baseline_metrics(index, split)
    assert m["baseline_workload_pct"] == pytest.approx(100 * (split != "test").mean())
    assert 0 <= m["baseline_error_rate"] <= 100
    assert m["baseline_error_rate"] == pytest.approx(100 * (1 - m["baseline_accuracy"]))


@pytest.mark.parametrize("rows, match", [
    ([("S", 0, 0, "test"), ("T", 0, 1, "train")], "series S has test slices but no annotated"),
])
def test_a_series_without_an_annotated_slice_is_refused(rows, match):
    index, split = _index(rows)
    with pytest.raises(ValueError, match=match):
        nearest_annotated_labels(index, split)


def test_bad_inputs_are_refused():
    index, split = _index(ROWS)
    with pytest.raises(ValueError, match="slice_index"):
        nearest_annotated_labels(index.drop(columns="slice_index"), split)
    with pytest.raises(ValueError, match="entries"):
        nearest_annotated_labels(index, split[:-1])
