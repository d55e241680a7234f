"""One description of the data, used by every run (pe_utils/batch/data.py, prepare.py).

On the course's own plan: which cache each run is given, what is refused and how it is said;
then the ``--rsna-root`` path on a 30-patient phantom in the RSNA layout: three manifests,
three caches under one pseudonym key, the test set disjoint by patient from both datasets.
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from pe_utils.batch import cli as batch
from pe_utils.batch.data import DataError, check_caches, describe_data, shared_patients

from conftest import tiny_cache

REPO = Path(__file__).resolve().parents[1]
PLAN = REPO / "notebooks" / "plan.json"


def cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = batch.main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def fake_cache(folder: Path, patients: list[str], key: str = "k1") -> Path:
    return tiny_cache(folder, patients, key)


@pytest.fixture
def caches(tmp_path):
    return {"d1": fake_cache(tmp_path / "d1", ["P1", "P2"]), "d2": fake_cache(tmp_path / "d2", ["P3", "P4"]),
            "test": fake_cache(tmp_path / "t", ["P5", "P6"])}


def dry_run_parameters(stdout: str) -> dict[str, dict[str, str]]:
    """``--dry-run``'s runs: {"<notebook>/<file stem>": {parameter: value}}."""
    runs: dict[str, dict[str, str]] = {}
    current = None
    for line in stdout.splitlines():
        if line.startswith("[") and "-> " in line:
            current = line.split("-> ")[1].removesuffix(".ipynb")
            runs[current] = {}
        elif current and line.startswith("      ") and " = " in line:
            k, v = line.strip().split(" = ", 1)
            runs[current][k] = v.strip("'")
    return runs


def test_three_caches_reach_the_runs_that_read_them(tmp_path, caches):
    rc, stdout, stderr = cli("--plan", PLAN, "--profile", "thesis", "--out", tmp_path / "out",
                             "--cache", caches["d1"], "--dataset2-cache", caches["d2"], "--test-cache",
                             caches["test"], "--cases", "case1,case3,case4,case2_ablation,explain",
                             "--seeds", "0", "--rates", "1/3", "--fractions", "100", "--dry-run")
    assert rc == 0, stderr
    runs = dry_run_parameters(stdout)
    d1, d2, t = (str(caches[k]) for k in ("d1", "d2", "test"))
    assert runs["01_case1_supervised/rate-1_3"]["cache_dir"] == d1
    assert runs["02_case3_pretrain/02_case3_pretrain"]["cache_dir"] == d1
    assert runs["03_case3_finetune/rate-1_3"]["cache_dir"] == d1
    assert runs["02_case4_pretrain/seed0"]["cache_dir"] == d2
    case4 = runs["05_case4_contrastive/fraction-100-seed0"]
    assert (case4["cache_dir"], case4["test_cache_dir"]) == (d2, t)
    # Table 6.3's experiment 1 trains on Dataset1, the others on Dataset2; all test on the test set
    assert runs["04_case2_ablation/experiment-1-seed0"]["cache_dir"] == d1
    assert runs["04_case2_ablation/experiment-11-seed0"]["cache_dir"] == d2
    assert runs["04_case2_ablation/experiment-1-seed0"]["test_cache_dir"] == t
    explain = runs["06_explain/06_explain"]
    assert (explain["cache_dir"], explain["test_cache_dir"], explain["unseen_cache_dir"]) == (d1, t, t)
    assert "the given caches" in stdout


def test_one_cache_for_a_plan_of_three_is_refused_with_the_flags(tmp_path, caches):
    rc, stdout, stderr = cli("--plan", PLAN, "--profile", "thesis", "--out", tmp_path / "out",
                             "--cache", caches["d1"], "--list")
    assert rc == 2 and not stdout
    assert "--dataset2-cache DIR" in stderr and "--test-cache DIR" in stderr
    assert "04_case2_supervised" in stderr and "falls back to the phantom" in stderr
    # narrowed to what Dataset1 serves, the same cache is enough
    rc, stdout, stderr = cli("--plan", PLAN, "--profile", "thesis", "--out", tmp_path / "out",
                             "--cache", caches["d1"], "--cases", "case1,case3", "--list")
    assert rc == 0, stderr


