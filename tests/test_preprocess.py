"""pe_utils.data.preprocess (and resize, cache, pseudonym): DICOM folder -> cache (order, labels, resize, skips, resume, privacy)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydicom.uid import RLELossless

from pe_utils.data import dicom
from pe_utils.__main__ import main as cli
from pe_utils.data.cache import load_cache
from pe_utils.data.errors import PreprocessError, PreprocessInterrupted
from pe_utils.data.preprocess import preprocess
from pe_utils.data.pseudonym import pseudonym
from pe_utils.data.resize import _antialias_weights, block_mean, resize
from conftest import preprocess_cli
from test_dicom import BAD_FILES, bad_not_dicom, write_ct

SIDE = 32  # slice side in the test folders; cached at 8 (a whole factor, 4)
IDENTITY = {"PatientName": "Zyxwvut^Quirinalia", "PatientBirthDate": "19230817",
            "InstitutionName": "Grepmeister Memorial Clinic", "StudyDate": "20191123",
            "AccessionNumber": "ACCQX77"}
PATIENT_IDS = ("PIDQQX4471", "PIDQQX9932")


def _stored(seed):
    """A slice with structure (not noise): air outside a disc, tissue and vessels inside."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:SIDE, :SIDE]
    disc = (y - SIDE / 2) ** 2 + (x - SIDE / 2) ** 2 < (0.4 * SIDE) ** 2
    return np.where(disc, 1024 + rng.integers(-900, 400, (SIDE, SIDE)), 24)


def make_root(root: Path, *, bad=True, stray=True) -> dict:
    """A small RSNA-layout folder: 2 studies (3 series), shuffled files and InstanceNumbers.

    Returns what the test needs to know: the expected order per series, the bad files.
    """
    order = {}
    specs = [("1.2.840.9.1", "1.2.840.9.1.1", 5, PATIENT_IDS[0], True),
             ("1.2.840.9.1", "1.2.840.9.1.2", 4, PATIENT_IDS[0], False),  # no positions
             ("1.2.840.9.2", "1.2.840.9.2.1", 6, PATIENT_IDS[1], True)]
    labels = []
    rng = np.random.default_rng(0)
    for s, (study, series, n, pid, positioned) in enumerate(specs):
        z = rng.permutation(n) * 2.5 - 40.0  # positions in random order over the SOP numbers
        instance = rng.permutation(n) + 1  # InstanceNumbers unrelated to z
        for k in range(n):
            sop = f"{series}.{k + 1}"
            syntax = RLELossless if k == 1 else None  # one compressed file per series
            kwargs = {} if syntax is None else {"transfer_syntax": syntax}
            write_ct(root / "train" / study / series / f"{sop}.dcm", _stored(10 * s + k),
                     uids=(study, series, sop), z=float(z[k]), instance=int(instance[k]),
                     position=positioned, padding=24, identity=IDENTITY, patient_id=pid,
                     **kwargs)
            labels.append((study, series, sop, int(k % 2 == 0)))
        key = z if positioned else instance
        order[series] = [f"{series}.{k + 1}" for k in np.argsort(key)]
    # RSNA's test folder: not in train.csv -> unlabelled (-1)
    write_ct(root / "test" / "1.2.840.9.3" / "1.2.840.9.3.1" / "1.2.840.9.3.1.1.dcm",
             _stored(99), uids=("1.2.840.9.3", "1.2.840.9.3.1", "1.2.840.9.3.1.1"),
             identity=IDENTITY, patient_id=PATIENT_IDS[1])
    table = pd.DataFrame(labels, columns=["StudyInstanceUID", "SeriesInstanceUID",
                                          "SOPInstanceUID", "pe_present_on_image"])
    table.to_csv(root / "train.csv", index=False)
    bad_paths = {}
    if bad:
        for i, maker in enumerate(BAD_FILES):
            rel = f"train/1.2.840.9.1/1.2.840.9.1.1/1.2.840.9.1.1.{90 + i}.dcm"
            kw = {} if maker is bad_not_dicom else {
                "uids": ("1.2.840.9.1", "1.2.840.9.1.1", f"1.2.840.9.1.1.{90 + i}"),
                "identity": IDENTITY, "patient_id": PATIENT_IDS[0]}
            maker(root / rel, **kw)
            bad_paths[rel] = BAD_FILES[maker].__name__
    if stray:
        (root / "train" / "notes.txt").write_text("not a slice\n")
    return {"order": order, "bad": bad_paths, "n_good": 15}  # + 1 in test/


