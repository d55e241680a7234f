"""DICOM folder -> preprocessed image cache: parallel, resumable, with a skipped-file report.

``python -m pe_utils preprocess --rsna-root DIR --out CACHE [--size 128] [--channels gray|rgb]
[--workers N] [--manifest FILE] [--strict] [--pseudonym-key KEY] [--overwrite]``

Each ``.dcm`` file under the root (``train/`` and ``test/`` alike; other files are counted
and ignored) is read to HU, windowed (thesis 4.1.1), converted to gray (or kept as the three
window channels), resized to ``size`` x ``size`` and stored as uint8. The cache folder:

- ``images.npy``: uint8 (N, size, size) for gray, (N, 3, size, size) for rgb;
  value = round(255 * x), x in [0, 1]. Load with ``np.load(..., mmap_mode="r")``.
- ``index.csv``: row i describes image i: SOPInstanceUID, StudyInstanceUID,
  SeriesInstanceUID, patient_id (a pseudonym), slice_index (0.. along the series),
  pe_present_on_image (1/0 from ``<root>/train.csv``; -1 when the image is not in it, e.g.
  RSNA's ``test/`` folder), z (ImagePositionPatient z, mm), instance_number, path
  (relative to the root). Rows sorted by (StudyInstanceUID, SeriesInstanceUID, slice_index).
- ``skipped.csv``: path, error, reason: every file not in the cache and why.
- ``settings.json``: what made the cache and the counts; written last, it marks completion.

Slices are ordered along a series by their position on the slice normal (the
ImagePositionPatient z for axial slices); a series where a slice lacks a position is ordered
by InstanceNumber instead. Resize: area averaging (block mean) when the side is a whole
multiple of ``size`` (512 -> 128), else an antialiased bilinear resize (PIL's filter);
a non-square slice is first padded to a square with air.

Work goes in chunks of files; each finished chunk is recorded in ``progress/`` (its images
written and fsync'ed into a preallocated ``work.npy``, one slot per file, then its rows in an
atomically written marker), so a run that is killed resumes where it stopped and ends
byte-identical to an uninterrupted run, whatever the number of workers or the chunk size.

Privacy: patient_id is "P" + the first 16 hex digits of HMAC-SHA256(key, PatientID, or
StudyInstanceUID when PatientID is empty). The key is ``pseudonym_key`` when given, else a
random key generated once and kept in ``<out>/.pseudonym_key`` (delete it, or pass your own
key kept elsewhere, before sharing a cache: with the key, a known PatientID can be checked
against the pseudonyms). No name, ID, birth date, institution or date from the DICOM
headers is written to the cache, printed or put into an error message.

(One concept, folder -> cache; resuming and the CLI make it longer than most modules.)
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import multiprocessing
import os
import posixpath
import secrets
import shutil
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .dicom import (AIR_HU, GRAY_WEIGHTS, THESIS_WINDOWS, DicomReadError, Window,
                    read_windowed, to_gray, to_rgb)

__all__ = ["preprocess", "load_cache", "resize", "block_mean", "pseudonym", "main",
           "Cache", "PreprocessResult", "PreprocessError", "FORMAT_VERSION"]

FORMAT_VERSION = 1
DEFAULT_CHUNK_SIZE = 64  # files per chunk: the unit of parallel work and of resuming
_WINDOW_NAMES = ("lung", "mediastinum", "pe")
_INDEX_COLUMNS = ["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "patient_id",
                  "slice_index", "pe_present_on_image", "z", "instance_number", "path"]
_INDEX_DTYPES = {"SOPInstanceUID": str, "StudyInstanceUID": str, "SeriesInstanceUID": str,
                 "patient_id": str, "path": str}


class PreprocessError(RuntimeError):
    """A run that cannot go on or finish (``--strict`` with skipped files, settings clash)."""


class PreprocessInterrupted(PreprocessError):
    """Stopped on purpose after some chunks (testing hook); rerun to resume."""


@dataclass(frozen=True)
class PreprocessResult:
    """What a run produced: images written, files skipped, the cache folder."""

    n_images: int
    n_skipped: int
    out: Path
    n_ignored: int = 0  # non-.dcm files under the root
    n_unlabelled: int = 0  # images not in train.csv (pe_present_on_image == -1)
    resumed_chunks: int = 0  # chunks found finished from an earlier run


@dataclass
class Cache:
    """A finished cache folder, loaded: ``images`` is a read-only memmap."""

    images: np.ndarray
    index: pd.DataFrame
    skipped: pd.DataFrame
    settings: dict
    dir: Path


# ----------------------------------------------------------------------------- resizing
def block_mean(image: np.ndarray, k: int) -> np.ndarray:
    """Average k x k blocks of the last two axes (area resize by a whole factor k).

    Equal, up to float32 rounding, to ``image.reshape(..., H//k, k, W//k, k).mean((-3, -1))``,
    about ten times faster (strided sums instead of a reduction over a reshaped view).
    """
    if k == 1:
        return image.astype(np.float32, copy=True)
    cols = image[..., 0::k].astype(np.float32, copy=True)
    for i in range(1, k):
        cols += image[..., i::k]
    out = cols[..., 0::k, :].copy()
    for i in range(1, k):
        out += cols[..., i::k, :]
    out *= np.float32(1.0 / (k * k))
    return out


@lru_cache(maxsize=16)
def _antialias_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of PIL's bilinear resize (triangle filter widened by the scale).

    torch.nn.functional.interpolate(mode="bilinear", antialias=True) computes the same.
    """
    scale = n_in / n_out
    filter_scale = max(scale, 1.0)
    support = filter_scale  # bilinear filter support 1, stretched when shrinking
    weights = np.zeros((n_out, n_in), dtype=np.float64)
    for i in range(n_out):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        x = np.arange(lo, hi)
        w = np.clip(1.0 - np.abs((x - center + 0.5) / filter_scale), 0.0, None)
        weights[i, lo:hi] = w / w.sum()
    return weights.astype(np.float32)


def resize(image: np.ndarray, size: int, fill: float | np.ndarray = 0.0) -> np.ndarray:
    """Resize the last two axes to ``size`` x ``size`` with antialiasing.

    Args:
        image: (H, W) or (C, H, W) float values.
        size: output side.
        fill: value (or one value per channel) used to pad a non-square image to a square,
            centred, before resizing (so anatomy keeps its aspect ratio).

    Returns:
        float32 (size, size) or (C, size, size): block mean when the side is a whole
        multiple of ``size``, else PIL-style antialiased bilinear resampling.
    """
    h, w = image.shape[-2:]
    if h != w:
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        fill = np.asarray(fill, dtype=np.float32).reshape(-1, *([1] * 2))
        padded = np.empty(image.shape[:-2] + (side, side), dtype=np.float32)
        padded[...] = fill if image.ndim == 3 else fill[0]
        padded[..., top:top + h, left:left + w] = image
        image, h = padded, side
    if h % size == 0:
        return block_mean(image, h // size)
    weights = _antialias_weights(h, size)
    return weights @ image.astype(np.float32, copy=False) @ weights.T


def _air_fill(channels: str, windows: tuple[Window, ...]) -> np.ndarray:
    air = np.full((1, 1), AIR_HU, dtype=np.float32)
    values = to_gray(air, windows) if channels == "gray" else to_rgb(air, windows)
    return values.reshape(-1)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """The cache's value mapping: round(255 * x), x clipped to [0, 1] (ties to even)."""
    return np.rint(np.clip(x, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)


# ----------------------------------------------------------------------------- pseudonyms
def pseudonym(patient_key: str, key: bytes) -> str:
    """``"P"`` + 16 hex digits of HMAC-SHA256(key, patient_key): stable, not reversible."""
    return "P" + hmac.new(key, patient_key.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def _key_fingerprint(key: bytes) -> str:
    return hmac.new(key, b"pe_utils pseudonym key fingerprint", hashlib.sha256).hexdigest()[:16]


def _load_or_make_key(out: Path, given: str | bytes | None) -> bytes:
    if given is not None:
        return given.encode("utf-8") if isinstance(given, str) else bytes(given)
    key_file = out / ".pseudonym_key"
    if key_file.exists():
        return key_file.read_text().strip().encode("ascii")
    key = secrets.token_hex(32)
    _write_text_atomic(key_file, key + "\n", private=True)
    return key.encode("ascii")


# ----------------------------------------------------------------------------- files
def _write_text_atomic(path: Path, text: str, private: bool = False) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644),
              "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _discover(root: Path, out: Path, manifest) -> tuple[list, list, int, dict]:
    """Files to process (relative posix paths, sorted), manifest entries not found, the
    number of non-.dcm files ignored, and manifest labels by SOPInstanceUID."""
    out_resolved = out.resolve()
    found, ignored = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (here / d).resolve() != out_resolved)
        for name in filenames:
            if name.lower().endswith(".dcm"):
                found.append((here / name).relative_to(root).as_posix())
            elif not name.startswith("."):
                ignored += 1
    found.sort()
    if manifest is None:
        return found, [], ignored, {}

    table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    if "path" not in table.columns and "SOPInstanceUID" not in table.columns:
        raise PreprocessError(f"manifest {manifest} needs a 'path' or 'SOPInstanceUID' column")
    by_name = {Path(p).stem: p for p in found}
    present = set(found)
    wanted, missing = [], []
    for row in table.itertuples(index=False):
        row = row._asdict()
        rel = row.get("path", "").strip().replace("\\", "/")
        if rel:
            if Path(rel).is_absolute():  # accepted, stored relative when under the root
                try:
                    rel = Path(rel).resolve().relative_to(root.resolve()).as_posix()
                except ValueError:
                    pass
            rel = posixpath.normpath(rel)
        else:
            sop = row.get("SOPInstanceUID", "").strip()
            rel = by_name.get(sop, "")
            if not rel:
                study, series = row.get("StudyInstanceUID", ""), row.get("SeriesInstanceUID", "")
                rel = f"train/{study}/{series}/{sop}.dcm" if study and series else f"{sop}.dcm"
        if rel in present or (root / rel).is_file():
            wanted.append(rel)
        else:
            missing.append((rel, "listed in the manifest but not found under the root"))
    labels = {}
    if {"SOPInstanceUID", "pe_present_on_image"} <= set(table.columns):
        for sop, label in zip(table["SOPInstanceUID"], table["pe_present_on_image"]):
            if label.strip() in ("0", "1"):
                labels[sop.strip()] = int(label)
    return sorted(set(wanted)), sorted(set(missing)), ignored, labels


def _read_labels(root: Path) -> dict:
    """pe_present_on_image by SOPInstanceUID from ``<root>/train.csv`` (empty if absent)."""
    path = root / "train.csv"
    if not path.exists():
        return {}
    table = pd.read_csv(path, usecols=["SOPInstanceUID", "pe_present_on_image"],
                        dtype={"SOPInstanceUID": str}).dropna()
    return dict(zip(table["SOPInstanceUID"], table["pe_present_on_image"].astype(int)))


# ----------------------------------------------------------------------------- the work
def _process_chunk(job: dict) -> list[dict]:
    """Read, window, resize and store one chunk of files; record it as done. Runs in a worker."""
    root, windows = Path(job["root"]), tuple(Window(*w) for w in job["windows"])
    fill = _air_fill(job["channels"], windows)
    key = bytes.fromhex(job["key"])
    # The chunk's slots are contiguous: fill them in memory, then one write and one fsync
    # (cheaper than page faults on a memory map, and durable before the marker exists).
    block = np.zeros((len(job["files"]),) + tuple(job["shape"]), dtype=np.uint8)
    rows, pseudonyms = [], {}  # a series shares its patient: one HMAC per patient
    with warnings.catch_warnings():
        # pydicom warnings may quote header values; the reasons we keep are our own.
        warnings.simplefilter("ignore")
        for slot, rel in enumerate(job["files"], start=job["start"]):
            row = {"slot": slot, "path": rel}
            try:
                image, meta = read_windowed(root / rel, job["channels"], windows)
                block[slot - job["start"]] = _to_uint8(resize(image, job["size"], fill))
            except DicomReadError as exc:
                row.update(error=type(exc).__name__, reason=exc.reason)
            except OSError as exc:
                row.update(error=type(exc).__name__, reason="cannot read the file")
            except Exception as exc:  # a bug or an exotic file: listed, never silent
                row.update(error=type(exc).__name__, reason="unexpected error while reading")
            else:
                if meta.patient_key not in pseudonyms:
                    pseudonyms[meta.patient_key] = pseudonym(meta.patient_key, key)
                row.update(SOPInstanceUID=meta.sop_instance_uid,
                           StudyInstanceUID=meta.study_instance_uid,
                           SeriesInstanceUID=meta.series_instance_uid,
                           patient_id=pseudonyms[meta.patient_key], z=meta.z,
                           position=meta.position, instance_number=meta.instance_number)
            rows.append(row)
    with open(job["work"], "r+b") as f:
        f.seek(job["offset"] + job["start"] * block[0].nbytes)
        f.write(block.tobytes())
        f.flush()
        os.fsync(f.fileno())
    marker = Path(job["progress"]) / f"chunk_{job['chunk']:07d}.json"
    _write_text_atomic(marker, json.dumps({"chunk": job["chunk"], "rows": rows}))
    return rows


def _order_series(ok: pd.DataFrame) -> tuple[pd.Series, int]:
    """slice_index per row: order along each series (position, else InstanceNumber)."""
    slice_index = pd.Series(0, index=ok.index, dtype=np.int64)
    by_instance = 0
    for _, series in ok.groupby(["StudyInstanceUID", "SeriesInstanceUID"], sort=False):
        if series["position"].notna().all():
            keys = ["position", "instance_number", "SOPInstanceUID"]
        else:
            keys = ["instance_number", "SOPInstanceUID"]
            by_instance += 1
        ordered = series.sort_values(keys, kind="mergesort", na_position="last").index
        slice_index[ordered] = np.arange(len(ordered))
    return slice_index, by_instance


def _summary(result: PreprocessResult, cached: bool = False) -> str:
    text = (f"preprocess: {result.n_images} images {'already ' if cached else ''}in "
            f"{result.out}, {result.n_skipped} files skipped")
    if result.n_skipped:
        text += f" (see {result.out / 'skipped.csv'})"
    text += f", {result.n_ignored} non-.dcm files ignored"
    if result.n_unlabelled:
        text += f", {result.n_unlabelled} images unlabelled (not in train.csv)"
    if result.resumed_chunks:
        text += f"; resumed: {result.resumed_chunks} chunks were already done"
    return text


def preprocess(rsna_root, out, size: int = 128, channels: str = "gray", workers: int = 1,
               manifest=None, strict: bool = False, progress: bool = True, *,
               pseudonym_key: str | bytes | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
               overwrite: bool = False, verbose: bool | None = None,
               windows: tuple[Window, ...] = THESIS_WINDOWS,
               _stop_after_chunks: int | None = None) -> PreprocessResult:
    """Preprocess every DICOM slice under ``rsna_root`` into a cache folder ``out``.

    Args:
        rsna_root: RSNA-layout folder (``train.csv`` + ``train/<Study>/<Series>/<SOP>.dcm``);
            any folder of ``.dcm`` files works, labels then being -1.
        out: the cache folder (created).
        size: output side in pixels (thesis: 128).
        channels: ``"gray"`` (thesis) or ``"rgb"`` (the three windows kept as channels).
        workers: processes; 0 or None means all CPU cores.
        manifest: CSV restricting the run (a ``path`` column relative to the root, or a
            ``SOPInstanceUID`` column); listed files that are missing go to skipped.csv.
        strict: fail (PreprocessError, no cache written) if any file is skipped.
        progress: show a progress bar (stderr).
        pseudonym_key: HMAC key for patient pseudonyms; default: ``<out>/.pseudonym_key``.
        chunk_size: files per chunk (unit of work and of resuming).
        overwrite: discard an existing cache or unfinished run made with other settings.
        verbose: print the summary line (default: ``progress``).
        windows: three (level, width) windows; the thesis's by default.

    Returns:
        PreprocessResult(n_images, n_skipped, out, ...).

    Raises:
        PreprocessError: strict run with skipped files, or ``out`` holds a cache or an
            unfinished run made with other settings (and not ``overwrite``).
        FileNotFoundError: ``rsna_root`` (or the manifest) does not exist.
    """
    root, out = Path(rsna_root), Path(out)
    verbose = progress if verbose is None else verbose
    if channels not in ("gray", "rgb"):
        raise ValueError(f"channels must be 'gray' or 'rgb', not {channels!r}")
    if int(size) < 1 or int(chunk_size) < 1:
        raise ValueError("size and chunk_size must be positive")
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    size, chunk_size = int(size), int(chunk_size)
    windows = tuple(Window(float(level), float(width)) for level, width in windows)
    workers = int(workers or os.cpu_count() or 1)
    out.mkdir(parents=True, exist_ok=True)

    files, missing, n_ignored, manifest_labels = _discover(root, out, manifest)
    key = _load_or_make_key(out, pseudonym_key)
    plan = {"format_version": FORMAT_VERSION, "size": size, "channels": channels,
            "windows": [list(w) for w in windows], "chunk_size": chunk_size,
            "n_files": len(files), "key_fingerprint": _key_fingerprint(key),
            "files_sha256": hashlib.sha256("\n".join(files).encode()).hexdigest()}
    # the cache depends on all of the plan but the chunk size (which only shapes progress/)
    config_id = hashlib.sha256(json.dumps({k: v for k, v in plan.items() if k != "chunk_size"},
                                          sort_keys=True).encode()).hexdigest()
    done = _existing_cache(out, config_id, overwrite)
    if done is not None:
        if verbose:
            print(_summary(done, cached=True))
        return done
    shape = (size, size) if channels == "gray" else (3, size, size)
    work_path = _prepare_progress(out / "progress", plan, len(files), shape, overwrite)

    # ---- chunks: reuse the finished ones, run the rest
    rows_by_chunk = {}
    for marker in (out / "progress").glob("chunk_*.json"):
        record = json.loads(marker.read_text())
        rows_by_chunk[record["chunk"]] = record["rows"]
    resumed = len(rows_by_chunk)
    common = {"root": str(root), "work": str(work_path), "progress": str(out / "progress"),
              "offset": _data_offset(work_path), "shape": shape, "size": size,
              "channels": channels, "windows": [list(w) for w in windows], "key": key.hex()}
    n_chunks = -(-len(files) // chunk_size)
    jobs = [dict(common, chunk=c, start=c * chunk_size,
                 files=files[c * chunk_size:(c + 1) * chunk_size])
            for c in range(n_chunks) if c not in rows_by_chunk]
    _run_jobs(jobs, rows_by_chunk, workers, len(files), progress, _stop_after_chunks)

    # ---- finalise: skipped files, order, labels, then the files (settings.json last)
    rows = pd.DataFrame([row for c in range(n_chunks) for row in rows_by_chunk[c]],
                        columns=["slot", "path", "error", "reason", "SOPInstanceUID",
                                 "StudyInstanceUID", "SeriesInstanceUID", "patient_id", "z",
                                 "position", "instance_number"])
    ok, skipped = _split_skipped(rows, missing)
    if strict and len(skipped):
        _write_csv_atomic(skipped, out / "skipped.csv")
        listed = "\n".join(f"  {r.path}: {r.reason}" for r in skipped.head(20).itertuples())
        more = f"\n  ... and {len(skipped) - 20} more" if len(skipped) > 20 else ""
        raise PreprocessError(f"--strict: {len(skipped)} files skipped (listed in "
                              f"{out / 'skipped.csv'}):\n{listed}{more}")
    ok["slice_index"], by_instance = _order_series(ok)
    labels = _read_labels(root) or manifest_labels
    ok["pe_present_on_image"] = ok["SOPInstanceUID"].map(labels).fillna(-1).astype(np.int64)
    ok = ok.sort_values(["StudyInstanceUID", "SeriesInstanceUID", "slice_index"],
                        kind="mergesort").reset_index(drop=True)
    _gather_images(work_path, ok["slot"].to_numpy(), out / "images.npy", shape)
    _write_csv_atomic(ok[_INDEX_COLUMNS], out / "index.csv")
    _write_csv_atomic(skipped, out / "skipped.csv")

    label = ok["pe_present_on_image"]
    counts = {"images": len(ok), "skipped": len(skipped), "ignored_non_dcm": n_ignored,
              "unlabelled": int((label < 0).sum()), "positive": int((label == 1).sum()),
              "negative": int((label == 0).sum()),
              "studies": int(ok["StudyInstanceUID"].nunique()),
              "series": int(ok.groupby(["StudyInstanceUID", "SeriesInstanceUID"]).ngroups),
              "patients": int(ok["patient_id"].nunique()),
              "series_ordered_by_instance_number": by_instance}
    settings = {
        "format_version": FORMAT_VERSION, "size": size, "channels": channels,
        # where the slices came from, so a notebook can show the original DICOM of a row
        "rsna_root": str(root.resolve()),
        "shape": [len(ok), *shape], "dtype": "uint8",
        "scale": "uint8 value = round(255 * x), x in [0, 1]",
        "windows": [{"name": n, "level": w.level, "width": w.width}
                    for n, w in zip(_WINDOW_NAMES, windows)],
        "gray_weights": list(GRAY_WEIGHTS) if channels == "gray" else None,
        "hu": "RescaleSlope * stored + RescaleIntercept; PixelPaddingValue pixels -> -1000",
        "resize": "block mean for whole factors, else antialiased bilinear (PIL filter); "
                  "non-square slices padded to a square with air first",
        "order": "ImagePositionPatient on the slice normal, InstanceNumber as fallback",
        "labels": "train.csv" if (root / "train.csv").exists() else
                  ("manifest" if manifest_labels else "none"),
        "manifest": None if manifest is None else {
            "name": Path(manifest).name,
            "sha256": hashlib.sha256(Path(manifest).read_bytes()).hexdigest()},
        "pseudonym": {"method": "P + HMAC-SHA256(key, PatientID or StudyInstanceUID)[:16]",
                      "key_fingerprint": plan["key_fingerprint"],
                      "key_file": ".pseudonym_key" if pseudonym_key is None else None},
        "counts": counts, "pe_utils_version": _version(), "config_sha256": config_id,
    }
    _write_text_atomic(out / "settings.json", json.dumps(settings, indent=1) + "\n")
    shutil.rmtree(out / "progress")
    result = PreprocessResult(len(ok), len(skipped), out, n_ignored, counts["unlabelled"],
                              resumed)
    if verbose:
        print(_summary(result))
    return result


def _existing_cache(out: Path, config_id: str, overwrite: bool) -> PreprocessResult | None:
    """The result of a finished cache made with the same configuration (even when
    ``overwrite``: it would be rebuilt identically), else None (after removing a different
    one when ``overwrite``)."""
    settings_path = out / "settings.json"
    if not settings_path.exists():
        return None
    settings = json.loads(settings_path.read_text())
    if settings.get("config_sha256") == config_id:  # current: nothing to overwrite
        counts = settings["counts"]
        return PreprocessResult(counts["images"], counts["skipped"], out,
                                counts["ignored_non_dcm"], counts["unlabelled"])
    if not overwrite:
        raise PreprocessError(f"{out} holds a cache made with other settings or files; "
                              "pass --overwrite or choose another --out")
    for name in ("settings.json", "images.npy", "index.csv", "skipped.csv"):
        (out / name).unlink(missing_ok=True)
    return None


def _prepare_progress(progress_dir: Path, plan: dict, n_files: int, shape: tuple,
                      overwrite: bool) -> Path:
    """Keep an unfinished run made with the same plan, else start one: the work array
    (one slot per file, in file order) first, then ``plan.json``, which marks it valid."""
    plan_path = progress_dir / "plan.json"
    if progress_dir.exists():
        old = json.loads(plan_path.read_text()) if plan_path.exists() else None
        if old is not None and old != plan and not overwrite:
            raise PreprocessError(f"{progress_dir} holds an unfinished run with other settings "
                                  "or files; rerun it with the same options, or pass --overwrite")
        if old != plan:
            shutil.rmtree(progress_dir)
    progress_dir.mkdir(exist_ok=True)
    work_path = progress_dir / "work.npy"
    if not plan_path.exists():
        tmp = progress_dir / "work.tmp.npy"
        np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                  shape=(max(n_files, 1),) + shape).flush()
        os.replace(tmp, work_path)
        _write_text_atomic(plan_path, json.dumps(plan, indent=1))
    return work_path


def _split_skipped(rows: pd.DataFrame, missing: list) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(slices to keep, skipped.csv): read errors, repeated SOPInstanceUIDs (the first
    path wins), manifest entries not found."""
    ok = rows[rows["error"].isna()].copy()
    duplicated = ok["SOPInstanceUID"].duplicated(keep="first")
    first_path = ok[~duplicated].set_index("SOPInstanceUID")["path"]
    skipped = [(r.path, r.error, r.reason) for r in rows[rows["error"].notna()].itertuples()]
    skipped += [(r.path, "DuplicateSOPInstanceUID",
                 f"same SOPInstanceUID as {first_path[r.SOPInstanceUID]}")
                for r in ok[duplicated].itertuples()]
    skipped += [(path, "FileNotFoundError", reason) for path, reason in missing]
    ok = ok[~duplicated].copy()
    ok["instance_number"] = ok["instance_number"].astype("Int64")
    return ok, pd.DataFrame(sorted(skipped), columns=["path", "error", "reason"])


def _data_offset(npy_path: Path) -> int:
    """Where the array data starts in a ``.npy`` file (after its header)."""
    with open(npy_path, "rb") as f:
        major, _ = np.lib.format.read_magic(f)
        if major == 1:
            np.lib.format.read_array_header_1_0(f)
        else:
            np.lib.format.read_array_header_2_0(f)
        return f.tell()


def _gather_images(work_path: Path, slots: np.ndarray, path: Path, shape: tuple) -> None:
    """Copy the work array's slots, in index order, to ``path`` (tmp file + rename)."""
    work = np.load(work_path, mmap_mode="r")
    tmp = path.with_name(path.stem + ".tmp.npy")
    # open_memmap writes the header and sizes the file; the data goes in by plain writes
    np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(slots),) + shape)
    with open(tmp, "r+b") as f:
        f.seek(_data_offset(tmp))
        for start in range(0, len(slots), 4096):
            f.write(np.ascontiguousarray(work[slots[start:start + 4096]]).tobytes())
        f.flush()
        os.fsync(f.fileno())
    del work
    os.replace(tmp, path)


