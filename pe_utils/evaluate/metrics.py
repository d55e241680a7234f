"""Confusion-based metrics, ROC/AUC, Youden's threshold and the per-batch F1 bound.

Thesis 6.1 and Appendix B. Everything takes plain arrays (``y_true`` 0/1, ``y_prob`` in [0, 1])
and uses scikit-learn underneath, so the numbers are the ones any reader can recompute.

Check figure (Fig. 6.5): TN 1484, FP 3, FN 4, TP 65 gives accuracy 0.9955 and F1 0.9489.

Appendix B: an F1 computed on each batch and averaged over the epoch is 0 on every batch
without a positive, so it can never exceed (batches with >= 1 positive) / (all batches).
:func:`f1_batch_upper_bound` gives that bound, :func:`positives_per_batch` the counts it is
computed from; prefer the F1 of the whole epoch's confusion matrix (``binary_metrics``).
:func:`epoch_figures` gathers all of these for one training or validation epoch (the
``figures`` argument of :func:`pe_utils.learn.fit`).
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "binary_metrics",
    "youden_threshold",
    "f1_batch_upper_bound",
    "positives_per_batch",
    "batch_mean_f1",
    "epoch_figures",
]


def _as_labels(y_true) -> np.ndarray:
    y = np.asarray(y_true).reshape(-1)
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold only 0 and 1")
    return y.astype(np.int64)


def _as_probs(y_prob, n: int) -> np.ndarray:
    p = np.asarray(y_prob, dtype=np.float64).reshape(-1)
    if p.shape[0] != n:
        raise ValueError(f"y_true has {n} values but y_prob has {p.shape[0]}")
    return p


def binary_metrics(y_true, y_prob, threshold: float = 0.5) -> dict:
    """Confusion matrix and the usual figures of a binary classifier at one threshold.

    Args:
        y_true: (N,) labels 0/1.
        y_prob: (N,) scores, usually probabilities; an image is called positive when
            ``y_prob >= threshold``.
        threshold: decision threshold.

    Returns:
        dict with ``tn, fp, fn, tp`` (int), ``accuracy, precision, recall, f1, auc`` (float).
        precision, recall and F1 are 0 where undefined (``zero_division=0``); ``auc`` is NaN
        when ``y_true`` holds one class only (ROC undefined), and ``accuracy`` NaN when N = 0.

    Raises:
        ValueError: labels other than 0/1, or lengths that differ.
    """
    y = _as_labels(y_true)
    p = _as_probs(y_prob, y.shape[0])
    pred = (p >= threshold).astype(np.int64)
    # labels=[0, 1] keeps a 2x2 matrix even when a class is absent
    from sklearn.metrics import confusion_matrix, roc_auc_score  # lazily: ~1 s to import, see bench/batch_overhead.py

    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, pred, labels=[0, 1]).ravel())
    n = tn + fp + fn + tp
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0  # = sklearn f1_score(zero_division=0)
    auc = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else math.nan
    return dict(
        tn=tn, fp=fp, fn=fn, tp=tp,
        accuracy=(tp + tn) / n if n else math.nan,
        precision=float(precision), recall=float(recall), f1=float(f1), auc=auc,
        threshold=float(threshold),
    )


def youden_threshold(y_true, y_prob) -> float:
    """Threshold maximising Youden's J = TPR - FPR on scikit-learn's ROC curve.

    The first ROC point has threshold +inf (nothing called positive); it is clipped to 1.0
    so the result is always a usable probability. Ties go to the first (highest) threshold.

    Raises:
        ValueError: ``y_true`` holds one class only (no ROC curve).
    """
    y = _as_labels(y_true)
    p = _as_probs(y_prob, y.shape[0])
    if len(np.unique(y)) < 2:
        raise ValueError("youden_threshold needs both classes in y_true")
    from sklearn.metrics import roc_curve  # lazily, as above

    fpr, tpr, thresholds = roc_curve(y, p)
    best = int(np.argmax(tpr - fpr))
    return float(min(thresholds[best], 1.0))


def f1_batch_upper_bound(positives_per_batch: Sequence[int] | np.ndarray) -> float:
    """Appendix B: the highest per-batch-mean F1 possible, (batches with a positive) / (all).

    Args:
        positives_per_batch: number of positive images in each batch of one epoch.

    Returns:
        the bound in [0, 1]; e.g. 250 of 350 batches with a positive -> 0.7143.

    Raises:
        ValueError: no batches, or a negative count.
    """
    counts = np.asarray(positives_per_batch).reshape(-1)
    if counts.size == 0:
        raise ValueError("positives_per_batch is empty")
    if (counts < 0).any():
        raise ValueError("positive counts must be >= 0")
    return float((counts > 0).sum() / counts.size)


def _item_labels(dataset) -> np.ndarray | None:
    """Labels of ``dataset[i]`` for every i without loading images, or None if unknown.

    Recognises datasets exposing ``labels`` with one label per item (as
    :class:`pe_utils.data.CacheDataset` does), or a full-length ``labels`` plus ``indices``
    (item i is image ``indices[i]``), and torch ``Subset`` / ``ConcatDataset`` of these.
    """
    import torch.utils.data as tud

    n = len(dataset)
    if isinstance(dataset, tud.Subset):
        inner = _item_labels(dataset.dataset)
        return None if inner is None else inner[np.asarray(dataset.indices, dtype=np.int64)]
    if isinstance(dataset, tud.ConcatDataset):
        parts = [_item_labels(d) for d in dataset.datasets]
        return None if any(p is None for p in parts) else np.concatenate(parts)
    labels = getattr(dataset, "labels", None)
    if labels is None or callable(labels):
        return None
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] == n:
        return labels
    indices = getattr(dataset, "indices", None)
    if indices is not None:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.shape[0] == n and (n == 0 or labels.shape[0] > indices.max()):
            return labels[indices]
    return None


def positives_per_batch(loader) -> np.ndarray:
    """Number of positive images in each batch the loader yields in one epoch.

    Fast path: when the dataset exposes its labels (see ``_item_labels``) the loader's batch
    sampler is walked without loading any image. With a sequential sampler or the project's
    ``EpochSampler`` (order fixed by seed and epoch) the counts are exactly those of the
    epoch; with torch's ``RandomSampler`` they are those of one shuffle like an epoch's (the
    DataLoader draws extra seeds before shuffling, so not necessarily the next one). Random
    states touched (the sampler's generator, or torch's global one) are restored, so the
    training order is not disturbed. Otherwise the loader is iterated and the labels (second
    element of each batch) summed.

    Returns:
        (n_batches,) int64 array.
    """
    import torch

    dataset = getattr(loader, "dataset", None)
    labels = _item_labels(dataset) if dataset is not None else None
    batch_sampler = getattr(loader, "batch_sampler", None)
    if labels is not None and batch_sampler is not None:
        sampler = getattr(batch_sampler, "sampler", None)
        generator = getattr(sampler, "generator", None)
        saved = generator.get_state() if generator is not None else torch.get_rng_state()
        try:
            counts = [int((labels[np.asarray(list(b))] > 0.5).sum()) for b in batch_sampler]
        finally:
            if generator is not None:
                generator.set_state(saved)
            else:
                torch.set_rng_state(saved)
        return np.asarray(counts, dtype=np.int64)
    counts = []
    for batch in loader:
        y = batch[1] if isinstance(batch, (tuple, list)) else batch
        y = y.detach().cpu().numpy() if hasattr(y, "detach") else np.asarray(y)
        counts.append(int((np.asarray(y).reshape(-1) > 0.5).sum()))
    return np.asarray(counts, dtype=np.int64)


def batch_mean_f1(y_true_batches: Iterable, y_score_batches: Iterable, threshold: float = 0.5) -> float:
    """The thesis's F1: computed on each batch (0 where undefined) and averaged (Appendix B).

    Counts per batch with one ``np.bincount`` each, instead of one scikit-learn ``f1_score``
    per batch (~1 ms each, a few % of a GPU epoch); the numbers are the same (a test checks
    them against that loop).

    Args:
        y_true_batches: iterable of (B,) label arrays, 0/1.
        y_score_batches: iterable of (B,) scores (called positive when ``>= threshold``), or
            hard 0/1 predictions (the default threshold keeps them as they are); batch for
            batch with ``y_true_batches``.
        threshold: decision threshold.

    Returns:
        mean of the per-batch F1 (NaN if there is no batch). Biased low; see
        :func:`f1_batch_upper_bound`.

    Raises:
        ValueError: labels other than 0/1, a different number of batches, or a batch whose
            labels and scores differ in length.
    """
    y_batches = [np.asarray(y).reshape(-1) for y in y_true_batches]
    p_batches = [np.asarray(p).reshape(-1) for p in y_score_batches]
    if len(y_batches) != len(p_batches):
        raise ValueError(f"{len(y_batches)} label batches but {len(p_batches)} score batches")
    n_batches = len(y_batches)
    if n_batches == 0:
        return math.nan
    sizes = [len(y) for y in y_batches]
    if sizes != [len(p) for p in p_batches]:
        raise ValueError("each batch needs as many scores as labels")
    batch = np.repeat(np.arange(n_batches), sizes)                  # (N,) batch of each item
    y = _as_labels(np.concatenate(y_batches)) == 1
    pred = np.concatenate(p_batches) >= threshold
    tp = np.bincount(batch, weights=y & pred, minlength=n_batches)  # (n_batches,)
    fp = np.bincount(batch, weights=~y & pred, minlength=n_batches)
    fn = np.bincount(batch, weights=y & ~pred, minlength=n_batches)
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros(n_batches), where=denom > 0)
    return float(f1.mean())


def epoch_figures(outputs: Sequence[Mapping], threshold: float = 0.5) -> dict:
    """One epoch's figures of a binary classifier, from its batches' kept outputs.

    The ``figures`` callable of :func:`pe_utils.learn.fit` (and ``train_one_epoch``,
    ``evaluate``) for :func:`pe_utils.learn.supervised_step`.

    Args:
        outputs: one mapping per batch with ``probs`` (B,) and ``labels`` (B,) 0/1 (numpy
            arrays or CPU tensors), in the epoch's batch order.
        threshold: decision threshold.

    Returns:
        ``tn, fp, fn, tp, accuracy, precision, recall, f1, auc`` of the whole epoch
        (:func:`binary_metrics`), then Appendix B's ``f1_batch_mean`` (:func:`batch_mean_f1`)
        and its bound ``f1_batch_bound`` (:func:`f1_batch_upper_bound`).

    Raises:
        ValueError: no batch, a batch without ``probs`` or ``labels``, labels other than 0/1.
    """
    if not outputs:
        raise ValueError("epoch_figures needs at least one batch")
    missing = [k for k in ("probs", "labels") if k not in outputs[0]]
    if missing:
        raise ValueError(f"epoch_figures needs 'probs' and 'labels' per batch; missing {missing}")
    p_batches = [np.asarray(o["probs"]).reshape(-1) for o in outputs]
    y_batches = [np.asarray(o["labels"]).reshape(-1) for o in outputs]
    out = binary_metrics(np.concatenate(y_batches), np.concatenate(p_batches), threshold=threshold)
    out.pop("threshold")
    out["f1_batch_mean"] = batch_mean_f1(y_batches, p_batches, threshold)
    out["f1_batch_bound"] = f1_batch_upper_bound([int((y > 0.5).sum()) for y in y_batches])
    return out
