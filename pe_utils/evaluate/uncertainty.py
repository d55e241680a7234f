"""TTA prediction, two-threshold triage, the choice of thresholds, and the annotation workload.

Thesis 4.1.1 and 6.2.2: each test image is predicted under 5 test-time augmentations, the
mean probability ``p`` is compared with two thresholds, and the image is

* sure positive when ``p > upper`` ("above the upper threshold"),
* sure negative when ``p < lower`` ("under the lower one"),
* uncertain when ``lower <= p <= upper`` (checked by an expert).

Both comparisons are strict, as the thesis words them; they also make the conformal
thresholds below exact. (``binary_metrics`` keeps scikit-learn's ``p >= threshold``.)

Choosing the thresholds. The thesis picks, per test, the least restrictive pair of
``THESIS_THRESHOLD_PAIRS`` that makes no error on the *test labels*
(:func:`widest_perfect_thresholds`); it says itself this is an oracle ("in reality, the test
set is not annotated", 6.2.2). Two choices that use no test label are added:

* :func:`validation_thresholds`: the least restrictive pair whose error rate among sure
  predictions on a held-out labelled set is at most ``max_error_rate``;
* :func:`conformal_thresholds`: split conformal prediction, with a stated error bound.

Conformal prediction uses `crepes <https://github.com/henrikbostrom/crepes>`_: it is light,
and its ``ConformalClassifier`` works directly on precomputed nonconformity scores, which is
what a trained network's probabilities are (MAPIE 1.x wants an estimator API for its risk
control). Scores are the hinge ``1 - p(label)``; calibration is Mondrian (class-conditional:
positives and negatives calibrated apart), p-values are not smoothed, so prediction sets are
deterministic. Sets ``{0}`` and ``{1}`` are sure predictions; ``{0, 1}`` and the empty set are
uncertain. Guarantee (exchangeable calibration and test images): for each class ``c``,
``P(c not in set | label c) <= alpha``, hence the same marginally; in particular at most
``alpha`` of the positives (in expectation) are sure-labelled negative, and at most ``alpha``
of the negatives sure-labelled positive. The sets are equivalent to a threshold pair on
``p``, so the triage and workload machinery is reused.

The calibration set must be disjoint from the training data. In Case1 the validation split
of the training stage (20 % of the sampled slices, never used for gradient steps, no early
stopping) serves: predict it with the same TTA as the test set and calibrate on that. Its
slices come from the same series as the test slices, which makes exchangeability plausible,
but it is small (few positives): with ``n`` calibration positives no bound below
``1 / (n + 1)`` is attainable, and the pair degenerates to "no sure positive".
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np
import pandas as pd

from pe_utils.profiles import THESIS_THRESHOLD_PAIRS

__all__ = [
    "Thresholds",
    "predict_tta",
    "triage",
    "triage_counts",
    "triage_table",
    "widest_perfect_thresholds",
    "annotation_workload",
    "expected_workload",
    "validation_thresholds",
    "conformal_sets",
    "conformal_thresholds",
    "sets_to_triage",
    "compare_threshold_choices",
]


class Thresholds(NamedTuple):
    """A threshold pair; a plain ``(upper, lower)`` tuple works wherever this is accepted."""

    upper: float
    lower: float

    def __str__(self) -> str:
        return f"{self.upper:g}/{self.lower:g}"


# ---------------------------------------------------------------------------------------------
# prediction


def predict_tta(model, loader, device, views: Callable | None = None):
    """Mean sigmoid probability of each image over test-time augmented views.

    Args:
        model: returns logits (B,) or (B, 1) for inputs (B, C, H, W).
        loader: yields ``(x, y)`` batches; iterated once, in order.
        device: where the model lives (``"cpu"``, ``"cuda"``, a ``torch.device``).
        views: ``views(x) -> list of V tensors (B, C, H, W)``; defaults to
            ``pe_utils.data.transforms.tta_views`` (5 views, the original first).

    Returns:
        ``(mean_probs (N,), view_probs (N, V), labels (N,))``, float32 numpy arrays. The model
        runs in eval mode without gradients (its former mode is restored), under CUDA
        autocast when on a GPU; probabilities are computed in float32.
    """
    import torch

    if views is None:
        from pe_utils.data.transforms import tta_views as views  # lazily: transforms imports torchvision
    device = torch.device(device)
    use_amp = device.type == "cuda"
    was_training = model.training
    model.eval()
    all_probs, all_labels = [], []
    try:
        with torch.no_grad():
            for batch in loader:
                x, y = batch[0], batch[1]
                x = x.to(device, non_blocking=True)
                per_view = []
                for v in views(x):
                    with torch.autocast(device_type="cuda", enabled=use_amp):
                        logits = model(v)
                    per_view.append(torch.sigmoid(logits.float().reshape(len(x), -1)[:, 0]))
                all_probs.append(torch.stack(per_view, dim=1).cpu())  # (B, V)
                all_labels.append(torch.as_tensor(y).reshape(-1).float().cpu())
    finally:
        model.train(was_training)
    if not all_probs:
        return (np.zeros(0, np.float32), np.zeros((0, 0), np.float32), np.zeros(0, np.float32))
    view_probs = torch.cat(all_probs).numpy().astype(np.float32)
    labels = torch.cat(all_labels).numpy().astype(np.float32)
    return view_probs.mean(axis=1).astype(np.float32), view_probs, labels


# ---------------------------------------------------------------------------------------------
# triage


def _check_pair(upper: float, lower: float) -> None:
    if not (0.0 <= lower < upper <= 1.0):
        raise ValueError(f"thresholds must satisfy 0 <= lower < upper <= 1, got upper={upper}, "
                         f"lower={lower}")


def triage(probs, upper: float, lower: float) -> np.ndarray:
    """Sort predictions into sure positive (1), sure negative (0) and uncertain (-1).

    Args:
        probs: (N,) mean probabilities.
        upper, lower: ``p > upper`` is sure positive, ``p < lower`` sure negative, the rest
            (bounds included) uncertain.

    Returns:
        (N,) int8 array of 1, 0, -1.

    Raises:
        ValueError: unless ``0 <= lower < upper <= 1``.
    """
    _check_pair(upper, lower)
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    out = np.full(p.shape, -1, dtype=np.int8)
    out[p > upper] = 1
    out[p < lower] = 0
    return out


def _labels(labels, n: int) -> np.ndarray:
    y = np.asarray(labels).reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"{n} probabilities but {y.shape[0]} labels")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must hold only 0 and 1")
    return y.astype(np.int8)


def triage_counts(probs, labels, upper: float, lower: float) -> dict:
    """Counts of one triage against known labels.

    Returns:
        dict with ``upper, lower, n, n_true, n_false, n_uncertain, n_false_pos, n_false_neg,
        n_positives, n_pos_auto_correct`` (ints but the thresholds). "True"/"false" are the
        sure predictions that are right/wrong; ``n_pos_auto_correct`` the positives sure-labelled
        positive.
    """
    t = triage(probs, upper, lower)
    y = _labels(labels, t.shape[0])
    sure = t >= 0
    return dict(
        upper=float(upper), lower=float(lower), n=int(t.size),
        n_true=int((sure & (t == y)).sum()),
        n_false=int((sure & (t != y)).sum()),
        n_uncertain=int((~sure).sum()),
        n_false_pos=int(((t == 1) & (y == 0)).sum()),
        n_false_neg=int(((t == 0) & (y == 1)).sum()),
        n_positives=int((y == 1).sum()),
        n_pos_auto_correct=int(((t == 1) & (y == 1)).sum()),
    )


def _pct(a: float, b: float) -> float:
    return 100.0 * a / b if b else float("nan")


def triage_table(probs, labels, pairs: Sequence[Sequence[float]] = THESIS_THRESHOLD_PAIRS, *,
                 n_dataset: int | None = None, n_training_stage: int = 0) -> pd.DataFrame:
    """One row per threshold pair: the thesis's true/false/uncertain split (Figs 6.7, 6.8, 6.16).

    Args:
        probs: (N,) mean probabilities of the test set; labels: (N,) its labels.
        pairs: ``(upper, lower)`` pairs.
        n_dataset, n_training_stage: when ``n_dataset`` is given, adds ``pct_uncertain_dataset``
            (% of the whole dataset, as Table 6.2 counts it) and ``workload_pct``.

    Returns:
        DataFrame with columns ``upper, lower, n_true, n_false, n_uncertain, pct_true,
        pct_false, pct_uncertain`` (% of the test set), ``n_false_pos, n_false_neg,
        n_pos_auto_correct, pct_positives_auto_correct`` (% of the test positives correctly
        sure-labelled, Fig 6.16; NaN without positives) and ``perfect`` (no sure error).
    """
    rows = []
    for upper, lower in pairs:
        c = triage_counts(probs, labels, upper, lower)
        row = dict(
            upper=c["upper"], lower=c["lower"],
            n_true=c["n_true"], n_false=c["n_false"], n_uncertain=c["n_uncertain"],
            pct_true=_pct(c["n_true"], c["n"]), pct_false=_pct(c["n_false"], c["n"]),
            pct_uncertain=_pct(c["n_uncertain"], c["n"]),
            n_false_pos=c["n_false_pos"], n_false_neg=c["n_false_neg"],
            n_pos_auto_correct=c["n_pos_auto_correct"],
            pct_positives_auto_correct=_pct(c["n_pos_auto_correct"], c["n_positives"]),
            perfect=c["n_false"] == 0,
        )
        if n_dataset is not None:
            row["pct_uncertain_dataset"] = _pct(c["n_uncertain"], n_dataset)
            row["workload_pct"] = annotation_workload(n_dataset, n_training_stage, c["n_uncertain"])
        rows.append(row)
    return pd.DataFrame(rows)


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


def annotation_workload(n_dataset: int, n_training_stage: int, n_uncertain: int) -> float:
    """Percent of the dataset annotated by hand (Table 6.2): training stage plus uncertain images.

    ``100 * (n_training_stage + n_uncertain) / n_dataset``; e.g. Test33: 33.34 + 19.61 = 52.95.

    Raises:
        ValueError: ``n_dataset <= 0``, a negative count, or more images than the dataset.
    """
    if n_dataset <= 0:
        raise ValueError("n_dataset must be > 0")
    if n_training_stage < 0 or n_uncertain < 0:
        raise ValueError("counts must be >= 0")
    if n_training_stage + n_uncertain > n_dataset:
        raise ValueError("training stage + uncertain exceeds the dataset")
    return 100.0 * (n_training_stage + n_uncertain) / n_dataset


def expected_workload(probs, upper: float, lower: float, n_dataset: int,
                      n_training_stage: int) -> float:
    """The workload a user would really face with a pair chosen beforehand: no label needed.

    Args:
        probs: (N,) mean probabilities of the images to annotate (the test set).

    Returns:
        :func:`annotation_workload` with the uncertain count of ``triage(probs, upper, lower)``.
    """
    n_uncertain = int((triage(probs, upper, lower) == -1).sum())
    return annotation_workload(n_dataset, n_training_stage, n_uncertain)


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


# ---------------------------------------------------------------------------------------------
# conformal


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
