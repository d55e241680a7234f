"""pe_utils.evaluate's tta, triaging, thresholds and conformal modules: TTA prediction, triage,
threshold choice (oracle, validation, conformal)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pe_utils.profiles import THESIS_THRESHOLD_PAIRS
from pe_utils.evaluate.conformal import conformal_sets, conformal_thresholds, sets_to_triage
from pe_utils.evaluate.thresholds import (compare_threshold_choices, validation_thresholds,
                                          widest_perfect_thresholds)
from pe_utils.evaluate.triaging import (Thresholds, annotation_workload, expected_workload, triage,
                                        triage_counts, triage_table)
from pe_utils.evaluate.tta import predict_tta

# ------------------------------------------------------------------------------ predict_tta


class _MeanModel(nn.Module):
    """logit = 4 * (mean pixel - 0.5): a transparent stand-in for a classifier."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(4.0))
        self.seen_training = []

    def forward(self, x):
        self.seen_training.append(self.training)
        self.seen_grad = torch.is_grad_enabled()
        return self.scale * (x.mean(dim=(1, 2, 3)) - 0.5)


def _two_views(x):
    return [x, 1.0 - x]  # original first, then its negative


def test_predict_tta_hand_worked():
    x = torch.stack([torch.full((1, 4, 4), v) for v in (0.5, 1.0, 0.0)])
    y = torch.tensor([0.0, 1.0, 0.0])
    loader = DataLoader(TensorDataset(x, y), batch_size=2)
    model = _MeanModel().train()
    mean, views, labels = predict_tta(model, loader, "cpu", views=_two_views)
    assert views.shape == (3, 2) and mean.shape == (3,) and labels.shape == (3,)
    s = 1 / (1 + np.exp(-2.0))  # sigmoid(4 * 0.5)
    np.testing.assert_allclose(views, [[0.5, 0.5], [s, 1 - s], [1 - s, s]], rtol=1e-6)
    np.testing.assert_allclose(mean, [0.5, 0.5, 0.5], rtol=1e-6)
    np.testing.assert_array_equal(labels, [0, 1, 0])
    assert model.seen_training == [False, False, False, False]  # eval mode for every view
    assert not model.seen_grad
    assert model.training  # mode restored