@pytest.fixture(scope="module")
def mixed_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("rsna")
    info = make_root(root)
    return root, info


@pytest.fixture(scope="module")
def mixed_cache(mixed_root, tmp_path_factory):
    root, info = mixed_root
    out = tmp_path_factory.mktemp("cache") / "cache"
    result = preprocess(root, out, size=8, workers=1, progress=False, chunk_size=4)
    return out, result, info


# ----------------------------------------------------------------------------- resizing
def test_block_mean_equals_hand_computation():
    image = np.arange(64, dtype=np.float32).reshape(8, 8)
    out = block_mean(image, 4)
    hand = [[np.mean(image[4 * i:4 * i + 4, 4 * j:4 * j + 4]) for j in range(2)]
            for i in range(2)]
    np.testing.assert_allclose(out, hand, rtol=1e-6)
    assert out[0, 0] == pytest.approx((0 + 1 + 2 + 3 + 8 + 9 + 10 + 11 + 16 + 17 + 18 + 19
                                       + 24 + 25 + 26 + 27) / 16)
    rgb = np.random.default_rng(0).random((3, 512, 512), dtype=np.float32)
    np.testing.assert_allclose(resize(rgb, 128), rgb.reshape(3, 128, 4, 128, 4).mean((2, 4)),
                               atol=1e-6)


@pytest.mark.parametrize("n_in,n_out", [(100, 64), (512, 200), (40, 30)])
def test_antialiased_resize_matches_torch(n_in, n_out):
    import torch

    image = np.random.default_rng(1).random((n_in, n_in), dtype=np.float32)
    ours = resize(image, n_out)
    ref = torch.nn.functional.interpolate(torch.from_numpy(image)[None, None], size=(n_out, n_out),
                                          mode="bilinear", antialias=True, align_corners=False)
    np.testing.assert_allclose(ours, ref[0, 0].numpy(), atol=1e-5)
    assert _antialias_weights(n_in, n_out).sum(1) == pytest.approx(np.ones(n_out))


