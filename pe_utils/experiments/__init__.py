"""The experiments wing: what two notebooks of a case share (config rules, loaders, metrics record).

Imports from ``data``, ``learn``, ``evaluate`` and the top-level modules; never from ``report``
or ``batch``.
"""
from __future__ import annotations

from .._lazy import lazy_exports

EXPORTS: dict[str, tuple[str, ...]] = {
    "case1": ("rate_name", "case1_config", "Case1Data", "case1_data", "case1_training",
              "keep_final_model"),
    "case1_results": ("case1_test_metrics", "threshold_metrics_table", "baseline_table", "gallery_pair",
                      "case1_record"),
    "resume": ("cache_fingerprint", "check_resume", "case1_resume", "RESUME_IGNORE"),
    "summary": ("reports_folder", "table_6_2", "rate_order", "per_rate_summary", "mean_std_text", "seeds_note", "runs_by_method",
                "METHOD_NOTEBOOKS", "method_name", "thesis_method", "method_runs", "missing_methods",
                "method_long", "method_table", "method_seeds_note"),
    "pretrain": ("PRETRAINED", "pretrain_config", "pretrain_loader", "pretrain_setup", "contrastive_figures",
                 "run_pretraining", "save_pretrained", "pretrained_path", "load_pretrained", "pretrain_record",
                 "simclr_views", "distributed_result"),
    "case3": ("case3_config", "case3_model", "case3_step", "join_histories", "case3_record"),
    "case1_neighbours": ("neighbour_probs", "neighbour_choices", "triage_comparison", "neighbour_record",
                         "neighbour_verdict", "triage_by_rate", "neighbour_triage"),
    "case2": ("TOGGLES", "EXPERIMENTS", "fraction_of", "case2_config", "case2_setup", "case2_caches",
              "Case2Data", "case2_data", "training_rows", "lr_step_iterations", "case2_training", "case2_resume", "schedule_comparison",
              "case2_val_every"),
    "case2_results": ("case4_model", "case2_evaluate", "results_table", "exam_auc_table", "curve_summary",
                      "case2_record"),
    "summary_case2": ("fraction_label", "fraction_order", "case24_runs", "default_runs", "fraction_summary",
                      "table_6_4", "exam_level_table", "toggle_differences", "table_6_3", "ablation_summary"),
    "summary_case2_paired": ("seed_pairs", "paired_comparison", "paired_table", "case24_notes"),
    "representations": ("UNSEEN_SEED_OFFSET", "network_inputs", "probe_slices", "pretrain_checkpoints", "embedding_study",
                "probe_study", "show_slices", "localisation_table", "explain_record"),
    "gradcam_runs": ("COMPARISONS", "find_runs", "load_run_model", "run_test_set", "localisation_study", "explain_inputs",
                     "gradcam_comparison"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
