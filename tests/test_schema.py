"""metrics.json: the schema refuses what it does not document, converts numpy/pandas, reads runs back."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pe_utils.report.schema import (CASE1_KEYS, CASE1_REQUIRED, INDEX_FIGURES, PREPROCESSING_KEYS,
                                    SCHEMAS, read_metrics, write_metrics)


def _case1(**extra):
    """The smallest valid Case1 record: every required key, plain values."""
    return {**{k: 1.0 for k in CASE1_REQUIRED}, "sampling_rate": "1/3", "test_name": "Test33", **extra}


def test_minimal_record_round_trips(tmp_path):
    path = write_metrics(tmp_path / "run", _case1(), "case1")
    assert path == tmp_path / "run" / "metrics.json"
    assert json.loads(path.read_text()) == _case1()


def test_undocumented_key_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="undocumented keys.*'auc_typo'"):
        write_metrics(tmp_path, _case1(auc_typo=0.5), "case1")
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.parametrize("key", CASE1_REQUIRED)
def test_missing_required_key_is_refused_by_name(tmp_path, key):
    metrics = _case1()
    del metrics[key]
    with pytest.raises(ValueError, match=f"missing keys.*'{key}'"):
        write_metrics(tmp_path, metrics, "case1")


def test_unknown_schema_raises(tmp_path):
    with pytest.raises(ValueError, match="unknown metrics.json schema"):
        write_metrics(tmp_path, {}, "case9")


def test_preprocessing_schema_has_no_required_key(tmp_path):
    write_metrics(tmp_path, {"notebook": "00", "n_images": 3}, "preprocessing")
    with pytest.raises(ValueError, match="'auc'"):  # a Case1 key is not a preprocessing key
        write_metrics(tmp_path, {"auc": 0.9}, "preprocessing")


def test_nan_and_inf_become_null(tmp_path):
    metrics = _case1(auc=float("nan"), f1=np.float32("nan"), accuracy=np.inf,
                     youden_threshold=np.float64(0.25))
    data = json.loads(write_metrics(tmp_path, metrics, "case1").read_text())
    assert data["auc"] is None and data["f1"] is None and data["accuracy"] is None
    assert data["youden_threshold"] == 0.25


def test_numpy_and_pandas_values_round_trip(tmp_path):
    history = pd.DataFrame({"epoch": np.arange(2), "loss": np.array([0.5, np.nan], dtype=np.float32)})
    metrics = _case1(
        n_test=np.int64(7),
        pct_training_stage=np.float32(33.5),  # exactly representable: round-trips to the same float
        oracle_thresholds=np.array([0.9, 0.1]),
        metrics_at_0_5={"tp": np.int32(3), "fp": np.int64(1), "precision": np.float64(0.75)},
        history=history,
        triage=pd.Series([1, 2], dtype="int64"),
        seed=np.int8(0),
    )
    data = json.loads(write_metrics(tmp_path, metrics, "case1").read_text())
    assert data["n_test"] == 7 and type(data["n_test"]) is int
    assert data["pct_training_stage"] == 33.5
    assert data["oracle_thresholds"] == [0.9, 0.1]
    assert data["metrics_at_0_5"] == {"tp": 3, "fp": 1, "precision": 0.75}
    assert data["history"] == [{"epoch": 0, "loss": 0.5}, {"epoch": 1, "loss": None}]
    assert data["triage"] == [1, 2] and data["seed"] == 0


def test_read_metrics_collects_runs(tmp_path):
    write_metrics(tmp_path / "01_case1" / "rate_1_3", _case1(notebook="01", auc=0.8), "case1")
    write_metrics(tmp_path / "01_case1" / "rate_9_10",
                  _case1(notebook="01", sampling_rate="9/10", test_name="Test90", auc=0.9), "case1")
    write_metrics(tmp_path / "00_pre", {"notebook": "00", "n_images": 12}, "preprocessing")
    (tmp_path / "notes.json").write_text("{}")  # only files named metrics.json count

    runs = read_metrics(tmp_path)
    assert isinstance(runs, pd.DataFrame) and len(runs) == 3
    assert {"notebook", "auc", "n_images", "path"} <= set(runs.columns)

    case1 = read_metrics(tmp_path, notebook="01").sort_values("sampling_rate")
    assert list(case1["sampling_rate"]) == ["1/3", "9/10"]
    assert list(case1["auc"]) == [0.8, 0.9]
    assert all(p.endswith("metrics.json") for p in case1["path"])
    assert read_metrics(tmp_path, notebook="07").empty


def test_read_metrics_of_an_empty_folder(tmp_path):
    assert read_metrics(tmp_path).empty


def test_read_metrics_refuses_a_file_that_is_not_an_object(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a JSON object"):
        read_metrics(tmp_path)


@pytest.mark.parametrize("schema", sorted(SCHEMAS))
def test_every_key_has_a_description(schema):
    keys, required = SCHEMAS[schema]
    assert keys, schema
    empty = [k for k, text in keys.items() if not isinstance(text, str) or not text.strip()]
    assert empty == []
    assert set(required) <= set(keys)  # a required key is documented too


def test_schemas_are_the_documented_dicts():
    assert SCHEMAS["case1"] == (CASE1_KEYS, CASE1_REQUIRED)
    assert SCHEMAS["preprocessing"][0] is PREPROCESSING_KEYS


def test_index_figures_are_documented_keys_with_labels():
    documented = {k for keys, _ in SCHEMAS.values() for k in keys}
    assert INDEX_FIGURES, "the batch index shows no figure"
    assert sorted(set(INDEX_FIGURES) - documented) == []
    assert all(isinstance(label, str) and label.strip() for label in INDEX_FIGURES.values())
    assert len(set(INDEX_FIGURES.values())) == len(INDEX_FIGURES)  # one column per label


def test_oracle_and_practical_figures_are_apart_and_test_chosen_ones_say_oracle():
    # one key per choice: an oracle figure is never filled in from the practical pair
    assert "pct_positives_auto_correct" not in CASE1_KEYS
    for key in ("oracle_pct_positives_auto_correct", "practical_pct_positives_auto_correct"):
        assert key in CASE1_REQUIRED
    assert "null when no pair" in CASE1_KEYS["oracle_pct_positives_auto_correct"]
    # Youden's threshold: the plain key is chosen on validation, the test-chosen one is named an oracle
    assert "validation" in CASE1_KEYS["youden_threshold"]
    assert "oracle" in CASE1_KEYS["oracle_youden_threshold"] and "test" in CASE1_KEYS["oracle_youden_threshold"]
    assert "oracle" in CASE1_KEYS["metrics_at_oracle_youden"]


def test_the_no_image_baseline_is_documented_and_required():
    keys = ("baseline_f1", "baseline_accuracy", "baseline_error_rate", "baseline_workload_pct")
    assert set(keys) <= set(CASE1_REQUIRED)
    assert "nearest annotated" in CASE1_KEYS["baseline_f1"]
    assert "training stage" in CASE1_KEYS["baseline_workload_pct"]
    assert "baseline_f1" in INDEX_FIGURES


def test_case2_main_figures_are_the_original_view_and_tta_sits_beside():
    from pe_utils.report.schema import CASE2_KEYS

    for key in ("auc", "f1", "accuracy", "metrics_at_threshold", "auc_val"):
        assert "original view" in CASE2_KEYS[key], key
    for key in ("auc_tta", "f1_tta", "accuracy_tta", "metrics_at_threshold_tta", "oracle_threshold_tta",
                "metrics_at_oracle_tta", "exam_auc_max_tta", "exam_auc_topk_tta"):
        assert "TTA" in CASE2_KEYS[key], key
    assert "oracle" in CASE2_KEYS["oracle_threshold_tta"]
    assert "val_epochs" in CASE2_KEYS and "val_epochs" in CASE2_KEYS["history"]