def test_resize_pads_non_square_with_fill():
    image = np.ones((4, 8), np.float32)
    out = resize(image, 2, fill=0.0)  # padded to 8 x 8: rows 0-1 and 6-7 are fill
    np.testing.assert_allclose(out, [[0.5, 0.5], [0.5, 0.5]])
    rgb = resize(np.ones((3, 8, 4), np.float32), 4, fill=np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(rgb[:, 0, 0], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(rgb[:, 0, 1:3], 1.0)


# ----------------------------------------------------------------------------- a full run
def test_cache_contract(mixed_cache):
    out, result, info = mixed_cache
    cache = load_cache(out)
    assert result.n_images == info["n_good"] + 1 == len(cache.index)
    assert cache.images.shape == (result.n_images, 8, 8) and cache.images.dtype == np.uint8
    assert isinstance(cache.images, np.memmap)
    index = cache.index
    for column in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "patient_id",
                   "slice_index", "pe_present_on_image"):
        assert column in index.columns
    keys = list(zip(index.StudyInstanceUID, index.SeriesInstanceUID, index.slice_index))
    assert keys == sorted(keys)
    assert cache.settings["counts"]["images"] == result.n_images
    assert cache.settings["size"] == 8 and cache.settings["channels"] == "gray"
    assert cache.settings["counts"]["ignored_non_dcm"] == 2  # notes.txt, train.csv
    assert not (out / "progress").exists()


def test_order_along_z_and_instance_number_fallback(mixed_cache):
    out, _, info = mixed_cache
    index = load_cache(out).index
    for series, expected in info["order"].items():
        rows = index[index.SeriesInstanceUID == series]
        assert list(rows.SOPInstanceUID) == expected
        assert list(rows.slice_index) == list(range(len(expected)))
    assert load_cache(out).settings["counts"]["series_ordered_by_instance_number"] == 1


def test_labels_from_train_csv_and_unlabelled(mixed_root, mixed_cache):
    root, _ = mixed_root
    out, result, _ = mixed_cache
    index = load_cache(out).index
    truth = pd.read_csv(root / "train.csv", dtype=str).set_index("SOPInstanceUID")
    labelled = index[index.pe_present_on_image >= 0]
    assert (labelled.pe_present_on_image.astype(str)
            == truth.loc[labelled.SOPInstanceUID, "pe_present_on_image"].to_numpy()).all()
    test_rows = index[index.path.str.startswith("test/")]
    assert len(test_rows) == 1 and (test_rows.pe_present_on_image == -1).all()
    assert result.n_unlabelled == 1


def test_bad_files_are_skipped_with_their_reason(mixed_cache):
    out, result, info = mixed_cache
    skipped = load_cache(out).skipped
    assert result.n_skipped == len(info["bad"]) == len(skipped)
    listed = dict(zip(skipped.path, skipped.error))
    assert listed == info["bad"]
    assert skipped.reason.str.len().min() > 5


def test_pixels_are_the_windowed_gray_block_mean(mixed_root, mixed_cache):
    root, _ = mixed_root
    out, _, _ = mixed_cache
    cache = load_cache(out)
    for i in range(0, len(cache.index), 5):
        hu = dicom.read_hu(root / cache.index.path[i])
        gray = dicom.to_gray(hu).astype(np.float64)
        hand = np.rint(255 * gray.reshape(8, 4, 8, 4).mean(axis=(1, 3)))
        diff = np.abs(cache.images[i].astype(int) - hand)
        assert diff.max() <= 1 and (diff == 0).mean() > 0.95


def test_rgb_channels(mixed_root, tmp_path):
    root, _ = mixed_root
    result = preprocess(root, tmp_path / "rgb", size=16, channels="rgb", progress=False)
    cache = load_cache(tmp_path / "rgb")
    assert cache.images.shape == (result.n_images, 3, 16, 16)
    hu = dicom.read_hu(root / cache.index.path[0])
    hand = np.rint(255 * dicom.to_rgb(hu).astype(np.float64).reshape(3, 16, 2, 16, 2).mean((2, 4)))
    assert np.abs(cache.images[0].astype(int) - hand).max() <= 1


def test_pseudonyms_are_keyed_hmacs(mixed_root, tmp_path):
    root, _ = mixed_root
    preprocess(root, tmp_path / "c", size=8, progress=False, pseudonym_key="k1")
    index = load_cache(tmp_path / "c").index
    assert set(index.patient_id) == {pseudonym(p, b"k1") for p in PATIENT_IDS}
    assert all(p.startswith("P") and len(p) == 17 for p in index.patient_id)
    assert not (tmp_path / "c" / ".pseudonym_key").exists()
    preprocess(root, tmp_path / "d", size=8, progress=False)  # random key, kept
    key = (tmp_path / "d" / ".pseudonym_key").read_text().strip().encode()
    assert (tmp_path / "d" / ".pseudonym_key").stat().st_mode & 0o077 == 0
    assert set(load_cache(tmp_path / "d").index.patient_id) == {pseudonym(p, key)
                                                               for p in PATIENT_IDS}


def test_privacy_no_identity_anywhere(tmp_path, capfd):
    root = tmp_path / "rsna"
    make_root(root)
    out = tmp_path / "cache"
    assert cli(["preprocess", "--rsna-root", str(root), "--out", str(out), "--size", "8",
                "--workers", "2", "--chunk-size", "5"]) == 0
    assert cli(["preprocess", "--rsna-root", str(root), "--out", str(tmp_path / "strict"),
                "--size", "8", "--strict", "--workers", "1"]) == 1
    captured = capfd.readouterr()
    secrets = list(IDENTITY.values()) + list(PATIENT_IDS) + ["Zyxwvut", "Quirinalia"]
    blobs = {"stdout": captured.out.encode(), "stderr": captured.err.encode()}
    for folder in (out, tmp_path / "strict"):
        for path in folder.rglob("*"):
            if path.is_file():
                blobs[str(path)] = path.read_bytes()
    assert len(blobs) > 6
    for name, blob in blobs.items():
        for secret in secrets:
            assert secret.encode() not in blob, f"{secret!r} found in {name}"
    # and the files did carry the identities
    raw = (root / "test" / "1.2.840.9.3" / "1.2.840.9.3.1" / "1.2.840.9.3.1.1.dcm").read_bytes()
    assert IDENTITY["PatientName"].encode() in raw and PATIENT_IDS[1].encode() in raw


# ----------------------------------------------------------------------------- CLI, strict
def test_cli_summary_and_strict(mixed_root, tmp_path, capsys):
    root, info = mixed_root
    code = cli(["preprocess", "--rsna-root", str(root), "--out", str(tmp_path / "a"),
                "--size", "8", "--workers", "1", "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert f"{info['n_good'] + 1} images" in text and f"{len(info['bad'])} files skipped" in text
    assert "2 non-.dcm files ignored" in text
    code = cli(["preprocess", "--rsna-root", str(root), "--out", str(tmp_path / "b"),
                "--size", "8", "--workers", "1", "--strict", "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "--strict" in err and f"{len(info['bad'])} files skipped" in err
    for rel in info["bad"]:
        assert rel in err
    assert not (tmp_path / "b" / "settings.json").exists()
    assert not (tmp_path / "b" / "images.npy").exists()


def test_strict_passes_on_a_clean_folder(tmp_path):
    make_root(tmp_path / "rsna", bad=False)
    result = preprocess(tmp_path / "rsna", tmp_path / "c", size=8, strict=True, progress=False)
    assert result.n_skipped == 0 and (tmp_path / "c" / "settings.json").exists()


def test_rerun_is_a_no_op_and_other_settings_need_overwrite(mixed_root, tmp_path, capsys):
    root, _ = mixed_root
    first = preprocess(root, tmp_path / "c", size=8, progress=False, verbose=True)
    stamp = (tmp_path / "c" / "images.npy").stat().st_mtime_ns
    again = preprocess(root, tmp_path / "c", size=8, progress=False, verbose=True)
    assert again.n_images == first.n_images
    assert (tmp_path / "c" / "images.npy").stat().st_mtime_ns == stamp
    assert "already" in capsys.readouterr().out
    with pytest.raises(PreprocessError, match="overwrite"):
        preprocess(root, tmp_path / "c", size=16, progress=False)
    preprocess(root, tmp_path / "c", size=16, progress=False, overwrite=True)
    assert load_cache(tmp_path / "c").images.shape[1:] == (16, 16)
    # overwrite of a current cache is a no-op
    stamp = (tmp_path / "c" / "images.npy").stat().st_mtime_ns
    preprocess(root, tmp_path / "c", size=16, progress=False, overwrite=True)
    assert (tmp_path / "c" / "images.npy").stat().st_mtime_ns == stamp


def test_unfinished_run_with_other_settings_is_not_mixed(mixed_root, tmp_path):
    root, _ = mixed_root
    with pytest.raises(PreprocessInterrupted):
        preprocess(root, tmp_path / "c", size=8, chunk_size=4, progress=False,
                   _stop_after_chunks=1)
    assert (tmp_path / "c" / "progress" / "plan.json").exists()
    with pytest.raises(PreprocessError, match="unfinished run"):
        preprocess(root, tmp_path / "c", size=16, chunk_size=4, progress=False)
    result = preprocess(root, tmp_path / "c", size=16, chunk_size=4, progress=False,
                        overwrite=True)
    assert result.resumed_chunks == 0 and load_cache(tmp_path / "c").images.shape[1] == 16


# ----------------------------------------------------------------------------- manifest
def test_manifest_restricts_the_run(mixed_root, mixed_cache, tmp_path):
    root, _ = mixed_root
    full = load_cache(mixed_cache[0]).index
    chosen = full[full.SeriesInstanceUID == "1.2.840.9.2.1"]
    manifest = chosen[["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "path",
                       "pe_present_on_image"]].copy()
    manifest.loc[len(manifest)] = ["1.2.840.9.2", "1.2.840.9.2.1", "1.2.840.9.2.1.77",
                                   "train/1.2.840.9.2/1.2.840.9.2.1/1.2.840.9.2.1.77.dcm", 0]
    manifest.to_csv(tmp_path / "m.csv", index=False)
    result = preprocess(root, tmp_path / "c", size=8, manifest=tmp_path / "m.csv",
                        progress=False)
    cache = load_cache(tmp_path / "c")
    assert list(cache.index.SOPInstanceUID) == list(chosen.SOPInstanceUID)
    np.testing.assert_array_equal(cache.images, load_cache(mixed_cache[0]).images[chosen.index])
    assert result.n_skipped == 1
    assert cache.skipped.path[0].endswith("1.2.840.9.2.1.77.dcm")
    assert "manifest" in cache.skipped.reason[0]
    assert cache.settings["manifest"]["name"] == "m.csv"


def test_manifest_by_sop_uid_only(mixed_root, tmp_path):
    root, _ = mixed_root
    pd.DataFrame({"SOPInstanceUID": ["1.2.840.9.1.1.2", "1.2.840.9.2.1.3"]}).to_csv(
        tmp_path / "m.csv", index=False)
    result = preprocess(root, tmp_path / "c", size=8, manifest=tmp_path / "m.csv",
                        progress=False)
    assert result.n_images == 2 and result.n_skipped == 0
    assert set(load_cache(tmp_path / "c").index.SOPInstanceUID) == {"1.2.840.9.1.1.2",
                                                                    "1.2.840.9.2.1.3"}


# ----------------------------------------------------------------------------- resume
def _files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def resume_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    make_root(root)
    return root


@pytest.fixture(scope="module")
def clean_run(resume_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "cache"
    preprocess(resume_root, out, size=8, progress=False, chunk_size=2, pseudonym_key="k")
    return _files(out)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_resume_after_stop_equals_clean_run(resume_root, clean_run, tmp_path, workers):
    out = tmp_path / "cache"
    args = ["--rsna-root", str(resume_root), "--out", str(out), "--size", "8", "--chunk-size",
            "2", "--pseudonym-key", "k", "--workers", workers, "--no-progress"]
    stopped = preprocess_cli(args + ["--stop-after-chunks", "3"])
    _, err = stopped.communicate(timeout=120)
    assert stopped.returncode == 3, err
    assert not (out / "settings.json").exists()
    done = len(list((out / "progress").glob("chunk_*.json")))
    assert 3 <= done < 12  # 23 files in chunks of 2
    resumed = preprocess_cli(args)
    text, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert "resumed" in text
    assert _files(out) == clean_run


def test_resume_after_sigkill_equals_clean_run(resume_root, clean_run, tmp_path, killed_preprocess):
    out = tmp_path / "cache"
    args = ["--rsna-root", str(resume_root), "--out", str(out), "--size", "8", "--chunk-size",
            "1", "--pseudonym-key", "k", "--workers", "1", "--no-progress"]
    # chunk size 1 here, 2 in the clean run: chunking must not change the result
    killed_preprocess(args, out)
    resumed = preprocess_cli(args)
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert _files(out) == clean_run


# ----------------------------------------------------------------------------- phantom
def test_synthetic_phantom_cache(request):
    """The lead's fixture: the synthetic phantom preprocessed (64 px, gray)."""
    cache = load_cache(request.getfixturevalue("smoke_cache"))
    assert cache.images.shape == (6 * 12, 64, 64)
    assert set(cache.index.pe_present_on_image) <= {0, 1}
    assert cache.index.groupby("SeriesInstanceUID").slice_index.apply(
        lambda s: list(s) == list(range(len(s)))).all()
    assert cache.settings["counts"]["skipped"] == 0
    assert 20 < cache.images.mean() < 235  # windows hit anatomy, not all black or white


# ----------------------------------------------------------------------------- npy files
@pytest.mark.parametrize("shape", [(3, 4, 4), (0, 2, 5, 5), (2, 3, 7, 7)])
def test_allocated_work_array_is_numpys_own_format(tmp_path, shape):
    # the cache must stay loadable (and byte-identical) without numpy's writer
    from pe_utils.data.cache import allocate_npy, data_offset

    path = tmp_path / "a.npy"
    allocate_npy(path, shape)
    np.save(tmp_path / "b.npy", np.zeros(shape, np.uint8))
    assert path.read_bytes() == (tmp_path / "b.npy").read_bytes()
    assert data_offset(path) == path.stat().st_size - int(np.prod(shape))
