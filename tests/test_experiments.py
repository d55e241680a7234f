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
from pe_utils.experiments.case1_results import (baseline_table, case1_record, case1_test_metrics, gallery_pair,
                                                threshold_metrics_table)
from pe_utils.experiments.resume import RESUME_IGNORE, cache_fingerprint, case1_resume, check_resume
from pe_utils.experiments.summary import (mean_std_text, method_long, method_name, method_runs, method_seeds_note,
                                          method_table, missing_methods, per_rate_summary, rate_order, runs_by_method,
                                          seeds_note, thesis_method)
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
    expected = (section.get("epochs_by_rate") or {}).get(rate, expected)  # a profile's own epochs per rate
    assert (cfg["epochs"], key, name) == (expected, rate, SAMPLING_RATES[rate])


def test_epochs_by_rate_names_a_rates_epochs_and_given_epochs_still_win(monkeypatch):
    section = {**PROFILES["thesis"]["case1"], "epochs_by_rate": {"9/10": 2, "1/4": 7}}
    monkeypatch.setitem(PROFILES["thesis"], "case1", section)
    assert case1_config("thesis", "9/10")[0]["epochs"] == 2
    assert case1_config("thesis", "Test25")[0]["epochs"] == 7
    assert case1_config("thesis", "1/3")[0]["epochs"] == section["epochs_small"]  # not listed: the rule
    assert case1_config("thesis", "1/2")[0]["epochs"] == section["epochs"]
    assert case1_config("thesis", "1/4", epochs=3)[0]["epochs"] == 3


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
    y_val, val_probs = np.array([0, 0, 1, 1]), np.array([0.2, 0.3, 0.35, 0.95])
    m = case1_test_metrics(y, probs, views, y_val, val_probs)
    assert m["metrics_at_0_5"]["tp"] == 2 and m["metrics_at_0_5"]["fp"] == 1
    assert m["auc_no_tta"] == pytest.approx(1 - m["metrics_at_0_5"]["auc"])
    # chosen on validation (0.35 separates it perfectly), applied to the test slices
    assert m["youden_threshold"] == pytest.approx(0.35)
    assert m["metrics_at_youden"]["threshold"] == m["youden_threshold"]
    assert (m["metrics_at_youden"]["tp"], m["metrics_at_youden"]["fp"]) == (3, 1)
    # the test ROC's own choice (J = 2/3 at 0.8) is kept apart, as an oracle
    assert m["oracle_youden_threshold"] == pytest.approx(0.8)
    assert m["metrics_at_oracle_youden"]["threshold"] == m["oracle_youden_threshold"]
    assert (m["metrics_at_oracle_youden"]["tp"], m["metrics_at_oracle_youden"]["fp"]) == (2, 0)
    with pytest.raises(ValueError):
        case1_test_metrics(np.ones(3), np.full(3, 0.5), np.full((3, 5), 0.5))


@pytest.mark.parametrize("y_val", [None, np.array([0, 0, 0, 0])])
def test_case1_test_metrics_without_a_validation_threshold(y_val):
    y, probs = np.array([0, 1, 1]), np.array([0.2, 0.6, 0.9])
    m = case1_test_metrics(y, probs, probs[:, None], y_val, None if y_val is None else np.full(4, 0.3))
    assert m["youden_threshold"] is None and m["metrics_at_youden"] is None
    assert m["oracle_youden_threshold"] == pytest.approx(0.6)
    table = threshold_metrics_table(m)
    assert list(table.index) == ["at 0.5", "at Youden (chosen on validation)", "at Youden (oracle: chosen on test)"]
    assert table.loc["at Youden (chosen on validation)"].isna().all()
    assert table.loc["at 0.5", "tp"] == 2


