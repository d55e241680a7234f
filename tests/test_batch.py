"""The batch runner on tiny notebooks (tests/data/, written by make_notebooks.py).

One module-scoped fixture drives a whole story through the command line, since each kernel
start costs seconds: a first batch (two device slots; a failure, a dependant of it, a kernel that
dies, a summary), a rerun that must execute nothing, the summary once its inputs succeed,
``--force``, ``--only``, ``--index-only``. The tests then read what each step left behind; they
execute notebooks with papermill, so they are marked slow. Planning, staleness and the plan's
look-up are tested without a kernel.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from conftest import tiny_cache

from pe_utils.batch import cli as batch
from pe_utils.batch import plan as plan_module
from pe_utils.batch import run as run_module
from pe_utils.batch.console import describe_slots
from pe_utils.batch.data import DataDescription
from pe_utils.batch.expand import plan_runs
from pe_utils.batch.html import external_scripts, strip_external_scripts
from pe_utils.batch.plan import PLAN_PATH, find_plan, load_plan, notebook_parameters, plan_root
from pe_utils.batch.state import (RUNNER_WING, base_marker, code_version, package_hash,
                                  stale_reason, up_to_date, write_marker)
from pe_utils.report.quality import quality_checks

DATA = Path(__file__).parent / "data"
PLAN = DATA / "plan.json"
REPO = Path(__file__).resolve().parents[1]
RUNS = ["quick/quick", "grid/rate-1_2", "grid/rate-1_4", "fail/fail", "after_fail/after_fail",
        "die/die", "summary/summary"]


def cli(*argv: str | Path) -> tuple[int, str, str]:
    """``python -m pe_utils batch ...`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = batch.main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def markers(out: Path) -> dict[str, dict]:
    return {f"{p.parent.name}/{p.name[:-len('.status.json')]}": json.loads(p.read_text())
            for p in out.glob("*/*.status.json")}


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    cache = root / "cache"   # the runner only passes it on; the test notebooks record it
    tiny_cache(cache)
    out = root / "reports"
    base = ["--plan", PLAN, "--out", out, "--cache", cache, "--profile", "smoke"]
    steps = {}

    def step(name, *extra):
        started = time.time()
        rc, stdout, stderr = cli(*base, *extra)
        print(f"step {name}: {time.time() - started:.1f} s")
        steps[name] = {"rc": rc, "stdout": stdout, "stderr": stderr, "markers": markers(out),
                       "index": (out / "index.html").read_text() if (out / "index.html").exists() else ""}

    step("first", "--devices", "0,1")
    step("rerun", "--cases", "quick,grid")                  # everything here is finished
    step("summary", "--cases", "q,g,summary")               # "all" = the selected runs only
    step("force", "--cases", "quick", "--force", "--devices", "3")
    step("list_after_force", "--cases", "quick,grid", "--list")
    step("only", "--cases", "grid", "--only", "1")           # grid/rate-1_4, stale since --force
    step("only_again", "--cases", "grid", "--only", "1")     # now up to date: nothing runs
    (out / "index.html").unlink()
    step("index_only", "--index-only")
    return {"out": out, "cache": cache, "steps": steps}


# --- the first batch: success, failure, skipped dependants, retry --------------------------------

@pytest.mark.slow
def test_first_batch_reports_each_run(story):
    first = story["steps"]["first"]
    status = {name: m["status"] for name, m in first["markers"].items()}
    assert status == {"quick/quick": "success", "grid/rate-1_2": "success", "grid/rate-1_4": "success",
                      "fail/fail": "failed", "after_fail/after_fail": "skipped", "die/die": "failed",
                      "summary/summary": "skipped"}
    out = story["out"]
    for name in ("quick/quick", "grid/rate-1_2", "grid/rate-1_4", "fail/fail", "die/die"):
        for suffix in (".ipynb", ".html", ".results.html", ".log"):
            assert (out / f"{name}{suffix}").stat().st_size > 0, name + suffix
    quick = json.loads((out / "quick/quick/metrics.json").read_text())
    assert quick["profile"] == "smoke" and quick["cache_dir"] == str(story["cache"])
    assert quick["cwd"] == str(REPO)          # kernels run in the repository root
    assert "Executing Cell" in (out / "quick/quick.log").read_text()   # papermill's cell log


@pytest.mark.slow
def test_failure_exits_nonzero_with_a_summary(story):
    first = story["steps"]["first"]
    assert first["rc"] == 1
    assert "3 succeeded, 0 up to date, 2 failed, 2 skipped" in first["stdout"]
    assert re.search(r"failed: fail/fail: ValueError: deliberate failure for the test", first["stdout"])
    assert "skipped: after_fail/after_fail: dependency fail/fail did not succeed" in first["stdout"]
    error = first["markers"]["fail/fail"]["error"]
    assert error["ename"] == "ValueError" and error["cell"] is not None


@pytest.mark.slow
def test_failed_report_shows_the_error_first(story):
    for page in ("fail/fail.html", "fail/fail.results.html"):
        text = (story["out"] / page).read_text()
        banner = text.index("This run failed")
        assert "An Exception was encountered" in text          # papermill's banner
        assert "deliberate failure for the test" in text[banner:banner + 2000]
        assert banner < text.index("Traceback (most recent call last)")
    nb = nbformat.read(story["out"] / "fail/fail.ipynb", as_version=4)
    assert "batch-error-banner" in nb.cells[0].metadata["tags"]


@pytest.mark.slow
def test_dependants_of_a_failure_are_skipped(story):
    m = story["steps"]["first"]["markers"]
    assert m["after_fail/after_fail"]["reason"] == "dependency fail/fail did not succeed"
    assert "fail/fail" in m["summary/summary"]["reason"]
    assert not (story["out"] / "after_fail/after_fail.ipynb").exists()   # never executed


@pytest.mark.slow
def test_dead_kernel_is_retried_once(story):
    die = story["steps"]["first"]["markers"]["die/die"]
    assert die["attempt"] == 2 and die["error"]["ename"] == "DeadKernelError"
    log = (story["out"] / "die/die.log").read_text()
    assert log.count("Executing notebook with kernel") == 2 and "retrying" in log


@pytest.mark.slow
def test_devices_reach_each_kernel(story):
    first = story["steps"]["first"]["markers"]
    assert {first[n]["device"] for n in ("quick/quick", "grid/rate-1_2", "grid/rate-1_4")} <= {"0", "1"}
    assert story["steps"]["force"]["markers"]["quick/quick"]["device"] == "3"
    quick = json.loads((story["out"] / "quick/quick/metrics.json").read_text())   # from --force
    assert quick["device"] == "3"             # CUDA_VISIBLE_DEVICES of that kernel


@pytest.mark.slow
def test_inputs_pass_the_upstream_output_dir(story):
    grid = json.loads((story["out"] / "grid/rate-1_4/metrics.json").read_text())
    quick = json.loads((story["out"] / "quick/quick/metrics.json").read_text())
    assert grid["upstream_auc"] == quick["auc"] and grid["sampling_rate"] == "1/4"
    m = story["steps"]["first"]["markers"]
    assert m["grid/rate-1_4"]["upstream"] == {"quick/quick": m["quick/quick"]["token"]}


# --- resume, --force, --only, --index-only ------------------------------------------------------

@pytest.mark.slow
def test_rerun_executes_nothing(story):
    first, rerun = story["steps"]["first"], story["steps"]["rerun"]
    assert rerun["rc"] == 0
    assert "0 succeeded, 3 up to date, 0 failed, 0 skipped" in rerun["stdout"]
    for name in ("quick/quick", "grid/rate-1_2", "grid/rate-1_4"):
        assert rerun["markers"][name] == first["markers"][name]   # same token, same timings


@pytest.mark.slow
def test_summary_runs_once_its_dependencies_succeed(story):
    s = story["steps"]["summary"]
    assert s["rc"] == 0 and s["markers"]["summary/summary"]["status"] == "success"
    assert "1 succeeded, 3 up to date" in s["stdout"]
    found = json.loads((story["out"] / "summary/summary/metrics.json").read_text())
    assert "quick/quick/metrics.json" in found["runs"]
    assert "Summary of all runs" in s["index"] and 'href="summary/summary.results.html"' in s["index"]


@pytest.mark.slow
def test_force_reruns_and_invalidates_dependants(story):
    before, after = story["steps"]["summary"]["markers"], story["steps"]["force"]["markers"]
    assert story["steps"]["force"]["rc"] == 0
    assert after["quick/quick"]["token"] != before["quick/quick"]["token"]
    assert after["grid/rate-1_2"] == before["grid/rate-1_2"]   # not selected: untouched
    listing = story["steps"]["list_after_force"]["stdout"].splitlines()
    state = {line.split()[4]: line.split()[3] for line in listing}
    assert state == {"quick/quick": "done", "grid/rate-1_2": "run", "grid/rate-1_4": "run"}


@pytest.mark.slow
def test_only_runs_one_run(story):
    before, after = story["steps"]["force"]["markers"], story["steps"]["only"]["markers"]
    assert story["steps"]["only"]["rc"] == 0
    assert after["grid/rate-1_4"]["token"] != before["grid/rate-1_4"]["token"]
    assert after["grid/rate-1_2"] == before["grid/rate-1_2"]
    assert after["grid/rate-1_4"]["upstream"]["quick/quick"] == after["quick/quick"]["token"]
    again = story["steps"]["only_again"]
    assert again["rc"] == 0 and "1 up to date" in again["stdout"] and again["markers"] == after


@pytest.mark.slow
def test_index_lists_every_run_with_status_and_links(story):
    index = story["steps"]["index_only"]["index"]
    assert story["steps"]["index_only"]["rc"] == 0
    final = story["steps"]["index_only"]["markers"]
    for name in RUNS:
        row = next(r for r in index.split("<tr ") if f"data-run='{name}'" in r)
        metrics = json.loads((story["out"] / f"{name}/metrics.json").read_text()) \
            if final[name]["status"] == "success" else {}
        # a run that ran but whose model is under the floors (quick: AUC 0.6, F1 0.25) reads "check"
        status = "check" if quality_checks(metrics) else final[name]["status"]
        assert f"status {status}" in row, name
        if final[name]["status"] != "skipped":
            for suffix in (".results.html", ".html", ".ipynb", ".log"):
                assert f'href="{name}{suffix}"' in row
    assert "DeadKernelError" in index and "sampling_rate=1/4" in index
    assert ">0.60<" in index   # quick's auc, a key figure from metrics.json, 2 decimals
    assert "AUC 0.60 &lt; 0.75; F1 0.25 &lt; 0.30" in index
    # the console says it too, under the summary of the batch
    assert "check: quick/quick: ran, but the model is too weak to read" in story["steps"]["first"]["stdout"]
    runs = json.loads((story["out"] / "runs.json").read_text())
    assert sorted(f"{r['notebook']}/{r['run_id']}" for r in runs) == sorted(RUNS)


@pytest.mark.slow
def test_every_report_is_offline(story):
    pages = sorted(story["out"].rglob("*.html"))
    assert len(pages) >= 11
    for page in pages:
        text = page.read_text()
        assert external_scripts(text) == [], page
        assert not re.search(r"<script[^>]*src=[\"']?(https?:)?//", text), page
    quick = (story["out"] / "quick/quick.results.html").read_text()
    assert quick.count("plotly.js v") == 1          # the library, inlined once by the init output
    assert "Plotly.newPlot(" in quick and "require.min.js" not in quick
    assert 'src="data:image/png;base64,' in quick and 'src="dot.png"' not in quick   # images inline


# --- a run that times out, then what needs no kernel -------------------------------------------------------------------

@pytest.mark.slow
def test_cell_timeout_fails_the_run_without_retry(tmp_path):
    rc, stdout, _ = cli("--plan", DATA / "plan_timeout.json", "--out", tmp_path, "--cell-timeout", "3")
    marker = json.loads((tmp_path / "slow/slow.status.json").read_text())
    assert rc == 1 and marker["status"] == "failed" and marker["attempt"] == 1
    assert marker["error"]["ename"] == "CellTimeoutError"
    assert "This run failed" in (tmp_path / "slow/slow.results.html").read_text()


def test_list_and_count(tmp_path):
    rc, stdout, _ = cli("--plan", PLAN, "--out", tmp_path, "--cache", tmp_path, "--list")
    lines = stdout.splitlines()
    assert rc == 0 and [line.split()[4] for line in lines] == RUNS
    assert [int(line.split()[0]) for line in lines] == list(range(len(RUNS)))
    stages = {line.split()[4]: int(line.split()[2]) for line in lines}
    assert stages == {"quick/quick": 0, "fail/fail": 0, "die/die": 0, "grid/rate-1_2": 1,
                      "grid/rate-1_4": 1, "after_fail/after_fail": 1, "summary/summary": 2}
    assert cli("--plan", PLAN, "--out", tmp_path, "--cache", tmp_path, "--count")[1].strip() == "7"
    rc, stdout, _ = cli("--plan", PLAN, "--out", tmp_path, "--cache", tmp_path, "--stage", "1", "--list")
    assert [line.split()[4] for line in stdout.splitlines()] == [
        "grid/rate-1_2", "grid/rate-1_4", "after_fail/after_fail"]
    assert [line.split()[0] for line in stdout.splitlines()] == ["0", "1", "2"]   # per stage


def test_dry_run_prints_parameters_and_runs_nothing(tmp_path):
    out = tmp_path / "reports"
    rc, stdout, _ = cli("--plan", PLAN, "--out", out, "--cache", tmp_path, "--dry-run",
                        "--cases", "quick,grid", "--rates", "Test25", "-p", "scale", "2")
    assert rc == 0 and not out.exists()
    assert "2 of 2 runs would execute" in stdout
    assert "scale = 2" in stdout and "sampling_rate = '1/4'" in stdout
    assert f"upstream_dir = '{out / 'quick/quick'}'" in stdout


def test_runs_per_device_interleaves_the_slots_and_shares_the_cpu(monkeypatch):
    assert batch.slots(["0", "1"], 2) == ["0", "1", "0", "1"]     # the first runs spread over the GPUs
    assert batch.slots([None], 3) == [None, None, None]
    with pytest.raises(plan_module.PlanError, match="--runs-per-device 0"):
        batch.slots([None], 0)
    monkeypatch.setattr(batch.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert batch.cpu_threads([None, None]) == 4 and batch.cpu_threads([None] * 16) == 1
    assert batch.cpu_threads([None]) is None and batch.cpu_threads(["0", "0"]) is None
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert run_module.worker_env(None, 4)["OMP_NUM_THREADS"] == "4"
    assert "OMP_NUM_THREADS" not in run_module.worker_env("0", 4)        # a GPU run keeps the default
    assert run_module.worker_env("1", None)["CUDA_VISIBLE_DEVICES"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")                            # the user's setting wins
    assert run_module.worker_env(None, 4)["OMP_NUM_THREADS"] == "3"
    assert describe_slots([None]) == "one run at a time"
    assert describe_slots(["0", "1", "0", "1"]) == "4 runs at a time: 2 runs at a time on each of 0, 1"
    assert describe_slots([None, None]).startswith("2 runs at a time, sharing the CPU")


@pytest.mark.slow
def test_runs_sharing_the_cpu_get_their_share_of_the_cores(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cache = tmp_path / "cache"
    tiny_cache(cache)
    out = tmp_path / "reports"
    rc, stdout, _ = cli("--plan", PLAN, "--out", out, "--cache", cache, "--profile", "smoke",
                        "--cases", "quick,grid", "--runs-per-device", "2")
    assert rc == 0, stdout
    assert {m["status"] for m in markers(out).values()} == {"success"} and len(markers(out)) == 3
    quick = json.loads((out / "quick/quick/metrics.json").read_text())
    assert quick["threads"] == str(batch.cpu_threads([None, None]))
    assert quick["device"] is None


@pytest.mark.parametrize("argv, message", [
    (["-p", "no_such_parameter", "1"], "no selected notebook has a parameter 'no_such_parameter'"),
    (["--rates", "1/5"], "not in the plan's grid"),
    (["--cases", "nope"], "--cases 'nope' matches no notebook"),
    (["--only", "7"], "--only 7"),
    (["-p", "profile", "thesis"], "--profile"),
    (["--cases", "grid", "-p", "sampling_rate", "1/2"], "choose its values with --rates"),
])
def test_bad_selection_is_refused(tmp_path, argv, message):
    rc, _, stderr = cli("--plan", PLAN, "--out", tmp_path, "--cache", tmp_path, "--list", *argv)
    assert rc == 2 and message in stderr


@pytest.mark.parametrize("notebook, message", [
    ("nb_noparams.ipynb", "needs exactly one code cell tagged 'parameters'"),
    ("nb_noprofile.ipynb", "has no 'profile' parameter"),
])
def test_notebook_without_parameters_or_profile_is_refused(tmp_path, notebook, message):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"notebooks": [
        {"name": "quick", "path": str(DATA / "nb_quick.ipynb")},
        {"name": "bad", "path": str(DATA / notebook)}]}))
    rc, _, stderr = cli("--plan", plan, "--out", tmp_path / "out", "--cache", tmp_path)
    assert rc == 2 and notebook in stderr and message in stderr
    assert not (tmp_path / "out").exists()   # refused before anything ran


def test_plan_dependencies_must_come_first(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"notebooks": [
        {"name": "a", "path": str(DATA / "nb_after.ipynb"), "depends_on": ["b"]},
        {"name": "b", "path": str(DATA / "nb_fail.ipynb")}]}))
    rc, _, stderr = cli("--plan", plan, "--out", tmp_path, "--list")
    assert rc == 2 and "'a' depends on 'b', which is not listed before it" in stderr


def test_course_plan_notebooks_have_parameters_and_profile(tmp_path):
    """Every notebook of notebooks/plan.json exists with one parameters cell holding profile."""
    entries = load_plan(find_plan(REPO))
    for entry in entries:
        declared = notebook_parameters(entry.path)
        assert {"profile", "output_dir"} <= declared, entry.name
        assert set(entry.grid) | set(entry.inputs) <= declared, entry.name
    seven = ["9/10", "4/5", "3/4", "2/3", "1/2", "1/3", "1/4"]

    def rates(profile: str, notebook: str) -> list[str]:
        rc, stdout, stderr = cli("--profile", profile, "--out", tmp_path, "--cache", tmp_path, "--dataset2-cache", tmp_path,
                             "--test-cache", tmp_path, "--list")
        assert rc == 0, stderr
        return [line.split("sampling_rate=")[1].split()[0] for line in stdout.splitlines()
                if f"{notebook}/" in line and "sampling_rate=" in line]

    # Case1 (01) and Case3's fine-tuning (03) each run at the seven rates of Table 6.1, in its order;
    # the CPU demo fine-tunes Case3 at three of them (the plan's demo grid: the budget of make demo)
    for notebook in ("01_case1_supervised", "03_case3_finetune"):
        assert rates("thesis", notebook) == seven, notebook
    assert rates("demo", "01_case1_supervised") == seven
    assert rates("demo", "03_case3_finetune") == ["9/10", "1/3", "1/4"]


def test_strip_external_scripts_keeps_inline_code():
    page = ('<html><script src="https://cdn.example/x.js"></script><script>var s = "<b>";</script>'
            '<script src="local.js"></script><script type="text/javascript" src=//cdn.example/y.js>'
            '</script></html>')
    stripped, n = strip_external_scripts(page)
    assert n == 2 and external_scripts(stripped) == []
    assert 'var s = "<b>";' in stripped and 'src="local.js"' in stripped


@pytest.mark.slow
def test_kill_resume_loses_nothing_finished(story, tmp_path):
    """A copy of the finished folder, minus one marker (a run killed mid-way), resumes only that run."""
    out = tmp_path / "reports"
    shutil.copytree(story["out"], out)
    (out / "grid/rate-1_4.status.json").unlink()
    rc, stdout, _ = cli("--plan", PLAN, "--out", out, "--cache", story["cache"], "--profile", "smoke",
                        "--cases", "quick,grid", "--dry-run")
    # quick stays done; rate-1_4 (its marker gone) reruns; rate-1_2 too, stale since --force of quick
    assert rc == 0 and "2 of 3 runs would execute" in stdout
    assert "[0] up to date, skipped" in stdout and "[2] would run" in stdout


# --- where the plan is found, where it runs -----------------------------------------------------

def test_find_plan_looks_in_the_cwd_then_beside_the_package(tmp_path, monkeypatch):
    mine = tmp_path / "repo" / PLAN_PATH
    mine.parent.mkdir(parents=True)
    mine.write_text('{"notebooks": []}')
    assert find_plan(tmp_path / "repo") == mine.resolve()                # the cwd wins
    assert find_plan(tmp_path) == (REPO / PLAN_PATH).resolve()           # then the checkout's
    # an installed package (site-packages/pe_utils) has no notebooks/ beside it
    monkeypatch.setattr(plan_module, "PACKAGE_DIR", tmp_path / "site-packages" / "pe_utils")
    with pytest.raises(plan_module.PlanError, match="pass --plan FILE"):
        find_plan(tmp_path)


def test_batch_without_a_plan_says_to_pass_one(tmp_path, monkeypatch):
    monkeypatch.setattr(plan_module, "PACKAGE_DIR", tmp_path / "site-packages" / "pe_utils")
    monkeypatch.chdir(tmp_path)
    rc, stdout, stderr = cli("--list", "--cache", tmp_path)
    assert rc == 2 and stdout == "" and "pass --plan FILE" in stderr


def test_plan_root_is_the_repository_holding_the_plan(tmp_path):
    assert plan_root(PLAN) == REPO                                       # pyproject.toml above
    bare = tmp_path / "course" / PLAN_PATH                               # none: the plan's grandparent
    assert plan_root(bare) == tmp_path / "course"


def test_plan_given_from_another_folder_runs_in_its_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, stdout, stderr = cli("--plan", PLAN, "--cache", tmp_path, "--cases", "quick", "--dry-run")
    assert rc == 0, stderr
    assert f"reports: {REPO / 'reports' / 'demo'}" in stdout             # default --out: the repo's
    assert "output_dir = 'reports/demo/quick/quick'" in stdout          # relative to the kernels' cwd


# --- staleness without a kernel -----------------------------------------------------------------

def test_package_hash_ignores_the_runner_wing_only(tmp_path):
    assert Path(batch.__file__).parent.name == RUNNER_WING               # the constant names this wing
    root = tmp_path / "pkg"
    for rel in ("io.py", "data/dicom.py", f"{RUNNER_WING}/cli.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"# {rel}\n")
    before = package_hash(root)
    (root / RUNNER_WING / "cli.py").write_text("# the runner changed\n")
    (root / RUNNER_WING / "new.py").write_text("# a new runner module\n")
    package_hash.cache_clear()
    assert package_hash(root) == before
    (root / "data" / "dicom.py").rename(root / "data" / "dicom2.py")     # a rename is a change
    package_hash.cache_clear()
    renamed = package_hash(root)
    assert renamed != before
    (root / "data" / "dicom2.py").write_text("# the data wing changed\n")
    package_hash.cache_clear()
    assert package_hash(root) not in (before, renamed)


def _one_run(plan: Path, tmp_path: Path, **extra):
    _, runs = plan_runs(load_plan(plan), out=tmp_path / "out", workdir=tmp_path, profile="smoke",
                        data=DataDescription("caches", "smoke", {"dataset1": tmp_path}), extra=extra)
    return runs[0]


def test_a_success_stays_up_to_date_until_its_notebook_or_parameters_change(tmp_path):
    shutil.copy(DATA / "nb_quick.ipynb", tmp_path / "quick.ipynb")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"notebooks": [{"name": "quick"}]}))
    out = tmp_path / "out"
    run = _one_run(plan, tmp_path)
    assert stale_reason(out, run) == "not run yet"
    write_marker(out, run, {**base_marker(run, out, None), "status": "success", "token": "t1"})
    assert up_to_date(out, _one_run(plan, tmp_path))
    assert stale_reason(out, _one_run(plan, tmp_path, scale=2)) == "its parameters or data changed"
    before = code_version(tmp_path / "quick.ipynb")
    nb = nbformat.read(tmp_path / "quick.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("print('new cell')"))
    nbformat.write(nb, tmp_path / "quick.ipynb")
    assert code_version(tmp_path / "quick.ipynb") != before
    assert stale_reason(out, _one_run(plan, tmp_path)) == "the notebook or pe_utils changed"
