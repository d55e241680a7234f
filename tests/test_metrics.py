"""pe_utils.metrics: hand-worked cases, the thesis's check figures, the per-batch F1 bound."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, roc_auc_score
from torch.utils.data import DataLoader, Subset, TensorDataset

from pe_utils.evaluate.metrics import (
    batch_mean_f1,
    binary_metrics,
    epoch_figures,
    f1_batch_upper_bound,
    positives_per_batch,
    youden_threshold,
)


def _fig_6_5_arrays():
    # TN 1484, FP 3, FN 4, TP 65 (Fig. 6.5), as hard 0/1 "probabilities"
    y = np.r_[np.zeros(1484 + 3), np.ones(4 + 65)]
    p = np.r_[np.zeros(1484), np.ones(3), np.zeros(4), np.ones(65)]
    return y, p


def test_fig_6_5_check_figures():
    y, p = _fig_6_5_arrays()
    m = binary_metrics(y, p)
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (1484, 3, 4, 65)
    assert all(isinstance(m[k], int) for k in ("tn", "fp", "fn", "tp"))
    assert round(m["accuracy"], 4) == 0.9955
    assert round(m["f1"], 4) == 0.9489
    assert m["precision"] == pytest.approx(65 / 68)
    assert m["recall"] == pytest.approx(65 / 69)


def test_hand_worked_small_case():
    y = [0, 0, 1, 1, 1]
    p = [0.1, 0.6, 0.4, 0.7, 0.9]
    m = binary_metrics(y, p, threshold=0.5)
    # predictions 0 1 0 1 1 -> TN 1, FP 1, FN 1, TP 2
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (1, 1, 1, 2)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # AUC: pairs (pos, neg) ranked right: 0.4>0.1, 0.7>both, 0.9>both, 0.4<0.6 -> 5/6
    assert m["auc"] == pytest.approx(5 / 6)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p))


@pytest.mark.parametrize("threshold, tp, fp", [(0.05, 3, 2), (0.5, 2, 1), (0.65, 2, 0), (0.95, 0, 0)])
def test_threshold_moves_counts(threshold, tp, fp):
    m = binary_metrics([0, 0, 1, 1, 1], [0.1, 0.6, 0.4, 0.7, 0.9], threshold=threshold)
    assert (m["tp"], m["fp"]) == (tp, fp)


def test_threshold_is_inclusive():
    assert binary_metrics([1], [0.5], threshold=0.5)["tp"] == 1


def test_one_class_gives_nan_auc_and_zero_division():
    m = binary_metrics([0, 0, 0], [0.1, 0.2, 0.3])
    assert math.isnan(m["auc"])
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)
    assert m["accuracy"] == 1.0
    assert m["tn"] == 3


def test_f1_agrees_with_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = rng.uniform(size=200)
    m = binary_metrics(y, p, threshold=0.3)
    assert m["f1"] == pytest.approx(f1_score(y, p >= 0.3))


@pytest.mark.parametrize("y, p", [([0, 2], [0.1, 0.2]), ([0, 1], [0.1]), ([0.5, 1], [0.1, 0.2])])
def test_binary_metrics_rejects_bad_input(y, p):
    with pytest.raises(ValueError):
        binary_metrics(y, p)


def test_youden_hand_worked():
    # y = 0 0 1 1, p = .1 .3 .6 .8: thresholds .6 separates perfectly (J = 1); sklearn's
    # ROC keeps .6 as the point's threshold
    assert youden_threshold([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.8]) == pytest.approx(0.6)
    # overlap: at .8 J = .5 - 0; at .35 J = 1 - .5; tie -> the first (highest) threshold
    assert youden_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.8)


def test_youden_clips_infinite_threshold():
    # a classifier that ranks every negative above every positive: best J = 0 at +inf -> 1.0
    t = youden_threshold([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9])
    assert t == 1.0


def test_youden_needs_two_classes():
    with pytest.raises(ValueError):
        youden_threshold([1, 1], [0.2, 0.3])


@pytest.mark.parametrize("with_pos, total, bound", [(250, 350, 0.7143), (165, 175, 0.9429)])
def test_f1_batch_upper_bound_appendix_b(with_pos, total, bound):
    counts = [3] * with_pos + [0] * (total - with_pos)
    assert round(f1_batch_upper_bound(counts), 4) == bound


@pytest.mark.parametrize("counts", [[], [1, -1]])
def test_f1_batch_upper_bound_errors(counts):
    with pytest.raises(ValueError):
        f1_batch_upper_bound(counts)


def test_batch_mean_f1_is_zero_on_batches_without_positive():
    # batch 1 perfect (F1 1), batch 2 no positive (F1 0 by zero_division), batch 3 F1 2/3
    yt = [[0, 1], [0, 0], [1, 1, 0]]
    yp = [[0, 1], [0, 0], [1, 0, 0]]
    assert batch_mean_f1(yt, yp) == pytest.approx((1 + 0 + 2 / 3) / 3)
    # the bound holds: a perfect classifier reaches exactly the bound
    assert batch_mean_f1(yt, yt) == pytest.approx(f1_batch_upper_bound([1, 0, 2]))
    assert math.isnan(batch_mean_f1([], []))


def _naive_batch_mean_f1(y_batches, p_batches, threshold):
    """The reference: one scikit-learn F1 per batch (0 where undefined), averaged."""
    scores = [f1_score(np.asarray(y).astype(int), (np.asarray(p) >= threshold).astype(int),
                       labels=[0, 1], zero_division=0) for y, p in zip(y_batches, p_batches, strict=True)]
    return float(np.mean(scores))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8])
def test_batch_mean_f1_matches_a_per_batch_sklearn_loop(seed, threshold):
    rng = np.random.default_rng(seed)
    # sizes 1 to 6; some batches all negative, some all predicted negative
    ys = [rng.integers(0, 2, n) * (rng.random() < 0.7) for n in rng.integers(1, 7, 12)]
    ps = [rng.random(len(y)) for y in ys]
    expect = _naive_batch_mean_f1(ys, ps, threshold)
    assert batch_mean_f1(ys, ps, threshold) == pytest.approx(expect, abs=1e-12)
    # float labels (as the training loop keeps them) and generators give the same number
    assert batch_mean_f1((y.astype(np.float32) for y in ys), iter(ps), threshold) == pytest.approx(expect, abs=1e-12)


def test_batch_mean_f1_takes_hard_predictions():
    rng = np.random.default_rng(3)
    ys = [rng.integers(0, 2, 5) for _ in range(6)]
    preds = [rng.integers(0, 2, 5) for _ in range(6)]
    assert batch_mean_f1(ys, preds) == pytest.approx(_naive_batch_mean_f1(ys, preds, 0.5), abs=1e-12)


@pytest.mark.parametrize("ys, ps", [([[0, 1]], [[0.1, 0.2], [0.3]]),   # batch counts differ
                                    ([[0, 1]], [[0.1]]),               # a batch's lengths differ
                                    ([[0, 2]], [[0.1, 0.2]])])         # labels other than 0/1
def test_batch_mean_f1_rejects_bad_input(ys, ps):
    with pytest.raises(ValueError):
        batch_mean_f1(ys, ps)


def test_epoch_figures_from_batches():
    rng = np.random.default_rng(4)
    ys = [rng.integers(0, 2, n).astype(np.float32) for n in (4, 4, 3)]
    ys[1][:] = 0  # a batch without positive: the per-batch F1 is 0 there
    ps = [rng.random(len(y)).astype(np.float32) for y in ys]
    out = epoch_figures([{"probs": p, "labels": y} for p, y in zip(ps, ys)], threshold=0.4)
    assert list(out) == ["tn", "fp", "fn", "tp", "accuracy", "precision", "recall", "f1", "auc",
                         "f1_batch_mean", "f1_batch_bound"]
    whole = binary_metrics(np.concatenate(ys), np.concatenate(ps), threshold=0.4)
    assert all(out[k] == whole[k] for k in ("tn", "fp", "fn", "tp", "accuracy", "f1", "auc"))
    assert out["f1_batch_mean"] == pytest.approx(_naive_batch_mean_f1(ys, ps, 0.4), abs=1e-12)
    assert out["f1_batch_bound"] == pytest.approx(2 / 3)
    # CPU tensors work as well as arrays
    as_tensors = [{"probs": torch.from_numpy(p), "labels": torch.from_numpy(y)} for p, y in zip(ps, ys)]
    assert epoch_figures(as_tensors, threshold=0.4) == out


@pytest.mark.parametrize("outputs", [[], [{"probs": np.zeros(2)}], [{"loss": np.zeros(1)}]])
def test_epoch_figures_needs_probs_and_labels(outputs):
    with pytest.raises(ValueError):
        epoch_figures(outputs)


class _LabelledDataset(torch.utils.data.Dataset):
    """Exposes ``labels`` per item as pe_utils.data.CacheDataset does; counts loads."""

    def __init__(self, labels):
        self.labels = np.asarray(labels, dtype=np.float32)
        self.loads = 0

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        self.loads += 1
        return torch.zeros(1, 2, 2), torch.tensor(self.labels[i])


def test_positives_per_batch_iterates_plain_loader():
    y = torch.tensor([1, 0, 0, 1, 1, 0, 0], dtype=torch.float32)
    loader = DataLoader(TensorDataset(torch.zeros(7, 1), y), batch_size=3, shuffle=False)
    np.testing.assert_array_equal(positives_per_batch(loader), [1, 2, 0])


def test_positives_per_batch_fast_path_loads_nothing():
    rng = np.random.default_rng(1)
    ds = _LabelledDataset(rng.integers(0, 2, 50))
    loader = DataLoader(ds, batch_size=8, shuffle=False)
    fast = positives_per_batch(loader)
    assert ds.loads == 0
    np.testing.assert_array_equal(fast, [int(y.sum()) for _, y in loader])


def test_positives_per_batch_random_sampler_keeps_training_order():
    rng = np.random.default_rng(1)
    ds = _LabelledDataset(rng.integers(0, 2, 50))

    def epoch_order():
        loader = DataLoader(ds, batch_size=8, shuffle=True,
                            generator=torch.Generator().manual_seed(3))
        return loader, [y.tolist() for _, y in loader]

    _, expected = epoch_order()
    loader = DataLoader(ds, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(3))
    fast = positives_per_batch(loader)
    assert fast.sum() == ds.labels.sum() and len(fast) == 7
    assert [y.tolist() for _, y in loader] == expected  # generator state restored


def test_positives_per_batch_subset():
    ds = _LabelledDataset([1, 0, 1, 1, 0, 0])
    loader = DataLoader(Subset(ds, [0, 1, 4, 2]), batch_size=2)
    np.testing.assert_array_equal(positives_per_batch(loader), [1, 1])
    assert ds.loads == 0


def test_positives_per_batch_with_project_loader():
    data = pytest.importorskip("pe_utils.data.datasets")
    images = np.zeros((10, 4, 4), np.uint8)
    labels = np.array([0, 1, 0, 1, 1, 0, 0, 0, 1, 0])
    ds = data.CacheDataset(images, labels, np.array([9, 8, 7, 3, 1]))
    loader = data.make_loader(ds, batch_size=2, shuffle=False, seed=0)
    # items: labels 0 1 0 1 1 -> batches [0,1] [0,1] [1]
    np.testing.assert_array_equal(positives_per_batch(loader), [1, 1, 1])
    shuffled = data.make_loader(ds, batch_size=2, shuffle=True, seed=5)
    data.set_epoch(shuffled, 2)
    np.testing.assert_array_equal(positives_per_batch(shuffled),
                                  [int(y.sum()) for _, y in shuffled])
