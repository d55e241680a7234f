"""A baseline that looks at no image: each test slice takes its nearest annotated slice's label.

Case1 annotates the slices left between the ones an expert labelled, in the same series
(4.1.1). Embolus labels run in stretches along a series, so copying the label of the nearest
annotated slice is already a strong rule, and one that needs no network: the network must
beat it to earn its keep. It automates every test slice, so the workload it implies is the
training stage alone (the expert checks nothing), at the cost of its errors.

Rule: for a test slice at ``slice_index`` s, the annotated (training-stage: train + val)
slice of the same series with the smallest ``|slice_index - s|``; on a tie (one annotated
slice as far above as below) the earlier one, the smaller ``slice_index``, wins *(our
choice: the thesis has no such baseline; any fixed tie rule keeps it reproducible)*.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..data.splits import LABEL
from .metrics import binary_metrics
from .neighbours import nearest_label, neighbour_features
from .triaging import annotation_workload

__all__ = ["nearest_annotated_labels", "baseline_metrics"]

#: the splits whose labels an expert gave up front (the training stage)
ANNOTATED = ("train", "val")


def nearest_annotated_labels(index: pd.DataFrame, split, label_col: str = LABEL) -> np.ndarray:
    """The label of each test slice's nearest annotated slice in its series.

    Args:
        index: the cache index, one row per image, with ``SeriesInstanceUID``,
            ``slice_index`` and ``label_col``.
        split: (N,) ``"train"``, ``"val"`` or ``"test"`` per row of ``index``
            (:func:`pe_utils.case1_split`).
        label_col: the label column; only the annotated rows' labels are read.

    Returns:
        (N_test,) int64 labels 0/1, aligned with the test rows in index order
        (``np.flatnonzero(split == "test")``, the order of ``Case1Data.ids["test"]``).
        Nearest by ``slice_index``; ties go to the smaller ``slice_index``.

    Raises:
        ValueError: a missing column, ``split`` not aligned with ``index``, a series with
            test slices but no annotated slice (the periodic split always keeps one), or as
            :func:`pe_utils.evaluate.neighbours.neighbour_features` (annotated labels other
            than 0/1, two rows of a series at the same ``slice_index``).
    """
    missing = {"SeriesInstanceUID", "slice_index", label_col} - set(index.columns)
    if missing:
        raise ValueError(f"index lacks column(s) {sorted(missing)}")
    split = np.asarray(split).astype(str)
    if split.shape != (len(index),):
        raise ValueError(f"split has {split.size} entries for {len(index)} rows")
    test = np.flatnonzero(split == "test")
    # the neighbour search is neighbours.py's, shared with the neighbour-aware triage
    features = neighbour_features(index, np.isin(split, ANNOTATED), test, index[label_col].to_numpy())
    picked = nearest_label(features)
    lonely = np.isnan(picked)
    if lonely.any():
        uid = index["SeriesInstanceUID"].astype(str).to_numpy()[test[np.argmax(lonely)]]
        raise ValueError(f"series {uid} has test slices but no annotated slice")
    return picked.astype(np.int64)


def baseline_metrics(index: pd.DataFrame, split, label_col: str = LABEL) -> dict[str, Any]:
    """F1, accuracy, error rate and workload of :func:`nearest_annotated_labels` on the test slices.

    Args:
        index, split, label_col: as :func:`nearest_annotated_labels` takes them.

    Returns:
        ``baseline_f1``, ``baseline_accuracy`` (test set, positives as the positive class),
        ``baseline_error_rate`` (% of the test slices it labels wrongly: every one is
        automated, none goes to an expert) and ``baseline_workload_pct`` (% of the dataset
        annotated by hand: the training stage alone); the ``metrics.json`` keys of the same
        names. F1 is 0 when there is nothing positive to find or predict.

    Raises:
        ValueError: as :func:`nearest_annotated_labels`, or test labels other than 0/1.
    """
    split = np.asarray(split).astype(str)
    predicted = nearest_annotated_labels(index, split, label_col)
    y_test = index[label_col].to_numpy()[split == "test"]
    m = binary_metrics(y_test, predicted, threshold=0.5)
    n_training_stage = int(np.isin(split, ANNOTATED).sum())
    return {
        "baseline_f1": m["f1"],
        "baseline_accuracy": m["accuracy"],
        "baseline_error_rate": 100.0 * (m["fp"] + m["fn"]) / len(y_test) if len(y_test) else float("nan"),
        "baseline_workload_pct": annotation_workload(len(index), n_training_stage, 0),
    }
