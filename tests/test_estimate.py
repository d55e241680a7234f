"""The cost estimate of a batch (pe_utils.batch.estimate): counts by hand, parameters, disk, FLOPs, CLI."""
from __future__ import annotations

from pathlib import Path

import pytest

from pe_utils.batch.cli import main
from pe_utils.batch.estimate import DISK_GOAL, EVAL_SHARE_GOAL, estimate, forward_flops
from pe_utils.batch.expand import plan_runs
from pe_utils.batch.plan import load_plan

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "notebooks" / "plan.json"


def _runs(tmp_path, **kw):
    return plan_runs(load_plan(PLAN), out=tmp_path / "reports", workdir=ROOT, profile="thesis", **kw)[1]


def _row(est, notebook, run):
    rows = est.runs[(est.runs.notebook == notebook) & (est.runs.run == run)]
    assert len(rows) == 1
    return rows.iloc[0]


@pytest.fixture(scope="module")
def thesis(tmp_path_factory):
    """The thesis profile's 155 runs (with the 75-epoch Case3 fine-tuning, five Case4 pretrainings,
    Case1's and Case3's 2.5D runs), estimated once for the module (FLOPs and memory counted once)."""
    runs = _runs(tmp_path_factory.mktemp("thesis"))
    return runs, estimate(runs, "thesis", throughput=3929, devices=1, report_size=12e6)


def test_case1_run_matches_a_hand_count(thesis):
    # Dataset1 15,556 images at rate 1/2: 7,778 in the training stage, 20 % of them validation (1,556),
    # 6,222 train, 7,778 test; 40 epochs (4.1.2); validation every epoch, 5 TTA views on validation and test
    row = _row(thesis[1], "01_case1_supervised", "rate-1_2")
    assert row.images_trained == 40 * 6222
    assert row.images_frozen == 0
    assert row.images_evaluated == 40 * 1556 + 5 * (1556 + 7778)
    passes = 3 * 40 * 6222 + 40 * 1556 + 5 * (1556 + 7778)
    assert row.eval_share == pytest.approx((40 * 1556 + 5 * (1556 + 7778)) / passes)
    # 1/4 is a small training set: 50 epochs
    assert _row(thesis[1], "01_case1_supervised", "rate-1_4").images_trained == 50 * (3889 - 778)


def test_case2_run_matches_a_hand_count(thesis):
    # Dataset2 19,946 images, 3,068 positive: validation 3,989 images (614 positive); training 2,454
    # positives and 13,503 negatives; 5 %: 123 and 675, re-sampled to 3 x 123 + 450 = 819 an epoch
    # validation every 7th epoch (7, 14, ..., 49) and the last: 8 times; then validation once from
    # the original view and the test set with 5 TTA views
    row = _row(thesis[1], "04_case2_supervised", "fraction-5-seed0")
    assert row.images_trained == 50 * 819 and row.val_every == 7
    assert row.images_evaluated == 8 * 3989 + 3989 + 5 * 455
    passes = 3 * 50 * 819 + 8 * 3989 + 3989 + 5 * 455
    assert row.eval_share == pytest.approx((8 * 3989 + 3989 + 5 * 455) / passes)
    full = _row(thesis[1], "04_case2_supervised", "fraction-100-seed0")
    assert full.images_trained == 50 * (3 * 2454 + 9002) and full.val_every == 1
    assert full.images_evaluated == 50 * 3989 + 3989 + 5 * 455


def test_every_thesis_training_run_spends_at_most_a_quarter_on_evaluation(thesis):
    runs = thesis[1].runs
    training = runs[runs.trains]
    assert len(training) == 152      # every run of the thesis plan but 00, 06 and 07
    over = training[training.eval_share > EVAL_SHARE_GOAL]
    assert over[["notebook", "run", "eval_share"]].values.tolist() == []
    # notebook 06 is forward-only by design: listed, not a training run
    assert (runs[runs.notebook == "06_explain"].eval_share == 1.0).all()


def test_the_estimate_counts_the_runs_cadence(tmp_path, thesis):
    """The same rule as the runs (case2_val_every), unless the run's val_every is given."""
    from pe_utils.experiments.case2 import case2_val_every

    assert _row(thesis[1], "05_case4_contrastive", "fraction-10-seed0").val_every == case2_val_every(1635, 3989) == 4
    runs = _runs(tmp_path, cases=["case2"], narrow={"train_fraction": ["5"], "seed": ["0"]}, extra={"val_every": 1})
    rows = estimate(runs, "thesis", memory=False).runs
    row = rows[rows.notebook == "04_case2_supervised"].iloc[0]
    assert row.val_every == 1 and row.images_evaluated == 50 * 3989 + 3989 + 5 * 455