def _record(data, choices):
    cfg, _, _ = case1_config("smoke", "1/3")
    y_test = data.labels[data.ids["test"]]
    probs = np.linspace(0.01, 0.99, len(y_test))
    y_val = data.labels[data.ids["val"]]
    val_probs = np.linspace(0.01, 0.99, len(y_val))
    test_metrics = case1_test_metrics(y_test, probs, probs[:, None], y_val, val_probs)
    from pe_utils.experiments.case1_neighbours import neighbour_choices

    return case1_record(data, profile="smoke", cfg=cfg, test_metrics=test_metrics,
                        choices=choices, table=pd.DataFrame({"upper": [0.75]}), history=[{"epoch": 1}],
                        train_seconds=1.0, conformal_alpha=0.05,
                        neighbour=neighbour_choices(data, probs, y_test, val_probs, y_val))


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
    # the oracle figure stays the oracle's: null, never the practical pair's in its place
    assert record["oracle_pct_positives_auto_correct"] is None
    assert record["practical_pct_positives_auto_correct"] == 50.0


def test_case1_record_oracle_and_practical_positives_apart(smoke_data):
    choices = _choices()
    choices.loc[choices.method == "oracle", "pct_positives_auto_correct"] = 80.0
    record = _record(smoke_data, choices)
    assert (record["oracle_pct_positives_auto_correct"], record["practical_pct_positives_auto_correct"]) == (80.0, 50.0)
    assert "pct_positives_auto_correct" not in record


def test_case1_record_carries_the_baseline(smoke_data):
    from pe_utils.evaluate.baseline import baseline_metrics

    record = _record(smoke_data, _choices())
    expected = baseline_metrics(smoke_data.index, smoke_data.split)
    assert {k: record[k] for k in expected} == expected
    assert record["baseline_workload_pct"] == pytest.approx(smoke_data.pct_training_stage)
    given = dict(expected, baseline_f1=0.123)  # a given baseline is used as it is
    cfg, _, _ = case1_config("smoke", "1/3")
    y = smoke_data.labels[smoke_data.ids["test"]]
    p = np.linspace(0.01, 0.99, len(y))
    again = case1_record(smoke_data, profile="smoke", cfg=cfg, test_metrics=case1_test_metrics(y, p, p[:, None]),
                         choices=_choices(), table=pd.DataFrame(), history=[], train_seconds=0.0,
                         conformal_alpha=0.05, baseline=given)
    assert again["baseline_f1"] == 0.123


def test_baseline_table_puts_the_rule_beside_the_network(smoke_data):
    y = smoke_data.labels[smoke_data.ids["test"]]
    p = np.where(y == 1, 0.9, 0.1)  # a perfect network
    table = baseline_table(case1_test_metrics(y, p, p[:, None]), smoke_data)
    assert list(table.columns) == ["F1", "accuracy", "% test slices wrong", "workload %"]
    net, rule = table.iloc[0], table.iloc[1]
    assert (net["F1"], net["accuracy"], net["% test slices wrong"]) == (1.0, 1.0, 0.0)
    assert net["workload %"] == rule["workload %"] == pytest.approx(smoke_data.pct_training_stage)
    assert rule["% test slices wrong"] == pytest.approx(100 * (1 - rule["accuracy"]))


def test_case1_record_needs_the_validation_rows(smoke_data):
    with pytest.raises(ValueError, match="validation"):
        _record(smoke_data, _choices().iloc[:1])


# ----------------------------------------------------------------------------- resume
def test_case1_data_carries_its_cache_fingerprint(smoke_cache, smoke_data):
    from pe_utils.io import sha256_file

    fp = smoke_data.fingerprint
    assert smoke_data.cache_dir == smoke_cache
    assert fp == cache_fingerprint(smoke_cache)
    assert fp["cache_index_sha256"] == sha256_file(smoke_cache / "index.csv")
    assert fp["cache_config_sha256"] and len(fp["cache_config_sha256"]) == 64


@pytest.fixture()
def other_cache(smoke_cache, tmp_path):
    """The smoke cache copied, with one label changed: another dataset under the same settings."""
    import shutil

    other = tmp_path / "other_cache"
    shutil.copytree(smoke_cache, other)
    index = pd.read_csv(other / "index.csv")
    index.loc[0, "pe_present_on_image"] = 1 - index.loc[0, "pe_present_on_image"]
    index.to_csv(other / "index.csv", index=False)
    return other


def _checkpoint(folder, config):
    from pe_utils.learn.checkpoint import save_checkpoint

    save_checkpoint(folder / "last.pt", {"model": {}, "epoch": 1, "config": config})


