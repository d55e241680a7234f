"""Cases 2 and 4: the data (fractions, re-sampling order, paired seeds), the settings (Table 6.3's
experiments, Eq. 5.1 and 5.2), the schedule lesson of Appendix A, the record, the plan's grids."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from pe_utils.data.dataset2 import ensure_dataset2, subset_1609_rows
from pe_utils.data.cache import load_cache
from pe_utils.data.splits import TRAIN_FRACTIONS, patient_split
from pe_utils.experiments.case2 import (EXPERIMENTS, TOGGLES, case2_config, case2_data, case2_resume, case2_training,
                                        case2_val_every, fraction_of, schedule_comparison, training_rows)
from pe_utils.experiments.case2_results import (case2_evaluate, case2_record, curve_summary, exam_auc_table,
                                                results_table)
from pe_utils.learn import build_classifier
from pe_utils.profiles import PROFILES
from pe_utils.report.schema import CASE2_KEYS, CASE2_REQUIRED, write_metrics

PERCENTS = [round(100 * f, 2) for f in TRAIN_FRACTIONS]


def _index(patients=30, slices=40, seed=0) -> pd.DataFrame:
    """A cache-like index: 30 patients, about a third positive, 5-30 % of their slices positive."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(patients):
        positive = rng.random() < 0.7
        k = rng.integers(2, 12) if positive else 0
        labels = np.zeros(slices, int)
        labels[rng.choice(slices, k, replace=False)] = 1
        rows += [dict(patient_id=f"P{p:03d}", StudyInstanceUID=f"1.2.{p}", slice_index=i, pe_present_on_image=int(y))
                 for i, y in enumerate(labels)]
    return pd.DataFrame(rows)


def test_fractions_are_nested_and_stratified_and_validation_never_changes():
    index = _index()
    cfg = case2_config("smoke", seed=3)
    split = patient_split(index, seed=cfg["seed"])
    labels = index.pe_present_on_image.to_numpy()
    train = np.flatnonzero(split == "train")
    previous = None
    for pct in sorted(PERCENTS, reverse=True):
        subset, _ = training_rows(index, split, fraction_of(pct), cfg)
        assert set(subset) <= set(train), "a fraction draws from the training patients only"
        for c in (0, 1):  # stratified: each class keeps round(f * n_c) images
            n_c = int((labels[train] == c).sum())
            assert int((labels[subset] == c).sum()) == max(1, math.floor(fraction_of(pct) * n_c + 0.5))
        if previous is not None:
            assert set(subset) <= previous, f"{pct} % is not a subset of the larger fraction"
        previous = set(subset)
    # validation patients depend on the seed alone, and no patient is on both sides
    assert set(index.patient_id[split == "val"]).isdisjoint(index.patient_id[split == "train"])
    np.testing.assert_array_equal(split, patient_split(index, seed=3))


def test_resampling_comes_after_the_fraction():
    index = _index()
    cfg = case2_config("smoke", seed=1)
    split = patient_split(index, seed=1)
    labels = index.pe_present_on_image.to_numpy()
    subset, trained = training_rows(index, split, 0.25, cfg)
    assert set(trained) <= set(subset), "re-sampling may only repeat or drop rows of the fraction"
    counts = pd.Series(trained).value_counts()
    assert (counts[labels[counts.index] == 1] == 3).all(), "every positive of the fraction three times"
    assert (counts[labels[counts.index] == 0] == 1).all()
    n_neg = int((labels[subset] == 0).sum())
    assert int((labels[trained] == 0).sum()) == math.floor(2 / 3 * n_neg + 0.5)
    _, unsampled = training_rows(index, split, 0.25, {**cfg, "sampling": "none"})
    np.testing.assert_array_equal(unsampled, subset)