@pytest.mark.parametrize("argv, words", [
    (["-p", "cache_dir", "X"], "-p cache_dir: the batch gives each run"),
    (["-p", "test_cache_dir", "X"], "-p test_cache_dir"),
    (["--rsna-root", "R", "--cache", "C"], "not both"),
    (["--manifest", "m.csv"], "go with --rsna-root"),
    (["--rsna-root", "NOWHERE"], "no train.csv there"),
    (["--test-cache", "NOWHERE"], "--test-cache NOWHERE: no such folder"),
])
def test_data_given_wrongly_is_one_line(tmp_path, argv, words):
    (tmp_path / "R").mkdir()
    (tmp_path / "R" / "train.csv").write_text("StudyInstanceUID\n")
    (tmp_path / "C").mkdir()
    argv = [str(tmp_path / a) if a in ("R", "C", "NOWHERE") else a for a in argv]
    rc, _, stderr = cli("--plan", PLAN, "--profile", "smoke", "--out", tmp_path / "out", *argv, "--list")
    assert rc == 2
    assert words.replace("NOWHERE", str(tmp_path / "NOWHERE")) in stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr


def test_given_caches_sharing_a_patient_are_refused(tmp_path, caches):
    fake_cache(caches["test"], ["P5", "P2"])   # P2 is in Dataset1
    desc = describe_data(_args(cache=caches["d1"], dataset2_cache=caches["d2"], test_cache=caches["test"]),
                         "smoke", tmp_path)
    assert shared_patients(desc.caches) == {"dataset1": {"P2"}}
    with pytest.raises(DataError, match=r"shares patients with the training data: 1 with Dataset1"):
        check_caches(desc, ["dataset1", "dataset2", "test"])


def test_caches_of_different_keys_cannot_be_compared(tmp_path, caches):
    fake_cache(caches["test"], ["P5"], key="another")
    desc = describe_data(_args(cache=caches["d1"], dataset2_cache=caches["d2"], test_cache=caches["test"]),
                         "smoke", tmp_path)
    with pytest.raises(DataError, match="different keys"):
        check_caches(desc, ["test"])


def test_a_damaged_cache_is_named_before_any_run(tmp_path, caches):
    index = pd.read_csv(caches["d2"] / "index.csv", dtype=str)
    index.iloc[:1].to_csv(caches["d2"] / "index.csv", index=False)   # truncated: 1 row for 2 images
    rc, _, stderr = cli("--plan", PLAN, "--profile", "smoke", "--out", tmp_path / "out", "--cache", caches["d1"],
                        "--dataset2-cache", caches["d2"], "--test-cache", caches["test"], "--prepare-only")
    assert rc == 2
    assert f"--dataset2-cache: the cache {caches['d2']} is damaged: index.csv has 1 rows" in stderr


def test_a_given_folder_without_a_cache_is_named(tmp_path, caches):
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, _, stderr = cli("--plan", PLAN, "--profile", "smoke", "--out", tmp_path / "out", "--cache", caches["d1"],
                        "--dataset2-cache", empty, "--test-cache", caches["test"], "--prepare-only")
    assert rc == 2
    assert f"--dataset2-cache {empty}: no finished cache there" in stderr


def _args(**kw):
    from types import SimpleNamespace

    base = dict(cache=None, dataset2_cache=None, test_cache=None, rsna_root=None, cache_out=None, manifest=None)
    return SimpleNamespace(**{**base, **kw})


# ---------------------------------------------------------------------- --rsna-root
@pytest.fixture(scope="module")
def rsna_folder(tmp_path_factory):
    """30 exams of 12 slices in the RSNA layout: enough for the smoke profile's three datasets."""
    from pe_utils.phantom.synthetic import generate

    root = tmp_path_factory.mktemp("rsna")
    generate(root, patients=30, slices_per_patient=12, positive_fraction=0.8, seed=5)
    return root