def test_check_resume_refuses_another_cache_naming_both(smoke_cache, other_cache, tmp_path):
    ours, theirs = cache_fingerprint(smoke_cache), cache_fingerprint(other_cache)
    assert ours["cache_index_sha256"] != theirs["cache_index_sha256"]
    assert ours["cache_config_sha256"] == theirs["cache_config_sha256"]  # the index tells them apart
    _checkpoint(tmp_path, {"epochs": 1, "cache_dir": str(smoke_cache), **ours})
    check_resume(tmp_path, ours, smoke_cache)           # same data: fit resumes
    check_resume(tmp_path / "none", theirs, other_cache)  # no checkpoint: nothing to refuse
    with pytest.raises(ValueError) as err:
        check_resume(tmp_path, theirs, other_cache)
    assert str(smoke_cache) in str(err.value) and str(other_cache) in str(err.value)
    assert "cache_index_sha256" in str(err.value)


def test_check_resume_lets_an_old_checkpoint_through(smoke_cache, tmp_path):
    _checkpoint(tmp_path, {"epochs": 1, "seed": 0})  # made before fingerprints: fit restarts it
    check_resume(tmp_path, cache_fingerprint(smoke_cache), smoke_cache)


def test_case1_resume_gives_fit_its_arguments(smoke_data, tmp_path):
    cfg, _, _ = case1_config("smoke", "1/3")
    options = case1_resume(smoke_data, cfg, tmp_path / "checkpoints")
    assert options["resume"] is True and options["checkpoint_dir"] == tmp_path / "checkpoints"
    assert options["resume_ignore"] == RESUME_IGNORE and "cache_dir" in RESUME_IGNORE
    config = options["config"]
    assert config["sampling_rate"] == "1/3" and config["cache_dir"] == str(smoke_data.cache_dir)
    assert {k: config[k] for k in smoke_data.fingerprint} == smoke_data.fingerprint
    assert {k: config[k] for k in cfg} == cfg


def test_a_resumed_fit_on_other_data_is_refused(smoke_data, other_cache, tmp_path):
    """End to end: fit writes a checkpoint from one cache; the same output folder on another is refused."""
    from pe_utils.learn.loop import fit

    cfg, _, _ = case1_config("smoke", "1/3")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(cfg["image_size"] ** 2, 1),
                                torch.nn.Flatten(0))  # (B,) logits, as build_classifier gives
    criterion, optimizer, scheduler = case1_training(model, cfg, steps_per_epoch=len(smoke_data.loaders["train"]))
    fit(model, criterion, optimizer, smoke_data.loaders["train"], None, 1, "cpu", scheduler=scheduler,
        progress=False, **case1_resume(smoke_data, cfg, tmp_path))
    assert (tmp_path / "last.pt").is_file()
    case1_resume(smoke_data, cfg, tmp_path)  # the same data resumes
    other = case1_data(other_cache, "1/3", cfg)
    with pytest.raises(ValueError, match="other_cache"):
        case1_resume(other, cfg, tmp_path)


# ----------------------------------------------------------------------------- across seeds
def _runs():
    return pd.DataFrame([
        dict(sampling_rate="1/3", seed=0, w=50.0, f1=0.5), dict(sampling_rate="1/3", seed=1, w=None, f1=0.7),
        dict(sampling_rate="1/3", seed=2, w=54.0, f1=0.6), dict(sampling_rate="9/10", seed=0, w=90.0, f1=0.9),
        dict(sampling_rate="2/7", seed=0, w=None, f1=0.1),
    ])


def test_rate_order_follows_table_6_1_then_the_others():
    assert rate_order(["1/4", "2/7", "9/10", "1/4"]) == ["9/10", "1/4", "2/7"]


