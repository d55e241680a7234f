"""Split conformal prediction for binary probabilities, and the threshold pair it amounts to.

Conformal prediction uses `crepes <https://github.com/henrikbostrom/crepes>`_: it is light,
and its ``ConformalClassifier`` works directly on precomputed nonconformity scores, which is
what a trained network's probabilities are (MAPIE 1.x wants an estimator API for its risk
control). crepes is imported inside the functions that need it: it is slow to import.
Scores are the hinge ``1 - p(label)``; calibration is Mondrian (class-conditional:
positives and negatives calibrated apart), p-values are not smoothed, so prediction sets are
deterministic. Sets ``{0}`` and ``{1}`` are sure predictions; ``{0, 1}`` and the empty set are
uncertain. Guarantee (exchangeable calibration and test images): for each class ``c``,
``P(c not in set | label c) <= alpha``, hence the same marginally; in particular at most
``alpha`` of the positives (in expectation) are sure-labelled negative, and at most ``alpha``
of the negatives sure-labelled positive. The sets are equivalent to a threshold pair on
``p`` (:func:`conformal_thresholds`), so the triage and workload machinery of
:mod:`pe_utils.evaluate.triaging` is reused.

The calibration set must be disjoint from the training data. In Case1 the validation split
of the training stage (20 % of the sampled slices, never used for gradient steps, no early
stopping) serves: predict it with the same TTA as the test set and calibrate on that. Its
slices come from the same series as the test slices, which makes exchangeability plausible,
but it is small (few positives): with ``n`` calibration positives no bound below
``1 / (n + 1)`` is attainable, and the pair degenerates to "no sure positive".
"""
from __future__ import annotations

import numpy as np

from pe_utils.evaluate.triaging import Thresholds, _labels

__all__ = ["conformal_sets", "conformal_thresholds", "sets_to_triage"]


def _cal_arrays(cal_probs, cal_labels, alpha: float):
    if not 0.0 < alpha < 1.0:
        raise ValueError("alpha must be in (0, 1)")
    p = np.asarray(cal_probs, dtype=np.float64).reshape(-1)
    return p, _labels(cal_labels, p.shape[0])


