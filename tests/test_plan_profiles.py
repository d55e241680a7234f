"""Per-profile grids of the batch plan (an entry's ``profiles``), and the course plan's Case2/Case4 entries."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pe_utils.batch.data import DataDescription
from pe_utils.batch.expand import plan_runs
from pe_utils.batch.plan import PLAN_PATH, PlanError, load_plan

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[1]


def _plan(tmp_path, entries) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"notebooks": entries}))
    for name in ("nb_grid", "nb_quick"):
        (tmp_path / f"{name}.ipynb").write_bytes((DATA / f"{name}.ipynb").read_bytes())
    return path


def _runs(plan: Path, tmp_path, profile, **kw):
    return plan_runs(load_plan(plan), out=tmp_path / "out", workdir=tmp_path, profile=profile, **kw)[1]


GRID = {"name": "grid", "path": "nb_grid.ipynb", "grid": {"sampling_rate": ["1/2", "1/3", "1/4"]},
        "run_id": "rate-{sampling_rate}",
        "profiles": {"demo": {"grid": {"sampling_rate": ["1/2", "1/4"]}}, "smoke": {"skip": True}}}


def test_a_profile_replaces_a_grid_variable_and_flags_narrow_after(tmp_path):
    plan = _plan(tmp_path, [GRID])
    assert [r.run_id for r in _runs(plan, tmp_path, "thesis")] == ["rate-1_2", "rate-1_3", "rate-1_4"]
    assert [r.run_id for r in _runs(plan, tmp_path, "demo")] == ["rate-1_2", "rate-1_4"]
    assert [r.run_id for r in _runs(plan, tmp_path, "demo", narrow={"sampling_rate": ["1/4"]})] == ["rate-1_4"]
    with pytest.raises(PlanError, match="not in the plan's grid"):   # 1/3 is not the demo's
        _runs(plan, tmp_path, "demo", narrow={"sampling_rate": ["1/3"]})


def test_a_skipped_entry_runs_only_when_named(tmp_path):
    plan = _plan(tmp_path, [GRID, {"name": "quick", "path": "nb_quick.ipynb"}])
    assert [r.entry.name for r in _runs(plan, tmp_path, "smoke")] == ["quick"]
    assert {r.entry.name for r in _runs(plan, tmp_path, "smoke", cases=["grid"])} == {"grid"}


@pytest.mark.parametrize("profiles, message", [
    ({"demo": {"grid": {"seed": [0]}}}, "which the entry's grid lacks"),
    ({"demo": {"grid": {"sampling_rate": []}}}, "non-empty list"),
    ({"demo": {"rates": ["1/2"]}}, "may hold only"),
    (["demo"], "must be"),
])
def test_bad_profile_sections_are_refused(tmp_path, profiles, message):
    with pytest.raises(PlanError, match=message):
        load_plan(_plan(tmp_path, [{**GRID, "profiles": profiles}]))


def test_the_course_plan_runs_cases_2_and_4_per_profile(tmp_path):
    plan = REPO / PLAN_PATH

    def names(profile, **kw):
        return [r.name for r in _runs(plan, tmp_path, profile, **kw)]

    thesis = names("thesis", cases=["04", "05"])
    assert sum(n.startswith("04_case2_supervised/") for n in thesis) == 11 * 5
    assert sum(n.startswith("05_case4_contrastive/") for n in thesis) == 11 * 5
    assert not any(n.startswith("04_case2_ablation/") for n in thesis), "the ablation runs only when named"
    assert len(names("thesis", cases=["case2_ablation"])) == 13 * 3
    demo = names("demo")
    assert [n for n in demo if n.startswith(("04_", "05_"))] == [
        f"{nb}/fraction-{f}-seed{s}" for nb in ("04_case2_supervised", "05_case4_contrastive")
        for f in (100, 25) for s in (0,)]
    smoke = names("smoke")
    assert {"02_case4_pretrain/seed0", "04_case2_ablation/experiment-1-seed0",
            "05_case4_contrastive/fraction-25-seed0"} <= set(smoke)
    # Case4 reads the Dataset2 encoder of its own pretraining run; neither gets the Dataset1 cache
    phantom = DataDescription("phantom", "smoke", {"dataset1": tmp_path / "cache-smoke"})
    run = next(r for r in _runs(plan, tmp_path, "smoke", data=phantom)
               if r.name == "05_case4_contrastive/fraction-25-seed0")
    assert run.parameters["pretrain_dir"].endswith("02_case4_pretrain/seed0")
    assert "cache_dir" not in run.parameters
    pre = next(r for r in _runs(plan, tmp_path, "smoke", data=phantom)
               if r.name.startswith("02_case4_pretrain/"))
    assert pre.parameters["dataset"] == "dataset2" and "cache_dir" not in pre.parameters


def test_case3_fine_tunes_both_encoders_of_figs_6_13_to_6_16(tmp_path):
    """The thesis plan fine-tunes the 75-epoch snapshot beside the 150-epoch encoder at every rate;
    the rehearsal's snapshot is its epoch 1; the demo and smoke plans pretrain too briefly for it.
    (The 2.5D encoder's runs, beyond the thesis, are tests/test_case3_context.py's.)"""
    from pe_utils.batch.plan import find_plan

    plan = load_plan(find_plan(REPO))

    def encoders(profile):
        runs = plan_runs(plan, out=tmp_path / "out", workdir=tmp_path, profile=profile)[1]
        return sorted({(r.parameters.get("pretrain_epochs"), r.grid["sampling_rate"]) for r in runs
                       if r.entry.path.stem == "03_case3_finetune" and not r.parameters.get("context")}, key=str)

    rates = ["9/10", "4/5", "3/4", "2/3", "1/2", "1/3", "1/4"]
    assert encoders("thesis") == sorted({(e, r) for e in (None, 75) for r in rates}, key=str)
    assert encoders("rehearse") == sorted({(e, r) for e in (None, 1) for r in rates}, key=str)
    assert {e for e, _ in encoders("demo")} == {None}


def test_a_narrowed_batch_waits_only_for_the_runs_it_selected(tmp_path):
    """Notebook 06 depends on 01, 03, 04 and 05: narrowed to one rate, fraction and seed it waits
    for those runs only; with its upstream notebooks left out (--cases explain) for all of theirs."""
    from pe_utils.batch.plan import find_plan

    plan = load_plan(find_plan(REPO))
    narrow = {"sampling_rate": ["1/4"], "train_fraction": ["5"], "seed": ["0"]}
    runs = plan_runs(plan, out=tmp_path / "out", workdir=tmp_path, profile="thesis", narrow=narrow)[1]
    explain = next(r for r in runs if r.entry.name == "06_explain")
    assert sorted(d.name for d in explain.deps) == [
        "01_case1_supervised/rate-1_4", "02_case3_pretrain/02_case3_pretrain", "03_case3_finetune/rate-1_4",
        "04_case2_supervised/fraction-5-seed0", "05_case4_contrastive/fraction-5-seed0"]
    alone = plan_runs(plan, out=tmp_path / "out", workdir=tmp_path, profile="thesis", cases=["explain"])[1]
    assert len(alone[0].deps) == 1 + 7 + 7 + 55 + 55   # its input (02) and every run of 01, 03, 04, 05
