"""Resumable work for preprocessing: the ``progress/`` folder, one chunk of files, the pool.

Work goes in chunks of files. ``progress/plan.json`` says what the run makes and marks
``progress/work.npy`` (preallocated, one image slot per file, in file order; with clot masks,
``progress/masks.npy`` likewise) as valid; each
finished chunk writes and fsyncs its images (and masks) into its slots, then records its rows in an
atomically written ``progress/chunk_<n>.json``. A run that is killed resumes where it
stopped and ends byte-identical to an uninterrupted run, whatever the number of workers or
the chunk size.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from ..io import write_atomic
from .cache import allocate_npy, quantize
from .dicom import read_windowed
from .errors import DicomReadError, PreprocessError, PreprocessInterrupted
from .header import SliceMeta
from .masks import MaskReader
from .pseudonym import pseudonym
from .resize import air_fill, resize
from .windows import Window

__all__ = ["prepare_progress", "finished_chunks", "process_chunk", "run_jobs"]


def prepare_progress(progress_dir: Path, plan: dict, n_files: int, shape: tuple,
                     overwrite: bool, mask_shape: tuple | None = None) -> Path:
    """Keep an unfinished run made with the same plan, else start one; return the work array.

    A new run writes the work array (``(max(n_files, 1),) + shape`` uint8 zeros) first, and
    with ``mask_shape`` the masks' (``progress/masks.npy``), then ``plan.json``, which marks
    them valid.

    Raises:
        PreprocessError: an unfinished run with another plan is there and not ``overwrite``.
    """
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
        allocate_npy(work_path, (max(n_files, 1),) + shape)
        if mask_shape is not None:
            allocate_npy(progress_dir / "masks.npy", (max(n_files, 1),) + tuple(mask_shape))
        write_atomic(plan_path, json.dumps(plan, indent=1))
    return work_path


def finished_chunks(progress_dir: Path) -> dict[int, list[dict]]:
    """The rows of every chunk an earlier run finished, by chunk number."""
    rows_by_chunk = {}
    for marker in progress_dir.glob("chunk_*.json"):
        record = json.loads(marker.read_text())
        rows_by_chunk[record["chunk"]] = record["rows"]
    return rows_by_chunk


def _read_file(path: Path, job: dict, windows: tuple[Window, ...], fill: np.ndarray,
               out: np.ndarray, masks: MaskReader | None = None,
               mask_out: np.ndarray | None = None) -> tuple[SliceMeta | None, dict]:
    """One file into ``out`` (its slot) and its clot mask into ``mask_out`` when ``masks``:
    ``(meta, {})`` (``{"mask_missing": reason}`` for a slice without a mask), or
    ``(None, {"error", "reason"})``."""
    try:
        image, meta = read_windowed(path, job["channels"], windows)
        out[...] = quantize(resize(image, job["size"], fill))
    except DicomReadError as exc:
        return None, {"error": type(exc).__name__, "reason": exc.reason}
    except OSError as exc:
        return None, {"error": type(exc).__name__, "reason": "cannot read the file"}
    except Exception as exc:  # a bug or an exotic file: listed, never silent
        return None, {"error": type(exc).__name__, "reason": "unexpected error while reading"}
    if masks is None:
        return meta, {}
    mask, reason = masks.get(meta.study_instance_uid, meta.series_instance_uid,
                             meta.sop_instance_uid, image.shape[-2:], job["size"])
    if mask is None:
        return meta, {"mask_missing": reason}
    mask_out[...] = mask
    return meta, {}


def process_chunk(job: dict) -> list[dict]:
    """Read, window, resize and store one chunk of files; record it as done. Runs in a worker.

    Args:
        job: plain values (it crosses process boundaries): ``root``, ``files`` (relative
            paths), ``chunk`` (its number), ``start`` (slot of its first file), ``work`` and
            ``offset`` (the work array and where its data starts), ``progress`` (folder),
            ``shape``, ``size``, ``channels``, ``windows`` and ``key`` (hex).

    Returns:
        One row per file (``slot``, ``path``, then the slice's UIDs or ``error``/``reason``).
    """
    root, windows = Path(job["root"]), tuple(Window(*w) for w in job["windows"])
    fill = air_fill(job["channels"], windows)
    key = bytes.fromhex(job["key"])
    # The chunk's slots are contiguous: fill them in memory, then one write and one fsync
    # (cheaper than page faults on a memory map, and durable before the marker exists).
    block = np.zeros((len(job["files"]),) + tuple(job["shape"]), dtype=np.uint8)
    masks = MaskReader(job["masks_root"]) if job.get("masks_root") else None
    mask_block = np.zeros((len(job["files"]), job["size"], job["size"]), np.uint8) if masks else None
    rows, pseudonyms = [], {}  # a series shares its patient: one HMAC per patient
    with warnings.catch_warnings():
        # pydicom warnings may quote header values; the reasons we keep are our own.
        warnings.simplefilter("ignore")
        for i, rel in enumerate(job["files"]):
            meta, error = _read_file(root / rel, job, windows, fill, block[i], masks,
                                     None if masks is None else mask_block[i])
            row = {"slot": job["start"] + i, "path": rel, **error}
            if meta is not None:
                if meta.patient_key not in pseudonyms:
                    pseudonyms[meta.patient_key] = pseudonym(meta.patient_key, key)
                row.update(SOPInstanceUID=meta.sop_instance_uid,
                           StudyInstanceUID=meta.study_instance_uid,
                           SeriesInstanceUID=meta.series_instance_uid,
                           patient_id=pseudonyms[meta.patient_key], z=meta.z,
                           position=meta.position, instance_number=meta.instance_number)
            rows.append(row)
    for data, work, offset in ((block, job["work"], job["offset"]),
                               (mask_block, job.get("masks_work"), job.get("masks_offset"))):
        if data is None or not len(data):
            continue
        with open(work, "r+b") as f:
            f.seek(offset + job["start"] * data[0].nbytes)
            f.write(data.tobytes())
            f.flush()
            os.fsync(f.fileno())
    marker = Path(job["progress"]) / f"chunk_{job['chunk']:07d}.json"
    write_atomic(marker, json.dumps({"chunk": job["chunk"], "rows": rows}))
    return rows


def _mp_context():
    """fork on Linux (fast start, and a caller's script needs no ``__main__`` guard; the
    workers touch only numpy and pydicom, so a parent's threads do not matter), spawn
    elsewhere (macOS and Windows, where fork is unsafe or absent)."""
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def run_jobs(jobs: list[dict], rows_by_chunk: dict, workers: int, n_files: int, progress: bool,
             stop_after: int | None) -> None:
    """Run the chunk jobs (in this process for one worker), filling ``rows_by_chunk``.

    Raises:
        PreprocessInterrupted: ``stop_after`` chunks finished (a testing hook).
    """
    from tqdm.auto import tqdm

    done_files = sum(len(r) for r in rows_by_chunk.values())
    bar = tqdm(total=n_files, initial=done_files, unit="slice", desc="preprocess",
               disable=not progress, file=sys.stderr)
    finished = 0
    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                rows_by_chunk[job["chunk"]] = process_chunk(job)
                bar.update(len(job["files"]))
                finished += 1
                if stop_after is not None and finished >= stop_after:
                    raise PreprocessInterrupted(f"stopped after {finished} chunks; rerun to resume")
            return
        with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context()) as pool:
            futures = {pool.submit(process_chunk, job): job for job in jobs}
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
