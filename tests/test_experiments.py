"""The experiments wing: Case1's settings rule, data, training set-up, final model, results and record."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
import torch

from pe_utils.experiments.case1 import (Case1Data, case1_config, case1_data, case1_training,
                                        keep_final_model, rate_name)
from pe_utils.experiments.case1_results import case1_record, case1_test_metrics, gallery_pair
from pe_utils.profiles import PROFILES, SAMPLING_RATES, SMALL_RATES


# ----------------------------------------------------------------------------- settings
@pytest.mark.parametrize("given, key, name", [
    ("1/3", "1/3", "Test33"), ("Test90", "9/10", "Test90"), ("2/4", "1/2", "Test50"),
    (Fraction(1, 4), "1/4", "Test25"), ("2/7", "2/7", "Rate2of7"),
])
def test_rate_name(given, key, name):
    assert rate_name(given) == (key, name)


@pytest.mark.parametrize("bad", ["0/3", "4/3", "Test99", "half"])
def test_rate_name_refuses_a_bad_rate(bad):
    with pytest.raises(ValueError):
        rate_name(bad)


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("rate", list(SAMPLING_RATES))
def test_small_rates_train_epochs_small(profile, rate):
    cfg, key, name = case1_config(profile, rate)
    section = PROFILES[profile]["case1"]
    expected = section["epochs_small"] if rate in SMALL_RATES else section["epochs"]
    assert (cfg["epochs"], key, name) == (expected, rate, SAMPLING_RATES[rate])


def test_given_epochs_win_over_the_small_rate_rule():
    cfg, _, _ = case1_config("thesis", "1/4", epochs=3)
    assert cfg["epochs"] == 3
    assert PROFILES["thesis"]["case1"]["epochs_small"] != 3


def test_config_takes_given_values_and_leaves_the_profile_alone():
    before = dict(PROFILES["demo"]["case1"])
    cfg, _, name = case1_config("demo", "Test33", seed=7, arch=None, lr=0.5)
    assert (cfg["seed"], cfg["arch"], cfg["lr"], name) == (7, before["arch"], 0.5, "Test33")
    cfg["epochs"] = -1
    assert PROFILES["demo"]["case1"] == before


def test_config_refuses_an_unknown_profile():
    with pytest.raises(ValueError, match="unknown profile"):
        case1_config("huge", "1/3")


# ----------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def smoke_data(smoke_cache) -> Case1Data:
    cfg, _, _ = case1_config("smoke", "1/3")
    return case1_data(smoke_cache, "1/3", cfg)


def test_case1_data_sizes_add_up(smoke_data):
    d = smoke_data
    ids = np.concatenate([d.ids[s] for s in ("train", "val", "test")])
    assert sorted(ids.tolist()) == list(range(d.n_dataset))  # every image in exactly one split
    assert d.n_dataset == len(d.index) == len(d.labels) == len(d.split)
    assert d.n_training_stage == len(d.ids["train"]) + len(d.ids["val"])
    assert d.pct_training_stage == pytest.approx(100 * d.n_training_stage / d.n_dataset)
    for name in ("train", "val", "test"):
        assert len(d.datasets[name]) == len(d.ids[name]) == d.sizes().loc["images", name]
        assert (d.split[d.ids[name]] == name).all()
    assert d.sizes().loc["positives"].sum() == d.labels.sum()
    # a third of each 12-slice series is the training stage
    assert d.n_training_stage == d.n_dataset // 3
    assert (d.rate_key, d.test_name, d.in_channels) == ("1/3", "Test33", 1)


def test_case1_data_loaders_and_images(smoke_data):
    cfg, _, _ = case1_config("smoke", "1/3")
    x, y = next(iter(smoke_data.loaders["test"]))
    assert x.shape == (min(cfg["batch_size"], len(smoke_data.ids["test"])), 1, cfg["image_size"], cfg["image_size"])
    # the test loader keeps the split's order: its labels are the cache's labels of the test ids
    labels = torch.cat([b[1] for b in smoke_data.loaders["test"]]).numpy()
    np.testing.assert_array_equal(labels, smoke_data.labels[smoke_data.ids["test"]])
    images = smoke_data.images("test", [0, 2])
    assert len(images) == 2 and images[0].shape == (cfg["image_size"],) * 2
    np.testing.assert_array_equal(images[1], smoke_data.datasets["test"][2][0][0].numpy())
    assert len(smoke_data.images("val")) == len(smoke_data.ids["val"])


def test_case1_data_is_the_same_from_a_folder_or_a_loaded_cache(smoke_cache, smoke_data):
    from pe_utils.data.preprocess import load_cache

    cfg, _, _ = case1_config("smoke", "1/3")
    again = case1_data(load_cache(smoke_cache), "Test33", cfg)
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(again.ids[name], smoke_data.ids[name])


# ----------------------------------------------------------------------------- training set-up
def test_case1_training_follows_the_config():
    from pe_utils.learn.losses import FocalLoss

    model = torch.nn.Linear(4, 1)
    cfg, _, _ = case1_config("smoke", "1/2", lr=0.03)
    criterion, optimizer, scheduler = case1_training(model, cfg, steps_per_epoch=5)
    assert isinstance(criterion, FocalLoss) and criterion.gamma == cfg["gamma"]
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["lr"] == 0.03 and optimizer.param_groups[0]["momentum"] == cfg["momentum"]
    assert scheduler.step_size == cfg["lr_step"] and scheduler.gamma == cfg["lr_gamma"]


def test_keep_final_model_saves_and_removes_checkpoints(tmp_path):
    model = torch.nn.Linear(3, 1)
    for keep in (True, False):
        (tmp_path / "checkpoints").mkdir(exist_ok=True)
        (tmp_path / "checkpoints" / "last.pt").write_bytes(b"x")
        path = keep_final_model(model, tmp_path, keep_checkpoints=keep)
        assert path == tmp_path / "model.pt"
        assert (tmp_path / "checkpoints").exists() == keep
    state = torch.load(path)
    assert torch.equal(state["weight"], model.weight)


# ----------------------------------------------------------------------------- results
def _choices(oracle=(0.9, 0.1), validation=(0.8, 0.2), conformal=(0.95, 0.05)):
    rows = []
    for method, pair in (("oracle", oracle), ("validation", validation), ("conformal (alpha=0.05)", conformal)):
        upper, lower = pair if pair is not None else (np.nan, np.nan)
        rows.append(dict(method=method, upper=upper, lower=lower, n_uncertain=6, workload_pct=40.0,
                         error_rate_pct=1.5, pct_positives_auto_correct=50.0))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("oracle, validation, expected", [
    ((0.9, 0.1), (0.8, 0.2), (0.9, 0.1, "oracle")),
    (None, (0.8, 0.2), (0.8, 0.2, "validation")),
    (None, None, (0.75, 0.25, "fallback")),
])
def test_gallery_pair_falls_back_in_order(oracle, validation, expected):
    assert gallery_pair(_choices(oracle, validation)) == expected


def test_gallery_pair_ignores_extra_columns_and_takes_a_given_fallback():
    choices = _choices(None, None)
    choices.insert(1, "% training stage", 33.3)
    assert gallery_pair(choices, fallback=(0.6, 0.4)) == (0.6, 0.4, "fallback")


def test_case1_test_metrics():
    y = np.array([0, 0, 1, 1, 1])
    probs = np.array([0.1, 0.6, 0.4, 0.8, 0.9])
    views = np.stack([1 - probs, probs], axis=1)  # column 0 (no TTA) ranks exactly backwards
    m = case1_test_metrics(y, probs, views)
    assert m["metrics_at_0_5"]["tp"] == 2 and m["metrics_at_0_5"]["fp"] == 1
    assert m["auc_no_tta"] == pytest.approx(1 - m["metrics_at_0_5"]["auc"])
    assert 0 <= m["youden_threshold"] <= 1
    assert m["metrics_at_youden"]["threshold"] == m["youden_threshold"]
    with pytest.raises(ValueError):
        case1_test_metrics(np.ones(3), np.full(3, 0.5), np.full((3, 5), 0.5))


def _record(data, choices):
    cfg, _, _ = case1_config("smoke", "1/3")
    y_test = data.labels[data.ids["test"]]
    probs = np.linspace(0.01, 0.99, len(y_test))
    return case1_record(data, profile="smoke", cfg=cfg, test_metrics=case1_test_metrics(y_test, probs, probs[:, None]),
                        choices=choices, table=pd.DataFrame({"upper": [0.75]}), history=[{"epoch": 1}],
                        train_seconds=1.0, conformal_alpha=0.05)


def test_case1_record_has_every_schema_key(smoke_data):
    from pe_utils.report.schema import CASE1_KEYS, CASE1_REQUIRED

    record = _record(smoke_data, _choices())
    assert set(CASE1_REQUIRED) <= set(record)
    assert set(record) == set(CASE1_KEYS)  # every documented key, nothing undocumented
    d = smoke_data
    assert (record["sampling_rate"], record["test_name"], record["notebook"]) == ("1/3", "Test33",
                                                                                  "01_case1_supervised")
    assert record["n_train"] + record["n_val"] + record["n_test"] == record["n_dataset"] == d.n_dataset
    assert record["n_test_positive"] == int(d.labels[d.ids["test"]].sum())
    assert record["oracle_thresholds"] == [0.9, 0.1] and record["practical_thresholds"] == [0.8, 0.2]
    assert record["oracle_pct_uncertain"] == pytest.approx(100 * 6 / d.n_dataset)
    assert record["auc"] == record["metrics_at_0_5"]["auc"] and math.isfinite(record["auc"])


def test_case1_record_without_an_oracle_pair(smoke_data):
    record = _record(smoke_data, _choices(oracle=None))
    assert record["oracle_thresholds"] is None
    assert record["oracle_pct_uncertain"] is None and record["oracle_workload_pct"] is None
    assert record["pct_positives_auto_correct"] == 50.0  # the practical pair's


def test_case1_record_needs_the_validation_rows(smoke_data):
    with pytest.raises(ValueError, match="validation"):
        _record(smoke_data, _choices().iloc[:1])