def _run_jobs(jobs, rows_by_chunk, workers, n_files, progress, stop_after):
    """Run the chunk jobs (in this process for one worker), filling ``rows_by_chunk``."""
    from tqdm.auto import tqdm

    done_files = sum(len(r) for r in rows_by_chunk.values())
    bar = tqdm(total=n_files, initial=done_files, unit="slice", desc="preprocess",
               disable=not progress, file=sys.stderr)
    finished = 0
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                rows_by_chunk[job["chunk"]] = _process_chunk(job)
                bar.update(len(job["files"]))
                finished += 1
                if stop_after is not None and finished >= stop_after:
                    raise PreprocessInterrupted(f"stopped after {finished} chunks; rerun to resume")
            return
        with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context()) as pool:
            futures = {pool.submit(_process_chunk, job): job for job in jobs}
            for future in as_completed(futures):
                job = futures[future]
                rows_by_chunk[job["chunk"]] = future.result()
                bar.update(len(job["files"]))
                finished += 1
                if stop_after is not None and finished >= stop_after:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise PreprocessInterrupted(f"stopped after {finished} chunks; rerun to resume")
    finally:
        bar.close()


def _mp_context():
    """fork on Linux (fast start, and a caller's script needs no ``__main__`` guard; the
    workers touch only numpy and pydicom, so a parent's threads do not matter), spawn
    elsewhere (macOS and Windows, where fork is unsafe or absent)."""
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("pe-contrastive")
    except Exception:
        return "unknown"


