"""The evaluate wing: metrics, test-time augmentation, triage, threshold choice.

Imports from ``data``, ``learn`` and the top-level modules; never from ``report`` or ``batch``.
"""
from __future__ import annotations

from .._lazy import lazy_exports

EXPORTS: dict[str, tuple[str, ...]] = {
    "metrics": ("binary_metrics", "youden_threshold", "f1_batch_upper_bound", "positives_per_batch",
                "batch_mean_f1", "epoch_figures"),
    "tta": ("predict_tta",),
    # not "triage.py": a submodule named like its function would shadow it on the package
    "triaging": ("Thresholds", "triage", "triage_counts", "triage_table", "annotation_workload",
                 "expected_workload"),
    "thresholds": ("widest_perfect_thresholds", "validation_thresholds", "compare_threshold_choices"),
    "conformal": ("conformal_sets", "conformal_thresholds", "sets_to_triage"),
    "baseline": ("nearest_annotated_labels", "baseline_metrics"),
    "neighbours": ("NEIGHBOUR_RULES", "neighbour_features", "neighbour_probability", "nearest_label"),
    "embeddings": ("augmented_views", "representations", "reduce_2d", "clustering_scores", "linear_probe_auc"),
    "exams": ("EXAM_HOWS", "exam_scores", "exam_labels", "exam_level_auc"),
    "intervals": ("WILCOXON_MIN_PAIRS", "mean_interval", "paired_difference", "seeds_to_resolve"),
    "gradcam": ("grad_cam",),
    "localisation": ("energy_in_mask", "pointing_game", "localisation_scores", "perfect_maps"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
