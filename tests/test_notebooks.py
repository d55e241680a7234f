"""A smoke run of every course notebook through the batch runner (their shape: test_notebook_shape.py).

Slow (minutes): the session's ``smoke_batch`` fixture runs the whole plan once at the smoke
profile; every test here reads what it wrote.
"""
from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.slow


def test_smoke_batch_runs_every_notebook_at_every_rate(smoke_batch):
    from pe_utils.profiles import SAMPLING_RATES
    from pe_utils.report.schema import CASE1_REQUIRED, read_metrics

    out, _ = smoke_batch
    runs = read_metrics(out)
    assert set(runs.notebook) >= {"00_preprocessing", "01_case1_supervised"}
    case1 = runs[runs.notebook == "01_case1_supervised"]
    assert sorted(case1.sampling_rate) == sorted(SAMPLING_RATES)
    for key in CASE1_REQUIRED:
        assert key in case1.columns, key
    # every smoke test set holds both classes (the premise of a defined AUC; 9/10 keeps 6 test
    # slices, 3 positive), so every AUC must be a number in [0, 1]: NaN (null) fails
    assert ((case1.n_test_positive > 0) & (case1.n_test_positive < case1.n_test)).all(), \
        case1[["sampling_rate", "n_test", "n_test_positive"]]
    for column in ("auc", "auc_no_tta"):
        values = [case1.set_index("sampling_rate")[column].get(rate) for rate in SAMPLING_RATES]
        bad = {rate: v for rate, v in zip(SAMPLING_RATES, values)
               if v is None or not math.isfinite(v) or not 0 <= v <= 1}
        assert not bad, f"{column} missing, NaN or out of [0, 1]: {bad}"
    assert (case1.pct_training_stage.round(0) >= 25).all()
    # the training share follows the rate: 9/10 keeps more than 1/4
    by_rate = case1.set_index("sampling_rate").pct_training_stage
    assert by_rate["9/10"] > by_rate["1/2"] > by_rate["1/4"]


def test_smoke_batch_reports_are_offline_html(smoke_batch):
    import re

    out, _ = smoke_batch
    pages = sorted(out.rglob("*.html"))
    assert (out / "index.html") in pages
    # one executed notebook, one full and one results-only page per run at least
    assert len(pages) >= 2 * 9
    for page in pages:
        text = page.read_text(errors="replace")
        assert not re.search(r"<script[^>]+src=[\"']?(https?:)?//", text), page
    index = (out / "index.html").read_text()
    for name in ("00_preprocessing", "01_case1_supervised", "07_summary"):
        assert name in index


def test_smoke_batch_runs_cases_2_and_4_paired_by_seed(smoke_batch):
    from pe_utils.report.schema import CASE2_REQUIRED, read_metrics

    out, _ = smoke_batch
    runs = read_metrics(out)
    pretrain = runs[(runs.notebook == "02_case3_pretrain") & (runs.case == "case4")]
    assert list(pretrain.dataset) == ["dataset2"], "notebook 02 ran on Dataset2 for Case4"
    c24 = runs[runs.notebook.isin(["04_case2_supervised", "05_case4_contrastive"])]
    for key in CASE2_REQUIRED:
        assert c24[key].notna().all() or key in ("experiment", "exam_auc_max", "exam_auc_topk"), key
    assert (c24.threshold_source == "validation_youden").all()
    assert c24.auc.between(0, 1).all() and c24.threshold.between(0, 1).all()
    default = c24[c24.experiment.isna()]
    grid = sorted(zip(default.case, default.train_fraction, default.seed))
    assert grid == [(c, f, 0) for c in ("case2", "case4") for f in (25.0, 100.0)]
    assert (default[default.case == "case4"].pretrained_from.str.contains("02_case4_pretrain")).all()
    # the same seed gives both cases the same data: training, re-sampled, validation and test sizes
    sizes = default.set_index(["case", "train_fraction"])[["n_train", "n_train_resampled", "n_val", "n_test"]]
    assert sizes.loc["case2"].equals(sizes.loc["case4"])
    assert sizes.loc[("case2", 25.0), "n_train"] < sizes.loc[("case2", 100.0), "n_train"]
    ablation = c24[c24.experiment.notna()].set_index("experiment")
    assert ablation.loc[1, "dataset"] == "dataset1" and ablation.loc[11, "dataset"] == "dataset2"
    assert ablation.loc[1, "optimizer"] == "sgd" and ablation.loc[11, "sampling"] == "resample"


def test_smoke_batch_explains_every_layer_and_scores_every_model(smoke_batch):
    from pe_utils.report.schema import read_metrics

    out, _ = smoke_batch
    runs = read_metrics(out, notebook="06_explain")
    assert len(runs) == 1
    run = runs.iloc[0]
    assert [s["source"] for s in run.slices] == ["pretraining set"] + ["new phantom patient"] * 3
    reps = run.representations
    # before pretraining and after the smoke's 2 epochs, at the three layers
    assert sorted((r["epochs"], r["layer"]) for r in reps) == [(e, l) for e in (0, 2) for l in ("encoder", "head1", "head2")]
    for r in reps:
        assert -1 <= r["silhouette"] <= 1 and 0 <= r["knn_accuracy"] <= 1, r
        assert r["probe_auc"] is None or 0 <= r["probe_auc"] <= 1, r
    # Case1/Case3 at 9/10 and 1/4, Case2/Case4 at the smoke grid's 100 % and 25 %, every one scored on its clots
    models = sorted((s["case"], s.get("sampling_rate") or s.get("train_fraction")) for s in run.localisation)
    assert models == sorted([(c, r) for c in ("case1", "case3") for r in ("9/10", "1/4")]
                            + [(c, f) for c in ("case2", "case4") for f in (100.0, 25.0)])
    for s in run.localisation:
        assert s["n"] > 0 and 0 <= s["energy_mean"] <= 1 and 0 <= s["pointing_rate"] <= 1, s
        # beside each score its ceiling: a perfect map at the layer's grid (1 x 1 at the smoke's 32 px: flat)
        assert s["cam_grid"] == f"{s['grid']}x{s['grid']}" and 0 <= s["pointing_perfect"] <= 1, s
        assert s["energy_perfect"] >= s["energy_chance"] - 1e-6, s


def test_smoke_batch_summary_sets_cases_2_and_4_beside_the_thesis(smoke_batch):
    import nbformat

    out, _ = smoke_batch
    nb = nbformat.read(out / "07_summary" / "07_summary.ipynb", as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    html = "\n".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "Case2/Case4 run(s)" in text and "No supervised (Case2) run" not in text
    assert "0.8613" in text and "(n=1)" in text                   # the thesis's Table 6.4 beside ours (one seed)
    assert "cannot tell apart from one seed" in text               # the smoke grid's single seed, said so
    assert "0.92676" in text                                       # Table 6.3's experiment 11
    assert "experiments without a run here: 2-10, 12-13" in text   # the smoke ablation runs 1 and 11
    assert ">nan<" not in html.lower() and "&lt;NA&gt;" not in html
