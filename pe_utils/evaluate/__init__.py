"""The evaluate wing: metrics, test-time augmentation, triage, threshold choice.

Imports from ``data``, ``learn`` and the top-level modules; never from ``report`` or ``batch``.
"""
from __future__ import annotations

from .._lazy import lazy_exports

EXPORTS: dict[str, tuple[str, ...]] = {
    "metrics": ("binary_metrics", "youden_threshold", "f1_batch_upper_bound", "positives_per_batch",
                "batch_mean_f1"),
    "uncertainty": ("Thresholds", "predict_tta", "triage", "triage_table", "widest_perfect_thresholds",
                    "annotation_workload", "validation_thresholds", "conformal_thresholds",
                    "conformal_sets", "compare_threshold_choices"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
