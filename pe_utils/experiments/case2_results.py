"""The results of a Case2 or Case4 run: test figures at a threshold chosen without test labels,
exam-level AUCs, the learning-curve summary, the ``metrics.json`` record; and Case4's model.

The main figures score each slice once, from its original view, as the thesis did: Case2 uses
augmentation "only for the training phase" (5.1.1) and Case4 changes nothing (5.2), so Table 6.4
had no test-time augmentation. TTA's figures (5 views averaged, :func:`pe_utils.predict_tta`) sit
beside them under ``*_tta`` keys, the other way round from Case1 (whose main figures are TTA's
and whose ``auc_no_tta`` is the original view's). F1 and accuracy are read at the threshold
maximising Youden's J on the VALIDATION slices (original view; validation needs no TTA, since only
this choice reads it); the thesis chose it on the test set (6.3.1), which we keep beside it,
labelled an oracle. Beyond the thesis, each test exam gets a score from its slices (max, and mean
of the top k; :func:`pe_utils.exam_level_auc`) against its label (any positive slice). The record is returned,
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


def _original_view(x):
    """The one view of a slice scored without test-time augmentation: the slice itself."""
    return [x]


def case2_evaluate(model, data: Case2Data, device, exam_topk: int = 3, views=None) -> dict[str, Any]:
    """Validation and test probabilities, the validation-chosen threshold, the test figures: from
    the original view (the main figures, as the thesis) and, beside them, from TTA.

    Validation is scored once, from the original view: the Youden threshold is chosen there and
    used for both sets of test figures (the TTA mean is smoother than one view, so its own best
    threshold may differ a little; the TTA oracle shows it). The test set is scored once with the
    TTA views, whose first column is the original view.

    Args:
        model: the trained classifier (logits ``(B,)`` or ``(B, 1)``).
        data: the run's :class:`~pe_utils.experiments.case2.Case2Data` (its ``loaders["val"]``,
            ``loaders["test"]`` and ``exam_ids``).
        device: where the model runs.
        exam_topk: k of the top-k mean exam score.
        views: the TTA views (default :func:`pe_utils.data.augment.tta_views`, the original first).

    Returns:
        Arrays ``probs`` (test, original view), ``probs_tta`` (test, TTA mean), ``y_test``,
        ``val_probs`` (original view), ``y_val``; ``threshold`` (Youden on validation),
        ``metrics_at_threshold``, ``oracle_threshold`` (Youden on test: an oracle),
        ``metrics_at_oracle``, ``auc`` (test), ``auc_val``, ``exam_auc_max``, ``exam_auc_topk``,
        ``n_test_exams``, ``exam_topk``; and TTA's ``auc_tta``, ``metrics_at_threshold_tta`` (at
        ``threshold``), ``oracle_threshold_tta``, ``metrics_at_oracle_tta``, ``exam_auc_max_tta``,
        ``exam_auc_topk_tta``.

    Raises:
        ValueError: validation or test slices of one class only (no ROC curve to choose from).
    """
    probs_tta, view_probs, y_test = predict_tta(model, data.loaders["test"], device, views=views)
    probs = np.ascontiguousarray(view_probs[:, 0])
    val_probs, _, y_val = predict_tta(model, data.loaders["val"], device, views=_original_view)
    for name, y in (("validation", y_val), ("test", y_test)):
        if len(np.unique(y)) != 2:
            raise ValueError(f"the {name} slices hold one class only: no ROC curve, no Youden threshold")
    threshold = youden_threshold(y_val, val_probs)
    out: dict[str, Any] = {"probs": probs, "probs_tta": probs_tta, "y_test": y_test, "val_probs": val_probs,
                           "y_val": y_val, "threshold": float(threshold),
                           "auc_val": binary_metrics(y_val, val_probs)["auc"], "exam_topk": exam_topk}
    for suffix, p in (("", probs), ("_tta", probs_tta)):
        oracle = youden_threshold(y_test, p)
        at_threshold = binary_metrics(y_test, p, threshold)
        exam_max, n_exams = exam_level_auc(p, y_test, data.exam_ids, how="max")
        exam_mean_topk, _ = exam_level_auc(p, y_test, data.exam_ids, how="topk", k=exam_topk)
        out.update({f"metrics_at_threshold{suffix}": at_threshold, f"oracle_threshold{suffix}": float(oracle),
                    f"metrics_at_oracle{suffix}": binary_metrics(y_test, p, oracle), f"auc{suffix}": at_threshold["auc"],
                    f"exam_auc_max{suffix}": exam_max, f"exam_auc_topk{suffix}": exam_mean_topk,
                    "n_test_exams": n_exams})
    return out


def results_table(result: dict[str, Any]) -> pd.DataFrame:
    """The test figures at the two thresholds as rows, from the original view (the main figures) and,
    where the result has them, from TTA below."""
    keys = ["threshold", "auc", "f1", "accuracy", "precision", "recall", "tn", "fp", "fn", "tp"]
    rows = {"Youden on validation (used)": {**result["metrics_at_threshold"], "threshold": result["threshold"]},
            "Youden on test (oracle)": {**result["metrics_at_oracle"], "threshold": result["oracle_threshold"]}}
    if result.get("metrics_at_threshold_tta") is not None:
        rows["TTA, Youden on validation"] = {**result["metrics_at_threshold_tta"], "threshold": result["threshold"]}
        rows["TTA, Youden on test (oracle)"] = {**result["metrics_at_oracle_tta"],
                                               "threshold": result["oracle_threshold_tta"]}
    table = pd.DataFrame(rows).T
    return table[[k for k in keys if k in table.columns]]


def exam_auc_table(result: dict[str, Any]) -> pd.DataFrame:
    """Image-level against exam-level AUC (max and top-k mean) on the test set: ``AUC`` from the
    original view, ``AUC (TTA)`` beside it where the result has TTA's figures."""
    rows = ("image level", "exam (sampled slices), max", f"exam (sampled slices), mean of top {result['exam_topk']}")
    table = {"AUC": dict(zip(rows, (result["auc"], result["exam_auc_max"], result["exam_auc_topk"])))}
    if result.get("auc_tta") is not None:
        table["AUC (TTA)"] = dict(zip(rows, (result["auc_tta"], result.get("exam_auc_max_tta"),
                                             result.get("exam_auc_topk_tta"))))
    return pd.DataFrame(table)


