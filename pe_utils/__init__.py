"""pe_utils: the helper package of the PE contrastive-learning course.

The public names are re-exported here, so notebooks read ``from pe_utils import fit, triage``.
They load lazily (PEP 562): ``import pe_utils`` stays cheap for the command line and the
preprocessing workers, and torch is imported only when a name that needs it is used.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS: dict[str, tuple[str, ...]] = {
    "profiles": ("PROFILES", "SAMPLING_RATES", "THESIS_THRESHOLD_PAIRS", "resolve"),
    "defaults": ("ensure_default_data", "default_paths", "project_root"),
    "dicom": ("read_hu", "read_slice", "apply_window", "to_rgb", "to_gray", "Window", "LUNG_WINDOW",
              "MEDIASTINUM_WINDOW", "PE_WINDOW", "THESIS_WINDOWS", "DicomReadError"),
    "synthetic": ("generate",),
    "preprocess": ("preprocess", "load_cache"),
    "manifest": ("build_manifest", "verify_manifest", "read_manifest", "load_spec"),
    "splits": ("parse_rate", "case1_split", "patient_split", "train_fraction_subset", "resample",
               "periodic_mask", "TRAIN_FRACTIONS"),
    "data": ("CacheDataset", "make_loader", "set_epoch"),
    "transforms": ("train_transform", "eval_transform", "tta_views", "TTA_VIEW_NAMES"),
    "models": ("build_classifier", "set_backbone_trainable", "load_weights"),
    "losses": ("FocalLoss", "class_weights"),
    "train": ("seed_everything", "pick_device", "build_optimizer", "build_scheduler",
              "train_one_epoch", "evaluate", "fit", "predict"),
    "metrics": ("binary_metrics", "youden_threshold", "f1_batch_upper_bound", "positives_per_batch",
                "batch_mean_f1"),
    "uncertainty": ("Thresholds", "predict_tta", "triage", "triage_table", "widest_perfect_thresholds",
                    "annotation_workload", "validation_thresholds", "conformal_thresholds",
                    "conformal_sets", "compare_threshold_choices"),
    "widgets": ("ThresholdExplorer", "threshold_explorer"),
    "report": ("write_metrics", "read_metrics"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'pe_utils' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
