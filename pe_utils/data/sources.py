"""What a preprocessing run reads: the ``.dcm`` files under a root (or a manifest's), and labels.

Files are found by walking the root (``train/`` and ``test/`` alike, hidden folders, the
cache folder itself and a phantom's clot masks, ``masks/`` with its ``masks.json``, left out:
:mod:`pe_utils.data.masks` reads those); other files are counted and ignored. A manifest restricts the
run to the files it lists, by path or by SOPInstanceUID. Labels come from ``<root>/train.csv``
(RSNA's ``pe_present_on_image``), else from the manifest.
"""
from __future__ import annotations

import os
import posixpath
from pathlib import Path

import pandas as pd

from .errors import PreprocessError

__all__ = ["discover", "read_labels"]


def _walk(root: Path, out: Path) -> tuple[list[str], int]:
    """Every ``.dcm`` under ``root`` (relative posix paths, sorted) and the count of others."""
    out_resolved = out.resolve()
    found, ignored = [], 0
    masks = root / "masks"  # a phantom's clot masks (pe_utils.phantom.masks): read, not ignored
    masks = masks.resolve() if (masks / "masks.json").is_file() else None
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (here / d).resolve() not in (out_resolved, masks))
        for name in filenames:
            if name.lower().endswith(".dcm"):
                found.append((here / name).relative_to(root).as_posix())
            elif not name.startswith("."):
                ignored += 1
    found.sort()
    return found, ignored


def _manifest_path(row: dict, root: Path, by_name: dict[str, str]) -> str:
    """The root-relative path a manifest row names (by path, else by SOPInstanceUID)."""
    rel = row.get("path", "").strip().replace("\\", "/")
    if rel:
        if Path(rel).is_absolute():  # accepted, stored relative when under the root
            try:
                rel = Path(rel).resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                pass
        return posixpath.normpath(rel)
    sop = row.get("SOPInstanceUID", "").strip()
    rel = by_name.get(sop, "")
    if not rel:
        study, series = row.get("StudyInstanceUID", ""), row.get("SeriesInstanceUID", "")
        rel = f"train/{study}/{series}/{sop}.dcm" if study and series else f"{sop}.dcm"
    return rel


def discover(root: Path, out: Path, manifest: str | Path | None
             ) -> tuple[list[str], list[tuple[str, str]], int, dict[str, int]]:
    """The files a run processes.

    Args:
        root: the DICOM folder.
        out: the cache folder (left out of the walk when it lies under ``root``).
        manifest: a CSV with a ``path`` (relative to the root, or absolute) or a
            ``SOPInstanceUID`` column, optionally ``pe_present_on_image``; None for all files.

    Returns:
        ``(files, missing, n_ignored, labels)``: relative posix paths to process (sorted);
        ``(path, reason)`` of manifest entries not found; the number of non-.dcm files
        ignored; the manifest's labels by SOPInstanceUID.

    Raises:
        PreprocessError: the manifest has neither a ``path`` nor a ``SOPInstanceUID`` column.
    """
    found, ignored = _walk(root, out)
    if manifest is None:
        return found, [], ignored, {}

    table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    if "path" not in table.columns and "SOPInstanceUID" not in table.columns:
        raise PreprocessError(f"manifest {manifest} needs a 'path' or 'SOPInstanceUID' column")
    by_name = {Path(p).stem: p for p in found}
    present = set(found)
    wanted, missing = [], []
    for row in table.itertuples(index=False):
        rel = _manifest_path(row._asdict(), root, by_name)
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


def read_labels(root: Path) -> dict[str, int]:
    """pe_present_on_image by SOPInstanceUID from ``<root>/train.csv`` (empty if absent)."""
    path = root / "train.csv"
    if not path.exists():
        return {}
    table = pd.read_csv(path, usecols=["SOPInstanceUID", "pe_present_on_image"],
                        dtype={"SOPInstanceUID": str}).dropna()
    return dict(zip(table["SOPInstanceUID"], table["pe_present_on_image"].astype(int)))