def test_experiments_follow_the_thesis_path():
    assert sorted(EXPERIMENTS) == list(range(1, 14))
    assert set(EXPERIMENTS[1]) == set(TOGGLES)
    thesis = case2_config("thesis")
    eleven = case2_config("thesis", 11)
    for key in ("dataset", "lr", "batch_size", "optimizer", "augment", "dropout", "sampling", "class_weights",
                "bias_prior"):
        assert eleven[key] == thesis[key], f"exp. 11 is the kept setting, the profile's: {key}"
    one = case2_config("thesis", 1)
    assert (one["dataset"], one["optimizer"], one["dropout"], one["sampling"], one["class_weights"],
            one["bias_prior"]) == ("dataset1", "sgd", 0.0, "none", False, None)
    assert case2_config("thesis", 2)["dataset"] == "dataset2_1609"
    assert case2_config("thesis", 4)["augment"] is False and case2_config("thesis", 3)["augment"] is True
    assert case2_config("thesis", 5)["lr"] == 0.1 and case2_config("thesis", 6)["batch_size"] == 64
    assert case2_config("thesis", 8)["optimizer"] == "adam" and case2_config("thesis", 7)["optimizer"] == "sgd"
    assert case2_config("thesis", 9)["sampling"] == "resample" and case2_config("thesis", 10)["batch_size"] == 256
    assert (case2_config("thesis", 12)["lr"], case2_config("thesis", 13)["lr"]) == (0.001, 0.1)
    # a toggle that contradicts the experiment is refused; one that agrees is fine
    with pytest.raises(ValueError, match="experiment 4 sets augment=False"):
        case2_config("thesis", 4, augment=True)
    assert case2_config("thesis", 4, augment=False)["experiment"] == 4
    with pytest.raises(ValueError, match="experiment must be one of"):
        case2_config("thesis", 14)
    assert case2_config("thesis", bias=False)["bias_prior"] is None


def test_class_weights_and_bias_are_equations_5_1_and_5_2():
    index = _index()
    cfg = case2_config("smoke", seed=0, augment=False)

    class Data:  # what case2_training reads of a Case2Data
        labels = index.pe_present_on_image.to_numpy().astype(np.float32)
        ids = {"train": np.r_[np.flatnonzero(labels == 1)[:20], np.flatnonzero(labels == 0)[:80]]}
        loaders = {"train": [None] * 7}
        sizes_by_fraction = {25.0: 100}

    model = build_classifier("resnet18", in_channels=1, dropout=cfg["dropout"], bias_prior=cfg["bias_prior"])
    criterion, optimizer, _, weights = case2_training(model, cfg, Data)
    assert weights == pytest.approx([100 / (2 * 80), 100 / (2 * 20)])   # 0.625, 2.5
    assert criterion.class_weights.tolist() == pytest.approx([0.625, 2.5])
    assert type(optimizer).__name__ == "Adam"
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    assert float(last.bias.detach()) == pytest.approx(-math.log(0.99 / 0.01), abs=1e-6)   # -4.595
    off = case2_config("smoke", class_weights=False)
    assert case2_training(model, off, Data)[3] is None


def test_the_epoch_schedule_depends_on_the_training_set_size_and_the_iteration_one_does_not():
    cfg = {**case2_config("thesis"), "epochs": 30, "lr_step": 10, "batch_size": 256}
    sizes = {100.0: 20000, 50.0: 10000, 25.0: 5000, 10.0: 2000}
    lr = schedule_comparison(cfg, sizes).set_index(["schedule", "train_fraction", "epoch"]).lr
    for pct in sizes:   # epoch-based: the first drop at epoch 11 whatever the size
        assert lr["epoch", pct, 10] == 0.01 and lr["epoch", pct, 11] == 0.005
    # iteration-based: 10 epochs of the 25 % set = 200 batches; the full set (79 a epoch) drops in epoch 3
    assert lr["iteration", 100.0, 3] == 0.01 and lr["iteration", 100.0, 4] == 0.005
    assert lr["iteration", 25.0, 11] == 0.005 and lr["iteration", 25.0, 10] == 0.01
    assert lr["iteration", 10.0, 12] == 0.01


@pytest.fixture(scope="module")
def smoke_caches(tmp_path_factory):
    return ensure_dataset2("smoke", root=tmp_path_factory.mktemp("data"), progress=False)


