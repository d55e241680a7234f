"""The data of Cases 2 and 4: Dataset2 and its separate test set, as two caches.

Dataset2 (thesis 5.1.1: 19,946 images, 15.38 % positive) is split later by patient into training
and validation (:func:`pe_utils.patient_split`); the test set (455 images, 146 positive) comes
from patients in neither. With RSNA data the two are manifests of ``pe_utils/data/specs``
(``python -m pe_utils manifest``) preprocessed into two caches given as ``cache_dir`` and
``test_cache_dir``. Without data, :func:`ensure_dataset2` makes both from the phantom the same
way: it generates a pool phantom, picks Dataset2 from it by whole patients with the manifest
builder (:func:`pe_utils.build_manifest` on a spec scaled to the profile's ``data2`` section), and
preprocesses only that manifest; the test set comes from a second phantom (another seed: other
patients and UIDs), a capped sample of each patient's slices, excluding Dataset2's patients.

15.38 % positive images cannot be made of whole exams holding RSNA's 4.2 %: like the thesis's
enriched subset, the pool holds positive-rich exams (nearly every patient positive, see the
profile's comment). Everything is done once and detected as done (a stamp per phantom, the
preprocessing's own settings); a changed generator or profile makes new data.

Folder: ``<root>/dataset2-<profile>/`` with ``phantom/``, ``phantom_test/``, ``manifest.csv``,
``manifest_test.csv`` (with their summaries), ``cache/`` and ``cache_test/``.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import read_json, write_json
from ..paths import project_root
from ..profiles import resolve
from .defaults import _generator_hash, prepare_cache
from .manifest import build_manifest, load_spec, read_train_csv, write_manifest
from .selection import PATIENT, pick_whole_patients

#: datasets a Case2/Case4 run (or notebook 02) trains on: Dataset1 (Case1's cache; Table 6.3
#: exp. 1), the 16.09 % subset of Dataset2 (exp. 2-10) and Dataset2 (exp. 11, Table 6.4)
DATASETS = ("dataset1", "dataset2_1609", "dataset2")
#: Table 6.3's second dataset: 15,555 images, 16.09 % positive (exp. 2-10)
SUBSET_1609 = dict(n_images=15555, positive_fraction=0.1609)


def dataset2_folder(profile: str, root: str | Path | None = None) -> Path:
    """``<root>/dataset2-<profile>`` (default root: the project's ``data/``)."""
    base = Path(root) if root is not None else project_root() / "data"
    return (base / f"dataset2-{profile}").resolve()


def dataset2_specs(profile: str) -> tuple[dict, dict]:
    """The specs of Dataset2 and of its test set, scaled to the profile's ``data2`` section.

    The thesis profile keeps the specs' counts and tolerances; smaller profiles set their own
    (a few whole 60-slice patients cannot meet 0.5 % on the image count).
    """
    cfg = resolve("data2", profile)
    train, test = load_spec("dataset2"), load_spec("case2_test")
    train.update(n_images=cfg["n_images"], n_positive=cfg["n_positive"],
                 positive_fraction=round(cfg["n_positive"] / cfg["n_images"], 4))
    test.update(n_images=cfg["test_n_images"], n_positive=cfg["test_n_positive"],
                positive_fraction=round(cfg["test_n_positive"] / cfg["test_n_images"], 4))
    if cfg.get("tolerance"):
        train["tolerance"] = dict(cfg["tolerance"])
    if cfg.get("test_tolerance"):
        test["tolerance"] = dict(cfg["test_tolerance"])
    if cfg.get("test_caps"):
        test["partial"] = dict(max_positive_per_patient=int(cfg["test_caps"][0]),
                               max_negative_per_patient=int(cfg["test_caps"][1]))
    return train, test


def ensure_phantom(folder: Path, caches: list[Path], args: dict, workers: int, progress: bool) -> None:
    """Generate the phantom of ``args`` in ``folder`` unless its stamp says it is there;
    a regenerated phantom invalidates the ``caches`` made from it (same names, new pixels)."""
    from ..phantom.synthetic import generate

    args = {k: v for k, v in args.items() if v is not None}
    stamp_value = {**args, "generator_sha256": _generator_hash()}
    stamp = folder / "phantom.json"
    if read_json(stamp) == stamp_value:
        return
    stamp.unlink(missing_ok=True)
    for cache in caches:
        if cache.exists():
            shutil.rmtree(cache)
    generate(folder, **args, workers=workers, progress=progress)
    write_json(stamp, stamp_value)


def _write_if_changed(manifest: pd.DataFrame, summary: dict, path: Path) -> Path:
    """Write a manifest only when its content changed (the preprocessing then stays current)."""
    if path.exists() and read_json(path.with_suffix(".json")) == summary:
        return path
    return write_manifest(manifest, path, summary)


def ensure_dataset2(profile: str = "demo", root: str | Path | None = None,
                    progress: bool = True) -> tuple[Path, Path]:
    """Generate, select and preprocess the Dataset2-like phantom and its test set (once).

    Args:
        profile: whose ``data2`` section (pool size, targets, test set, seeds).
        root: the data folder (default ``<project>/data``).
        progress: show progress bars.

    Returns:
        ``(cache, test_cache)``: two cache folders for :func:`pe_utils.load_cache`.

    Raises:
        ValueError: unknown profile, or the pool cannot meet the targets within the tolerance
            (:func:`pe_utils.build_manifest` says by how much).
    """
    from .preprocess import preprocess

    cfg = resolve("data2", profile)
    base = dataset2_folder(profile, root)
    spec, test_spec = dataset2_specs(profile)
    parts = {}
    for kind, patients, fraction, seed in (("", cfg["patients"], cfg["positive_fraction"], cfg["seed"]),
                                           ("_test", cfg["test_patients"], cfg["test_positive_fraction"],
                                            cfg["test_seed"])):
        phantom, cache = base / f"phantom{kind}", base / f"cache{kind}"
        ensure_phantom(phantom, [cache], dict(patients=patients, slices_per_patient=cfg["slices_per_patient"],
                                               positive_fraction=fraction, seed=seed,
                                               difficulty=cfg.get("difficulty")), cfg["workers"], progress)
        parts[kind] = (phantom, cache)
    manifest, summary = build_manifest(read_train_csv(parts[""][0] / "train.csv"), spec, seed=cfg["manifest_seed"])
    test_manifest, test_summary = build_manifest(
        read_train_csv(parts["_test"][0] / "train.csv"), test_spec, seed=cfg["manifest_seed"],
        exclude_patients=set(manifest[PATIENT]))
    paths = {"": _write_if_changed(manifest, summary, base / "manifest.csv"),
             "_test": _write_if_changed(test_manifest, test_summary, base / "manifest_test.csv")}
    for kind, (phantom, cache) in parts.items():
        preprocess(phantom, cache, size=cfg["size"], channels=cfg["channels"], workers=cfg["workers"],
                   manifest=paths[kind], progress=progress, overwrite=True)
    return parts[""][1], parts["_test"][1]


def _finished(path: str | Path, what: str) -> Path:
    path = Path(path).resolve()
    if not (path / "settings.json").exists():
        raise FileNotFoundError(f"{path}: no preprocessed cache here (no settings.json) for {what}; "
                                "preprocess the manifest first (python -m pe_utils preprocess --manifest ...)")
    return path


def prepare_dataset2(profile: str, cache_dir: str | Path | None = None,
                     test_cache_dir: str | Path | None = None, root: str | Path | None = None,
                     progress: bool = True) -> tuple[Path, Path]:
    """The two caches a Case2/Case4 run reads: given ones, or the phantom's (:func:`ensure_dataset2`).

    Args:
        profile: the run's profile.
        cache_dir, test_cache_dir: preprocessed caches of Dataset2 and of its test set (e.g. from
            RSNA manifests); both or neither.

    Raises:
        ValueError: only one of the two given.
        FileNotFoundError: a given folder holds no finished cache.
    """
    if cache_dir is None and test_cache_dir is None:
        return ensure_dataset2(profile, root, progress=progress)
    if cache_dir is None or test_cache_dir is None:
        raise ValueError("give both cache_dir (Dataset2) and test_cache_dir (its test set), or neither "
                         "(the phantom's)")
    return _finished(cache_dir, "Dataset2"), _finished(test_cache_dir, "the Case2/Case4 test set")


def dataset_cache(profile: str, dataset: str = "dataset1", cache_dir: str | Path | None = None,
                  root: str | Path | None = None, progress: bool = True) -> Path:
    """The cache a notebook trains (or pretrains) on: Dataset1's (Case1, 3) or Dataset2's (Case2, 4).

    Args:
        dataset: an entry of :data:`DATASETS` (``"dataset2_1609"`` is a subset of Dataset2's cache).
        cache_dir: a given cache (used as it is), or None for the profile's default data.

    Raises:
        ValueError: an unknown dataset.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    if dataset == "dataset1":
        return prepare_cache(profile, cache_dir, root=root, progress=progress)
    if cache_dir is not None:
        return _finished(cache_dir, "Dataset2")
    return ensure_dataset2(profile, root, progress=progress)[0]


def subset_1609_rows(index: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """Rows of Dataset2 forming Table 6.3's second dataset (exp. 2-10), by whole patients.

    The thesis's 15,555 images at 16.09 % positive, scaled to this Dataset2 (our choice: the
    thesis does not say how that set relates to Dataset2; 15,555 / 19,946 of its images, 16.09 %
    of them positive, picked by :func:`pe_utils.data.selection.select_groups`).

    Returns:
        Sorted int64 row positions into ``index``.
    """
    n = int(round(len(index) * SUBSET_1609["n_images"] / 19946))
    picked = pick_whole_patients(index.reset_index(drop=True), n,
                                 int(round(n * SUBSET_1609["positive_fraction"])), seed)
    return np.sort(picked.index.to_numpy()).astype(np.int64)
