"""The cache contract: the folder preprocessing writes and every later step reads.

- ``images.npy``: uint8 (N, size, size) for gray, (N, 3, size, size) for rgb;
  value = round(255 * x), x in [0, 1] (:func:`quantize`). Load with ``mmap_mode="r"``.
- ``index.csv``: row i describes image i (:data:`INDEX_COLUMNS`): SOPInstanceUID,
  StudyInstanceUID, SeriesInstanceUID, patient_id (a pseudonym), slice_index (0.. along the
  series), pe_present_on_image (1/0; -1 when unlabelled), z (ImagePositionPatient z, mm),
  instance_number, path (relative to the DICOM root). Rows sorted by (StudyInstanceUID,
  SeriesInstanceUID, slice_index).
- ``masks.npy`` (optional: phantom data only): uint8 (N, size, size), row i the clot mask of
  image i (1 = clot; a slice is positive exactly when its mask is non-empty), see
  :mod:`pe_utils.data.masks`; absent for data without masks (real RSNA).
- ``skipped.csv``: path, error, reason: every file not in the cache and why.
- ``settings.json``: what made the cache and the counts; written last, it marks completion.

Slices are ordered along a series by their position on the slice normal (the
ImagePositionPatient z for axial slices); a series where a slice lacks a position is ordered
by InstanceNumber instead. Every file is written atomically (:mod:`pe_utils.io`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_open, sha256_file, write_atomic
from .errors import CacheError
from .windows import GRAY_WEIGHTS, Window

__all__ = ["Cache", "load_cache", "FORMAT_VERSION", "INDEX_COLUMNS", "quantize", "split_skipped",
           "build_index", "cache_settings", "write_cache", "write_csv", "allocate_npy",
           "data_offset"]

FORMAT_VERSION = 1
INDEX_COLUMNS = ["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "patient_id",
                 "slice_index", "pe_present_on_image", "z", "instance_number", "path"]
_INDEX_DTYPES = {"SOPInstanceUID": str, "StudyInstanceUID": str, "SeriesInstanceUID": str,
                 "patient_id": str, "path": str}
_WINDOW_NAMES = ("lung", "mediastinum", "pe")


@dataclass
class Cache:
    """A finished cache folder, loaded: ``images`` is a read-only memmap."""

    images: np.ndarray
    index: pd.DataFrame
    skipped: pd.DataFrame
    settings: dict
    dir: Path
    #: uint8 (N, H, W) read-only memmap, 1 = clot (phantom caches), or None (no masks.npy)
    masks: np.ndarray | None = None


def load_cache(cache_dir: str | Path) -> Cache:
    """Open a finished cache folder, checking that its files agree; cheaply: of ``images.npy``
    only the header is read (the data are memory-mapped).

    Returns:
        Cache with ``images`` (read-only memmap, uint8), ``index`` and ``skipped``
        (DataFrames, UIDs as strings), ``settings`` (dict), ``dir`` and ``masks`` (the clot
        masks, read-only memmap, or None when the cache has none).

    Raises:
        FileNotFoundError: no ``settings.json`` (not a cache, or an unfinished run).
        CacheError: (a ValueError) ``settings.json`` unreadable; ``images.npy``, ``index.csv`` or
            ``skipped.csv`` missing or unreadable; a column of :data:`INDEX_COLUMNS` missing; index
            rows and images (or masks) of different counts. It names the folder and the remedy.
    """
    cache_dir = Path(cache_dir)
    if not (cache_dir / "settings.json").exists():
        raise FileNotFoundError(f"{cache_dir} is not a finished cache (no settings.json); "
                                "run `python -m pe_utils preprocess` (it resumes)")
    try:
        settings = json.loads((cache_dir / "settings.json").read_text())
        root = settings.get("rsna_root")   # the DICOM folder the error's remedy preprocesses
    except (OSError, ValueError, AttributeError) as exc:   # AttributeError: JSON but no object
        raise CacheError(cache_dir, f"settings.json is unreadable ({exc})") from exc
    images = _open_npy(cache_dir, "images.npy", root)
    index = _read_csv(cache_dir, "index.csv", root, dtype=_INDEX_DTYPES)
    missing = [c for c in INDEX_COLUMNS if c not in index.columns]
    if missing:   # a file cut short in its header, or not the cache's index
        raise CacheError(cache_dir, f"index.csv lacks the column(s) {', '.join(missing)} "
                         f"(it has {', '.join(map(str, index.columns)) or 'none'})", root)
    if len(index) != images.shape[0]:
        raise CacheError(cache_dir, f"index.csv has {len(index)} rows but images.npy holds {images.shape[0]} "
                         "images (one row per image: a file cut short or replaced)", root)
    try:
        index["instance_number"] = index["instance_number"].astype("Int64")
    except (TypeError, ValueError) as exc:
        raise CacheError(cache_dir, f"index.csv's instance_number is not whole numbers ({exc})", root) from exc
    skipped = _read_csv(cache_dir, "skipped.csv", root, dtype=str, keep_default_na=False)
    masks = None
    if (cache_dir / "masks.npy").exists():
        masks = _open_npy(cache_dir, "masks.npy", root)
        if masks.shape != (len(index),) + images.shape[-2:]:
            raise CacheError(cache_dir, f"masks.npy has shape {masks.shape}, expected "
                             f"{(len(index),) + images.shape[-2:]} (one mask per image)", root)
    return Cache(images=images, index=index, skipped=skipped, settings=settings, dir=cache_dir,
                 masks=masks)


def _open_npy(cache_dir: Path, name: str, root: str | None) -> np.ndarray:
    try:   # a file shorter than its header says fails to map: ValueError
        return np.load(cache_dir / name, mmap_mode="r")
    except (OSError, ValueError, EOFError) as exc:
        raise CacheError(cache_dir, f"{name} is missing or unreadable ({exc})", root) from exc


def _read_csv(cache_dir: Path, name: str, root: str | None, **options) -> pd.DataFrame:
    try:
        return pd.read_csv(cache_dir / name, **options)
    except (OSError, ValueError) as exc:   # missing, empty, or rows that do not parse
        raise CacheError(cache_dir, f"{name} is missing or unreadable ({exc})", root) from exc


def quantize(x: np.ndarray) -> np.ndarray:
    """The cache's value mapping: round(255 * x), x clipped to [0, 1] (ties to even); uint8."""
    return np.rint(np.clip(x, 0.0, 1.0) * np.float32(255.0)).astype(np.uint8)


