"""The report wing: plotly figures, the threshold explorer, the metrics.json schema, the thesis's numbers.

Imports from every wing but ``batch``.
"""
from __future__ import annotations

from .._lazy import lazy_exports

# the figures by kind: style (colours, renderer), images, figures_data (notebook 00),
# figures_training (Case1 runs), figures_triage (triage, workload, rates, the static explorer);
# tables: every table a page shows, whole and with its missing values in words
EXPORTS: dict[str, tuple[str, ...]] = {
    "style": ("COLORS", "setup_notebook", "log_count_axis"),
    "images": ("to_uint8_image", "png_bytes", "png_uri", "image_gallery", "tta_views_figure"),
    "figures_data": ("FULL_HU_RANGE", "hu_histogram", "window_panel", "positives_per_patient",
                     "positives_by_slice_position", "split_strip"),
    "figures_training": ("learning_curves", "contrastive_curves", "method_curves", "positives_per_batch_figure",
                         "confusion_matrix_figure", "roc_figure", "probability_histogram"),
    "figures_triage": ("triage_bars", "workload_table", "rate_curve", "workload_comparison",
                       "threshold_figure", "rate_overview"),
    "figures_explain": ("embedding_figure", "embedding_scores_figure", "gradcam_grid", "localisation_summary"),
    "figures_case2": ("CASE24_COLORS", "fraction_curves", "paired_figure", "ablation_figure"),
    "widgets": ("ThresholdExplorer", "threshold_explorer"),
    "thesis_numbers": ("TABLE_6_2", "FIG_6_15", "FIG_6_16", "TABLE_6_3", "TABLE_6_4", "TRAIN_FRACTIONS_6_4"),
    "schema": ("write_metrics", "read_metrics"),
    "tables": ("Table", "display_table", "HISTORY_LABELS", "history_table", "beside_case1"),
    "quality": ("AUC_FLOOR", "F1_FLOOR", "quality_checks", "METHOD_NOTES", "IndexColumn", "RUN_COLUMNS",
                "FOOTNOTES", "cell_text", "worded", "FIELD_LABELS", "field_label"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
