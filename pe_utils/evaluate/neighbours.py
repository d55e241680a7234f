"""Neighbour-aware triage: the labels of the nearest annotated slices beside each slice (Case1).

In Case1 (4.1.1) an expert labels p of every q slices of each series and the network labels
the rest. A clot spans neighbouring slices, so the known labels of the nearest annotated
slices below and above a slice carry information the image-only network ignores
(:mod:`pe_utils.evaluate.baseline` copies the nearest one and looks at no image).
:func:`neighbour_features` finds them; :func:`neighbour_probability` combines them with the
network's TTA probability by a fixed rule, whose output goes to the usual two-threshold triage
(:func:`pe_utils.triage`, :func:`pe_utils.triage_table`).

"Below" is the smaller ``slice_index``, "above" the larger; distances are ``slice_index``
differences (the cache numbers each series 0, 1, ... along z, so these are slices).

Why a fixed rule and not a fitted one *(our choice, measured)*: the thresholds, and anything
fitted, can only use labelled slices, i.e. the validation split of the training stage. A
validation slice's nearest *other* annotated slices are farther away than a test slice's (at
rate 1/q: q slices on both sides, against d and q - d, 1 <= d <= q - 1, for a test slice), so
a model fitted on validation slices learns how much to trust neighbours at the wrong distance.
A logistic regression fitted that way did so on the demo; the fixed "mean" rule, measured on
the demo at rate 1/3 (validation-chosen pair), cut the workload from 55.4 % (image only) to
42.1 % with no error among sure slices. A fit would be sound only with features computed in
the test geometry, which labelled slices cannot give without simulating it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["NEIGHBOUR_RULES", "neighbour_features", "neighbour_probability", "nearest_label"]

#: the rules :func:`neighbour_probability` knows; "mean" is the measured one, the default
NEIGHBOUR_RULES = ("mean", "nearest")
#: the columns :func:`neighbour_features` returns
FEATURES = ("label_below", "dist_below", "label_above", "dist_above")


def _rows(rows, n: int, name: str) -> np.ndarray:
    """Row positions (int64) from a (N,) bool mask or integer positions into the index."""
    r = np.asarray(rows)
    if r.dtype == bool:
        if r.shape != (n,):
            raise ValueError(f"{name} is a mask of {r.size} entries for {n} rows")
        return np.flatnonzero(r)
    r = r.reshape(-1)
    if r.size and not np.issubdtype(r.dtype, np.integer):
        raise ValueError(f"{name} must be a bool mask or integer row positions, got {r.dtype}")
    r = r.astype(np.int64)
    if r.size and (r.min() < 0 or r.max() >= n):
        raise ValueError(f"{name} holds row positions outside 0..{n - 1}")
    return r


def neighbour_features(index: pd.DataFrame, annotated_rows, query_rows, labels) -> pd.DataFrame:
    """The label and distance of each query slice's nearest annotated slice below and above.

    Only annotated slices of the query's own series count, and never the query slice itself:
    the search is strict (``slice_index`` < or > the query's), so a query that is annotated
    too (a validation slice) is left out of its own search and sees the *other* annotated
    slices. This is how validation slices get features without their own label, in a geometry
    close to, but not the same as, a test slice's: at rate 1/q a validation slice's neighbours
    lie q slices away on both sides, a test slice's d and q - d away (1 <= d <= q - 1); at p/q
    with p > 1, leaving a slice out likewise opens a gap wider than any a test slice sits in.
    Labels agree less the farther apart two slices are, so on validation the neighbour term
    misleads more often than on test: a pair chosen on validation is, in expectation,
    conservative (fewer sure errors on test than on validation, at the price of a higher
    workload than needed). For a positive slice in one contiguous clot this is exact: if a
    test slice's two neighbours both miss its clot, those at distance q would miss it too.
    For negatives beside a clot it holds only on average, and a small validation set can
    still be lucky, so it is no guarantee.

    Args:
        index: the cache index, one row per image, with ``SeriesInstanceUID`` and
            ``slice_index``; any row order.
        annotated_rows: the slices whose labels are known (Case1: ``split != "test"``), as
            a (N,) bool mask or integer row positions into ``index``.
        query_rows: the slices to describe (the test rows, or the validation rows), as a
            mask or positions; their order is the output's order.
        labels: (N,) labels aligned with ``index``; only the annotated rows are read, so the
            others may hold anything (NaN, -1, the truth).

    Returns:
        DataFrame with one row per query (``RangeIndex``, in the query order) and float
        columns ``label_below``, ``dist_below``, ``label_above``, ``dist_above``: NaN where
        the series has no annotated slice on that side (its ends).

    Raises:
        ValueError: a missing column, rows outside the index, a mask of the wrong length,
            labels not aligned with ``index``, annotated labels other than 0/1, or two
            rows of the same series with the same ``slice_index`` (no order between them).
    """
    missing = {"SeriesInstanceUID", "slice_index"} - set(index.columns)
    if missing:
        raise ValueError(f"index lacks column(s) {sorted(missing)}")
    n = len(index)
    annotated = _rows(annotated_rows, n, "annotated_rows")
    query = _rows(query_rows, n, "query_rows")
    y = np.asarray(labels).reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"labels has {y.shape[0]} entries for {n} rows")
    y_known = y[annotated]
    if y_known.size and not np.isin(y_known, (0, 1)).all():
        raise ValueError("annotated labels must hold only 0 and 1")

    series = pd.factorize(index["SeriesInstanceUID"].astype(str))[0].astype(np.int64)
    position = index["slice_index"].to_numpy(dtype=np.int64)
    involved = np.union1d(annotated, query)
    if pd.DataFrame({"s": series[involved], "z": position[involved]}).duplicated().any():
        raise ValueError("two rows share a SeriesInstanceUID and slice_index")

    # one sorted key (series, slice) for all series at once; never crossing a series is
    # checked on the series code of the neighbour found, not left to the key's spacing
    lo = int(position.min()) if n else 0
    span = (int(position.max()) - lo + 1) if n else 1
    key = series * span + (position - lo)                          # (N,) unique per involved row
    order = np.argsort(key[annotated], kind="stable")
    known_rows = annotated[order]                                  # (A,) annotated rows by key
    known_key = key[known_rows]
    q_key = key[query]                                             # (Q,)

    out = {c: np.full(query.size, np.nan) for c in FEATURES}
    for side, found in (("below", np.searchsorted(known_key, q_key, side="left") - 1),
                        ("above", np.searchsorted(known_key, q_key, side="right"))):
        inside = (found >= 0) & (found < known_rows.size)
        nb = known_rows[np.clip(found, 0, max(known_rows.size - 1, 0))] if known_rows.size \
            else np.zeros(query.size, dtype=np.int64)
        ok = inside & (series[nb] == series[query])
        out[f"label_{side}"][ok] = y[nb[ok]].astype(np.float64)
        out[f"dist_{side}"][ok] = np.abs(position[nb[ok]] - position[query[ok]]).astype(np.float64)
    return pd.DataFrame(out)


def nearest_label(features: pd.DataFrame) -> np.ndarray:
    """The label of the nearer of the two neighbours; a tie goes below (the smaller slice_index).

    The no-image baseline's rule (:func:`pe_utils.nearest_annotated_labels`).

    Args:
        features: as :func:`neighbour_features` returns them.

    Returns:
        (Q,) float labels, NaN where the slice has no annotated neighbour at all.
    """
    below = features["dist_below"].to_numpy(dtype=np.float64)
    above = features["dist_above"].to_numpy(dtype=np.float64)
    # NaN compares False: a missing side never wins, and <= sends a tie below
    take_below = ~np.isnan(below) & (np.isnan(above) | (below <= above))
    return np.where(take_below, features["label_below"].to_numpy(dtype=np.float64),
                    features["label_above"].to_numpy(dtype=np.float64))


def neighbour_probability(probs, features: pd.DataFrame, rule: str = "mean") -> np.ndarray:
    """The network's probability combined with the neighbours' labels by a fixed rule.

    Rules (see the module docstring for why fixed):

    * ``"mean"`` (default, the measured one): ``(p + m) / 2``, with m the mean of the
      available neighbour labels (one at a series end). A slice whose neighbours disagree
      (a clot edge) lands in [0.25, 0.75], so any pair wider than that sends it to the
      expert; one whose neighbours agree needs the network to agree as well to be sure
      (with upper 0.9: p > 0.8 between two positives).
    * ``"nearest"``: ``(p + label of the nearer neighbour) / 2``, ties below, as the
      no-image baseline picks it *(our choice, not measured; for comparison)*.

    Either rule gives ``p`` alone where the slice has no annotated neighbour.

    Args:
        probs: (Q,) TTA mean probabilities of the query slices, in the features' order.
        features: (Q rows) from :func:`neighbour_features`.
        rule: one of :data:`NEIGHBOUR_RULES`.

    Returns:
        (Q,) float64 probabilities in [0, 1], for :func:`pe_utils.triage` and its kin.

    Raises:
        ValueError: an unknown rule, probabilities not aligned with the features, outside
            [0, 1] or NaN, or features lacking a column.
    """
    if rule not in NEIGHBOUR_RULES:
        raise ValueError(f"unknown rule {rule!r}; valid: {', '.join(NEIGHBOUR_RULES)}")
    missing = set(FEATURES) - set(features.columns)
    if missing:
        raise ValueError(f"features lack column(s) {sorted(missing)}")
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    if p.shape[0] != len(features):
        raise ValueError(f"{p.shape[0]} probabilities for {len(features)} feature rows")
    if p.size and not ((p >= 0) & (p <= 1)).all():  # NaN fails both comparisons
        raise ValueError("probabilities must lie in [0, 1]")
    if rule == "mean":
        both = features[["label_below", "label_above"]].to_numpy(dtype=np.float64)  # (Q, 2)
        count = (~np.isnan(both)).sum(axis=1)
        m = np.divide(np.nansum(both, axis=1), count, out=np.full(p.shape, np.nan), where=count > 0)
    else:
        m = nearest_label(features)
    return np.where(np.isnan(m), p, (p + m) / 2)
