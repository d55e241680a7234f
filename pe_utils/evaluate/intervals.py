"""How sure a mean over seeds is, and whether two methods differ: the thesis's open question.

The thesis ran each supervised setting 3 times and each contrastive one twice, reported means
only, and could not say whether a difference "is due to the method, or the randomness" (6.3.2).
Two tools answer it:

- :func:`mean_interval`: the mean of a figure over seeds with its Student t interval,
  ``mean +- t_{n-1} * sd / sqrt(n)``. With n = 2 the 95 % factor t is 12.71: two seeds
  say almost nothing about where the mean lies.
- :func:`paired_difference`: the mean of per-seed differences ``a - b`` (the same seed gives
  both methods the same subset, split and augmentation stream, so the seed's luck cancels
  in the difference), its t interval, the paired t-test and, from 6 pairs on, the Wilcoxon
  signed-rank test (no normality assumed; with fewer pairs its smallest two-sided p-value is
  2 / 2^n >= 0.0625, so it could never reject at 5 %).

Both skip missing values (None or NaN: a run still coming in) and count what is left. Where
no interval or test exists (fewer than two values, no spread), the figure is None and
``reason`` says why in words: a report never shows NaN.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

__all__ = ["WILCOXON_MIN_PAIRS", "mean_interval", "paired_difference", "seeds_to_resolve"]

#: pairs needed before the Wilcoxon signed-rank test is run (module docstring)
WILCOXON_MIN_PAIRS = 6


def _finite(values: Sequence | None) -> np.ndarray:
    """``values`` as floats, None -> NaN (no conversion error on a missing figure)."""
    if values is None:
        return np.zeros(0)
    return np.array([np.nan if v is None else float(v) for v in np.asarray(values, dtype=object).reshape(-1)])


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def _t_interval(x: np.ndarray, confidence: float) -> tuple[float, float, float, float | None]:
    """(mean, low, high, sd) of ``x`` (2+ finite values) by Student t; ``low = high = mean`` and
    sd 0 when the values agree to rounding (0.9 - 0.8 and 0.8 - 0.7 differ by 1e-16)."""
    from scipy import stats

    mean, sd = float(x.mean()), float(x.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(mean)):
        return mean, mean, mean, 0.0
    half = float(stats.t.ppf((1 + confidence) / 2, df=x.size - 1)) * sd / math.sqrt(x.size)
    return mean, mean - half, mean + half, sd


def mean_interval(values: Sequence[float | None], confidence: float = 0.95) -> dict[str, Any]:
    """The mean of ``values`` (one per seed) and its Student t confidence interval.

    Args:
        values: one figure per run; None or NaN entries (a run lacking it) are left out.
        confidence: the interval's coverage, in (0, 1).

    Returns:
        ``dict(mean, low, high, n, sd, n_missing, reason)``: ``n`` values kept; ``mean`` None
        with none; ``low``/``high``/``sd`` None with one; with identical values ``low = high
        = mean`` and a reason saying the spread is 0. ``reason`` is None when all is defined.

    Raises:
        ValueError: ``confidence`` outside (0, 1).
    """
    _check_confidence(confidence)
    x = _finite(values)
    kept = x[np.isfinite(x)]
    out: dict[str, Any] = dict(mean=None, low=None, high=None, n=int(kept.size), sd=None,
                               n_missing=int(x.size - kept.size), reason=None)
    if kept.size == 0:
        out["reason"] = "no value: no run has this figure yet"
        return out
    if kept.size == 1:
        out.update(mean=float(kept[0]), reason="one value: an interval needs two seeds or more")
        return out
    mean, low, high, sd = _t_interval(kept, confidence)
    out.update(mean=mean, low=low, high=high, sd=sd)
    if sd == 0:
        out["reason"] = f"the {kept.size} values are identical: the interval has width 0"
    return out


def paired_difference(a: Sequence[float | None], b: Sequence[float | None],
                      confidence: float = 0.95) -> dict[str, Any]:
    """The mean of the paired differences ``a - b`` over seeds, its t interval and paired tests.

    Args:
        a, b: one figure per seed, aligned (``a[i]`` and ``b[i]`` share seed i), e.g. the
            contrastive and the supervised AUC at one training fraction. A pair with a
            missing member (None or NaN) is left out.
        confidence: the interval's coverage, in (0, 1).

    Returns:
        ``dict(mean, low, high, n, sd, p_value, test, wilcoxon_p, reason)``: ``mean`` of the
        differences (None without a pair), ``low``/``high`` its t interval and ``p_value``
        the paired t-test's two-sided p (None with one pair or when every difference is the
        same), ``wilcoxon_p`` the Wilcoxon signed-rank test's (None under
        :data:`WILCOXON_MIN_PAIRS` pairs or when every difference is 0), ``test`` the tests
        run (``"paired t-test"``, ``"+ Wilcoxon signed-rank"``, or ``"none"``), ``reason``
        why a figure is None (None when all is defined).

    Raises:
        ValueError: ``a`` and ``b`` of different lengths, or ``confidence`` outside (0, 1).
    """
    from scipy import stats

    _check_confidence(confidence)
    x, y = _finite(a), _finite(b)
    if x.size != y.size:
        raise ValueError(f"paired values must align: {x.size} against {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    d = x - y
    out: dict[str, Any] = dict(mean=None, low=None, high=None, n=int(d.size), sd=None, p_value=None,
                               test="none", wilcoxon_p=None, reason=None)
    if d.size == 0:
        out["reason"] = "no pair: no seed has both runs yet"
        return out
    if d.size == 1:
        out.update(mean=float(d[0]), reason="one pair: an interval and a test need two seeds or more")
        return out
    mean, low, high, sd = _t_interval(d, confidence)
    out.update(mean=mean, low=low, high=high, sd=sd, test="paired t-test")
    if sd == 0:   # _t_interval's rounding tolerance: scipy's t-test would divide by ~0
        out["reason"] = (f"the {d.size} differences are identical ({mean:+.4g}): a t-test needs them to "
                         f"vary")
    else:
        out["p_value"] = float(stats.ttest_rel(x, y).pvalue)
    if d.size >= WILCOXON_MIN_PAIRS:
        out["test"] += " + Wilcoxon signed-rank"
        if np.any(d != 0):
            out["wilcoxon_p"] = float(stats.wilcoxon(x, y).pvalue)
        else:
            out["reason"] = f"all {d.size} differences are 0: no signed rank to test"
    return out


def seeds_to_resolve(mean: float | None, sd: float | None, confidence: float = 0.95,
                     max_n: int = 1000) -> int | None:
    """How many seeds a t interval would need to exclude 0, were ``mean`` and ``sd`` the truth.

    A rough planning figure, not a power analysis: the smallest n >= 2 with
    ``t_{n-1} * sd / sqrt(n) < |mean|``. Both inputs come from the few seeds at hand, so
    it says "with this spread, a difference this size needs about n seeds", no more.

    Args:
        mean: an observed mean difference; sd: the differences' sample standard deviation.
        confidence: the interval's coverage.
        max_n: give up beyond this many seeds (None: more than that).

    Returns:
        n, or None when ``mean`` or ``sd`` is missing or 0, or n would exceed ``max_n``.
    """
    from scipy import stats

    _check_confidence(confidence)
    if mean is None or sd is None or not np.isfinite(mean) or not np.isfinite(sd) or mean == 0 or sd <= 0:
        return None
    n = np.arange(2, max_n + 1)
    half = stats.t.ppf((1 + confidence) / 2, df=n - 1) * sd / np.sqrt(n)
    ok = np.flatnonzero(half < abs(mean))
    return int(n[ok[0]]) if ok.size else None