# ----------------------------------------------------------------------------- the index
def split_skipped(rows: pd.DataFrame, missing: list[tuple[str, str]]
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(slices to keep, skipped.csv) of a run's rows: read errors, repeated SOPInstanceUIDs
    (the first path wins) and manifest entries not found (``missing``) are skipped."""
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


def build_index(ok: pd.DataFrame, labels: dict[str, int]) -> tuple[pd.DataFrame, int]:
    """The kept slices with slice_index and pe_present_on_image, in the cache's row order.

    Args:
        ok: kept rows (from :func:`split_skipped`), with ``slot`` and ``position``.
        labels: pe_present_on_image by SOPInstanceUID; others get -1.

    Returns:
        ``(index, n_series_ordered_by_instance_number)``.
    """
    ok = ok.copy()
    ok["slice_index"], by_instance = _order_series(ok)
    ok["pe_present_on_image"] = ok["SOPInstanceUID"].map(labels).fillna(-1).astype(np.int64)
    ok = ok.sort_values(["StudyInstanceUID", "SeriesInstanceUID", "slice_index"],
                        kind="mergesort").reset_index(drop=True)
    return ok, by_instance


def _counts(index: pd.DataFrame, skipped: pd.DataFrame, n_ignored: int, by_instance: int) -> dict:
    label = index["pe_present_on_image"]
    return {"images": len(index), "skipped": len(skipped), "ignored_non_dcm": n_ignored,
            "unlabelled": int((label < 0).sum()), "positive": int((label == 1).sum()),
            "negative": int((label == 0).sum()),
            "studies": int(index["StudyInstanceUID"].nunique()),
            "series": int(index.groupby(["StudyInstanceUID", "SeriesInstanceUID"]).ngroups),
            "patients": int(index["patient_id"].nunique()),
            "series_ordered_by_instance_number": by_instance}


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("pe-contrastive")
    except Exception:
        return "unknown"


def cache_settings(*, root: Path, size: int, channels: str, windows: tuple[Window, ...],
                   index: pd.DataFrame, skipped: pd.DataFrame, n_ignored: int, by_instance: int,
                   labels: str, manifest: str | Path | None, key_fingerprint: str,
                   key_file: str | None, config_id: str) -> dict:
    """The content of ``settings.json``: how the cache was made, and its counts.

    Args:
        root: the DICOM folder (kept, so a notebook can show a row's original slice).
        size, channels, windows: the preprocessing settings.
        index, skipped: from :func:`build_index` and :func:`split_skipped`.
        n_ignored: non-.dcm files under the root; by_instance: series ordered by
            InstanceNumber.
        labels: where labels came from (``"train.csv"``, ``"manifest"`` or ``"none"``).
        manifest: the manifest file, if any (its name and sha256 are kept).
        key_fingerprint, key_file: the pseudonym key's fingerprint and file (None when given).
        config_id: sha256 of everything the cache depends on; a rerun compares it.
    """
    shape = (size, size) if channels == "gray" else (3, size, size)
    return {
        "format_version": FORMAT_VERSION, "size": size, "channels": channels,
        "rsna_root": str(root.resolve()),
        "shape": [len(index), *shape], "dtype": "uint8",
        "scale": "uint8 value = round(255 * x), x in [0, 1]",
        "windows": [{"name": n, "level": w.level, "width": w.width}
                    for n, w in zip(_WINDOW_NAMES, windows)],
        "gray_weights": list(GRAY_WEIGHTS) if channels == "gray" else None,
        "hu": "RescaleSlope * stored + RescaleIntercept; PixelPaddingValue pixels -> -1000",
        "resize": "block mean for whole factors, else antialiased bilinear (PIL filter); "
                  "non-square slices padded to a square with air first",
        "order": "ImagePositionPatient on the slice normal, InstanceNumber as fallback",
        "labels": labels,
        "manifest": None if manifest is None else {
            "name": Path(manifest).name, "sha256": sha256_file(manifest)},
        "pseudonym": {"method": "P + HMAC-SHA256(key, PatientID or StudyInstanceUID)[:16]",
                      "key_fingerprint": key_fingerprint, "key_file": key_file},
        "counts": _counts(index, skipped, n_ignored, by_instance),
        "pe_utils_version": _version(), "config_sha256": config_id,
    }


# ----------------------------------------------------------------------------- the files
def _write_npy_header(fh, shape: tuple) -> None:
    # the header numpy.save and open_memmap write (format 1.0), so the bytes stay the same
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
              "fortran_order": False, "shape": tuple(shape)}
    np.lib.format.write_array_header_1_0(fh, header)


def allocate_npy(path: Path, shape: tuple) -> None:
    """Write a zero-filled uint8 ``.npy`` of ``shape`` (sparse where the OS allows), atomically."""
    with atomic_open(path, "wb") as fh:
        _write_npy_header(fh, shape)
        fh.truncate(fh.tell() + int(np.prod(shape)))


def data_offset(npy_path: Path) -> int:
    """Where the array data starts in a ``.npy`` file (after its header)."""
    with open(npy_path, "rb") as f:
        major, _ = np.lib.format.read_magic(f)
        if major == 1:
            np.lib.format.read_array_header_1_0(f)
        else:
            np.lib.format.read_array_header_2_0(f)
        return f.tell()


def _gather_images(work_path: Path, slots: np.ndarray, path: Path, shape: tuple) -> None:
    """Copy the work array's slots, in index order, to ``path`` (atomically)."""
    work = np.load(work_path, mmap_mode="r")
    with atomic_open(path, "wb") as fh:
        _write_npy_header(fh, (len(slots),) + shape)
        for start in range(0, len(slots), 4096):
            fh.write(np.ascontiguousarray(work[slots[start:start + 4096]]).tobytes())
    del work


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` as CSV without its index, atomically (streamed, so a large index fits)."""
    with atomic_open(path, "w") as fh:
        frame.to_csv(fh, index=False, lineterminator="\n")


def write_cache(out: Path, index: pd.DataFrame, skipped: pd.DataFrame, work_path: Path,
                settings: dict, masks_work: Path | None = None) -> None:
    """Write a finished cache into ``out``: images, index, skipped, then settings.json.

    Args:
        out: the cache folder.
        index: from :func:`build_index` (its ``slot`` column points into the work array).
        skipped: from :func:`split_skipped`.
        work_path: the run's work array, one image per slot.
        settings: what made the cache; written last, as the mark of completion.
        masks_work: the run's clot masks, one per slot (gathered into ``masks.npy``), or
            None (a stale ``masks.npy`` is removed).
    """
    shape = tuple(np.load(work_path, mmap_mode="r").shape[1:])
    _gather_images(work_path, index["slot"].to_numpy(), out / "images.npy", shape)
    if masks_work is None:
        (out / "masks.npy").unlink(missing_ok=True)
    else:
        mask_shape = tuple(np.load(masks_work, mmap_mode="r").shape[1:])
        _gather_images(masks_work, index["slot"].to_numpy(), out / "masks.npy", mask_shape)
    write_csv(index[INDEX_COLUMNS], out / "index.csv")
    write_csv(skipped, out / "skipped.csv")
    write_atomic(out / "settings.json", json.dumps(settings, indent=1) + "\n")