def _index(cache: Path) -> pd.DataFrame:
    return pd.read_csv(cache / "index.csv", dtype=str)


def test_rsna_root_builds_three_disjoint_caches_under_one_key(tmp_path, rsna_folder):
    data = tmp_path / "data"
    rc, stdout, stderr = cli("--plan", PLAN, "--profile", "smoke", "--out", tmp_path / "out",
                             "--rsna-root", rsna_folder, "--cache-out", data, "--prepare-only")
    assert rc == 0, stderr
    assert "data ready: RSNA folder" in stdout
    caches = {role: data / f"cache-{role}" for role in ("dataset1", "dataset2", "test")}
    fingerprints = {json.loads((c / "settings.json").read_text())["pseudonym"]["key_fingerprint"]
                    for c in caches.values()}
    assert len(fingerprints) == 1 and (data / ".pseudonym_key").is_file()
    index = {role: _index(c) for role, c in caches.items()}
    studies = {role: set(i["StudyInstanceUID"]) for role, i in index.items()}
    patients = {role: set(i["patient_id"]) for role, i in index.items()}
    assert not studies["test"] & (studies["dataset1"] | studies["dataset2"])
    assert not patients["test"] & (patients["dataset1"] | patients["dataset2"])
    assert not studies["dataset1"] & studies["dataset2"]
    assert all(len(i) for i in index.values())
    for name in ("dataset1", "dataset2", "case2_test"):
        assert (data / "manifests" / f"{name}.csv").is_file()
    # every run of the plan then reads one of these caches, never the phantom's
    rc, stdout, stderr = cli("--plan", PLAN, "--profile", "smoke", "--out", tmp_path / "out",
                             "--rsna-root", rsna_folder, "--cache-out", data, "--dry-run")
    assert rc == 0, stderr
    given = {str(c) for c in caches.values()}
    for name, params in dry_run_parameters(stdout).items():
        for key in ("cache_dir", "test_cache_dir", "unseen_cache_dir"):
            if key in params:
                assert params[key] in given, (name, key, params[key])
        assert "rsna_root" not in params


def test_a_test_exam_of_a_training_patient_is_excluded(tmp_path, rsna_folder):
    """One test exam made to carry the PatientID of a Dataset1 exam: the batch finds it by
    pseudonym after preprocessing, excludes it and builds the test set again."""
    import shutil

    import pydicom

    from pe_utils.batch.data import DataDescription, build_manifests, prepare_rsna

    root = tmp_path / "rsna"
    shutil.copytree(rsna_folder, root)
    folder = tmp_path / "data"
    desc = DataDescription("rsna", "smoke", {r: folder / f"cache-{r}" for r in ("dataset1", "dataset2", "test")},
                           rsna_root=root, folder=folder)
    manifests = build_manifests(desc)
    d1 = pd.read_csv(manifests["dataset1"], dtype=str)
    test = pd.read_csv(manifests["test"], dtype=str)
    donor = pydicom.dcmread(root / d1["path"].iloc[0]).PatientID
    twin = test["StudyInstanceUID"].iloc[0]
    for path in (root / "train" / twin).rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.PatientID = donor
        ds.save_as(path)
    said: list[str] = []
    prepare_rsna(desc, ["test"], progress=False, echo=said.append)
    assert any("shared 1 patient(s) with Dataset1" in s for s in said)
    final = _index(desc.caches["test"])
    assert twin not in set(final["StudyInstanceUID"])
    assert not set(final["patient_id"]) & set(_index(desc.caches["dataset1"])["patient_id"])


def test_only_refuses_to_make_data_inside_a_gpu_job(tmp_path, rsna_folder):
    rc, _, stderr = cli("--plan", PLAN, "--profile", "smoke", "--out", tmp_path / "out", "--rsna-root",
                        rsna_folder, "--cache-out", tmp_path / "data", "--stage", "0", "--only", "0")
    assert rc == 2
    assert "--prepare-only first" in stderr and "no finished cache in" in stderr
