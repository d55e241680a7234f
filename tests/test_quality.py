"""pe_utils.report.quality: which runs need a check, and how the index words each figure."""
from __future__ import annotations

import pytest

from pe_utils.report.quality import (AUC_FLOOR, F1_FLOOR, FOOTNOTES, METHOD_NOTES, RUN_COLUMNS, cell_text,
                                     field_label, quality_checks)
from pe_utils.report.schema import CASE1_KEYS, PREPROCESSING_KEYS

COLUMNS = {c.key: c for c in RUN_COLUMNS}
# a run as the issue saw it: a model that failed (AUC 0.696, F1 0.013) with no oracle pair
FAILED = {"auc": 0.6961, "f1": 0.0130, "oracle_thresholds": None, "oracle_workload_pct": None,
          "oracle_pct_uncertain": None, "practical_thresholds": None, "practical_workload_pct": 100.0,
          "practical_error_rate": None, "conformal_workload_pct": 61.25, "conformal_error_rate": 14.9375,
          "pct_training_stage": 79.4375, "n_dataset": 160, "n_test": 32}
GOOD = {"auc": 0.97, "f1": 0.81, "oracle_thresholds": [0.9, 0.1], "oracle_workload_pct": 52.5,
        "oracle_pct_uncertain": 19.375, "practical_thresholds": [0.95, 0.05], "practical_workload_pct": 60.0,
        "practical_error_rate": 3.3333, "conformal_workload_pct": 40.0, "conformal_error_rate": None,
        "pct_training_stage": 33.125, "n_dataset": 160, "n_test": 107}


def test_a_failed_model_needs_a_check_with_its_reasons():
    assert quality_checks(FAILED) == [f"AUC 0.70 < {AUC_FLOOR:.2f}", f"F1 0.01 < {F1_FLOOR:.2f}",
                                      "no error-free oracle pair"]
    assert quality_checks(GOOD) == []


@pytest.mark.parametrize("metrics, reasons", [
    ({}, []),                                        # preprocessing: nothing to judge
    ({"auc": AUC_FLOOR, "f1": F1_FLOOR}, []),        # the floors themselves pass
    ({"auc": float("nan")}, ["no AUC"]),
    ({"f1": None}, ["no F1"]),
    ({"oracle_thresholds": []}, ["no error-free oracle pair"]),
])
def test_checks_only_the_keys_present(metrics, reasons):
    assert quality_checks(metrics) == reasons


def test_missing_values_read_as_words_with_a_footnote():
    cells = {key: cell_text(COLUMNS[key], FAILED) for key in COLUMNS if key in FAILED}
    assert cells["oracle_workload_pct"] == ("no error-free pair: 100 %", "no_pair")
    assert cells["oracle_thresholds"] == ("nothing automated", "no_pair")
    # the practical workload is 100.0 in metrics.json, but it is the same situation: same words
    assert cells["practical_workload_pct"] == ("no error-free pair: 100 %", "no_pair")
    assert cells["practical_error_rate"] == ("nothing automated", "no_pair")
    assert set(FOOTNOTES) >= {"no_pair", "no_sure", "missing"}


def test_numbers_have_one_or_two_decimals():
    cells = {key: cell_text(COLUMNS[key], GOOD)[0] for key in COLUMNS if key in GOOD}
    assert cells == {"auc": "0.97", "f1": "0.81", "pct_training_stage": "33.1", "oracle_workload_pct": "52.5",
                     "oracle_thresholds": "0", "practical_workload_pct": "60.0", "practical_error_rate": "3.3",
                     "conformal_workload_pct": "40.0", "conformal_error_rate": "no sure prediction"}
    assert cell_text(COLUMNS["conformal_error_rate"], FAILED) == ("14.9", None)
    assert cell_text(COLUMNS["n_images"], {"n_images": 12345}) == ("12,345", None)
    assert cell_text(COLUMNS["auc"], {"auc": None}) == ("not recorded", "missing")


def test_oracle_with_every_test_slice_uncertain_has_no_error_rate():
    everything = GOOD | {"oracle_pct_uncertain": 100 * 107 / 160}
    assert cell_text(COLUMNS["oracle_thresholds"], everything) == ("no sure prediction", "no_sure")


def test_every_column_is_a_documented_metrics_key():
    documented = set(CASE1_KEYS) | set(PREPROCESSING_KEYS)
    assert [c.key for c in RUN_COLUMNS if c.key not in documented] == []
    assert all(c.meaning for c in RUN_COLUMNS)


def test_the_conformal_legend_does_not_promise_an_error_rate():
    text = METHOD_NOTES["conformal"]
    assert "miscoverage" in text and "not the error rate" in text and "Mondrian" in text
    assert "test labels" in METHOD_NOTES["oracle"] and "without test labels" in METHOD_NOTES["validation"]


def test_field_labels():
    assert field_label("uses_test_labels") == "uses test labels"
    assert field_label("pct_positives_auto_correct") == "positives labelled correctly %"
    assert field_label("some_new_column") == "some new column"


