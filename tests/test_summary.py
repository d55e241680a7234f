"""pe_utils.experiments.summary: the summary's report folder and Table 6.2 beside the thesis."""
from __future__ import annotations

import pandas as pd

from pe_utils.experiments.summary import method_runs
from pe_utils.experiments.summary import reports_folder, table_6_2
from pe_utils.report.thesis_numbers import TABLE_6_2


def test_a_given_folder_is_used_as_is(tmp_path):
    assert reports_folder("demo", tmp_path / "anything") == tmp_path / "anything"


def test_the_default_folder_is_the_first_holding_runs(tmp_path, monkeypatch):
    import pe_utils.experiments.summary as module

    monkeypatch.setattr(module, "project_root", lambda: tmp_path)
    assert reports_folder("demo") == tmp_path / "reports" / "demo"        # nothing anywhere: the batch's
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    (tmp_path / "runs" / "r1" / "metrics.json").write_text("{}")
    assert reports_folder("demo") == tmp_path / "runs"                     # notebooks run by hand
    (tmp_path / "reports" / "demo" / "x").mkdir(parents=True)
    (tmp_path / "reports" / "demo" / "x" / "metrics.json").write_text("{}")
    assert reports_folder("demo") == tmp_path / "reports" / "demo"


def _row(rate, seed, training, uncertain, workload, practical):
    return dict(notebook="01_case1_supervised", sampling_rate=rate, seed=seed, pct_training_stage=training,
                oracle_pct_uncertain=uncertain, oracle_workload_pct=workload, practical_workload_pct=practical)


def test_table_6_2_means_seeds_beside_the_thesis():
    runs = method_runs(pd.DataFrame([_row("1/2", 0, 50.0, 10.0, 60.0, 70.0), _row("1/2", 1, 50.0, 20.0, 70.0, 80.0),
                                     _row("1/4", 0, 25.0, None, None, 100.0)]))
    table = table_6_2(runs, TABLE_6_2).set_index("rate")
    assert list(table.index) == ["1/2", "1/4"] and table.loc["1/2", "test"] == "Test50"
    assert table.loc["1/2", "workload % (ours, oracle)"] == "65.00 \u00b1 7.07"
    assert table.loc["1/2", "workload % (thesis)"] == 68.91 and table.loc["1/4", "uncertain % (thesis)"] == 53.84
    assert table.loc["1/4", "workload % (ours, oracle)"] == ""                  # no oracle pair
    assert table.loc["1/4", "seeds with an oracle pair"] == "0 of 1 seed"