def curve_summary(history: list[dict]) -> dict[str, Any]:
    """``final_train_loss``, ``final_val_auc``, ``best_val_auc`` and its epoch (for information:
    the last epoch's model is the one evaluated, as in the thesis). Only validated epochs count
    (``fit`` with ``val_every`` > 1 leaves the others without ``val_*`` figures; it always
    validates the last one)."""
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
        "val_epochs": [h["epoch"] for h in history if "val_loss" in h],
        "train_seconds": train_seconds,
        # test-time augmentation beside the main figures (null when the result has none)
        "auc_tta": result.get("auc_tta"), "f1_tta": (result.get("metrics_at_threshold_tta") or {}).get("f1"),
        "accuracy_tta": (result.get("metrics_at_threshold_tta") or {}).get("accuracy"),
        "metrics_at_threshold_tta": result.get("metrics_at_threshold_tta"),
        "oracle_threshold_tta": result.get("oracle_threshold_tta"),
        "metrics_at_oracle_tta": result.get("metrics_at_oracle_tta"),
        "exam_auc_max_tta": result.get("exam_auc_max_tta"), "exam_auc_topk_tta": result.get("exam_auc_topk_tta"),
    }
    if pretrained:
        record.update(pretrain_epochs=pretrained["pretrain_epochs"], pretrained_from=pretrained["pretrained_from"])
    return record
