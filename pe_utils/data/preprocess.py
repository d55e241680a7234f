"""DICOM folder -> preprocessed image cache: parallel, resumable, with a skipped-file report.

``python -m pe_utils preprocess --rsna-root DIR --out CACHE [--size 128] [--channels gray|rgb]
[--workers N] [--manifest FILE] [--strict] [--pseudonym-key KEY] [--overwrite]``

Each ``.dcm`` file under the root (:mod:`pe_utils.data.sources`) is read to HU, windowed
(thesis 4.1.1), converted to gray (or kept as the three window channels)
(:mod:`pe_utils.data.dicom`, :mod:`pe_utils.data.windows`), resized to ``size`` x ``size``
(:mod:`pe_utils.data.resize`) and stored as uint8 in the cache folder described in
:mod:`pe_utils.data.cache`; a phantom's clot masks go beside the images at the same size,
as ``masks.npy`` (:mod:`pe_utils.data.masks`; none for data without masks). The work runs in
resumable chunks (:mod:`pe_utils.data.chunks`):
a run that is killed resumes where it stopped, and a finished cache made with the same
settings and files is detected and kept.

Privacy: patient_id is a keyed pseudonym (:mod:`pe_utils.data.pseudonym`). No name, ID, birth
date, institution or date from the DICOM headers is written to the cache, printed or put
into an error message.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..io import sha256_text
# load_cache is re-exported: notebooks read ``from pe_utils.data.preprocess import load_cache``
from .cache import (FORMAT_VERSION, build_index, cache_settings, data_offset,  # noqa: F401
                    load_cache, split_skipped, write_cache, write_csv)
from .chunks import finished_chunks, prepare_progress, run_jobs
from .masks import mask_settings, mask_source
from .errors import PreprocessError, PreprocessInterrupted
from .pseudonym import KEY_FILE, key_fingerprint, load_or_make_key
from .sources import discover, read_labels
from .windows import THESIS_WINDOWS, Window

__all__ = ["preprocess", "main", "load_cache", "PreprocessResult", "PreprocessError",
           "PreprocessInterrupted", "DEFAULT_CHUNK_SIZE"]

DEFAULT_CHUNK_SIZE = 64  # files per chunk: the unit of parallel work and of resuming
_ROW_COLUMNS = ["slot", "path", "error", "reason", "SOPInstanceUID", "StudyInstanceUID",
                "SeriesInstanceUID", "patient_id", "z", "position", "instance_number",
                "mask_missing"]


@dataclass(frozen=True)
class PreprocessResult:
    """What a run produced: images written, files skipped, the cache folder."""

    n_images: int
    n_skipped: int
    out: Path
    n_ignored: int = 0  # non-.dcm files under the root
    n_unlabelled: int = 0  # images not in train.csv (pe_present_on_image == -1)
    resumed_chunks: int = 0  # chunks found finished from an earlier run


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
    for name in ("settings.json", "images.npy", "masks.npy", "index.csv", "skipped.csv"):
        (out / name).unlink(missing_ok=True)
    return None


def _run_chunks(root: Path, out: Path, files: list[str], plan: dict, key: bytes, workers: int,
                progress: bool, overwrite: bool, stop_after: int | None
                ) -> tuple[pd.DataFrame, Path, int]:
    """Run (or resume) the chunks of a plan: ``(rows of every file, work array, resumed)``."""
    size, chunk_size, channels = plan["size"], plan["chunk_size"], plan["channels"]
    shape = (size, size) if channels == "gray" else (3, size, size)
    progress_dir = out / "progress"
    masks = "masks" in plan  # the root holds clot masks (pe_utils.data.masks)
    work_path = prepare_progress(progress_dir, plan, len(files), shape, overwrite,
                                 (size, size) if masks else None)
    rows_by_chunk = finished_chunks(progress_dir)
    resumed = len(rows_by_chunk)
    common = {"root": str(root), "work": str(work_path), "progress": str(progress_dir),
              "offset": data_offset(work_path), "shape": shape, "size": size,
              "channels": channels, "windows": plan["windows"], "key": key.hex()}
    if masks:
        masks_work = progress_dir / "masks.npy"
        common.update(masks_root=str(root), masks_work=str(masks_work),
                      masks_offset=data_offset(masks_work))
    n_chunks = -(-len(files) // chunk_size)
    jobs = [dict(common, chunk=c, start=c * chunk_size,
                 files=files[c * chunk_size:(c + 1) * chunk_size])
            for c in range(n_chunks) if c not in rows_by_chunk]
    run_jobs(jobs, rows_by_chunk, workers, len(files), progress, stop_after)
    rows = pd.DataFrame([row for c in range(n_chunks) for row in rows_by_chunk[c]],
                        columns=_ROW_COLUMNS)
    return rows, work_path, resumed


def _refuse_skipped(out: Path, skipped: pd.DataFrame) -> None:
    """``--strict``: write skipped.csv (no cache) and raise PreprocessError listing the files."""
    write_csv(skipped, out / "skipped.csv")
    listed = "\n".join(f"  {r.path}: {r.reason}" for r in skipped.head(20).itertuples())
    more = f"\n  ... and {len(skipped) - 20} more" if len(skipped) > 20 else ""
    raise PreprocessError(f"--strict: {len(skipped)} files skipped (listed in "
                          f"{out / 'skipped.csv'}):\n{listed}{more}")


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
        ValueError: unknown ``channels``, non-positive ``size`` or ``chunk_size``.
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
    out.mkdir(parents=True, exist_ok=True)

    files, missing, n_ignored, manifest_labels = discover(root, out, manifest)
    key = load_or_make_key(out, pseudonym_key)
    plan = {"format_version": FORMAT_VERSION, "size": size, "channels": channels,
            "windows": [list(w) for w in windows], "chunk_size": chunk_size,
            "n_files": len(files), "key_fingerprint": key_fingerprint(key),
            "files_sha256": sha256_text("\n".join(files))}
    if mask_source(root) is not None:  # only then: caches of data without masks keep their id
        plan["masks"] = mask_source(root)
    # the cache depends on all of the plan but the chunk size (which only shapes progress/)
    config_id = sha256_text(json.dumps({k: v for k, v in plan.items() if k != "chunk_size"},
                                       sort_keys=True))
    done = _existing_cache(out, config_id, overwrite)
    if done is not None:
        if verbose:
            print(_summary(done, cached=True))
        return done

    rows, work_path, resumed = _run_chunks(root, out, files, plan, key,
                                           int(workers or os.cpu_count() or 1), progress,
                                           overwrite, _stop_after_chunks)
    ok, skipped = split_skipped(rows, missing)
    if strict and len(skipped):
        _refuse_skipped(out, skipped)
    index, by_instance = build_index(ok, read_labels(root) or manifest_labels)
    labels = ("train.csv" if (root / "train.csv").exists() else
              "manifest" if manifest_labels else "none")
    settings = cache_settings(
        root=root, size=size, channels=channels, windows=windows, index=index, skipped=skipped,
        n_ignored=n_ignored, by_instance=by_instance, labels=labels, manifest=manifest,
        key_fingerprint=plan["key_fingerprint"],
        key_file=KEY_FILE if pseudonym_key is None else None, config_id=config_id)
    masks_work = None
    if "masks" in plan:
        masks_work = out / "progress" / "masks.npy"
        settings["masks"] = mask_settings(index, plan["masks"], size, masks_work)
    write_cache(out, index, skipped, work_path, settings, masks_work)
    shutil.rmtree(out / "progress")
    result = PreprocessResult(len(index), len(skipped), out, n_ignored,
                              settings["counts"]["unlabelled"], resumed)
    if verbose:
        print(_summary(result))
    return result


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
