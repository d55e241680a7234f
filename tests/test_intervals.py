"""pe_utils.evaluate.intervals: Student t intervals over seeds and the paired comparison, against
hand-computed values and scipy; missing values, one value and no spread give None with a reason."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from pe_utils.evaluate.intervals import WILCOXON_MIN_PAIRS, mean_interval, paired_difference, seeds_to_resolve

T_975_DF1 = 12.706204736174707   # Student t quantile 0.975, 1 degree of freedom (tables)
T_975_DF2 = 4.302652729749464    # ... 2 degrees of freedom


def test_mean_interval_by_hand():
    r = mean_interval([1.0, 2.0, 3.0])           # mean 2, sd 1
    half = T_975_DF2 * 1 / math.sqrt(3)         # 2.4841
    assert r["n"] == 3 and r["mean"] == pytest.approx(2.0) and r["sd"] == pytest.approx(1.0)
    assert (r["low"], r["high"]) == pytest.approx((2 - half, 2 + half), abs=1e-9)
    assert r["reason"] is None
    two = mean_interval([0.8, 0.9])               # n = 2: t = 12.71, the thesis's contrastive repeats
    assert two["high"] - two["mean"] == pytest.approx(T_975_DF1 * 0.1 / math.sqrt(2) / math.sqrt(2), rel=1e-9)


def test_mean_interval_matches_scipy():
    x = np.random.default_rng(1).normal(0.8, 0.05, size=7)
    for conf in (0.9, 0.95, 0.99):
        r = mean_interval(x, confidence=conf)
        low, high = stats.t.interval(conf, df=6, loc=x.mean(), scale=stats.sem(x))
        assert (r["low"], r["high"]) == pytest.approx((low, high), rel=1e-12)


def test_missing_values_are_left_out_and_counted():
    r = mean_interval([1.0, None, 3.0, float("nan"), 2.0])
    assert r["n"] == 3 and r["n_missing"] == 2 and r["mean"] == pytest.approx(2.0)
    assert r["low"] == pytest.approx(mean_interval([1.0, 2.0, 3.0])["low"])


def test_one_and_no_value_give_none_with_a_reason():
    one = mean_interval([0.7])
    assert one["mean"] == 0.7 and one["low"] is None and one["high"] is None and one["sd"] is None
    assert "two seeds" in one["reason"]
    none = mean_interval([None, float("nan")])
    assert none["n"] == 0 and none["mean"] is None and none["low"] is None and "no value" in none["reason"]
    assert mean_interval([])["n"] == 0
    for r in (one, none):
        assert not any(isinstance(v, float) and math.isnan(v) for v in r.values())


def test_identical_values_have_a_zero_width_interval_and_say_so():
    r = mean_interval([0.5, 0.5, 0.5])
    assert r["low"] == r["high"] == r["mean"] == 0.5 and r["sd"] == 0 and "identical" in r["reason"]


def test_bad_confidence_is_refused():
    with pytest.raises(ValueError, match="confidence"):
        mean_interval([1, 2], confidence=95)
    with pytest.raises(ValueError, match="confidence"):
        paired_difference([1, 2], [1, 2], confidence=0)


def test_paired_difference_by_hand():
    a, b = [0.90, 0.80, 0.85], [0.85, 0.80, 0.80]   # d = 0.05, 0, 0.05: mean 1/30, sd 0.028868
    r = paired_difference(a, b)
    sd = math.sqrt(((0.05 - 1 / 30) ** 2 * 2 + (1 / 30) ** 2) / 2)
    assert r["n"] == 3 and r["mean"] == pytest.approx(1 / 30) and r["sd"] == pytest.approx(sd)
    half = T_975_DF2 * sd / math.sqrt(3)
    assert (r["low"], r["high"]) == pytest.approx((1 / 30 - half, 1 / 30 + half))
    # t = mean / (sd / sqrt 3) = 2; with 2 df, P(T <= t) = 1/2 + t / (2 sqrt(2 + t^2))
    assert r["p_value"] == pytest.approx(2 * (0.5 - 2 / (2 * math.sqrt(6))), rel=1e-9)
    assert r["test"] == "paired t-test" and r["wilcoxon_p"] is None
    assert r["low"] < 0 < r["high"]                  # 3 seeds cannot tell this apart


def test_paired_difference_matches_scipy_and_runs_wilcoxon_from_six_pairs():
    rng = np.random.default_rng(2)
    b = rng.normal(0.8, 0.05, size=WILCOXON_MIN_PAIRS)
    a = b + np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06])   # every difference positive
    r = paired_difference(a, b)
    assert r["p_value"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert r["test"] == "paired t-test + Wilcoxon signed-rank"
    assert r["wilcoxon_p"] == pytest.approx(2 / 2 ** 6)       # exact: all 6 signs positive
    assert r["low"] > 0
    five = paired_difference(a[:5], b[:5])
    assert five["wilcoxon_p"] is None and "Wilcoxon" not in five["test"]


def test_paired_difference_drops_incomplete_pairs():
    r = paired_difference([0.9, None, 0.8, 0.7], [0.8, 0.8, float("nan"), 0.6])
    assert r["n"] == 2 and r["mean"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="align"):
        paired_difference([0.9, 0.8], [0.8])


def test_paired_difference_with_one_or_no_pair_or_no_spread():
    one = paired_difference([0.9], [0.8])
    assert one["mean"] == pytest.approx(0.1) and one["low"] is None and one["p_value"] is None
    assert "one pair" in one["reason"] and one["test"] == "none"
    none = paired_difference([None], [0.8])
    assert none["n"] == 0 and none["mean"] is None and "no pair" in none["reason"]
    same = paired_difference([0.9, 0.8], [0.8, 0.7])          # both differences 0.1
    assert same["p_value"] is None and same["low"] == same["high"] == pytest.approx(0.1)
    assert "identical" in same["reason"]
    zeros = paired_difference([0.5] * 6, [0.5] * 6)
    assert zeros["wilcoxon_p"] is None and zeros["p_value"] is None and "0" in zeros["reason"]
    for r in (one, none, same, zeros):
        assert not any(isinstance(v, float) and math.isnan(v) for v in r.values())


def test_seeds_to_resolve_by_hand():
    sd = np.std([0.03, 0.04], ddof=1)                       # 0.00707: the two seeds of a paired test
    assert T_975_DF1 * sd / math.sqrt(2) > 0.035            # n = 2: the interval still holds 0
    assert T_975_DF2 * sd / math.sqrt(3) < 0.035            # n = 3: it would not
    assert seeds_to_resolve(0.035, sd) == 3
    assert seeds_to_resolve(-0.035, sd) == 3                # the sign does not matter
    # a small difference in a large spread: n grows like (1.96 sd / mean)^2 = 96.04, plus t's tail
    n = seeds_to_resolve(0.01, 0.05)
    assert 97 <= n <= 100 and stats.t.ppf(0.975, n - 1) * 0.05 / math.sqrt(n) < 0.01
    assert stats.t.ppf(0.975, n - 2) * 0.05 / math.sqrt(n - 1) >= 0.01
    assert seeds_to_resolve(0.0001, 0.05, max_n=1000) is None
    assert seeds_to_resolve(None, 0.01) is None and seeds_to_resolve(0.01, 0.0) is None
