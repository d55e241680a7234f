"""Exam-level results: one score per CT exam from its slices' probabilities (beyond the thesis).

The thesis classifies 2D slices only (6.3). A radiologist reads exams: an exam is positive when
any of its slices shows an embolus, and the natural exam score is how sure the network is about
its most suspicious slices. Two aggregations of the slice probabilities:

- ``"max"``: the highest slice probability (one confident slice makes the exam positive; also
  one confident false alarm does);
- ``"topk"``: the mean of the ``k`` highest (an exam with fewer slices averages all of them),
  steadier against a single outlying slice.

The exam-level AUC then ranks exams by that score against their labels (scikit-learn's
``roc_auc_score``). It is None, never NaN, when the test exams hold one class only: with one
label there is no ranking to judge.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

__all__ = ["EXAM_HOWS", "exam_scores", "exam_labels", "exam_level_auc"]

#: the aggregations :func:`exam_scores` knows
EXAM_HOWS = ("max", "topk")


def _frame(probs: Sequence[float], exam_ids: Sequence, labels: Sequence | None = None) -> pd.DataFrame:
    probs = np.asarray(probs, dtype=float).reshape(-1)
    exam_ids = np.asarray(exam_ids).reshape(-1)
    if len(probs) != len(exam_ids):
        raise ValueError(f"{len(probs)} probabilities for {len(exam_ids)} exam ids: one id per slice")
    if not np.isfinite(probs).all():
        raise ValueError(f"{int((~np.isfinite(probs)).sum())} probability(ies) are NaN or infinite")
    if pd.isna(pd.Series(exam_ids, dtype=object)).any():
        raise ValueError("an exam id is missing (None or NaN): every slice needs its exam")
    df = pd.DataFrame({"exam": exam_ids, "prob": probs})
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(probs):
            raise ValueError(f"{len(labels)} labels for {len(probs)} probabilities")
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("labels must be 0 or 1 (a slice shows an embolus or not)")
        df["label"] = labels.astype(int)
    return df


def exam_scores(probs: Sequence[float], exam_ids: Sequence, how: str = "max", k: int = 3) -> pd.Series:
    """One score per exam from its slices' probabilities.

    Args:
        probs: (N,) slice probabilities of the positive class.
        exam_ids: (N,) the exam (study or series pseudonym) of each slice.
        how: ``"max"`` (highest slice probability) or ``"topk"`` (mean of the ``k`` highest;
            all of them when the exam has fewer than ``k`` slices).
        k: slices averaged by ``"topk"`` (ignored by ``"max"``).

    Returns:
        Series indexed by exam id (sorted), named ``"exam_score_<how>"``.

    Raises:
        ValueError: an unknown ``how``, ``k < 1``, lengths that differ, a NaN probability or a
            missing exam id.
    """
    if how not in EXAM_HOWS:
        raise ValueError(f"how must be one of {EXAM_HOWS}, got {how!r}")
    if how == "topk" and (int(k) != k or k < 1):
        raise ValueError(f"k must be a whole number >= 1, got {k}")
    df = _frame(probs, exam_ids)
    name = f"exam_score_{how}"
    if df.empty:
        return pd.Series([], dtype=float, name=name).rename_axis("exam")
    if how == "max":
        scores = df.groupby("exam")["prob"].max()
    else:
        top = df.sort_values(["exam", "prob"], ascending=[True, False], kind="stable")
        top = top[top.groupby("exam").cumcount() < int(k)]
        scores = top.groupby("exam")["prob"].mean()
    return scores.rename(name).rename_axis("exam")


def exam_labels(labels: Sequence[int], exam_ids: Sequence) -> pd.Series:
    """Each exam's label: 1 when any of its slices is positive (index: exam id, sorted)."""
    df = _frame(np.zeros(len(np.asarray(labels).reshape(-1))), exam_ids, labels)
    return df.groupby("exam")["label"].max().rename("exam_label").rename_axis("exam")


def exam_level_auc(probs: Sequence[float], labels: Sequence[int], exam_ids: Sequence, how: str = "max",
                   k: int = 3) -> tuple[float | None, int]:
    """The AUC of exam scores (:func:`exam_scores`) against exam labels (:func:`exam_labels`).

    Args:
        probs: (N,) slice probabilities; labels: (N,) slice labels 0/1; exam_ids: (N,) exams.
        how, k: the aggregation, as in :func:`exam_scores`.

    Returns:
        ``(auc, n_exams)``: ``auc`` is None when the exams hold one class only (or none).
    """
    from sklearn.metrics import roc_auc_score

    scores = exam_scores(probs, exam_ids, how=how, k=k)
    truth = exam_labels(labels, exam_ids).reindex(scores.index)
    if truth.nunique() < 2:
        return None, int(len(scores))
    return float(roc_auc_score(truth.to_numpy(), scores.to_numpy())), int(len(scores))
