"""Who trains on what: Case1 sampling-rate splits, Case2 patient splits, fractions, re-sampling.

Case1 (thesis 4.1.1, Fig. 4.1): a rate p/q keeps p of every q consecutive slices of each
series for the training stage, a fixed periodic pattern (never random), then splits the
kept images at random 80/20 into train/validation; the rest is the test set, i.e. the
images the network annotates. Patients are shared between train and test on purpose.

Case2 (5.1.1, Fig. 5.1, Table 6.4): train/validation split by patient, training-set
fractions, and the over/undersampling (positives x3, two thirds of the negatives kept).

Every function returns plain numpy arrays aligned with the rows of the cache index it is
given (see :func:`pe_utils.data.preprocess.load_cache`), so any row order works.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import pandas as pd

from ..profiles import SAMPLING_RATES

#: share of Case1's training stage held out for validation: 80 % train / 20 % validation (4.1.1)
CASE1_VAL_FRACTION = 0.2
#: share of Case2's images (by patient) used for validation: 80 % / 20 % (5.1.1)
CASE2_VAL_FRACTION = 0.2
#: training-set fractions of Case2/Case4 (Table 6.4); 66.66 and 33.34 written as the thesis does
TRAIN_FRACTIONS: tuple[float, ...] = (1.0, 0.9, 0.8, 0.75, 0.6666, 0.5, 0.3334, 0.25, 0.2, 0.1, 0.05)

LABEL = "pe_present_on_image"
_TEST_NAMES = {name.lower(): Fraction(rate) for rate, name in SAMPLING_RATES.items()}


def _round_half_up(x: float) -> int:
    # Python's round() rounds half to even; counts should not depend on parity
    return int(math.floor(x + 0.5))


def parse_rate(rate: str | Fraction) -> Fraction:
    """Read a Case1 sampling rate.

    Args:
        rate: ``"1/3"``, a test name of Table 6.1 (``"Test33"``, case-insensitive) or a
            :class:`fractions.Fraction`.

    Returns:
        The rate as a Fraction in (0, 1].

    Raises:
        ValueError: not a rate, an unknown test name, or outside (0, 1].
    """
    if isinstance(rate, Fraction):
        value = rate
    elif isinstance(rate, str) and rate.strip().lower() in _TEST_NAMES:
        value = _TEST_NAMES[rate.strip().lower()]
    elif isinstance(rate, str) and re.fullmatch(r"\s*\d+\s*/\s*\d+\s*", rate):
        p, q = (int(s) for s in rate.split("/"))
        if q == 0:
            raise ValueError(f"sampling rate {rate!r} divides by zero")
        value = Fraction(p, q)
    else:
        known = ", ".join(f"{r} ({n})" for r, n in SAMPLING_RATES.items())
        raise ValueError(f"cannot read sampling rate {rate!r}; give p/q or one of: {known}")
    if not 0 < value <= 1:
        raise ValueError(f"sampling rate {rate!r} must lie in (0, 1]")
    return value


def periodic_mask(positions: np.ndarray, rate: str | Fraction) -> np.ndarray:
    """Which slice positions a rate p/q keeps for the training stage.

    Position ``i`` is kept iff ``ceil((i+1)p/q) > ceil(ip/q)``: the pattern has period q,
    keeps exactly p slices of *any* q consecutive ones, spreads them as evenly as possible
    and starts at slice 0 (1/3 keeps 0, 3, 6, ...; 9/10 drops 9, 19, ...). A series of n
    slices therefore gets ``ceil(n p/q)`` training slices: an incomplete last block of r
    slices keeps ``ceil(r p/q)`` of them, which is why the thesis's Test33 keeps 33.34 %.

    Args:
        positions: (N,) int slice positions (0-based, along z) within their series.
        rate: anything :func:`parse_rate` reads.

    Returns:
        (N,) bool, True for the training stage.
    """
    r = parse_rate(rate)
    i = np.asarray(positions, dtype=np.int64)
    p, q = r.numerator, r.denominator
    # integer ceil(a/q) = -((-a) // q): exact, no float rounding
    return (-((-(i + 1) * p) // q)) > (-((-i * p) // q))


def _stratified_pick(labels: np.ndarray, fraction: float, rng: np.random.Generator,
                     stratify: bool) -> np.ndarray:
    """Positions (into ``labels``) of a seeded random ``fraction``, per class if ``stratify``."""
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)] if stratify \
        else [np.arange(len(labels))]
    picked = [rng.permutation(g)[:_round_half_up(fraction * len(g))] for g in groups]
    return np.sort(np.concatenate(picked)) if picked else np.array([], dtype=np.int64)


def case1_split(index: pd.DataFrame, rate: str | Fraction, seed: int = 0,
                val_fraction: float = CASE1_VAL_FRACTION, stratify: bool = True,
                label_col: str = LABEL) -> np.ndarray:
    """Case1 split of a cache index: periodic training stage, random train/val, rest test.

    Args:
        index: one row per image with ``SeriesInstanceUID``, ``slice_index`` and the label
            column; any row order.
        rate: sampling rate (``"1/3"``, ``"Test33"``, Fraction); see :func:`periodic_mask`.
        seed: seeds the train/validation split only; the training stage depends on the
            rate alone, so every seed annotates the same test images.
        val_fraction: share of the training stage used for validation (0.2 in 4.1.1).
        stratify: draw the validation set per class *(our choice, default True)*: with
            Dataset1's 4.21 % positives an unstratified 20 % could hold almost none.
        label_col: the label column used to stratify.

    Returns:
        (N,) array of ``"train"``, ``"val"``, ``"test"``, aligned with ``index``'s rows.

    Raises:
        ValueError: a missing column, a bad rate or a val_fraction outside [0, 1).
    """
    missing = {"SeriesInstanceUID", "slice_index", label_col} - set(index.columns)
    if missing:
        raise ValueError(f"index lacks column(s) {sorted(missing)}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    # position along z within the series, whatever the slice_index numbering (gaps allowed)
    position = (index.groupby("SeriesInstanceUID", sort=False)["slice_index"]
                .rank(method="first").to_numpy(dtype=np.int64) - 1)
    # canonical order (series, slice) so the pick depends on the content, not the row order
    canon = np.lexsort((position, index["SeriesInstanceUID"].astype(str).to_numpy()))
    kept = canon[periodic_mask(position, rate)[canon]]
    split = np.full(len(index), "test", dtype=object)
    split[kept] = "train"
    labels = index[label_col].to_numpy()[kept]
    val = _stratified_pick(labels, val_fraction, np.random.default_rng(seed), stratify)
    split[kept[val]] = "val"
    return split.astype(str)


def patient_split(index: pd.DataFrame, seed: int = 0, val_fraction: float = CASE2_VAL_FRACTION,
                  patient_col: str = "patient_id", stratify: bool = True,
                  label_col: str = LABEL) -> np.ndarray:
    """Case2 split by patient: about ``val_fraction`` of the images, no patient in both sets.

    Whole patients are drawn for validation by a seeded search that brings the validation
    set as close as it can to ``val_fraction`` of the images and, if ``stratify``
    *(our choice)*, to ``val_fraction`` of the positive images too (thesis 5.1.1 only asks
    for 80/20 by images and disjoint patients). The test set is another cache.

    Args:
        index: one row per image with ``patient_col`` (and ``label_col`` to stratify).
        seed: which patients go to validation.
        val_fraction: share of images in validation (0.2 in 5.1.1).
        patient_col: the patient key column (the cache's pseudonymous ``patient_id``).
        stratify: also match the positive images' share.
        label_col: the label column.

    Returns:
        (N,) array of ``"train"``/``"val"`` aligned with ``index``'s rows.

    Raises:
        ValueError: a missing column, fewer than 2 patients, val_fraction outside (0, 1).
    """
    from .selection import select_groups  # the same subset search builds the manifests

    if patient_col not in index.columns or (stratify and label_col not in index.columns):
        raise ValueError(f"index needs columns {patient_col!r} and {label_col!r}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    patients = index[patient_col].astype(str).to_numpy()
    labels = index[label_col].to_numpy().astype(np.int64) if stratify else np.zeros(len(index), int)
    keys, inverse = np.unique(patients, return_inverse=True)
    if len(keys) < 2:
        raise ValueError(f"a patient split needs at least 2 patients, got {len(keys)}")
    n_images = np.bincount(inverse, minlength=len(keys))
    n_positive = np.bincount(inverse, weights=labels, minlength=len(keys)).astype(np.int64)
    chosen = select_groups(n_images, n_positive, _round_half_up(val_fraction * len(index)),
                           _round_half_up(val_fraction * n_positive.sum()) if stratify else None,
                           seed=seed)
    if chosen.all():  # keep at least one patient on each side
        chosen[np.argmax(n_images)] = False
    if not chosen.any():
        chosen[np.argmin(n_images)] = True
    return np.where(chosen[inverse], "val", "train").astype(str)


def train_fraction_subset(index: pd.DataFrame, split: np.ndarray, fraction: float,
                          seed: int = 0, label_col: str = LABEL) -> np.ndarray:
    """Rows of the training split kept when training on a fraction of it (Table 6.4).

    *(our choice)* The thesis does not say how it shrank the training set; we draw images,
    per class (so the positive share stays put), from one seeded permutation per class, so
    for one seed every smaller fraction is a subset of every larger one. Each class keeps
    ``round(fraction * n_class)`` images, at least one. Validation and test are untouched.

    Args:
        index: the cache index (needs ``label_col``).
        split: (N,) ``"train"``/``"val"``/``"test"`` per row, e.g. from :func:`patient_split`.
        fraction: in (0, 1], e.g. an entry of :data:`TRAIN_FRACTIONS`.
        seed: which images.
        label_col: the label column.

    Returns:
        Sorted int64 row positions (into ``index``) of the kept training images.

    Raises:
        ValueError: fraction outside (0, 1] or ``split`` not aligned with ``index``.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction} (give 0.5, not 50)")
    split = np.asarray(split)
    if len(split) != len(index):
        raise ValueError(f"split has {len(split)} entries for {len(index)} rows")
    train = np.flatnonzero(split == "train")
    labels = index[label_col].to_numpy()[train]
    rng = np.random.default_rng(seed)
    kept = []
    for c in np.unique(labels):
        rows = rng.permutation(train[labels == c])
        kept.append(rows[:max(1, _round_half_up(fraction * len(rows)))])
    return np.sort(np.concatenate(kept)).astype(np.int64) if kept else train.astype(np.int64)