def test_worded_tables_show_words_not_nan():
    import pandas as pd

    from pe_utils.report import worded

    runs = pd.DataFrame([
        dict(method="supervised", auc=0.9, practical_thresholds=[], practical_workload_pct=100.0,
             practical_error_rate=float("nan"), oracle_thresholds=None, oracle_workload_pct=float("nan")),
        dict(method="supervised", auc=0.95, practical_thresholds=[0.9, 0.1], practical_workload_pct=60.0,
             practical_error_rate=1.25, oracle_thresholds=[0.95, 0.05], oracle_workload_pct=55.0),
    ])
    cols = ["method", "auc", "oracle_thresholds", "oracle_workload_pct", "practical_workload_pct",
            "practical_error_rate"]
    out = worded(runs, cols)
    assert list(out.columns) == cols and "nan" not in out.to_html().lower()
    assert out.practical_error_rate.tolist() == ["nothing automated", "1.2"]
    assert out.practical_workload_pct.tolist() == ["no error-free pair: 100 %", "60.0"]
    assert out.oracle_workload_pct.tolist() == ["no error-free pair: 100 %", "55.0"]
    assert out.oracle_thresholds.tolist() == ["none", "0.95/0.05"]
    assert out.auc.tolist() == ["0.90", "0.95"] and runs.auc.tolist() == [0.9, 0.95]  # a copy


# --- pe_utils.report.tables: what a page's tables show -----------------------------------------

RAW_MISSING = ("NaN", "nan", "None", "<NA>", "NaT")


def _text(table) -> str:
    return table._repr_html_() + repr(table)


def test_display_table_words_every_kind_of_missing_value():
    import numpy as np
    import pandas as pd

    from pe_utils.report import display_table

    frame = pd.DataFrame({"auc": [0.91234, np.nan, None], "n": pd.array([3, pd.NA, 5], dtype="Int64"),
                          "when": [pd.Timestamp(0), pd.NaT, pd.Timestamp(0)], "pair": [[0.9, 0.1], None, []]},
                         index=["a", "b", "c"])
    table = display_table(frame, missing={"b": "no threshold: one class", "pair": "no pair"})
    assert table.cells.loc["b"].tolist() == ["no threshold: one class"] * 4   # the row's words win
    assert table.cells.loc["c", "pair"] == "no pair" and table.cells.loc["c", "auc"] == "not recorded"
    assert table.cells.loc["a", "auc"] == "0.912" and table.cells.loc["a", "n"] == "3"
    assert table.cells.loc["a", "pair"] == "0.900/0.100"
    assert not any(token in _text(table) for token in RAW_MISSING)
    assert display_table(frame, missing="n/a").cells.loc["b", "auc"] == "n/a"
    assert display_table(pd.Series([1e-4, 0.0], name="lr")).cells.lr.tolist() == ["1.0e-04", "0.000"]


def test_display_table_draws_every_row_and_column():
    import pandas as pd

    from pe_utils.report import display_table

    wide = pd.DataFrame([[float(i * j) for j in range(40)] for i in range(100)])
    with pd.option_context("display.max_columns", 5, "display.max_rows", 5):
        assert "..." in wide._repr_html_()            # what pandas would draw
        html = display_table(wide, decimals=0)._repr_html_()
    assert "..." not in html and html.count("<tr") == 101 and "<td>3861</td>" in html


def test_threshold_table_words_the_missing_youden_row():
    import numpy as np

    from pe_utils import case1_test_metrics, display_table, threshold_metrics_table

    y, probs = np.array([0, 1, 1]), np.array([0.2, 0.6, 0.9])
    m = case1_test_metrics(y, probs, probs[:, None], np.zeros(4), np.full(4, 0.3))
    table = display_table(threshold_metrics_table(m))
    row = table.cells.loc["at Youden (chosen on validation)"]
    assert set(row) == {"no threshold: the validation slices hold one class"}
    assert table.cells.loc["at 0.5", "tp"] == "2"
    assert not any(token in _text(table) for token in RAW_MISSING)


def test_history_table_shows_a_long_run_thinned_and_says_so():
    from pe_utils.report import history_table

    history = [{"epoch": e, "lr": 0.01, "train_loss": 1 / e, "train_f1": 0.5, "train_auc": 0.5,
                "train_seconds": 1.0, **({"val_loss": 0.5, "val_auc": 0.8, "val_f1": 0.4} if e % 2 == 0 else {})}
               for e in range(1, 51)]
    table = history_table(history, max_rows=20)
    cells = table.cells
    assert list(cells.columns) == ["epoch", "learning rate", "training loss", "training F1", "validation loss",
                                   "validation AUC", "validation F1", "training seconds"]
    assert cells.epoch.tolist() == [str(e) for e in range(1, 51, 3)] + ["50"] and len(cells) <= 20
    assert cells.loc[cells.epoch == "1", "validation AUC"].item() == "not validated"
    assert "One epoch in 3 of 50" in table.note and "..." not in _text(table)
    assert not any(token in _text(table) for token in RAW_MISSING)
    short = history_table(history[:4], ["epoch", "train_loss"])
    assert short.note is None and len(short.cells) == 4
    with pytest.raises(ValueError, match="val_top1"):
        history_table(history, ["epoch", "val_top1"])
