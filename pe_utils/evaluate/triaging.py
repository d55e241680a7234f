"""Two-threshold triage and the annotation workload it leaves (thesis 4.1.1, 6.2.2, Table 6.2).

The mean TTA probability ``p`` of an image is compared with two thresholds, and the image is

* sure positive when ``p > upper`` ("above the upper threshold"),
* sure negative when ``p < lower`` ("under the lower one"),
* uncertain when ``lower <= p <= upper`` (checked by an expert).

Both comparisons are strict, as the thesis words them; they also make the conformal
thresholds of :mod:`pe_utils.evaluate.conformal` exact. (``binary_metrics`` keeps
scikit-learn's ``p >= threshold``.) The annotation workload is the share of the dataset an
expert labels by hand: the training stage plus the uncertain images.

How a pair is chosen (oracle, validation, conformal) is :mod:`pe_utils.evaluate.thresholds`'s job.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd

from pe_utils.profiles import THESIS_THRESHOLD_PAIRS

__all__ = ["Thresholds", "triage", "triage_counts", "triage_table", "annotation_workload",
           "expected_workload"]


class Thresholds(NamedTuple):
    """A threshold pair; a plain ``(upper, lower)`` tuple works wherever this is accepted."""

    upper: float
    lower: float

    def __str__(self) -> str:
        return f"{self.upper:g}/{self.lower:g}"


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


def _pct(a: float, b: float) -> float:
    return 100.0 * a / b if b else float("nan")


def triage_counts(probs, labels, upper: float, lower: float) -> dict:
    """Counts of one triage, against the labels when they are known.

    Args:
        probs: (N,) mean probabilities.
        labels: (N,) 0/1 labels, or None (then only the label-free counts).
        upper, lower: the pair, as :func:`triage` takes it.

    Returns:
        dict with ``upper, lower, n, n_sure_pos, n_sure_neg, n_uncertain, pct_uncertain``
        (% of the N images; NaN when N = 0) and, with labels, ``n_true, n_false,
        n_false_pos, n_false_neg, n_positives, n_pos_auto_correct``; counts are ints.
        "True"/"false" are the sure predictions that are right/wrong; ``n_pos_auto_correct``
        the positives sure-labelled positive.

    Raises:
        ValueError: a bad pair (see :func:`triage`), labels misaligned or other than 0/1.
    """
    t = triage(probs, upper, lower)
    sure = t >= 0
    n_uncertain = int((~sure).sum())
    out = dict(
        upper=float(upper), lower=float(lower), n=int(t.size),
        n_sure_pos=int((t == 1).sum()), n_sure_neg=int((t == 0).sum()),
        n_uncertain=n_uncertain, pct_uncertain=_pct(n_uncertain, t.size),
    )
    if labels is None:
        return out
    y = _labels(labels, t.shape[0])
    out.update(
        n_true=int((sure & (t == y)).sum()),
        n_false=int((sure & (t != y)).sum()),
        n_false_pos=int(((t == 1) & (y == 0)).sum()),
        n_false_neg=int(((t == 0) & (y == 1)).sum()),
        n_positives=int((y == 1).sum()),
        n_pos_auto_correct=int(((t == 1) & (y == 1)).sum()),
    )
    return out


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
            pct_uncertain=c["pct_uncertain"],
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
