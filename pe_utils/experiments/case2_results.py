"""The results of a Case2 or Case4 run: test figures at a threshold chosen without test labels,
exam-level AUCs, the learning-curve summary, the ``metrics.json`` record; and Case4's model.

F1 and accuracy are read at the threshold maximising Youden's J on the VALIDATION slices; the
thesis chose it on the test set (6.3.1), which we keep beside it, labelled an oracle. Beyond the
thesis, each test exam gets a score from its slices (max, and mean of the top k;
:func:`pe_utils.exam_level_auc`) against its label (any positive slice). The record is returned,
not written: ``write_metrics(output_dir, record, "case2")`` (the report wing owns the schema).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..evaluate import binary_metrics, exam_level_auc, predict_tta, youden_threshold
from .case2 import Case2Data
from .case3 import case3_model

#: the threshold's source in metrics.json
THRESHOLD_SOURCE = "validation_youden"


def case4_model(pretrain_dir: str | Path, cfg: dict, pretrain_epochs: int | None = None):
    """Case4's classifier (5.2): the encoder notebook 02 pretrained on Dataset2, the projection head
    dropped, Case2's head (dropout, Eq. 5.2's bias) on top; fine-tuned in ONE step with Case2's
    settings. ``cfg["arch"]`` becomes the pretrained network's.

    Returns:
        ``(model, pretrained)`` as :func:`pe_utils.case3_model`.
    """
    step_cfg = {**cfg, "keep_head_layers": 0}
    model, pretrained = case3_model(pretrain_dir, step_cfg, pretrain_epochs)
    cfg["arch"] = step_cfg["arch"]
    return model, pretrained


def case2_evaluate(model, data: Case2Data, device, exam_topk: int = 3) -> dict[str, Any]:
    """TTA probabilities on validation and test, the validation-chosen threshold, the test figures.

    Returns:
        ``probs``, ``y_test``, ``val_probs``, ``y_val`` (arrays); ``threshold`` (Youden on
        validation), ``metrics_at_threshold``, ``oracle_threshold`` (Youden on test: an oracle),
        ``metrics_at_oracle``, ``auc`` (test, TTA), ``auc_val``, ``exam_auc_max``,
        ``exam_auc_topk``, ``n_test_exams``, ``exam_topk``.

    Raises:
        ValueError: validation or test slices of one class only (no ROC curve to choose from).
    """
    probs, _, y_test = predict_tta(model, data.loaders["test"], device)
    val_probs, _, y_val = predict_tta(model, data.loaders["val"], device)
    for name, y in (("validation", y_val), ("test", y_test)):
        if len(np.unique(y)) != 2:
            raise ValueError(f"the {name} slices hold one class only: no ROC curve, no Youden threshold")
    threshold = youden_threshold(y_val, val_probs)
    oracle = youden_threshold(y_test, probs)
    at_threshold = binary_metrics(y_test, probs, threshold)
    exam_max, n_exams = exam_level_auc(probs, y_test, data.exam_ids, how="max")
    exam_mean_topk, _ = exam_level_auc(probs, y_test, data.exam_ids, how="topk", k=exam_topk)
    return {"probs": probs, "y_test": y_test, "val_probs": val_probs, "y_val": y_val,
            "threshold": float(threshold), "metrics_at_threshold": at_threshold,
            "oracle_threshold": float(oracle), "metrics_at_oracle": binary_metrics(y_test, probs, oracle),
            "auc": at_threshold["auc"], "auc_val": binary_metrics(y_val, val_probs)["auc"],
            "exam_auc_max": exam_max, "exam_auc_topk": exam_mean_topk, "n_test_exams": n_exams, "exam_topk": exam_topk}


def results_table(result: dict[str, Any]) -> pd.DataFrame:
    """The test figures at the two thresholds as rows, and the exam-level AUCs beside the image one."""
    keys = ["threshold", "auc", "f1", "accuracy", "precision", "recall", "tn", "fp", "fn", "tp"]
    rows = {"Youden on validation (used)": {**result["metrics_at_threshold"], "threshold": result["threshold"]},
            "Youden on test (oracle)": {**result["metrics_at_oracle"], "threshold": result["oracle_threshold"]}}
    table = pd.DataFrame(rows).T
    return table[[k for k in keys if k in table.columns]]


def exam_auc_table(result: dict[str, Any]) -> pd.DataFrame:
    """Image-level against exam-level AUC (max and top-k mean) on the test set."""
    return pd.DataFrame({"AUC": {"image level": result["auc"], "exam level, max": result["exam_auc_max"],
                                 f"exam level, mean of top {result['exam_topk']}": result["exam_auc_topk"]}})


def curve_summary(history: list[dict]) -> dict[str, Any]:
    """``final_train_loss``, ``final_val_auc``, ``best_val_auc`` and its epoch (for information:
    the last epoch's model is the one evaluated, as in the thesis)."""
    if not history:
        return {"final_train_loss": None, "final_val_auc": None, "best_val_auc": None, "best_val_auc_epoch": None}
    aucs = [(h.get("val_auc"), h["epoch"]) for h in history if h.get("val_auc") is not None
            and np.isfinite(h.get("val_auc"))]
    best = max(aucs) if aucs else (None, None)
    return {"final_train_loss": history[-1].get("train_loss"), "final_val_auc": history[-1].get("val_auc"),
            "best_val_auc": best[0], "best_val_auc_epoch": best[1]}


def case2_record(data: Case2Data, *, profile: str, cfg: dict, result: dict[str, Any], history: list[dict],
                 train_seconds: float, weights: list[float] | None = None, pretrained: dict | None = None,
                 notebook: str = "04_case2_supervised") -> dict[str, Any]:
    """The ``metrics.json`` of a Case2 (or, with ``pretrained``, Case4) run: every key of ``CASE2_KEYS``.

    Args:
        data: the run's :class:`pe_utils.experiments.case2.Case2Data`.
        profile, cfg: the run's profile and :func:`pe_utils.case2_config` settings.
        result: :func:`case2_evaluate`.
        history, train_seconds: from ``fit``.
        weights: :func:`pe_utils.case2_training`'s class weights.
        pretrained: :func:`case4_model`'s provenance (Case4 only).
        notebook: the record's ``notebook`` key.
    """
    m = result["metrics_at_threshold"]
    record = {
        "notebook": notebook, "profile": profile, "case": "case4" if pretrained else "case2",
        "dataset": cfg["dataset"], "train_fraction": data.train_fraction, "seed": cfg["seed"],
        "experiment": cfg.get("experiment"),
        "auc": result["auc"], "f1": m["f1"], "accuracy": m["accuracy"], "threshold": result["threshold"],
        "threshold_source": THRESHOLD_SOURCE, "exam_auc_max": result["exam_auc_max"],
        "exam_auc_topk": result["exam_auc_topk"],
        **{k: cfg[k] for k in ("arch", "epochs", "lr", "batch_size", "optimizer", "augment", "dropout",
                               "sampling", "class_weights", "bias_prior", "schedule", "image_size", "lr_step")},
        "class_weight_values": weights, "steps_per_epoch": len(data.loaders["train"]),
        "n_train": len(data.ids["train_subset"]), "n_train_resampled": len(data.ids["train"]),
        "pct_positive_train": 100 * float(data.labels[data.ids["train"]].mean()),
        "n_val": len(data.ids["val"]), "n_test": len(data.test_labels),
        "n_test_positive": int(data.test_labels.sum()), "n_test_exams": result["n_test_exams"],
        "exam_topk": result["exam_topk"], "metrics_at_threshold": m,
        "oracle_threshold": result["oracle_threshold"], "metrics_at_oracle": result["metrics_at_oracle"],
        "auc_val": result["auc_val"], "history": history, "curve_summary": curve_summary(history),
        "train_seconds": train_seconds,
    }
    if pretrained:
        record.update(pretrain_epochs=pretrained["pretrain_epochs"], pretrained_from=pretrained["pretrained_from"])
    return record
