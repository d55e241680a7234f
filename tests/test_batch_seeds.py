"""--seeds on the notebooks the thesis ran once (Case1, Case3): one run per seed, seed 0's the
plan's own, and each Case3 fine-tuning reads the encoder pretrained with its own seed."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pe_utils.batch.estimate import estimate
from pe_utils.batch.expand import plan_runs
from pe_utils.batch.plan import PlanError, find_plan, load_plan
from pe_utils.profiles import resolve

REPO = Path(__file__).resolve().parents[1]


def _batch(tmp_path, profile="demo", **kw):
    return plan_runs(load_plan(find_plan(REPO)), out=tmp_path / "out", workdir=tmp_path, profile=profile, **kw)[1]


def _by_name(runs):
    return {r.name: r for r in runs}


def test_seeds_repeat_case1_and_case3_and_keep_seed_0s_run(tmp_path):
    plain = _by_name(_batch(tmp_path, cases=["case1", "case3"]))
    seeded = _by_name(_batch(tmp_path, cases=["case1", "case3"], narrow={"seed": ["0", "1", "2"]}))
    assert len(seeded) == 3 * len(plain)
    for name, run in plain.items():   # seed 0 is the plan's own run: same id, parameters and key
        assert seeded[name].parameters == run.parameters and seeded[name].key == run.key
        assert "seed" not in run.parameters
    assert seeded["01_case1_supervised/rate-1_3-seed2"].parameters["seed"] == 2
    assert seeded["02_case3_pretrain/seed1"].parameters["seed"] == 1
    assert len({r.key for r in seeded.values()}) == len(seeded)


def test_each_fine_tuning_reads_the_encoder_of_its_own_seed(tmp_path):
    runs = _batch(tmp_path, cases=["case3", "case3_context", "explain"], narrow={"seed": ["0", "1"]})
    pretrain = {(r.entry.name, r.grid["seed"]): r for r in runs if r.entry.name.startswith("02_case3")}
    assert len(pretrain) == 4
    finetunes = [r for r in runs if r.entry.name.startswith("03_case3")]
    assert finetunes
    for run in finetunes:
        upstream = pretrain[(run.entry.inputs["pretrain_dir"], run.grid["seed"])]
        assert run.parameters["pretrain_dir"].endswith(upstream.files()["output_dir"])
        assert upstream in run.deps and run.parameters.get("seed", 0) == upstream.parameters.get("seed", 0)
    explain = next(r for r in runs if r.entry.name == "06_explain")   # no seed axis: the plan's own encoder
    assert explain.parameters["pretrain_dir"].endswith("02_case3_pretrain/02_case3_pretrain")
    assert "seed" not in explain.parameters


def test_seed_grids_still_narrow_and_a_seed_they_lack_is_refused(tmp_path):
    thesis = _batch(tmp_path, profile="thesis", cases=["case2", "case1"], narrow={"seed": ["0", "1"]})
    case2 = [r for r in thesis if r.entry.name == "04_case2_supervised"]
    assert sorted({r.grid["seed"] for r in case2}) == [0, 1] and len(case2) == 11 * 2
    assert len([r for r in thesis if r.entry.name == "01_case1_supervised"]) == 7 * 2
    with pytest.raises(PlanError, match="04_case2_supervised.*select those with --cases"):
        _batch(tmp_path, profile="demo", narrow={"seed": ["0", "1"]})   # the demo's Case2 runs seed 0 only
    with pytest.raises(PlanError, match="whole numbers"):
        _batch(tmp_path, cases=["case1"], narrow={"seed": ["one"]})
    with pytest.raises(PlanError, match="no selected notebook has a grid over 'seed'"):
        _batch(tmp_path, cases=["summary"], narrow={"seed": ["0"]})


def test_the_estimate_counts_one_pretraining_per_seed(tmp_path):
    runs = _batch(tmp_path, profile="thesis", cases=["case3"], narrow={"seed": ["0", "1", "2"]})
    est = estimate(runs, "thesis", throughput=3929, memory=False)
    pretrain = est.runs[est.runs.notebook == "02_case3_pretrain"]
    assert len(pretrain) == 3 and pretrain.gpu_seconds.nunique() == 1 and pretrain.gpu_seconds.iloc[0] > 0
    one = estimate(_batch(tmp_path, profile="thesis", cases=["case3"]), "thesis", throughput=3929, memory=False)
    assert est.total["gpu_seconds"] == pytest.approx(3 * one.total["gpu_seconds"])


def test_seed_0_is_every_profiles_seed_for_the_repeated_notebooks():
    # seed 0's run passes no seed: the notebooks' default (the profile's) must then be seed 0
    for profile in ("smoke", "demo", "thesis", "rehearse"):
        assert resolve("case1", profile)["seed"] == 0 and resolve("pretrain", profile)["seed"] == 0
        assert resolve("case3", profile).get("seed") in (None, 0)   # None: Case1's


def test_the_plan_marks_the_notebooks_the_thesis_ran_once(tmp_path):
    marked = {e["name"] for e in json.loads((REPO / "notebooks" / "plan.json").read_text())["notebooks"]
              if e.get("repeat_over_seeds")}
    assert marked == {"01_case1_supervised", "01_case1_context", "02_case3_pretrain", "02_case3_pretrain_context",
                      "03_case3_finetune", "03_case3_finetune_75", "03_case3_finetune_context"}
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps({"notebooks": [{"name": "a", "grid": {"seed": [0]}, "repeat_over_seeds": True}]}))
    with pytest.raises(PlanError, match="repeat_over_seeds"):
        load_plan(bad)