# ----------------------------------------------------------------------------- reading
def load_cache(cache_dir) -> Cache:
    """Open a finished cache folder.

    Returns:
        Cache with ``images`` (read-only memmap, uint8), ``index`` and ``skipped``
        (DataFrames, UIDs as strings), ``settings`` (dict) and ``dir``.

    Raises:
        FileNotFoundError: no ``settings.json`` (not a cache, or an unfinished run).
        ValueError: images and index disagree in length.
    """
    cache_dir = Path(cache_dir)
    if not (cache_dir / "settings.json").exists():
        raise FileNotFoundError(f"{cache_dir} is not a finished cache (no settings.json); "
                                "run `python -m pe_utils preprocess` (it resumes)")
    settings = json.loads((cache_dir / "settings.json").read_text())
    images = np.load(cache_dir / "images.npy", mmap_mode="r")
    index = pd.read_csv(cache_dir / "index.csv", dtype=_INDEX_DTYPES)
    index["instance_number"] = index["instance_number"].astype("Int64")
    skipped = pd.read_csv(cache_dir / "skipped.csv", dtype=str, keep_default_na=False)
    if len(index) != images.shape[0]:
        raise ValueError(f"{cache_dir}: index.csv has {len(index)} rows, "
                         f"images.npy {images.shape[0]} images")
    return Cache(images=images, index=index, skipped=skipped, settings=settings, dir=cache_dir)