def test_the_smoke_phantom_meets_its_targets_with_test_patients_apart(smoke_caches):
    cfg = PROFILES["smoke"]["data2"]
    train, test = (load_cache(c).index for c in smoke_caches)
    assert abs(len(train) - cfg["n_images"]) <= cfg["tolerance"]["n_images_rel"] * cfg["n_images"]
    assert abs(train.pe_present_on_image.mean() - cfg["n_positive"] / cfg["n_images"]) \
        <= cfg["tolerance"]["positive_fraction_abs"]
    assert (len(test), int(test.pe_present_on_image.sum())) == (cfg["test_n_images"], cfg["test_n_positive"])
    assert set(train.StudyInstanceUID).isdisjoint(test.StudyInstanceUID)
    rows = subset_1609_rows(train)   # Table 6.3's 16.09 % set: whole patients of Dataset2
    picked = set(train.StudyInstanceUID.iloc[rows])
    assert len(rows) == int(train.StudyInstanceUID.isin(picked).sum()) < len(train)


def test_a_seed_gives_case2_and_case4_the_same_data_and_augmentation(smoke_caches):
    cfg = case2_config("smoke", seed=5)
    a, b = (case2_data(*smoke_caches, cfg, 50) for _ in range(2))
    for name in ("train", "train_subset", "val", "test"):
        np.testing.assert_array_equal(a.ids[name], b.ids[name])
    (xa, ya), (xb, yb) = next(iter(a.loaders["train"])), next(iter(b.loaders["train"]))
    assert torch.equal(xa, xb) and torch.equal(ya, yb), "same order and augmentation"
    other = case2_data(*smoke_caches, case2_config("smoke", seed=6), 50)
    assert not np.array_equal(other.ids["train"], a.ids["train"])
    full = case2_data(*smoke_caches, cfg, 100)   # another fraction: the same validation and test
    np.testing.assert_array_equal(full.ids["val"], a.ids["val"])
    np.testing.assert_array_equal(full.ids["test"], a.ids["test"])


def test_the_record_holds_the_contract_keys(smoke_caches, tmp_path):
    cfg = case2_config("smoke", 11)
    data = case2_data(*smoke_caches, cfg, 25)
    m = dict(auc=0.8, f1=0.6, accuracy=0.7, tn=1, fp=1, fn=1, tp=1, precision=0.5, recall=0.5)
    m_tta = dict(m, auc=0.85, f1=0.65, accuracy=0.75)
    result = dict(threshold=0.4, metrics_at_threshold=m, oracle_threshold=0.3, metrics_at_oracle=m, auc=0.8,
                  auc_val=0.7, exam_auc_max=0.9, exam_auc_topk=None, n_test_exams=5, exam_topk=3,
                  auc_tta=0.85, metrics_at_threshold_tta=m_tta, oracle_threshold_tta=0.35, metrics_at_oracle_tta=m_tta,
                  exam_auc_max_tta=0.95, exam_auc_topk_tta=None)
    history = [dict(epoch=1, train_loss=0.3), dict(epoch=2, train_loss=0.25, val_loss=0.4, val_auc=0.6),
               dict(epoch=3, train_loss=0.2, val_loss=0.5, val_auc=0.55)]    # validated every 2nd epoch and the last
    record = case2_record(data, profile="smoke", cfg=cfg, result=result, history=history, train_seconds=1.0)
    assert set(CASE2_REQUIRED) <= set(record) <= set(CASE2_KEYS)
    assert (record["auc"], record["f1"], record["auc_tta"], record["f1_tta"], record["accuracy_tta"]) \
        == (0.8, 0.6, 0.85, 0.65, 0.75)
    assert record["val_epochs"] == [2, 3] and record["curve_summary"]["final_val_auc"] == 0.55
    assert (record["case"], record["train_fraction"], record["experiment"], record["threshold_source"]) \
        == ("case2", 25.0, 11, "validation_youden")
    pos = int(data.labels[data.ids["train_subset"]].sum())
    assert (record["n_train"], record["n_train_resampled"]) == (
        len(data.ids["train_subset"]), 3 * pos + math.floor(2 / 3 * (record["n_train"] - pos) + 0.5))
    assert record["curve_summary"]["best_val_auc_epoch"] == 2
    path = write_metrics(tmp_path, record, "case2")
    assert json.loads(path.read_text())["exam_auc_topk"] is None
    del record["exam_auc_max"]
    with pytest.raises(ValueError, match="exam_auc_max"):
        write_metrics(tmp_path, record, "case2")
    assert curve_summary([])["best_val_auc"] is None