def test_per_rate_summary_counts_the_runs_that_have_a_figure():
    s = per_rate_summary(_runs(), ["w", "f1"])
    assert list(s.index) == ["9/10", "1/3", "2/7"]
    assert s.loc["1/3", "n_runs"] == 3 and s.loc["1/3", "w_n"] == 2 and s.loc["1/3", "w_seeds"] == "2 of 3 seeds"
    assert s.loc["1/3", "w"] == pytest.approx(52.0)                      # over the two that have it
    assert s.loc["1/3", "w_std"] == pytest.approx(np.std([50, 54], ddof=1))
    assert s.loc["1/3", "f1"] == pytest.approx(0.6) and s.loc["1/3", "f1_n"] == 3
    assert np.isnan(s.loc["9/10", "w_std"])                              # one run: no spread
    assert np.isnan(s.loc["2/7", "w"]) and s.loc["2/7", "w_seeds"] == "0 of 1 seed"
    with pytest.raises(ValueError, match="missing_figure"):
        per_rate_summary(_runs(), ["missing_figure"])


def test_mean_std_text_and_seeds_note():
    s = per_rate_summary(_runs(), ["w"])
    text = mean_std_text(s, "w", seeds=True)
    assert text["9/10"] == "90.00" and text["1/3"] == "52.00 \u00b1 2.83 (2 of 3 seeds)" and text["2/7"] == "none of 1"
    assert mean_std_text(s, "w")["1/3"] == "52.00 \u00b1 2.83" and mean_std_text(s, "w")["2/7"] == ""
    assert seeds_note(s, "w", "a pair") == "a pair in 2 of 3 seeds at 1/3, 0 of 1 seed at 2/7"
    assert seeds_note(per_rate_summary(_runs(), ["f1"]), "f1", "F1") == "F1 in every run"


def test_runs_by_method_long_form_with_the_thesis():
    thesis = pd.DataFrame({"sampling_rate": ["9/10", "1/3"], "supervised": [90.25, 52.95], "name": ["a", "b"]})
    long = runs_by_method(_runs(), {"w": "ours", "f1": "F1"}, thesis=thesis)
    assert list(long.columns) == ["sampling_rate", "method", "value"]
    assert (long.method == "ours").sum() == 5 and long[long.method == "ours"].value.isna().sum() == 2
    assert long[long.method == "thesis supervised"].value.tolist() == [90.25, 52.95]
    assert "thesis name" not in set(long.method)  # only numeric thesis columns


# ----------------------------------------------------------------------------- methods side by side
def _summary_row(notebook, rate, seed, workload, f1, **extra):
    """A hand-made metrics.json row: Case1's figures (one seed may lack an oracle pair)."""
    return dict(notebook=notebook, sampling_rate=rate, seed=seed, oracle_workload_pct=workload, f1=f1,
                baseline_f1={"1/3": 0.4, "1/4": 0.3}[rate] + 0.01 * seed, **extra)


def _method_runs():
    case3 = "03_case3_finetune"
    return pd.DataFrame([
        _summary_row(case3, "1/4", 1, 50.0, 0.7, case="case3", pretrain_epochs=150),
        _summary_row("01_case1_supervised", "1/4", 0, 80.0, 0.2),
        _summary_row("01_case1_supervised", "1/3", 1, None, 0.5),           # no oracle pair: every pair erred
        _summary_row("01_case1_supervised", "1/3", 0, 52.0, 0.6),
        _summary_row(case3, "1/4", 0, 48.0, 0.8, case="case3", pretrain_epochs=150),
        _summary_row(case3, "1/4", 0, 57.0, 0.6, case="case3", pretrain_epochs=75),
        dict(notebook="02_case3_pretrain", case="case3", epochs=150),    # pretraining: not compared
        dict(notebook="00_preprocessing", n_images=100),
    ])


def test_method_names_of_runs_and_of_the_thesis():
    assert method_name("supervised") == "supervised" and method_name("contrastive", 75.0) == "contrastive (75 epochs)"
    assert method_name("contrastive", float("nan")) == "contrastive"
    assert [thesis_method(c) for c in ("supervised", "contrastive_150", "other")] == [
        "supervised", "contrastive (150 epochs)", "other"]


