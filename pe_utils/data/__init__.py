"""The data wing: DICOM reading, windows, preprocessing, the cache, manifests, splits, datasets.

Imports from ``phantom`` (the default data) and the top-level modules only; never from
``learn``, ``evaluate``, ``report`` or ``batch`` (``tests/test_layout.py`` enforces it).
"""
from __future__ import annotations

from .._lazy import lazy_exports

EXPORTS: dict[str, tuple[str, ...]] = {
    "errors": ("DicomReadError",),
    "windows": ("apply_window", "to_rgb", "to_gray", "Window", "LUNG_WINDOW", "MEDIASTINUM_WINDOW",
                "PE_WINDOW", "THESIS_WINDOWS"),
    "dicom": ("read_hu", "read_slice"),
    "cache": ("load_cache",),
    "preprocess": ("preprocess",),
    "manifest": ("build_manifest", "verify_manifest", "read_manifest", "load_spec"),
    "selection": ("select_groups",),
    "fingerprint": ("fingerprint_file", "compare_fingerprints", "pixel_tolerance"),
    "splits": ("parse_rate", "case1_split", "patient_split", "train_fraction_subset", "resample",
               "periodic_mask", "TRAIN_FRACTIONS"),
    "datasets": ("CacheDataset", "make_loader", "set_epoch"),
    "transforms": ("train_transform", "eval_transform"),
    "augment": ("AffineAugment", "SimCLRViews", "tta_views", "TTA_VIEW_NAMES"),
    "slices": ("CacheSlices", "DeviceLoader"),
    "context": ("context_rows", "center_channel"),
    "defaults": ("ensure_default_data", "prepare_cache"),
    "dataset2": ("DATASETS", "ensure_dataset2", "prepare_dataset2", "dataset_cache", "dataset2_specs",
                 "subset_1609_rows"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