def _true_class_scores(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Hinge nonconformity of the true class, 1 - p(label), computed as crepes computes it
    from the two-column probabilities [1 - p, p] (so floats match exactly)."""
    return np.where(y == 1, 1.0 - p, 1.0 - (1.0 - p))


def conformal_sets(cal_probs, cal_labels, probs, alpha: float = 0.05, mondrian: bool = True
                   ) -> np.ndarray:
    """Conformal prediction sets from crepes, for binary probabilities.

    Args:
        cal_probs, cal_labels: (M,) probabilities and labels of the calibration set (disjoint from
            training; see the module docstring).
        probs: (N,) probabilities to predict.
        alpha: allowed miscoverage; ``P(label not in set) <= alpha`` (per class if ``mondrian``).
        mondrian: class-conditional calibration (crepes ``bins`` = labels, as
            ``WrapClassifier.calibrate(class_cond=True)``) rather than one pooled calibration.

    Returns:
        (N, 2) int array: column c is 1 when class c is in the set.

    A class absent from the calibration set gets p-value 1 (crepes's arithmetic with no
    calibration score): it is never excluded, so nothing is sure-labelled with the other class.

    Raises:
        ValueError: alpha outside (0, 1), labels other than 0/1 or misaligned.
    """
    from crepes import ConformalClassifier
    from crepes.extras import hinge

    p_cal, y_cal = _cal_arrays(cal_probs, cal_labels, alpha)
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    classes = np.array([0, 1])
    cal_alphas = _true_class_scores(p_cal, y_cal)  # = crepes.extras.hinge(..., classes, y_cal)
    test_alphas = hinge(np.column_stack([1 - p, p]))  # (N, 2): 1 - p(class) for both classes
    cc = ConformalClassifier()
    confidence = 1.0 - alpha
    if not mondrian:
        cc.fit(cal_alphas)
        return cc.predict_set(test_alphas, confidence=confidence, smoothing=False).astype(int)
    cc.fit(cal_alphas, bins=y_cal)
    # as crepes's WrapClassifier(class_cond=True): each label judged against its own class
    cols = [cc.predict_set(test_alphas, bins=np.full(len(p), c), confidence=confidence,
                           smoothing=False)[:, c] for c in classes]
    return np.column_stack(cols).astype(int) if len(p) else np.zeros((0, 2), int)


def _kth_largest(values: np.ndarray, alpha: float) -> float:
    """Largest score s with (#{values >= s} + 1) / (n + 1) >= alpha, as crepes compares it.

    A label whose score is <= this value is in the set; +inf: always in.
    """
    q = values.shape[0]
    eps = 1.0 - (1.0 - alpha)  # the float crepes compares p-values with
    counts = np.arange(q + 1)
    need = int(np.argmax((counts + 1) / (q + 1) >= eps))  # count = q always qualifies
    if need == 0:
        return np.inf
    return float(np.sort(values)[::-1][need - 1])


def conformal_thresholds(cal_probs, cal_labels, alpha: float = 0.05, mondrian: bool = True
                         ) -> Thresholds:
    """The threshold pair equivalent to :func:`conformal_sets`, for :func:`triage`.

    With ``t1`` the smallest probability whose set holds 1 and ``t0`` the largest whose set
    holds 0: if ``t1 <= t0`` the uncertain images are those with set {0, 1}, and the pair is
    ``(upper=t0, lower=t1)``; otherwise the uncertain images have an empty set and the pair is
    the open interval between ``t0`` and ``t1``. A class never excluded gives ``lower = 0``
    (no sure negative) or ``upper = 1`` (no sure positive).

    A class with too few calibration images to be excluded at level ``alpha`` (fewer than
    about ``1 / alpha - 1``; none at all included) is never excluded: e.g. a validation split
    without positive gives ``lower = 0``, no sure negative, which is the honest answer.

    Returns:
        :class:`Thresholds`; ``triage(probs, *pair)`` equals ``sets_to_triage(conformal_sets(...))``
        (up to floating-point ties with calibration scores). ``(1.0, 0.0)``: nothing automated.

    Raises:
        ValueError: alpha outside (0, 1), labels other than 0/1 or misaligned.
    """
    p_cal, y_cal = _cal_arrays(cal_probs, cal_labels, alpha)
    scores = _true_class_scores(p_cal, y_cal)
    if mondrian:
        s1 = _kth_largest(scores[y_cal == 1], alpha)
        s0 = _kth_largest(scores[y_cal == 0], alpha)
    else:
        s1 = s0 = _kth_largest(scores, alpha)
    t1 = 1.0 - s1  # 1 in set  <=>  1 - p <= s1  <=>  p >= t1
    t0 = s0        # 0 in set  <=>  p <= s0
    if t1 <= t0:
        upper, lower = t0, t1
    else:
        # empty sets between t0 and t1: uncertain open interval (t0, t1)
        lower = float(np.nextafter(t0, np.inf))
        upper = float(np.nextafter(t1, -np.inf))
        if lower >= upper:  # no float strictly between: nothing can be empty
            lower, upper = t0, t1
    upper = float(min(upper, 1.0))
    lower = float(max(lower, 0.0))
    if lower >= upper:  # t0 == t1: only p == t0 would be uncertain; widen by one float
        if lower < 1.0:
            upper = float(np.nextafter(lower, np.inf))
        else:
            lower = float(np.nextafter(upper, -np.inf))
    return Thresholds(upper, lower)


def sets_to_triage(sets) -> np.ndarray:
    """(N, 2) prediction sets -> triage codes: {1} -> 1, {0} -> 0, {0, 1} or {} -> -1 (int8)."""
    s = np.asarray(sets).astype(bool)
    out = np.full(s.shape[0], -1, dtype=np.int8)
    out[s[:, 1] & ~s[:, 0]] = 1
    out[s[:, 0] & ~s[:, 1]] = 0
    return out
