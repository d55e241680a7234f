"""Case1's neighbour-aware triage beside the image-only one (pe_utils.experiments.case1_neighbours)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pe_utils.experiments.case1_neighbours import (neighbour_choices, neighbour_probs, neighbour_record,
                                                   neighbour_verdict, triage_comparison)
from pe_utils.report.schema import CASE1_KEYS
from pe_utils.evaluate import compare_threshold_choices


def _data(seed: int = 0):
    """Two 9-slice series at rate 1/3: slices 0, 3, 6 annotated (6 validation), a clot on 3-5 of
    the first series; the others test slices."""
    index = pd.DataFrame({"SeriesInstanceUID": ["A"] * 9 + ["B"] * 9, "slice_index": list(range(9)) * 2})
    labels = np.zeros(18, np.float32)
    labels[[3, 4, 5]] = 1
    split = np.array(["test"] * 18, dtype=object)
    split[[0, 3, 9, 12]] = "train"
    split[[6, 15]] = "val"
    ids = {s: np.flatnonzero(split == s) for s in ("train", "val", "test")}
    index["pe_present_on_image"] = labels.astype(int)
    return SimpleNamespace(index=index, labels=labels, split=split, ids=ids, n_dataset=18, n_training_stage=6)


def _probs(data, seed: int = 1):
    rng = np.random.default_rng(seed)
    y = data.labels
    noisy = np.clip(0.6 * y + 0.2 + 0.15 * rng.standard_normal(len(y)), 0.01, 0.99)
    return noisy[data.ids["test"]], noisy[data.ids["val"]]


def test_the_combination_never_reads_a_test_label():
    data = _data()
    probs, val_probs = _probs(data)
    before = neighbour_probs(data, probs, val_probs)
    shuffled = _data()
    test = shuffled.ids["test"]
    shuffled.labels[test] = np.random.default_rng(3).permutation(shuffled.labels[test])[::-1]
    shuffled.labels[test[:3]] = 1 - shuffled.labels[test[:3]]
    after = neighbour_probs(shuffled, probs, val_probs)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    # while an annotated slice's label does reach its neighbours
    flipped = _data()
    flipped.labels[3] = 0
    assert not np.array_equal(neighbour_probs(flipped, probs, val_probs)[0], before[0])


def test_a_test_slice_inside_the_clot_is_pulled_up_by_its_annotated_neighbours():
    data = _data()
    probs = np.full(len(data.ids["test"]), 0.5)
    val_probs = np.full(len(data.ids["val"]), 0.5)
    test, _ = neighbour_probs(data, probs, val_probs)
    where = dict(zip(data.ids["test"], test))
    # slice 4 of series A: annotated neighbours 3 (clot) and 6 (no clot): (0.5 + 0.5) / 2
    assert where[4] == pytest.approx(0.5)
    # slice 1 of series A: neighbours 0 and 3 -> mean label 0.5; slice 10 of B: 9 and 12, both 0
    assert where[1] == pytest.approx(0.5) and where[10] == pytest.approx(0.25)


def test_the_comparison_table_words_what_is_missing_and_the_record_is_documented():
    data = _data()
    probs, val_probs = _probs(data)
    y_test, y_val = data.labels[data.ids["test"]], data.labels[data.ids["val"]]
    image = compare_threshold_choices(probs, y_test, 18, 6, val_probs=val_probs, val_labels=y_val)
    neighbour = neighbour_choices(data, probs, y_test, val_probs, y_val)
    table = triage_comparison(data, image, neighbour)
    assert list(table.index) == ["image only (the thesis)", "image + neighbours' labels",
                                 "nearest annotated slice (no image)"]
    text = table.astype(str).to_numpy().ravel()
    assert not any(t.lower() in ("nan", "none", "<na>") for t in text)
    record = neighbour_record(neighbour)
    assert set(record) <= set(CASE1_KEYS)
    sentence = neighbour_verdict(table)
    assert "points." in sentence and "nan" not in sentence and repr(sentence) == str(sentence) and ("labels alone do as well" in sentence or "not enough" in sentence)


def test_triage_by_rate_sets_the_two_triages_side_by_side_and_words_old_runs():
    from pe_utils.experiments.case1_neighbours import triage_by_rate
    from pe_utils.experiments.summary import method_runs

    rows = [dict(notebook="01_case1_supervised", sampling_rate="1/3", seed=s, practical_workload_pct=w,
                 neighbour_practical_workload_pct=w - 12, practical_error_rate=0.1, neighbour_practical_error_rate=0.0,
                 baseline_error_rate=1.5) for s, w in ((0, 55.0), (1, 57.0))]
    rows += [dict(notebook="01_case1_supervised", sampling_rate="1/3", seed=0, context=1, practical_workload_pct=50.0,
                  practical_error_rate=0.2, baseline_error_rate=1.5)]   # made before the neighbour keys
    table = triage_by_rate(method_runs(pd.DataFrame(rows))).set_index("method")
    assert table.loc["supervised", "workload %, image only"] == "56.00 \u00b1 1.41"
    assert table.loc["supervised", "workload %, + neighbours' labels"] == "44.00 \u00b1 1.41"
    assert table.loc["supervised 2.5D (k=1)", "workload %, + neighbours' labels"] == "not recorded"


def test_a_pair_that_automates_nothing_is_said_in_words():
    table = pd.DataFrame({"validation workload %": [100.0, 97.5, 25.0],
                          "% wrong among sure (validation pair)": [float("nan"), 0.0, 3.1]},
                         index=["image only (the thesis)", "image + neighbours' labels",
                                "nearest annotated slice (no image)"])
    sentence = neighbour_verdict(table)
    assert "nan" not in sentence and "(nothing automated)" in sentence and "+2.5 points" in sentence