def test_case3_step1_counts_forward_only_and_simclr_two_views(thesis):
    row = _row(thesis[1], "03_case3_finetune", "rate-1_2")
    assert row.images_frozen == row.images_trained == 30 * 6222
    # 150 epochs of 15 full batches of 1000, two views each
    assert _row(thesis[1], "02_case3_pretrain", "02_case3_pretrain").images_trained == 150 * 15_000 * 2


def test_epochs_parameter_halves_the_images_trained(tmp_path, thesis):
    runs = _runs(tmp_path, cases=["case2"], narrow={"train_fraction": ["100"], "seed": ["0"]},
                 extra={"epochs": 25})
    half = estimate(runs, "thesis", memory=False)
    assert half.total["images_trained"] == _row(thesis[1], "04_case2_supervised", "fraction-100-seed0").images_trained / 2


def test_thesis_profile_writes_at_most_100_gb(thesis):
    runs, est = thesis
    assert len(runs) == 155
    assert 0 < est.disk["checkpoints_written"] <= est.disk["written"] <= DISK_GOAL
    assert est.disk["kept"] <= est.disk["written"]
    # one checkpoint a fit at least: a ResNet50 with SGD momentum is about 188 MB
    assert est.disk["checkpoints_written"] > 120 * 0.18e9


def test_a_finished_run_keeps_its_weights_and_its_checkpoint_only_when_asked(tmp_path, thesis):
    """The notebooks delete a finished run's checkpoint unless keep_checkpoints: kept = weights."""
    runs = thesis[1].runs
    assert runs.checkpoint_kept.sum() == pytest.approx(runs.weights_kept.sum())
    one = dict(cases=["case2"], narrow={"train_fraction": ["100"], "seed": ["0"]})
    plain = estimate(_runs(tmp_path / "a", **one), "thesis", memory=False).runs.iloc[0]
    kept = estimate(_runs(tmp_path / "b", **one, extra={"keep_checkpoints": True}), "thesis",
                    memory=False).runs.iloc[0]
    # Adam: weights + two moments, 4 bytes each, on top of the final weights
    assert kept.checkpoint_kept == pytest.approx(plain.checkpoint_kept + 3 * plain.weights_kept)


def test_a_2_5d_run_counts_its_neighbour_channels(thesis):
    """context = 1: three slices as channels; only the first convolution grows (a few %)."""
    rows = thesis[1].runs
    single = _row(thesis[1], "01_case1_supervised", "rate-1_2")
    context = _row(thesis[1], "01_case1_context", "rate-1_2")
    assert context.images_trained == single.images_trained
    assert 1.0 < context.flops / single.flops < 1.1
    pre = rows[rows.notebook == "02_case3_pretrain_context"].iloc[0]
    assert pre.flops > rows[rows.notebook == "02_case3_pretrain"].iloc[0].flops


def test_resnet50_flops_near_the_published_figure():
    # 4.1 GFLOPs at 224 px (He et al.) counts multiply-adds; FlopCounterMode counts each as 2 FLOPs
    published = 4.1e9 * (128 / 224) ** 2
    assert 1.6 * published < forward_flops("resnet50", 128, 1) < 2.4 * published


def test_wall_time_divides_over_devices_stage_by_stage(thesis, tmp_path):
    runs, one = thesis
    eight = estimate(runs, "thesis", devices=8, memory=False)
    assert eight.total["gpu_seconds"] == pytest.approx(one.total["gpu_seconds"])
    longest = max(eight.runs.groupby("stage")["gpu_seconds"].max())
    assert longest <= eight.total["wall_seconds"] < one.total["wall_seconds"] / 4


def test_cli_estimate_prints_hours_and_gb(capsys):
    assert main(["--plan", str(PLAN), "--profile", "thesis", "--estimate", "--cases", "case1",
                 "--throughput", "2000", "--devices", "0,1"]) == 0
    out = capsys.readouterr().out
    assert "GPU-hours" in out and "GB" in out and "2,000 training images/s" in out and "2 GPU(s)" in out
    assert main(["--plan", str(PLAN), "--profile", "thesis", "--estimate", "--throughput", "0"]) == 2


def test_a_case3_fine_tuning_without_context_takes_its_encoders(thesis):
    """notebook 03's context None means the encoder's: the estimate reads it from the upstream pretraining."""
    runs, est = thesis
    run = next(r for r in runs if r.entry.name == "03_case3_finetune_context" and r.run_id == "rate-1_2")
    given = _row(est, "03_case3_finetune_context", "rate-1_2")
    run.parameters = {k: v for k, v in run.parameters.items() if k != "context"}
    try:
        left = estimate([run], "thesis", throughput=3929, memory=False).runs.iloc[0]
    finally:
        run.parameters["context"] = 1
    assert left.flops == pytest.approx(given.flops)
    assert left.flops > _row(est, "03_case3_finetune", "rate-1_2").flops