def test_train_fraction_is_a_percentage():
    assert [fraction_of(p) for p in (100, 66.66, 33.34, 5)] == [1.0, 0.6666, 0.3334, 0.05]
    with pytest.raises(ValueError, match="percentage"):
        fraction_of(0)
    with pytest.raises(ValueError, match="percentage"):
        fraction_of(150)


def test_the_thesis_profile_asks_for_the_thesis_counts():
    from pe_utils.data.dataset2 import dataset2_specs

    train, test = dataset2_specs("thesis")
    assert (train["n_images"], train["n_positive"], train["tolerance"]["n_images_rel"]) == (19946, 3068, 0.005)
    assert (test["n_images"], test["n_positive"]) == (455, 146)
    assert test["partial"] == {"max_positive_per_patient": 20, "max_negative_per_patient": 20}
    assert PROFILES["thesis"]["data2"]["seed"] not in (PROFILES["thesis"]["data"]["seed"],
                                                       PROFILES["thesis"]["data2"]["test_seed"])
    smoke_train, _ = dataset2_specs("smoke")
    assert smoke_train["n_images"] == PROFILES["smoke"]["data2"]["n_images"] != 19946


def test_a_profiles_epochs_by_fraction_sets_the_epochs_unless_given():
    assert case2_config("demo", train_fraction=25)["epochs"] == 16      # the demo's small set
    assert case2_config("demo", train_fraction=100)["epochs"] == 4      # not listed: the profile's
    assert case2_config("demo", train_fraction=25, epochs=2)["epochs"] == 2
    assert case2_config("demo")["epochs"] == 4
    assert case2_config("thesis", train_fraction=25)["epochs"] == 50    # 5.1.2: every fraction


# --------------------------------------------------------------------------- evaluation cost and scoring
def test_the_validation_cadence_at_the_thesis_sizes():
    """Table 6.4's runs: 3,989 validation images; training images an epoch after the re-sampling."""
    per_epoch = {100: 16364, 90: 14729, 80: 13090, 75: 12274, 66.66: 10909, 50: 8182, 33.34: 5455,
                 25: 4093, 20: 3274, 10: 1635, 5: 819}
    every = {pct: case2_val_every(n, 3989) for pct, n in per_epoch.items()}
    assert every == {100: 1, 90: 1, 80: 1, 75: 1, 66.66: 1, 50: 1, 33.34: 1, 25: 2, 20: 2, 10: 4, 5: 7}
    for pct, k in every.items():          # validation's passes within a quarter of the training passes
        assert 3989 / k <= 0.25 * 3 * per_epoch[pct] and (k == 1 or 3989 / (k - 1) > 0.25 * 3 * per_epoch[pct])
    assert case2_val_every(819, 3989, share=1.0) == 2 and case2_val_every(0, 3989) == 1
    with pytest.raises(ValueError, match="share"):
        case2_val_every(100, 10, share=0)


def test_case2_resume_passes_the_cadence_to_fit(smoke_caches, tmp_path):
    cfg = case2_config("smoke", seed=5)
    data = case2_data(*smoke_caches, cfg, 25)
    kwargs = case2_resume(data, cfg, tmp_path)
    assert kwargs["val_every"] == case2_val_every(len(data.ids["train"]), len(data.ids["val"]))
    assert case2_resume(data, cfg, tmp_path, val_every=1)["val_every"] == 1


class MeanLogit(torch.nn.Module):
    """A fixed "classifier": the logit is 8 (mean pixel - 0.5)."""

    def forward(self, x):
        return 8 * (x.mean(dim=(1, 2, 3)) - 0.5)


