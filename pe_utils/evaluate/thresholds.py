"""Choosing the two triage thresholds: the thesis's oracle and two choices that need no test label.

The thesis picks, per test, the least restrictive pair of ``THESIS_THRESHOLD_PAIRS`` that
makes no error on the *test labels* (:func:`widest_perfect_thresholds`); it says itself this
is an oracle ("in reality, the test set is not annotated", 6.2.2). Two choices that use no
test label are added:

* :func:`validation_thresholds`: the least restrictive pair whose error rate among sure
  predictions on a held-out labelled set is at most ``max_error_rate``;
* ``conformal_thresholds`` (:mod:`pe_utils.evaluate.conformal`): split conformal
  prediction, with a stated error bound.

:func:`compare_threshold_choices` puts the three side by side on the test set.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from pe_utils.evaluate.conformal import conformal_thresholds
from pe_utils.evaluate.triaging import Thresholds, _pct, annotation_workload, triage_counts
from pe_utils.profiles import THESIS_THRESHOLD_PAIRS

__all__ = ["widest_perfect_thresholds", "validation_thresholds", "compare_threshold_choices"]


def _least_restrictive(candidates: list[tuple[int, float, int, Thresholds]]) -> Thresholds | None:
    # (n_uncertain, band width, order) -> fewest uncertain first, then narrower band, then order
    return min(candidates)[3] if candidates else None


def widest_perfect_thresholds(probs, labels, pairs: Sequence[Sequence[float]] = THESIS_THRESHOLD_PAIRS
                              ) -> Thresholds | None:
    """The thesis's oracle (6.2.2): the least restrictive pair with no error among sure predictions.

    "Widest" in the thesis's sense ("those thresholds can be wider"): the pair leaving the
    fewest uncertain images (ties: the narrower uncertain band, then the first listed), among
    the pairs making zero errors on these labels. Chosen with the test labels, so it shows
    what is attainable, not what a user could pick; see :func:`validation_thresholds` and
    :func:`conformal_thresholds`.

    Returns:
        :class:`Thresholds` or None when every pair makes an error.
    """
    cands = []
    for i, (upper, lower) in enumerate(pairs):
        c = triage_counts(probs, labels, upper, lower)
        if c["n_false"] == 0:
            cands.append((c["n_uncertain"], upper - lower, i, Thresholds(float(upper), float(lower))))
    return _least_restrictive(cands)


def validation_thresholds(val_probs, val_labels, pairs: Sequence[Sequence[float]] = THESIS_THRESHOLD_PAIRS,
                          max_error_rate: float = 0.0) -> Thresholds | None:
    """The least restrictive pair whose error rate among sure predictions on held-out data is small.

    Args:
        val_probs, val_labels: (N,) TTA mean probabilities and labels of a labelled set disjoint
            from training (Case1: the validation split of the training stage).
        pairs: candidate ``(upper, lower)`` pairs.
        max_error_rate: allowed ``n_false / (n_true + n_false)`` on that set (a pair with no
            sure prediction has rate 0).

    Returns:
        :class:`Thresholds` (fewest uncertain validation images among qualifying pairs), or None.
        No guarantee on the test set: a small validation set makes zero errors easily.

    Raises:
        ValueError: ``max_error_rate`` outside [0, 1].
    """
    if not 0.0 <= max_error_rate <= 1.0:
        raise ValueError("max_error_rate must be in [0, 1]")
    cands = []
    for i, (upper, lower) in enumerate(pairs):
        c = triage_counts(val_probs, val_labels, upper, lower)
        n_sure = c["n_true"] + c["n_false"]
        rate = c["n_false"] / n_sure if n_sure else 0.0
        if rate <= max_error_rate:
            cands.append((c["n_uncertain"], upper - lower, i, Thresholds(float(upper), float(lower))))
    return _least_restrictive(cands)

def compare_threshold_choices(test_probs, test_labels, n_dataset: int, n_training_stage: int, *,
                              val_probs=None, val_labels=None,
                              pairs: Sequence[Sequence[float]] = THESIS_THRESHOLD_PAIRS,
                              alpha: float = 0.05, max_error_rate: float = 0.0) -> pd.DataFrame:
    """Oracle (thesis), validation-chosen and conformal thresholds side by side on the test set.

    Returns:
        one row per method (``oracle``, ``validation``, ``conformal``; the last two need
        ``val_probs``/``val_labels``) with ``method, upper, lower, uses_test_labels, n_uncertain,
        n_false, n_false_pos, n_false_neg, workload_pct, error_rate_pct,
        pct_positives_auto_correct``. A method that finds no pair automates nothing: NaN
        thresholds, every test image uncertain (the workload counts them all), no error.
        ``error_rate_pct`` is the % of sure test predictions that are wrong.
    """
    n_test = len(test_probs)
    choices: list[tuple[str, bool, Thresholds | None]] = [
        ("oracle", True, widest_perfect_thresholds(test_probs, test_labels, pairs))]
    if val_probs is not None and val_labels is not None:
        choices.append(("validation", False,
                        validation_thresholds(val_probs, val_labels, pairs, max_error_rate)))
        choices.append((f"conformal (alpha={alpha:g})", False,
                        conformal_thresholds(val_probs, val_labels, alpha=alpha)))
    rows = []
    for name, uses_test, pair in choices:
        row = dict(method=name, uses_test_labels=uses_test)
        if pair is None:
            row.update(upper=np.nan, lower=np.nan, n_uncertain=n_test, n_false=0, n_false_pos=0,
                       n_false_neg=0, pct_positives_auto_correct=0.0,
                       workload_pct=annotation_workload(n_dataset, n_training_stage, n_test))
        else:
            c = triage_counts(test_probs, test_labels, pair.upper, pair.lower)
            row.update(
                upper=pair.upper, lower=pair.lower, n_uncertain=c["n_uncertain"],
                n_false=c["n_false"], n_false_pos=c["n_false_pos"], n_false_neg=c["n_false_neg"],
                workload_pct=annotation_workload(n_dataset, n_training_stage, c["n_uncertain"]),
                pct_positives_auto_correct=_pct(c["n_pos_auto_correct"], c["n_positives"]),
            )
        row["error_rate_pct"] = _pct(row["n_false"], n_test - row["n_uncertain"])
        rows.append(row)
    return pd.DataFrame(rows)
