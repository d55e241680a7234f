"""Clot masks: the phantom writes one per slice (positive exactly when non-empty, grazed slices
empty, DICOM bytes unchanged), preprocessing carries them into the cache at its resolution
(any clot pixel survives resizing; resumable like the images), and data without masks works."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pe_utils.data.cache import load_cache
from pe_utils.data.masks import resize_mask
from pe_utils.data.preprocess import preprocess
from pe_utils.phantom.emboli import MIN_DEFECT_MM2
from pe_utils.phantom.masks import MARKER, MASKS_DIR, SeriesMasks, clot_masks, mask_path
from pe_utils.phantom.render import make_patient
from conftest import preprocess_cli

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- the phantom
@pytest.mark.parametrize("seed, index, difficulty", [(0, 0, 0.3), (1, 0, 0.5)])
def test_masks_are_the_labelled_clot_pixels_and_grazed_slices_are_empty(seed, index, difficulty):
    _, rendered = make_patient(seed, index, True, 12, difficulty)
    masks, faint = clot_masks(rendered, 512)
    assert masks.shape == (12, 512, 512) and masks.dtype == bool
    assert rendered.labels.sum() >= 1
    np.testing.assert_array_equal(masks.any((1, 2)), rendered.labels.astype(bool))
    # the edge case is there: clot pixels on a slice whose visible area is below the threshold
    assert len(faint) >= 1
    full = rendered.defect >= 0.5
    for k in faint:
        assert full[k].any() and rendered.defect_mm2[k] < MIN_DEFECT_MM2
        assert rendered.labels[k] == 0 and not masks[k].any()
    # on positive slices: exactly the render pixels that visible_area counts, 2 x 2 each
    pos = rendered.labels.astype(bool)
    np.testing.assert_array_equal(masks[pos][:, ::2, ::2], full[pos])
    np.testing.assert_array_equal(masks[pos][:, 1::2, 1::2], full[pos])


def test_phantom_writes_one_mask_file_per_series_agreeing_with_train_csv(synth_root):
    import pydicom

    assert (synth_root / MASKS_DIR / MARKER).is_file()
    train = pd.read_csv(synth_root / "train.csv", dtype=str)
    files = sorted((synth_root / MASKS_DIR).rglob("*.npz"))
    assert len(files) == train["SeriesInstanceUID"].nunique() == 6
    assert {"0", "1"} == set(train["pe_present_on_image"])
    for (study, series), rows in train.groupby(["StudyInstanceUID", "SeriesInstanceUID"]):
        masks = SeriesMasks(mask_path(synth_root, study, series))
        for row in rows.itertuples():
            mask = masks.get(row.SOPInstanceUID)
            assert mask is not None and mask.shape == (512, 512)
            assert mask.any() == (row.pe_present_on_image == "1"), row.SOPInstanceUID
    assert masks.get("1.2.3.not.in.this.series") is None
    ds = pydicom.dcmread(next((synth_root / "train").rglob("*.dcm")), stop_before_pixels=True)
    assert (ds.Rows, ds.Columns) == masks.shape  # the DICOM's own pixel grid


def test_a_regenerated_phantom_replaces_its_old_masks(tmp_path):
    from pe_utils.phantom.synthetic import generate

    for seed in (0, 1):
        generate(tmp_path, patients=2, slices_per_patient=4, positive_fraction=0.5, seed=seed)
    train = pd.read_csv(tmp_path / "train.csv", dtype=str)
    files = sorted((tmp_path / MASKS_DIR).rglob("*.npz"))
    assert sorted(f.stem for f in files) == sorted(train["SeriesInstanceUID"].unique())


def test_masks_leave_the_dicom_bytes_of_the_committed_manifest(tmp_path):
    """Two demo patients written again (with their masks) verify against
    data_manifest/synthetic_demo.csv: the masks did not touch the DICOM files."""
    from pe_utils.data.manifest import read_manifest, read_summary, verify_manifest
    from pe_utils.phantom.synthetic import assign
    from pe_utils.phantom.writer import write_series

    from pe_utils.phantom.synthetic import GENERATOR_VERSION

    committed = ROOT / "data_manifest" / "synthetic_demo.csv"
    summary = read_summary(committed)
    assert summary["generator"]["version"] == GENERATOR_VERSION, \
        "the phantom generator changed version: regenerate data_manifest/synthetic_demo.csv"
    args = summary["generator"]["arguments"]
    positives, syntax = assign(args["patients"], args["positive_fraction"],
                               args["compressed_fraction"], args["seed"])
    picks = [min(positives), min(set(range(args["patients"])) - positives)]
    studies = set()
    for i in picks:
        rows = write_series(tmp_path, args["seed"], i, i in positives, args["slices_per_patient"],
                            args["difficulty"], syntax.get(i))
        studies.add(rows[0]["StudyInstanceUID"])
        assert mask_path(tmp_path, rows[0]["StudyInstanceUID"], rows[0]["SeriesInstanceUID"]).is_file()
    manifest = read_manifest(committed)
    manifest = manifest[manifest["StudyInstanceUID"].isin(studies)]
    assert len(manifest) == 2 * args["slices_per_patient"]
    problems = verify_manifest(manifest, tmp_path,
                               pixel_tolerance_hu=summary["pixel_check"]["tolerance_hu"])
    assert problems.empty, problems.head().to_string()


# ----------------------------------------------------------------------------- resizing
@pytest.mark.parametrize("size", [64, 128, 96, 100])
def test_any_clot_pixel_survives_resizing(size):
    rng = np.random.default_rng(size)
    for _ in range(20):
        mask = np.zeros((512, 512), bool)
        r, c = rng.integers(0, 512, 2)
        mask[r, c] = True  # one DICOM pixel, anywhere (also on block edges)
        small = resize_mask(mask, size)
        assert small.dtype == np.uint8 and small.shape == (size, size)
        assert small.sum() >= 1 and set(np.unique(small)) <= {0, 1}
    assert resize_mask(np.zeros((512, 512), bool), size).sum() == 0


@pytest.mark.parametrize("shape, size", [((512, 512), 64), ((512, 512), 128), ((512, 512), 96),
                                         ((400, 512), 64), ((512, 384), 100)])
def test_mask_resize_is_the_image_resize_then_positive(shape, size):
    from pe_utils.data.resize import resize

    mask = np.random.default_rng(1).random(shape) > 0.9995  # a few scattered clot pixels
    expected = (resize(mask.astype(np.float32), size, 0.0) > 0).astype(np.uint8)
    np.testing.assert_array_equal(resize_mask(mask, size), expected)


@pytest.mark.parametrize("size", [64, 128])
def test_cache_masks_line_up_with_the_labels(synth_root, smoke_cache, tmp_path, size):
    out = smoke_cache if size == 64 else tmp_path / "cache128"
    if size == 128:
        preprocess(synth_root, out, size=128, progress=False)
    cache = load_cache(out)
    assert cache.masks is not None and isinstance(cache.masks, np.memmap)
    assert cache.masks.shape == (len(cache.index), size, size) and cache.masks.dtype == np.uint8
    labels = cache.index["pe_present_on_image"].to_numpy()
    assert set(labels) == {0, 1}
    np.testing.assert_array_equal(cache.masks.any((1, 2)), labels == 1)
    assert cache.settings["masks"]["missing"] == 0
    agree = cache.settings["masks"]
    assert agree["non_empty"] == (labels == 1).sum() > 0
    assert agree["positive_with_empty_mask"] == agree["negative_with_clot"] == 0
    # each row is its own slice's mask, at the cache's resolution
    for i in np.nonzero(labels == 1)[0][::5]:
        row = cache.index.iloc[i]
        mask = SeriesMasks(mask_path(synth_root, row.StudyInstanceUID, row.SeriesInstanceUID))
        np.testing.assert_array_equal(cache.masks[i], resize_mask(mask.get(row.SOPInstanceUID), size))
    assert cache.settings["counts"]["ignored_non_dcm"] == 1  # train.csv; masks/ is read


# ----------------------------------------------------------------------------- resume
def test_resumed_run_gives_the_same_masks(synth_root, smoke_cache, tmp_path):
    from pe_utils.data.errors import PreprocessInterrupted

    out = tmp_path / "cache"
    with pytest.raises(PreprocessInterrupted):
        preprocess(synth_root, out, size=64, progress=False, chunk_size=8, _stop_after_chunks=3)
    assert (out / "progress" / "masks.npy").exists() and not (out / "masks.npy").exists()
    result = preprocess(synth_root, out, size=64, progress=False, chunk_size=8)
    assert result.resumed_chunks == 3
    assert (out / "masks.npy").read_bytes() == (smoke_cache / "masks.npy").read_bytes()
    assert (out / "images.npy").read_bytes() == (smoke_cache / "images.npy").read_bytes()


def test_masks_survive_a_sigkill_and_two_workers(synth_root, smoke_cache, tmp_path, killed_preprocess):
    out = tmp_path / "cache"
    args = ["--rsna-root", str(synth_root), "--out", str(out), "--size", "64", "--chunk-size", "4", "--no-progress"]
    killed_preprocess(args + ["--workers", "1"], out)
    resumed = preprocess_cli(args + ["--workers", "2"])
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert (out / "masks.npy").read_bytes() == (smoke_cache / "masks.npy").read_bytes()


# ----------------------------------------------------------------------------- no masks
@pytest.fixture(scope="module")
def bare_root(synth_root, tmp_path_factory):
    """The phantom without its masks folder, as real RSNA data comes."""
    root = tmp_path_factory.mktemp("bare") / "rsna"
    shutil.copytree(synth_root, root, ignore=shutil.ignore_patterns(MASKS_DIR))
    return root


def test_data_without_masks_works_and_gives_the_same_images(bare_root, smoke_cache, tmp_path):
    out = tmp_path / "cache"
    preprocess(bare_root, out, size=64, progress=False)
    cache = load_cache(out)
    assert cache.masks is None and not (out / "masks.npy").exists()
    assert "masks" not in cache.settings
    with_masks = load_cache(smoke_cache)
    np.testing.assert_array_equal(cache.images, with_masks.images)
    pd.testing.assert_frame_equal(cache.index.drop(columns="patient_id"),
                                  with_masks.index.drop(columns="patient_id"))


def test_a_missing_series_file_is_counted_and_its_rows_are_empty(synth_root, tmp_path):
    root = tmp_path / "rsna"
    shutil.copytree(synth_root, root)
    train = pd.read_csv(root / "train.csv", dtype=str)
    pos = train[train["pe_present_on_image"] == "1"].iloc[0]
    mask_path(root, pos.StudyInstanceUID, pos.SeriesInstanceUID).unlink()
    out = tmp_path / "cache"
    preprocess(root, out, size=64, progress=False)
    cache = load_cache(out)
    gone = (cache.index["SeriesInstanceUID"] == pos.SeriesInstanceUID).to_numpy()
    assert cache.settings["masks"]["missing"] == gone.sum() == 12
    assert cache.settings["masks"]["missing_reasons"] == {"no mask file": 12}
    assert not cache.masks[gone].any() and cache.masks[~gone].any()
    lost = int((cache.index["pe_present_on_image"].to_numpy()[gone] == 1).sum())
    assert lost >= 1 and cache.settings["masks"]["positive_with_empty_mask"] == lost


def test_masks_of_another_length_are_refused(smoke_cache, tmp_path):
    out = tmp_path / "cache"
    shutil.copytree(smoke_cache, out)
    np.save(out / "masks.npy", np.zeros((3, 64, 64), np.uint8))
    with pytest.raises(ValueError, match="masks.npy has shape"):
        load_cache(out)