# ----------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    """``python -m pe_utils preprocess ...``: 0 on success, 1 on failure, 3 if stopped early."""
    parser = argparse.ArgumentParser(
        prog="python -m pe_utils preprocess",
        description="DICOM folder -> preprocessed image cache (resumable; rerun to resume).")
    parser.add_argument("--rsna-root", required=True, help="RSNA-layout folder of .dcm files")
    parser.add_argument("--out", required=True, help="cache folder to write")
    parser.add_argument("--size", type=int, default=128, help="output side (default 128)")
    parser.add_argument("--channels", choices=("gray", "rgb"), default="gray",
                        help="gray (thesis) or the three windows as rgb channels")
    parser.add_argument("--workers", type=int, default=0, help="processes (0 = all cores)")
    parser.add_argument("--manifest", help="CSV with a path or SOPInstanceUID column")
    parser.add_argument("--strict", action="store_true", help="fail if any file is skipped")
    parser.add_argument("--pseudonym-key", help="HMAC key for patient pseudonyms "
                        "(default: a random key kept in OUT/.pseudonym_key)")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                        help=f"files per resumable chunk (default {DEFAULT_CHUNK_SIZE})")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard a cache or unfinished run made with other settings")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--stop-after-chunks", type=int, help=argparse.SUPPRESS)  # tests
    args = parser.parse_args(argv)
    try:
        preprocess(args.rsna_root, args.out, size=args.size, channels=args.channels,
                   workers=args.workers, manifest=args.manifest, strict=args.strict,
                   progress=not args.no_progress, pseudonym_key=args.pseudonym_key,
                   chunk_size=args.chunk_size, overwrite=args.overwrite, verbose=True,
                   _stop_after_chunks=args.stop_after_chunks)
    except PreprocessInterrupted as exc:
        print(f"preprocess: {exc}", file=sys.stderr)
        return 3
    except (PreprocessError, FileNotFoundError, ValueError) as exc:
        print(f"preprocess: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