def resample(labels: np.ndarray, seed: int = 0, positive_copies: int = 3,
             negative_keep: float = 2 / 3) -> np.ndarray:
    """Case2 over/undersampling (5.1.1): each positive ``positive_copies`` times, some negatives.

    "All the positive images are copied three times, and only two-thirds of the negative
    images are kept": a positive appears 3 times in total, and ``round(2/3 n_neg)``
    negatives drawn by seed appear once. From a prevalence pi the result holds
    ``3 pi / (3 pi + 2/3 (1 - pi))`` positives: 44.99 % for Dataset2's 15.38 %. The thesis
    reports 44.58 %, which no rounding of 19,946 x 15.38 % explains; it matches a training
    split holding 15.17 % positives, plausible since the split is by patient and the
    training part need not keep Dataset2's exact prevalence (see tests/test_splits.py).

    Args:
        labels: (N,) 0/1 labels of the rows to re-sample (e.g. the training rows).
        seed: which negatives are kept.
        positive_copies: times each positive appears (3).
        negative_keep: share of negatives kept (2/3).

    Returns:
        Sorted int64 positions into ``labels``, positives repeated; use them to index the
        training rows (a DataLoader shuffles anyway).

    Raises:
        ValueError: positive_copies < 1 or negative_keep outside [0, 1].
    """
    if positive_copies < 1 or not 0 <= negative_keep <= 1:
        raise ValueError(f"need positive_copies >= 1 and 0 <= negative_keep <= 1, "
                         f"got {positive_copies}, {negative_keep}")
    labels = np.asarray(labels)
    positives = np.flatnonzero(labels == 1)
    negatives = np.flatnonzero(labels != 1)
    rng = np.random.default_rng(seed)
    kept_neg = rng.permutation(negatives)[:_round_half_up(negative_keep * len(negatives))]
    rows = np.concatenate([np.repeat(positives, positive_copies), kept_neg])
    return np.sort(rows).astype(np.int64)