def test_method_runs_keeps_case1_and_case3_grouped_by_pretraining_epochs():
    runs = method_runs(_method_runs())
    assert len(runs) == 6
    assert list(runs.method) == ["supervised"] * 3 + ["contrastive (75 epochs)"] + ["contrastive (150 epochs)"] * 2
    assert list(runs.sampling_rate[:3]) == ["1/3", "1/3", "1/4"] and list(runs.seed[:2]) == [0, 1]
    assert set(runs.family) == {"supervised", "contrastive"}
    empty = method_runs(pd.DataFrame())  # read_metrics of a folder without runs
    assert len(empty) == 0 and {"method", "family"} <= set(empty.columns)


def test_missing_methods_names_the_command_that_makes_them():
    runs = method_runs(_method_runs())
    assert missing_methods(runs) == []
    only1 = missing_methods(runs[runs.family == "supervised"], profile="smoke")
    assert only1 == ["No contrastive (Case3) run here: `python -m pe_utils batch --profile smoke --cases 02,03` "
                     "makes them."]
    none = missing_methods(method_runs(pd.DataFrame()))
    assert len(none) == 2 and "--cases 01`" in none[0] and "--cases 02,03`" in none[1]


def test_method_long_per_seed_with_the_thesis_and_a_pooled_baseline():
    from pe_utils.report.thesis_numbers import FIG_6_15   # the test may reach a later wing

    runs = method_runs(_method_runs())
    long = method_long(runs, "oracle_workload_pct", thesis=FIG_6_15)
    assert list(long.columns) == ["sampling_rate", "method", "source", "value"]
    ours = long[long.source == "ours"]
    assert len(ours) == 6 and ours.value.isna().sum() == 1                      # the seed without a pair
    c150 = long[(long.method == "contrastive (150 epochs)") & (long.source == "ours")]
    assert sorted(c150.value) == [48.0, 50.0]
    thesis = long[long.source == "thesis"]
    assert set(thesis.method) == {"supervised", "contrastive (75 epochs)", "contrastive (150 epochs)"}
    assert thesis[(thesis.method == "contrastive (150 epochs)") & (thesis.sampling_rate == "1/4")].value.item() == 49.34
    f1 = method_long(runs, "f1", pooled={"baseline_f1": "no-image baseline"})
    base = f1[f1.source == "baseline"]
    # one value per (rate, seed): the three methods' runs share the splits
    pairs = sorted(zip(base.sampling_rate, base.value))
    assert [r for r, _ in pairs] == ["1/3", "1/3", "1/4", "1/4"]
    assert [v for _, v in pairs] == pytest.approx([0.4, 0.41, 0.3, 0.31])
    with pytest.raises(ValueError, match="nope"):
        method_long(runs, "nope")
    assert method_long(method_runs(pd.DataFrame()), "f1").empty


def test_method_table_and_seeds_note_count_the_seeds_with_an_oracle_pair():
    from pe_utils.report.thesis_numbers import FIG_6_15

    runs = method_runs(_method_runs())
    table = method_table(runs, "oracle_workload_pct", thesis=FIG_6_15)
    assert list(table.index) == ["9/10", "4/5", "3/4", "2/3", "1/2", "1/3", "1/4"]
    assert list(table.columns) == ["supervised (ours)", "supervised (thesis)", "contrastive (75 epochs) (ours)",
                                   "contrastive (75 epochs) (thesis)", "contrastive (150 epochs) (ours)",
                                   "contrastive (150 epochs) (thesis)"]
    assert table.loc["1/3", "supervised (ours)"] == "52.00 (1 of 2 seeds)"
    assert table.loc["1/4", "contrastive (150 epochs) (ours)"] == "49.00 \u00b1 1.41"
    assert table.loc["1/4", "contrastive (150 epochs) (thesis)"] == "49.34"
    assert table.loc["9/10", "supervised (ours)"] == ""
    assert list(method_table(runs, "f1", rates=["1/4", "1/2"]).index) == ["1/4", "1/2"]
    assert method_seeds_note(runs, "oracle_workload_pct", "an oracle pair") == (
        "supervised: an oracle pair in 1 of 2 seeds at 1/3; contrastive (75 epochs): an oracle pair in every run; "
        "contrastive (150 epochs): an oracle pair in every run")
    assert method_seeds_note(method_runs(pd.DataFrame()), "f1", "F1") == ""
