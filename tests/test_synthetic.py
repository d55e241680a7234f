"""The synthetic CTPA phantom (pe_utils.phantom): RSNA layout, readable DICOM, plausible HU,
honest labels, the same bytes for the same seed."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pydicom
import pytest

import pe_utils.phantom
from pe_utils.phantom import synthetic, writer
from pe_utils.phantom.emboli import positive_bounds
from pe_utils.phantom.render import make_patient
from pe_utils.phantom.synthetic import GENERATOR_VERSION, generate, read_marker
from pe_utils.phantom.writer import EXAM_COLUMNS, RSNA_COLUMNS

RLE, J2K, RAW = "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.1"
PATIENTS, SLICES = 4, 8


def _rows(root: Path) -> list[dict]:
    with open(root / "train.csv", newline="") as f:
        return list(csv.DictReader(f))


def _series(root: Path) -> dict[str, list]:
    """study -> [(dataset, row)] sorted by InstanceNumber."""
    out: dict[str, list] = {}
    for row in _rows(root):
        path = root / "train" / row["StudyInstanceUID"] / row["SeriesInstanceUID"] / f"{row['SOPInstanceUID']}.dcm"
        out.setdefault(row["StudyInstanceUID"], []).append((pydicom.dcmread(path), row))
    return {k: sorted(v, key=lambda dr: int(dr[0].InstanceNumber)) for k, v in out.items()}


def _eroded(mask: np.ndarray) -> np.ndarray:
    """Pixels whose 4 neighbours are in ``mask`` too (away from upsampling blur): (M, n, n)."""
    out = mask.copy()
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    out[:, :, 1:] &= mask[:, :, :-1]
    out[:, :, :-1] &= mask[:, :, 1:]
    return out


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    """4 patients x 8 slices, 2 positive; 3 series compressed (RLE, RLE, JPEG 2000)."""
    root = tmp_path_factory.mktemp("phantom")
    generate(root, PATIENTS, SLICES, positive_fraction=0.5, seed=0, compressed_fraction=0.75)
    return root


@pytest.fixture(scope="module")
def series(phantom):
    return _series(phantom)


def test_train_csv_has_exactly_the_rsna_columns(phantom):
    with open(phantom / "train.csv", newline="") as f:
        header = next(csv.reader(f))
    assert tuple(header) == RSNA_COLUMNS
    assert len(_rows(phantom)) == PATIENTS * SLICES


def test_files_follow_the_rsna_layout(phantom):
    rows = _rows(phantom)
    files = sorted(phantom.glob("train/*/*/*.dcm"))
    assert len(files) == len(rows)
    expected = {Path("train", r["StudyInstanceUID"], r["SeriesInstanceUID"], r["SOPInstanceUID"] + ".dcm")
                for r in rows}
    assert {f.relative_to(phantom) for f in files} == expected
    assert len({r["StudyInstanceUID"] for r in rows}) == PATIENTS
    assert len({r["SeriesInstanceUID"] for r in rows}) == PATIENTS


def test_every_file_reads_back_with_plain_pydicom(series):
    syntaxes = set()
    for slices in series.values():
        for ds, _ in slices:
            syntaxes.add(str(ds.file_meta.TransferSyntaxUID))
            assert ds.Modality == "CT"
            assert ds.SOPClassUID == pydicom.uid.CTImageStorage
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
            assert (ds.BitsAllocated, ds.PixelRepresentation) == (16, 1)
            assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
            arr = ds.pixel_array
            assert arr.shape == (512, 512) and arr.dtype == np.int16
    assert {RLE, J2K, RAW} <= syntaxes


def test_padding_outside_the_scan_circle(series):
    for slices in series.values():
        ds, _ = slices[0]
        arr = ds.pixel_array
        assert ds.PixelPaddingValue == -2000
        assert (arr[:8, :8] == -2000).all() and (arr[-8:, -8:] == -2000).all()
        assert (arr[256 - 100:256 + 100, 256 - 100:256 + 100] != -2000).all()


def test_z_positions_follow_instance_number(series):
    for slices in series.values():
        numbers = [int(ds.InstanceNumber) for ds, _ in slices]
        z = np.array([float(ds.ImagePositionPatient[2]) for ds, _ in slices])
        assert numbers == list(range(1, SLICES + 1))
        step = float(slices[0][0].SliceThickness)
        np.testing.assert_allclose(np.diff(z), -step, atol=1e-3)  # instance 1 is the top
        assert all(float(ds.SliceLocation) == pytest.approx(zi) for (ds, _), zi in zip(slices, z))
        assert len({tuple(map(float, ds.PixelSpacing)) for ds, _ in slices}) == 1


def test_hu_is_plausible(series):
    for slices in series.values():
        hu = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
                       for ds, _ in slices])
        inside = hu[hu > -2500]
        lungs = inside[(inside > -950) & (inside < -750)]
        assert lungs.size > 0.1 * inside.size           # lungs are a large share of the chest
        assert -880 < np.median(lungs) < -800
        assert (inside > 650).mean() > 0.002             # bone


def test_vessels_and_clots_have_their_hu_where_rendered(phantom, series):
    positives, _ = synthetic.assign(PATIENTS, 0.5, 0.75, 0)
    clot_hu = []  # pooled: a small clot may have no pixel clear of partial volume
    for index in range(PATIENTS):
        plan, rendered = make_patient(0, index, index in positives, SLICES)
        study = writer.make_uid(0, index, "study")
        files = np.stack([ds.pixel_array for ds, _ in series[study]])[::-1]  # ascending z
        np.testing.assert_array_equal(files, rendered.stored)  # the masks describe the files
        hu = rendered.stored.astype(float) - 1024
        core = lambda occ: np.kron(_eroded(occ > 0.99), np.ones((2, 2), bool))  # 256 -> 512
        clear = (rendered.defect < 0.01) & (rendered.flow < 0.01) & (rendered.node < 0.01)
        artery = core(rendered.lumen * clear)
        ghosts = slice(plan.motion[0], plan.motion[1] + 1) if plan.motion else slice(0, 0)
        artery[ghosts] = False  # motion ghosts mix in the neighbourhood
        assert 250 <= np.median(hu[artery]) <= 400
        labels = np.array([int(row["pe_present_on_image"]) for _, row in series[study]])[::-1]
        np.testing.assert_array_equal(labels, rendered.labels)
        np.testing.assert_array_equal(plan.labels, rendered.labels)  # the plan knew them
        if labels.any():
            assert (rendered.defect[labels == 1] >= 0.5).any(axis=(1, 2)).all()
            clot = core(rendered.defect)
            clot[ghosts] = False
            clot_hu.append(hu[clot])
    clot_hu = np.concatenate(clot_hu)
    assert clot_hu.size > 20 and 20 <= np.median(clot_hu) <= 70


def test_positive_slices_only_in_positive_exams_and_a_minority_there(series):
    n_positive = 0
    lo, hi = positive_bounds(SLICES)
    assert (lo, hi) == (1, 2)  # 5-30 % of 8 slices
    for slices in series.values():
        labels = np.array([int(row["pe_present_on_image"]) for _, row in slices])
        negative = int(slices[0][1]["negative_exam_for_pe"])
        if negative:
            assert labels.sum() == 0
            continue
        n_positive += 1
        assert lo <= labels.sum() <= hi
    assert n_positive == PATIENTS // 2


def test_exam_level_columns_are_consistent(series):
    for slices in series.values():
        exam = {tuple(row[c] for c in EXAM_COLUMNS) for _, row in slices}
        assert len(exam) == 1
        row = slices[0][1]
        v = {c: int(row[c]) for c in EXAM_COLUMNS}
        if v["negative_exam_for_pe"]:
            assert v["rv_lv_ratio_gte_1"] + v["rv_lv_ratio_lt_1"] == 0
            assert v["leftsided_pe"] + v["rightsided_pe"] + v["central_pe"] == 0
        else:
            assert v["rv_lv_ratio_gte_1"] + v["rv_lv_ratio_lt_1"] == 1
            assert v["leftsided_pe"] + v["rightsided_pe"] + v["central_pe"] >= 1
        assert v["indeterminate"] == 0


def test_identity_fields_are_present_and_fake(series):
    names = set()
    for slices in series.values():
        for ds, _ in slices:
            assert ds.InstitutionName == writer.INSTITUTION
            assert str(ds.PatientID).startswith("PHX-")
            assert len(ds.PatientBirthDate) == 8 and len(ds.StudyDate) == 8
            names.add(str(ds.PatientName))
    assert len(names) == PATIENTS and all("^" in n for n in names)


def test_same_seed_same_bytes_whatever_the_workers(phantom, tmp_path):
    generate(tmp_path, PATIENTS, SLICES, positive_fraction=0.5, seed=0, compressed_fraction=0.75,
             workers=2)
    assert (tmp_path / "train.csv").read_bytes() == (phantom / "train.csv").read_bytes()
    for f in phantom.glob("train/*/*/*.dcm"):
        assert (tmp_path / f.relative_to(phantom)).read_bytes() == f.read_bytes()


def test_cli_and_other_seeds_differ(phantom, tmp_path):
    from pe_utils.__main__ import main

    out = tmp_path / "cli"
    assert main(["synth", "--out", str(out), "--patients", "2", "--slices-per-patient", "4",
                 "--seed", "1", "--compressed-fraction", "0"]) == 0
    rows = _rows(out)
    assert len(rows) == 8
    assert not {r["SOPInstanceUID"] for r in rows} & {r["SOPInstanceUID"] for r in _rows(phantom)}
    a = make_patient(0, 0, True, 4)[1].stored
    b = make_patient(1, 0, True, 4)[1].stored
    assert not np.array_equal(a, b)


def test_rerun_replaces_a_phantom_but_refuses_other_data(tmp_path):
    generate(tmp_path / "p", 1, 2, compressed_fraction=0)
    generate(tmp_path / "p", 1, 3, compressed_fraction=0)
    assert len(list((tmp_path / "p").glob("train/*/*/*.dcm"))) == 3
    assert len(_rows(tmp_path / "p")) == 3
    (tmp_path / "real" / "train").mkdir(parents=True)
    with pytest.raises(FileExistsError):
        generate(tmp_path / "real", 1, 2)
    with pytest.raises(ValueError):
        generate(tmp_path / "bad", 1, 2, positive_fraction=1.5)


def test_difficulty_shrinks_the_clots():
    def mean_area(d):
        areas = [make_patient(3, i, True, 8, difficulty=d)[1].defect_mm2 for i in range(3)]
        return np.mean([a[a > 0].mean() for a in areas])
    assert mean_area(0.0) > mean_area(1.0)


def test_the_marker_records_the_generator_version_and_arguments(phantom, tmp_path):
    marker = read_marker(phantom)
    assert marker["generator_version"] == GENERATOR_VERSION
    assert marker["arguments"] == dict(patients=PATIENTS, slices_per_patient=SLICES,
                                       positive_fraction=0.5, seed=0, difficulty=0.3,
                                       compressed_fraction=0.75)
    assert read_marker(tmp_path) is None  # no phantom here
    (tmp_path / synthetic.MARKER).write_text("written by an older phantom\n")
    assert read_marker(tmp_path) == {"generator_version": None}


def test_the_phantom_package_exports_resolve():
    for module, names in pe_utils.phantom.EXPORTS.items():
        for name in names:
            assert getattr(pe_utils.phantom, name) is getattr(
                __import__(f"pe_utils.phantom.{module}", fromlist=[name]), name)
    assert pe_utils.phantom.generate is generate and pe_utils.phantom.make_patient is make_patient