def _hand_auc(y, p):
    """Mann-Whitney: P(positive scores above negative), ties half."""
    pos, neg = p[y == 1], p[y == 0]
    return float(np.mean([(a > b) + 0.5 * (a == b) for a in pos for b in neg]))


def _hand_youden(y, p):
    """The threshold among the scores maximising TPR - FPR (ties: the highest)."""
    best = None
    for t in sorted(set(p.tolist()), reverse=True):
        j = np.mean(p[y == 1] >= t) - np.mean(p[y == 0] >= t)
        if best is None or j > best[0]:
            best = (j, t)
    return best[1]


def test_case2_scores_the_original_view_as_the_thesis_and_tta_beside():
    from types import SimpleNamespace

    g = torch.Generator().manual_seed(0)

    def batches(n):
        x = torch.rand(n, 1, 16, 16, generator=g) * 0.6 + torch.linspace(0, 0.4, n).view(n, 1, 1, 1)
        y = ((x.mean(dim=(1, 2, 3)) + 0.08 * torch.randn(n, generator=g)) > 0.5).float()
        return x, y, [(x[i:i + 4], y[i:i + 4]) for i in range(0, n, 4)]

    xv, yv, val = batches(16)
    xt, yt, test = batches(12)
    assert len(set(yv.tolist())) == 2 and len(set(yt.tolist())) == 2
    exams = np.repeat(["e0", "e1", "e2", "e3"], 3)
    data = SimpleNamespace(loaders={"val": val, "test": test}, exam_ids=exams)
    result = case2_evaluate(MeanLogit(), data, "cpu", exam_topk=2)

    p_val = torch.sigmoid(8 * (xv.mean(dim=(1, 2, 3)) - 0.5)).numpy()
    p_test = torch.sigmoid(8 * (xt.mean(dim=(1, 2, 3)) - 0.5)).numpy()
    y_val, y_test = yv.numpy(), yt.numpy()
    np.testing.assert_allclose(result["val_probs"], p_val, rtol=1e-6)
    np.testing.assert_allclose(result["probs"], p_test, rtol=1e-6)
    threshold = _hand_youden(y_val, p_val)
    assert result["threshold"] == pytest.approx(threshold, rel=1e-6)
    pred = p_test >= threshold
    tp, fp = int((pred & (y_test == 1)).sum()), int((pred & (y_test == 0)).sum())
    fn, tn = int((~pred & (y_test == 1)).sum()), int((~pred & (y_test == 0)).sum())
    m = result["metrics_at_threshold"]
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (tp, fp, fn, tn)
    assert m["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert m["accuracy"] == pytest.approx((tp + tn) / 12)
    assert result["auc"] == pytest.approx(_hand_auc(y_test, p_test))
    assert result["auc_val"] == pytest.approx(_hand_auc(y_val, p_val))
    exam_y = np.array([y_test[i:i + 3].max() for i in range(0, 12, 3)])
    exam_p = np.array([p_test[i:i + 3].max() for i in range(0, 12, 3)])
    assert exam_y.tolist() == [0, 1, 1, 1]
    assert result["exam_auc_max"] == pytest.approx(_hand_auc(exam_y, exam_p))
    # TTA beside: its own probabilities, read at the validation threshold
    for key in ("probs_tta", "auc_tta", "metrics_at_threshold_tta", "oracle_threshold_tta", "metrics_at_oracle_tta",
                "exam_auc_max_tta", "exam_auc_topk_tta"):
        assert key in result
    assert not np.allclose(result["probs_tta"], result["probs"])
    assert result["auc_tta"] == pytest.approx(_hand_auc(y_test, result["probs_tta"]))
    assert result["metrics_at_threshold_tta"]["threshold"] == pytest.approx(threshold, rel=1e-6)
    table = results_table(result)
    assert list(table.index) == ["Youden on validation (used)", "Youden on test (oracle)", "TTA, Youden on validation",
                                 "TTA, Youden on test (oracle)"]
    assert table.loc["Youden on validation (used)", "auc"] == pytest.approx(result["auc"])
    assert list(exam_auc_table(result).columns) == ["AUC", "AUC (TTA)"]