class _LinearAutocastProbe(nn.Module):
    """A linear layer (autocast casts its matmul) that records the autocast dtype it ran under."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 1)
        self.autocast = []

    def forward(self, x):
        on = torch.is_autocast_enabled("cpu")
        self.autocast.append(torch.get_autocast_dtype("cpu") if on else None)
        return self.fc(x.flatten(1))


def test_predict_tta_precision_follows_amp():
    torch.manual_seed(0)
    x = torch.rand(3, 1, 4, 4)
    loader = DataLoader(TensorDataset(x, torch.tensor([0.0, 1.0, 0.0])), batch_size=3)
    model = _LinearAutocastProbe()
    auto, *_ = predict_tta(model, loader, "cpu", views=_two_views)  # "auto": full precision on CPU
    full, *_ = predict_tta(model, loader, "cpu", views=_two_views, amp=False)
    np.testing.assert_array_equal(auto, full)
    assert model.autocast == [None] * 4
    model.autocast.clear()
    half, *_ = predict_tta(model, loader, "cpu", views=_two_views, amp="bf16")
    assert model.autocast == [torch.bfloat16] * 2
    assert half.dtype == np.float32 and not np.array_equal(half, full)
    np.testing.assert_allclose(half, full, atol=2e-2)
    with pytest.raises(ValueError):
        predict_tta(model, loader, "cpu", views=_two_views, amp="fp8")


def test_predict_tta_default_views_are_the_projects():
    transforms = pytest.importorskip("pe_utils.data.transforms")
    x = torch.rand(3, 1, 16, 16)
    loader = DataLoader(TensorDataset(x, torch.tensor([0.0, 1.0, 1.0])), batch_size=2)
    mean, views, _ = predict_tta(_MeanModel(), loader, torch.device("cpu"))
    assert views.shape == (3, len(transforms.TTA_VIEW_NAMES))
    # the first view is the original image
    expected0 = torch.sigmoid(4.0 * (x.mean(dim=(1, 2, 3)) - 0.5)).numpy()
    np.testing.assert_allclose(views[:, 0], expected0, rtol=1e-5)
    np.testing.assert_allclose(mean, views.mean(axis=1), rtol=1e-6)


# ------------------------------------------------------------------------------ triage

PROBS = np.array([0.02, 0.10, 0.20, 0.50, 0.80, 0.85, 0.97, 0.30])
LABELS = np.array([0, 0, 1, 0, 1, 1, 1, 0])


def test_triage_hand_worked_and_strict_bounds():
    t = triage(PROBS, upper=0.8, lower=0.2)
    # 0.2 and 0.8 sit on the bounds: uncertain ("above"/"under" are strict)
    np.testing.assert_array_equal(t, [0, 0, -1, -1, -1, 1, 1, -1])
    assert t.dtype == np.int8


@pytest.mark.parametrize("upper, lower", THESIS_THRESHOLD_PAIRS)
def test_triage_partitions_by_pair(upper, lower):
    t = triage(PROBS, upper, lower)
    np.testing.assert_array_equal(t == 1, PROBS > upper)
    np.testing.assert_array_equal(t == 0, PROBS < lower)
    np.testing.assert_array_equal(t == -1, (PROBS >= lower) & (PROBS <= upper))


@pytest.mark.parametrize("upper, lower", [(0.5, 0.5), (0.2, 0.8), (1.1, 0.2), (0.8, -0.1)])
def test_triage_rejects_bad_pairs(upper, lower):
    with pytest.raises(ValueError):
        triage(PROBS, upper, lower)


def test_triage_accepts_extremes():
    np.testing.assert_array_equal(triage([0.0, 1.0], 1.0, 0.0), [-1, -1])


# expected per pair for PROBS/LABELS, by hand:
# 0.75/0.25: pos .80 .85 .97 (all right), neg .02 .10 .20(label 1: FN) -> true 5, false 1, unc 2
# 0.8/0.2:   pos .85 .97, neg .02 .10 -> true 4, false 0, unc 4
# 0.85/0.15: pos .97, neg .02 .10 -> true 3, unc 5
# 0.9/0.1:   pos .97, neg .02 -> true 2, unc 6   (0.10 is on the bound)
# 0.95/0.05: pos .97, neg .02 -> true 2, unc 6
HAND = {
    (0.75, 0.25): (5, 1, 2, 0, 1, 3),
    (0.8, 0.2): (4, 0, 4, 0, 0, 2),
    (0.85, 0.15): (3, 0, 5, 0, 0, 1),
    (0.9, 0.1): (2, 0, 6, 0, 0, 1),
    (0.95, 0.05): (2, 0, 6, 0, 0, 1),
}


@pytest.mark.parametrize("pair", THESIS_THRESHOLD_PAIRS)
def test_triage_counts_hand_worked(pair):
    c = triage_counts(PROBS, LABELS, *pair)
    got = (c["n_true"], c["n_false"], c["n_uncertain"], c["n_false_pos"], c["n_false_neg"],
           c["n_pos_auto_correct"])
    assert got == HAND[pair]


def test_triage_counts_without_labels():
    c = triage_counts(PROBS, None, 0.8, 0.2)
    # 0.8/0.2: sure pos .85 .97, sure neg .02 .10, the other 4 uncertain
    assert (c["n"], c["n_sure_pos"], c["n_sure_neg"], c["n_uncertain"]) == (8, 2, 2, 4)
    assert c["pct_uncertain"] == pytest.approx(50.0)
    assert "n_true" not in c and "n_false" not in c
    with_labels = triage_counts(PROBS, LABELS, 0.8, 0.2)
    assert {k: with_labels[k] for k in c} == c  # labels only add keys


@pytest.mark.parametrize("labels", [[0, 1], [0, 0, 1, 0, 2, 1, 1, 0]])
def test_triage_counts_rejects_bad_labels(labels):
    with pytest.raises(ValueError):
        triage_counts(PROBS, labels, 0.8, 0.2)


def test_triage_table_columns_and_percentages():
    df = triage_table(PROBS, LABELS)
    assert list(df[["upper", "lower"]].itertuples(index=False, name=None)) == list(THESIS_THRESHOLD_PAIRS)
    for col in ("n_true", "n_false", "n_uncertain", "pct_true", "pct_false", "pct_uncertain",
                "n_false_pos", "n_false_neg", "n_pos_auto_correct", "pct_positives_auto_correct"):
        assert col in df
    np.testing.assert_allclose(df[["pct_true", "pct_false", "pct_uncertain"]].sum(axis=1), 100)
    row = df.iloc[0]
    assert row.pct_true == pytest.approx(100 * 5 / 8)
    # 4 positives, 3 sure-labelled positive at 0.75/0.25 (Fig 6.16's figure)
    assert row.pct_positives_auto_correct == pytest.approx(75.0)
    assert list(df.perfect) == [False, True, True, True, True]


def test_triage_table_workload_columns():
    df = triage_table(PROBS, LABELS, [(0.8, 0.2)], n_dataset=20, n_training_stage=12)
    assert df.loc[0, "pct_uncertain_dataset"] == pytest.approx(100 * 4 / 20)
    assert df.loc[0, "workload_pct"] == pytest.approx(100 * 16 / 20)


def test_widest_perfect_is_least_restrictive_error_free_pair():
    pair = widest_perfect_thresholds(PROBS, LABELS)
    assert pair == (0.8, 0.2) and isinstance(pair, Thresholds)
    # order of the candidates does not matter
    assert widest_perfect_thresholds(PROBS, LABELS, THESIS_THRESHOLD_PAIRS[::-1]) == (0.8, 0.2)


def test_widest_perfect_breaks_ties_by_the_narrower_band():
    # 0.9/0.1 and 0.95/0.05 both leave 6 uncertain and make no error (HAND): the narrower wins
    assert widest_perfect_thresholds(PROBS, LABELS, [(0.95, 0.05), (0.9, 0.1)]) == (0.9, 0.1)


def test_widest_perfect_none_when_every_pair_errs():
    assert widest_perfect_thresholds([0.99, 0.01], [0, 1]) is None
    # only the erring 0.75/0.25 offered (0.20 labelled 1 is sure negative): no pair
    assert widest_perfect_thresholds(PROBS, LABELS, [(0.75, 0.25)]) is None


def test_annotation_workload_table_6_2_test33():
    # Test33: 33.34 % of Dataset1 in the training stage + 19.61 % uncertain = 52.95 %
    assert annotation_workload(10_000, 3_334, 1_961) == pytest.approx(52.95)


@pytest.mark.parametrize("args", [(0, 0, 0), (10, -1, 0), (10, 5, 6)])
def test_annotation_workload_errors(args):
    with pytest.raises(ValueError):
        annotation_workload(*args)


def test_expected_workload_needs_no_labels():
    # 0.8/0.2 leaves 4 of PROBS uncertain
    assert expected_workload(PROBS, 0.8, 0.2, n_dataset=20, n_training_stage=12) == pytest.approx(80.0)


def test_validation_thresholds():
    assert validation_thresholds(PROBS, LABELS) == (0.8, 0.2)
    # allowing 1 error in 6 sure predictions admits 0.75/0.25
    assert validation_thresholds(PROBS, LABELS, max_error_rate=0.2) == (0.75, 0.25)
    assert validation_thresholds([0.99, 0.01], [0, 1]) is None
    with pytest.raises(ValueError):
        validation_thresholds(PROBS, LABELS, max_error_rate=1.5)


# ------------------------------------------------------------------------------ conformal


def _synthetic(n, rng, prevalence=0.3, sep=2.0):
    """Calibrated-ish scores: logits ~ N(+-sep, 1) by class."""
    y = (rng.uniform(size=n) < prevalence).astype(int)
    p = 1 / (1 + np.exp(-(rng.normal(size=n) + sep * (2 * y - 1))))
    return p, y


@pytest.mark.parametrize("alpha", [0.02, 0.1, 0.3, 0.45])
@pytest.mark.parametrize("mondrian", [True, False])
def test_conformal_thresholds_reproduce_crepes_sets(alpha, mondrian):
    rng = np.random.default_rng(int(alpha * 100) + mondrian)
    p_cal, y_cal = _synthetic(60, rng, sep=rng.uniform(0.5, 3))
    p_test = rng.uniform(size=400)
    sets = conformal_sets(p_cal, y_cal, p_test, alpha=alpha, mondrian=mondrian)
    pair = conformal_thresholds(p_cal, y_cal, alpha=alpha, mondrian=mondrian)
    assert 0 <= pair.lower < pair.upper <= 1
    np.testing.assert_array_equal(triage(p_test, *pair), sets_to_triage(sets))


def test_conformal_sets_match_crepes_wrapclassifier():
    # crepes's own class-conditional wrapper around a fixed "learner" gives the same sets
    from crepes import WrapClassifier

    class Fixed:
        classes_ = np.array([0, 1])

        def fit(self, X, y):
            return self

        def predict_proba(self, X):
            p = np.asarray(X)[:, 0]
            return np.column_stack([1 - p, p])

    rng = np.random.default_rng(7)
    p_cal, y_cal = _synthetic(80, rng)
    p_test = rng.uniform(size=200)
    w = WrapClassifier(Fixed())
    w.fitted = w.fitted_ = True
    w.calibrate(p_cal[:, None], y_cal, class_cond=True)
    ref = w.predict_set(p_test[:, None], labels=False, confidence=0.9, smoothing=False)
    np.testing.assert_array_equal(conformal_sets(p_cal, y_cal, p_test, alpha=0.1), ref)


def test_conformal_coverage_holds_empirically():
    # the guarantee is in expectation over calibration draws: average 30 seeded draws
    rng = np.random.default_rng(0)
    alpha, misses, sure_errors = 0.1, [], []
    for _ in range(30):
        p_cal, y_cal = _synthetic(300, rng)
        p_test, y_test = _synthetic(2000, rng)
        sets = conformal_sets(p_cal, y_cal, p_test, alpha=alpha)
        t = triage(p_test, *conformal_thresholds(p_cal, y_cal, alpha=alpha))
        misses.append([1 - sets[y_test == c, c].mean() for c in (0, 1)]
                      + [1 - sets[np.arange(len(y_test)), y_test].mean()])
        sure_errors.append([((t == 1 - c) & (y_test == c)).sum() / (y_test == c).sum()
                            for c in (0, 1)])
    miss_neg, miss_pos, miss_all = np.mean(misses, axis=0)
    # non-smoothed p-values: miscoverage in [alpha - 1/(n_c + 1), alpha] in expectation
    for miss in (miss_neg, miss_pos, miss_all):
        assert alpha - 0.025 <= miss <= alpha + 0.01
    # a sure error (the other class alone in the set) is a miscoverage: bounded by alpha too
    assert (np.mean(sure_errors, axis=0) <= alpha + 0.01).all()


def test_conformal_errors():
    p, y = np.array([0.1, 0.9, 0.2]), np.array([0, 1, 0])
    with pytest.raises(ValueError):
        conformal_thresholds(p, y, alpha=0.0)
    with pytest.raises(ValueError):
        conformal_sets(p, [0, 1, 2], p, alpha=0.1)
    with pytest.raises(ValueError):
        conformal_thresholds(p, [0, 1], alpha=0.1)


@pytest.mark.parametrize("cal_labels, expected", [
    ([0, 0, 0, 0], (None, 0.0)),  # no positive: 1 never excluded -> no sure negative
    ([1, 1, 1, 1], (1.0, None)),  # no negative: 0 never excluded -> no sure positive
    ([], (1.0, 0.0)),             # nothing to calibrate on: nothing automated
])
def test_conformal_missing_class_is_never_excluded(cal_labels, expected):
    cal = np.linspace(0.1, 0.9, len(cal_labels))
    p_test = np.linspace(0, 1, 101)
    pair = conformal_thresholds(cal, cal_labels, alpha=0.5)
    for got, want in zip(pair, expected):
        if want is not None:
            assert got == want
    sets = conformal_sets(cal, cal_labels, p_test, alpha=0.5)
    np.testing.assert_array_equal(triage(p_test, *pair), sets_to_triage(sets))


def test_conformal_small_calibration_gives_no_sure_positive():
    # 3 positives: no p-value below 1/4 for class 1, so alpha = 0.1 never excludes 1
    rng = np.random.default_rng(2)
    p_cal = np.r_[rng.uniform(0, 0.3, 50), [0.7, 0.8, 0.9]]
    y_cal = np.r_[np.zeros(50, int), np.ones(3, int)]
    pair = conformal_thresholds(p_cal, y_cal, alpha=0.1)
    assert pair.lower == 0.0  # 1 always in the set: nothing is sure negative
    assert (triage(rng.uniform(size=100), *pair) != 0).all()


def test_compare_threshold_choices():
    # test set: PROBS/LABELS, whose oracle pair is 0.8/0.2 (HAND); validation: a synthetic set
    rng = np.random.default_rng(3)
    p_val, y_val = _synthetic(300, rng, sep=3)
    df = compare_threshold_choices(PROBS, LABELS, n_dataset=20, n_training_stage=12,
                                   val_probs=p_val, val_labels=y_val, alpha=0.05)
    assert list(df.method) == ["oracle", "validation", "conformal (alpha=0.05)"]
    assert list(df.uses_test_labels) == [True, False, False]
    oracle = df.iloc[0]
    assert (oracle.upper, oracle.lower) == (0.8, 0.2)
    assert (oracle.n_uncertain, oracle.n_false, oracle.n_false_pos, oracle.n_false_neg) == (4, 0, 0, 0)
    assert oracle.workload_pct == pytest.approx(100 * (12 + 4) / 20)
    assert oracle.error_rate_pct == 0.0
    assert oracle.pct_positives_auto_correct == pytest.approx(50.0)  # .85 and .97 of 4 positives
    # the other rows apply the pairs chosen on the validation set to the test set
    for row, pair in ((df.iloc[1], validation_thresholds(p_val, y_val)),
                      (df.iloc[2], conformal_thresholds(p_val, y_val, alpha=0.05))):
        assert pair is not None and (row.upper, row.lower) == pair
        c = triage_counts(PROBS, LABELS, *pair)
        assert (row.n_uncertain, row.n_false) == (c["n_uncertain"], c["n_false"])
        assert row.workload_pct == pytest.approx(100 * (12 + c["n_uncertain"]) / 20)
    only_oracle = compare_threshold_choices(PROBS, LABELS, 20, 12)
    assert list(only_oracle.method) == ["oracle"]


def test_compare_threshold_choices_without_a_pair_automates_nothing():
    # labels opposite to confident probabilities: no pair is error-free
    p_test = np.array([0.99, 0.98, 0.01, 0.02])
    y_test = np.array([0, 0, 1, 1])
    row = compare_threshold_choices(p_test, y_test, n_dataset=10, n_training_stage=6).iloc[0]
    assert np.isnan(row.upper) and row.n_uncertain == 4 and row.n_false == 0
    assert row.workload_pct == pytest.approx(100.0)
    assert np.isnan(row.error_rate_pct)  # no sure prediction at all


def test_compare_threshold_choices_error_rate():
    p_test = np.array([0.99, 0.98, 0.01, 0.5])
    y_test = np.array([1, 0, 0, 1])
    df = compare_threshold_choices(p_test, y_test, 10, 6, val_probs=p_test[:3],
                                   val_labels=np.array([1, 1, 0]))
    validation = df.set_index("method").loc["validation"]
    # 0.75/0.25 on the test set: 3 sure, one of them wrong (0.98 labelled 0)
    assert (validation.upper, validation.lower) == (0.75, 0.25)
    assert validation.error_rate_pct == pytest.approx(100 / 3)


def test_wing_exports_the_functions_not_their_modules():
    # a module named like a function it exports would shadow it on the package once imported
    import pe_utils
    import pe_utils.evaluate as evaluate
    import pe_utils.evaluate.thresholds  # noqa: F401  (imports every sibling module)

    for name in evaluate.__all__:
        value = getattr(evaluate, name)
        assert not isinstance(value, type(np)), f"pe_utils.evaluate.{name} is a module"
        assert getattr(pe_utils, name) is value
    assert evaluate.triage is triage and evaluate.predict_tta is predict_tta
