"""Tests for pe_utils.data.manifest: thesis subsets from a train.csv, sha256 verification, and
the phantom's manifest (UIDs and labels exact, pixels within a tolerance)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from pe_utils.data.fingerprint import COLUMN as FINGERPRINT
from pe_utils.data.fingerprint import TOLERANCE_HU
from pe_utils.data.manifest import (COLUMNS, build_manifest, load_spec, main, manifest_from_dir,
                                    read_manifest, read_summary, read_train_csv, verify_manifest,
                                    write_manifest)
from pe_utils.phantom.synthetic import MARKER

ROOT = Path(__file__).resolve().parents[1]
SPECS = ("dataset1", "dataset2", "case2_test")


def fake_train_csv(n_series: int = 3000, seed: int = 0) -> pd.DataFrame:
    """An RSNA-like train.csv (4 of its columns): one series per study, 150-400 slices,
    30 % positive exams whose positive slices are one run covering Beta(2, 13) of the exam
    (13 % on average), so about 4 % positive images overall, like RSNA's 4.2 %."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(150, 401, n_series)
    positive_exam = rng.random(n_series) < 0.3
    n_pos = np.where(positive_exam, np.maximum(1, np.round(rng.beta(2, 13, n_series) * sizes)), 0)
    series = np.repeat(np.arange(n_series), sizes)
    within = np.arange(len(series)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    start = np.repeat(rng.integers(0, sizes - n_pos + 1), sizes)
    label = (within >= start) & (within < start + np.repeat(n_pos, sizes))
    df = pd.DataFrame({"StudyInstanceUID": pd.Series(series).map("1.2.3.{}".format),
                       "SeriesInstanceUID": pd.Series(series).map("1.2.4.{}".format),
                       "SOPInstanceUID": [f"1.2.5.{s}.{w}" for s, w in zip(series, within)],
                       "pe_present_on_image": label.astype(int)})
    return df.sample(frac=1, random_state=seed).reset_index(drop=True)  # RSNA rows are not in z order


@pytest.fixture(scope="module")
def train():
    df = fake_train_csv()
    assert df["pe_present_on_image"].mean() == pytest.approx(0.042, abs=0.004)
    return df


@pytest.fixture(scope="module")
def built(train):
    """The three thesis subsets, seed 0, the test set excluding Dataset2's patients."""
    out = {}
    for name in SPECS:
        exclude = set(out["dataset2"][0]["StudyInstanceUID"]) if name == "case2_test" else set()
        out[name] = build_manifest(train, load_spec(name), seed=0, exclude_patients=exclude)
    return out


@pytest.mark.parametrize("name", SPECS)
def test_spec_files_agree_with_the_thesis(name):
    spec = load_spec(name)
    assert spec["name"] == name
    assert spec["source"].startswith("Thesis " + ("4.1.1" if name == "dataset1" else "5.1.1"))
    # the thesis truncates: 146 / 455 = 32.088 % is printed 32.08 %
    assert spec["n_positive"] / spec["n_images"] == pytest.approx(spec["positive_fraction"], abs=1e-4)
    thesis = {"dataset1": (15556, 655), "dataset2": (19946, round(0.1538 * 19946)),
              "case2_test": (455, 146)}[name]
    assert (spec["n_images"], spec["n_positive"]) == thesis


@pytest.mark.parametrize("name", SPECS)
def test_each_spec_is_met_within_tolerance(built, name):
    manifest, summary = built[name]
    spec = load_spec(name)
    n, p = len(manifest), manifest["pe_present_on_image"].sum()
    assert abs(n - spec["n_images"]) <= spec["tolerance"]["n_images_rel"] * spec["n_images"]
    assert abs(p / n - spec["positive_fraction"]) <= spec["tolerance"]["positive_fraction_abs"]
    assert summary["within_tolerance"] and summary["achieved"]["n_images"] == n
    assert list(manifest.columns) == COLUMNS
    assert (manifest["path"] == "train/" + manifest["StudyInstanceUID"] + "/"
            + manifest["SeriesInstanceUID"] + "/" + manifest["SOPInstanceUID"] + ".dcm").all()
    assert not manifest["SOPInstanceUID"].duplicated().any()


@pytest.mark.parametrize("name", ["dataset1", "dataset2"])
def test_datasets_hold_whole_patients(train, built, name):
    manifest = built[name][0]
    per_patient = train.groupby("StudyInstanceUID").size()
    picked = manifest.groupby("StudyInstanceUID").size()
    pd.testing.assert_series_equal(picked, per_patient.loc[picked.index])


def test_case2_test_patients_are_not_in_dataset2(built):
    test, summary = built["case2_test"]
    assert not set(test["StudyInstanceUID"]) & set(built["dataset2"][0]["StudyInstanceUID"])
    assert summary["excluded_patients"] == built["dataset2"][0]["StudyInstanceUID"].nunique()
    # partial series, as the spec documents: each patient gives a capped sample of its slices
    caps = load_spec("case2_test")["partial"]
    counts = test.groupby(["StudyInstanceUID", "pe_present_on_image"]).size().unstack(fill_value=0)
    assert (counts[1] <= caps["max_positive_per_patient"] + 1).all()
    assert (counts[0] <= caps["max_negative_per_patient"] + 1).all()


def test_build_is_deterministic_by_seed_and_ignores_row_order(train, built):
    spec = load_spec("dataset1")
    again = build_manifest(train.sample(frac=1, random_state=3), spec, seed=0)[0]
    pd.testing.assert_frame_equal(again, built["dataset1"][0])
    other = build_manifest(train, spec, seed=1)[0]
    assert set(other["StudyInstanceUID"]) != set(built["dataset1"][0]["StudyInstanceUID"])


def test_build_fails_clearly_when_train_csv_is_too_small():
    with pytest.raises(ValueError, match="too small"):
        build_manifest(fake_train_csv(n_series=20), load_spec("dataset2"), seed=0)


@pytest.fixture()
def rsna_root(tmp_path):
    """A tiny RSNA-layout folder: train.csv and a few fake .dcm files (random bytes)."""
    train = fake_train_csv(n_series=3, seed=1).groupby("SeriesInstanceUID").head(4)
    rng = np.random.default_rng(0)
    for row in train.itertuples():
        path = tmp_path / "train" / row.StudyInstanceUID / row.SeriesInstanceUID / f"{row.SOPInstanceUID}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.bytes(256))
    train.to_csv(tmp_path / "train.csv", index=False)
    return tmp_path


def test_verify_passes_then_finds_a_missing_file_and_a_changed_byte(rsna_root, tmp_path, capsys):
    out = tmp_path / "m" / "manifest.csv"
    assert main(["from-dir", "--rsna-root", str(rsna_root), "--out", str(out)]) == 0
    manifest = read_manifest(out)
    assert len(manifest) == 12 and (manifest["sha256"].str.len() == 64).all()
    assert verify_manifest(manifest, rsna_root).empty
    assert main(["verify", "--manifest", str(out), "--rsna-root", str(rsna_root)]) == 0

    gone, changed = (rsna_root / manifest["path"][0]), (rsna_root / manifest["path"][5])
    gone.unlink()
    data = bytearray(changed.read_bytes())
    data[100] ^= 1
    changed.write_bytes(bytes(data))
    problems = verify_manifest(manifest, rsna_root)
    assert sorted(problems.itertuples(index=False, name=None)) == sorted(
        [(manifest["path"][0], "missing"), (manifest["path"][5], "sha256 mismatch")])
    capsys.readouterr()
    assert main(["verify", "--manifest", str(out), "--rsna-root", str(rsna_root)]) == 1
    printed = capsys.readouterr().out
    assert manifest["path"][0] in printed and manifest["path"][5] in printed


def test_verify_finds_a_changed_label(rsna_root, tmp_path):
    manifest = manifest_from_dir(rsna_root)
    manifest.loc[3, "pe_present_on_image"] = 1 - manifest.loc[3, "pe_present_on_image"]
    problems = verify_manifest(manifest, rsna_root)
    assert problems.values.tolist() == [[manifest["path"][3], "label differs from train.csv"]]


def test_cli_build_writes_manifest_and_summary_with_sha256(tmp_path, rsna_root):
    train = pd.read_csv(rsna_root / "train.csv")
    spec = tmp_path / "all.json"  # a spec asking for the whole tiny folder: every file hashed
    spec.write_text(json.dumps(dict(load_spec("dataset1"), name="all", n_images=len(train),
                                    n_positive=int(train["pe_present_on_image"].sum()))))
    out = tmp_path / "out" / "all.csv"
    assert main(["build", "--train-csv", str(rsna_root / "train.csv"), "--spec", str(spec),
                 "--seed", "3", "--out", str(out), "--rsna-root", str(rsna_root)]) == 0
    manifest = read_manifest(out)
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["seed"] == 3 and summary["spec"] == "all" and summary["train_csv"]["rows"] == len(train)
    assert summary["achieved"]["n_images"] == len(manifest) == len(train)
    assert summary["sha256_filled"] == len(manifest)
    assert verify_manifest(manifest, rsna_root).empty


def test_cli_refuses_a_test_set_without_exclusion_and_reports_too_small(tmp_path, capsys):
    csv = tmp_path / "train.csv"
    fake_train_csv(n_series=20).to_csv(csv, index=False)
    out = str(tmp_path / "m.csv")
    assert main(["build", "--train-csv", str(csv), "--spec", "case2_test", "--out", out]) == 2
    assert "--exclude" in capsys.readouterr().err
    assert main(["build", "--train-csv", str(csv), "--spec", "dataset1", "--out", out]) == 1
    assert "too small" in capsys.readouterr().err
    assert not Path(out).exists()


def test_a_train_csv_without_labels_is_one_line_naming_the_file_and_columns(tmp_path, capsys):
    """What a user met: a train.csv without pe_present_on_image gave pandas' usecols traceback."""
    csv = tmp_path / "train.csv"
    fake_train_csv(n_series=5).drop(columns="pe_present_on_image").assign(negative_exam_for_pe=0).to_csv(
        csv, index=False)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(csv))} lacks the column\(s\) pe_present_on_image "
                                         r"that a manifest needs .*; it has StudyInstanceUID, SeriesInstanceUID, "
                                         r"SOPInstanceUID, negative_exam_for_pe$"):
        read_train_csv(csv)
    out = tmp_path / "m.csv"
    assert main(["build", "--train-csv", str(csv), "--spec", "dataset1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {csv} lacks the column(s) pe_present_on_image")
    assert not out.exists()


@pytest.mark.parametrize("content, lacks", [("", "StudyInstanceUID, SeriesInstanceUID"),
                                            ("StudyInstanceUID,path\n1,a\n", "SeriesInstanceUID, SOPInstanceUID")])
def test_every_command_reading_a_train_csv_refuses_a_bad_one_in_one_line(tmp_path, capsys, content, lacks):
    root = tmp_path / "rsna"
    root.mkdir()
    (root / "train.csv").write_text(content)
    manifest = write_manifest(pd.DataFrame([["s", "se", "sop", "train/s/se/sop.dcm", 1, ""]], columns=COLUMNS),
                              tmp_path / "x.csv")
    for argv in (["from-dir", "--rsna-root", str(root), "--out", str(tmp_path / "d.csv")],
                 ["verify", "--manifest", str(manifest), "--rsna-root", str(root)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"error: {root / 'train.csv'} lacks the column(s) {lacks}" in err


def test_a_missing_train_csv_is_one_line(tmp_path, capsys):
    assert main(["build", "--train-csv", str(tmp_path / "nope.csv"), "--spec", "dataset1",
                 "--out", str(tmp_path / "m.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nope.csv" in err and err.count("\n") == 1


def test_write_and_read_keep_empty_sha256(tmp_path):
    manifest = pd.DataFrame([["s", "se", "sop", "train/s/se/sop.dcm", 1, ""]], columns=COLUMNS)
    back = read_manifest(write_manifest(manifest, tmp_path / "x.csv"))
    pd.testing.assert_frame_equal(back, manifest, check_dtype=False)


def test_build_finds_a_packaged_spec_from_any_folder(tmp_path):
    """``--spec dataset1`` names a spec inside the package, not a file of the current folder."""
    fake_train_csv(n_series=250, seed=2).to_csv(tmp_path / "train.csv", index=False)
    proc = subprocess.run([sys.executable, "-m", "pe_utils", "manifest", "build", "--train-csv",
                           "train.csv", "--spec", "dataset1", "--out", "m/d1.csv"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((tmp_path / "m" / "d1.json").read_text())["spec"] == "dataset1"
    assert len(read_manifest(tmp_path / "m" / "d1.csv")) == pytest.approx(15556, rel=0.005)


# ----------------------------------------------------------------------------- the phantom's manifest
@pytest.fixture()
def phantom(synth_root, tmp_path):
    """A copy of the session's phantom (6 x 12 slices) and its manifest made by ``from-dir``."""
    root = tmp_path / "phantom"
    shutil.copytree(synth_root, root)
    out = tmp_path / "m" / "phantom.csv"
    assert main(["from-dir", "--rsna-root", str(root), "--out", str(out)]) == 0
    return root, out


def _rewrite_pixels(path: Path, change) -> None:
    """Apply ``change`` to the stored values of an uncompressed file and save it (new bytes)."""
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array.copy()
    change(arr)
    ds.PixelData = arr.astype(np.int16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def _uncompressed(root: Path, manifest: pd.DataFrame) -> list[str]:
    return [rel for rel in manifest["path"] if pydicom.dcmread(root / rel, stop_before_pixels=True)
            .file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian]


def test_a_phantom_manifest_declares_its_kind_generator_and_tolerance(phantom):
    from pe_utils.phantom import GENERATOR_VERSION

    root, out = phantom
    summary, manifest = read_summary(out), read_manifest(out)
    assert summary["kind"] == "phantom" and summary["generator"]["version"] == GENERATOR_VERSION
    assert summary["pixel_check"]["tolerance_hu"] == TOLERANCE_HU
    assert summary["generator"]["arguments"]["patients"] == 6
    assert (manifest[FINGERPRINT].str.split().str.len() == 64).all()
    assert verify_manifest(manifest, root, pixel_tolerance_hu=TOLERANCE_HU).empty


def test_phantom_files_with_a_few_values_off_by_one_still_verify(phantom, capsys):
    # (a) what another CPU does: a few stored values differ by one, so the bytes differ
    root, out = phantom
    manifest = read_manifest(out)
    rel = _uncompressed(root, manifest)[0]
    before = (root / rel).read_bytes()

    def flip(arr):
        for k, (y, x) in enumerate([(256, 256), (200, 300), (300, 180), (260, 250), (100, 256)]):
            arr[y, x] += 1 if k % 2 else -1
    _rewrite_pixels(root / rel, flip)
    assert (root / rel).read_bytes() != before
    problems = verify_manifest(manifest, root, pixel_tolerance_hu=TOLERANCE_HU)
    assert problems.empty and problems.attrs["within_tolerance"] == 1
    capsys.readouterr()
    assert main(["verify", "--manifest", str(out), "--rsna-root", str(root)]) == 0
    assert "1 with other bytes but pixels within tolerance" in capsys.readouterr().out
    # (c) without a declared tolerance (real data) the same change is a failure
    assert verify_manifest(manifest, root).values.tolist() == [[rel, "sha256 mismatch"]]


def test_phantom_files_with_changed_pixels_uids_or_labels_fail(phantom, capsys):
    # (b) a real change of the image: a 20 x 20 patch 100 HU brighter
    root, out = phantom
    manifest = read_manifest(out)
    patched, renamed = _uncompressed(root, manifest)[:2]

    def patch(arr):
        arr[250:270, 250:270] += 100
    _rewrite_pixels(root / patched, patch)
    ds = pydicom.dcmread(root / renamed)  # same pixels, another SOPInstanceUID in the header
    uid = ds.SOPInstanceUID[:-1] + ("2" if ds.SOPInstanceUID[-1] == "1" else "1")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.save_as(root / renamed, enforce_file_format=True)
    train = pd.read_csv(root / "train.csv", dtype=str)
    train.loc[5, "pe_present_on_image"] = str(1 - int(train.loc[5, "pe_present_on_image"]))
    train.to_csv(root / "train.csv", index=False)
    relabelled = manifest.loc[manifest["SOPInstanceUID"] == train.loc[5, "SOPInstanceUID"], "path"].item()

    problems = verify_manifest(manifest, root, pixel_tolerance_hu=TOLERANCE_HU)
    assert sorted(problems.itertuples(index=False, name=None)) == sorted(
        [(patched, "pixel data differs beyond tolerance"), (renamed, "UIDs differ from manifest"),
         (relabelled, "label differs from train.csv")])
    capsys.readouterr()
    assert main(["verify", "--manifest", str(out), "--rsna-root", str(root)]) == 1
    assert "pixel data differs beyond tolerance: " + patched in capsys.readouterr().out


def test_a_real_data_manifest_fails_on_any_changed_byte(phantom, tmp_path):
    # (c) the same folder without the phantom's marker is real data: sha256, no tolerance
    root, _ = phantom
    (root / MARKER).unlink()
    out = tmp_path / "real.csv"
    assert main(["from-dir", "--rsna-root", str(root), "--out", str(out)]) == 0
    manifest = read_manifest(out)
    assert read_summary(out)["kind"] == "real" and FINGERPRINT not in manifest.columns
    rel = _uncompressed(root, manifest)[0]

    def flip(arr):
        arr[256, 256] += 1
    _rewrite_pixels(root / rel, flip)
    assert main(["verify", "--manifest", str(out), "--rsna-root", str(root)]) == 1
    # a tolerance cannot rescue a file the manifest holds no fingerprint for
    problems = verify_manifest(manifest, root, pixel_tolerance_hu=TOLERANCE_HU)
    assert problems.values.tolist() == [[rel, "sha256 mismatch"]]


@pytest.mark.slow
def test_regenerated_demo_phantom_verifies_against_the_committed_manifest(tmp_path):
    """`synth --patients 40 --slices-per-patient 60 --positive-fraction 0.8 --seed 0 --difficulty 0`
    (the demo profile's phantom) rebuilds data_manifest/synthetic_demo.csv: the same UIDs and labels, and
    every file either the same bytes or the same pixels within the manifest's tolerance
    (last-bit differences between CPUs)."""
    from pe_utils.phantom import GENERATOR_VERSION, generate
    from pe_utils.profiles import resolve

    committed = ROOT / "data_manifest" / "synthetic_demo.csv"
    summary = read_summary(committed)
    assert summary["kind"] == "phantom"
    assert summary["generator"]["version"] == GENERATOR_VERSION, \
        "the phantom generator changed version: regenerate data_manifest/synthetic_demo.csv"
    demo = {k: resolve("data", "demo")[k] for k in ("patients", "slices_per_patient",
                                                    "positive_fraction", "seed", "difficulty")}
    assert demo == dict(patients=40, slices_per_patient=60, positive_fraction=0.8, seed=0, difficulty=0.0)
    args = summary["generator"]["arguments"]
    assert {k: args[k] for k in demo} == demo, "the manifest is not of the demo profile's phantom"
    generate(tmp_path, **demo, workers=2)
    manifest = read_manifest(committed)
    problems = verify_manifest(manifest, tmp_path, pixel_tolerance_hu=summary["pixel_check"]["tolerance_hu"])
    assert problems.empty, problems.head(20).to_string()
    train = pd.read_csv(tmp_path / "train.csv", dtype=str)
    assert sorted(train["SOPInstanceUID"]) == sorted(manifest["SOPInstanceUID"])
