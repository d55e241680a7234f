"""The results of a Case1-style run: test figures, the no-image baseline, the gallery's pair, the record.

Shared by Case1 (notebook 01) and Case3's fine-tuning, which evaluate the same way: TTA on the
test slices, Youden's threshold chosen on the validation slices (the test-chosen one kept apart
as an oracle), the nearest-annotated-slice rule beside the network
(:func:`pe_utils.baseline_metrics`), triage by the thesis's threshold pairs, the workload per
threshold choice (oracle figures stay null where the oracle found no pair). The
record is returned, not written: the notebook calls ``write_metrics(output_dir, record, "case1")``
(the report wing owns the schema; this wing may not import it).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..evaluate import baseline_metrics, binary_metrics, youden_threshold
from ..profiles import THESIS_THRESHOLD_PAIRS
from .case1 import Case1Data
from .case1_neighbours import neighbour_record


#: why a run has no validation-chosen Youden threshold, as its page says it
NO_YOUDEN_ONE_CLASS = "no threshold: the validation slices hold one class"
NO_YOUDEN_NO_VAL = "no threshold: no validation predictions were given"
#: the count columns of binary_metrics, whole numbers in the tables
_COUNTS = ("tn", "fp", "fn", "tp")


def _youden_or_none(labels, probs) -> float | None:
    """Youden's threshold, or None when ``labels`` hold one class (no ROC curve)."""
    labels = np.asarray(labels).reshape(-1)
    return youden_threshold(labels, probs) if len(np.unique(labels)) == 2 else None


def case1_test_metrics(y_test, probs, view_probs, y_val=None, val_probs=None) -> dict[str, Any]:
    """The test figures of ``metrics.json``: at 0.5, at Youden's threshold, without TTA.

    Youden's threshold is chosen on the validation slices and applied to the test slices, so
    no test label picks it; the threshold the test ROC itself would pick is kept beside it
    as an oracle (``oracle_youden_threshold``), as the thesis's test-chosen figures are.

    Args:
        y_test: (N,) test labels 0/1 (both classes present).
        probs: (N,) TTA-averaged probabilities (:func:`pe_utils.predict_tta`).
        view_probs: (N, V) probabilities per view; column 0 is the original image.
        y_val, val_probs: (M,) validation labels and TTA-averaged probabilities; without
            them (or with one class among them) there is no validation-chosen threshold.

    Returns:
        ``metrics_at_0_5``, ``youden_threshold`` (from validation; None without one),
        ``metrics_at_youden`` (test, at that threshold; None without one), ``youden_missing``
        (why there is none, in a reader's words: :data:`NO_YOUDEN_ONE_CLASS`; None with one),
        ``oracle_youden_threshold`` (from the test ROC), ``metrics_at_oracle_youden`` and
        ``auc_no_tta`` (keys of the ``case1`` schema).

    Raises:
        ValueError: ``y_test`` holds one class only (no test ROC curve).
    """
    oracle = youden_threshold(y_test, probs)
    given = y_val is not None and val_probs is not None
    chosen = _youden_or_none(y_val, val_probs) if given else None
    return {
        "metrics_at_0_5": binary_metrics(y_test, probs, 0.5),
        "youden_threshold": chosen,
        "youden_missing": None if chosen is not None else NO_YOUDEN_ONE_CLASS if given else NO_YOUDEN_NO_VAL,
        "metrics_at_youden": None if chosen is None else binary_metrics(y_test, probs, chosen),
        "oracle_youden_threshold": oracle,
        "metrics_at_oracle_youden": binary_metrics(y_test, probs, oracle),
        "auc_no_tta": binary_metrics(y_test, np.asarray(view_probs)[:, 0])["auc"],
    }


def threshold_metrics_table(test_metrics: dict[str, Any]) -> pd.DataFrame:
    """The test figures of :func:`case1_test_metrics` as rows: at 0.5, at the two Youden thresholds.

    Returns:
        One row per threshold (``binary_metrics``' columns, the counts as nullable integers):
        ``at 0.5``, ``at Youden (chosen on validation)`` (missing without one) and ``at Youden
        (oracle: chosen on test)``. ``attrs["missing"]`` words a missing row
        (``{"at Youden (chosen on validation)": "no threshold: the validation slices hold one
        class"}``), which :func:`pe_utils.display_table` shows in its cells.
    """
    chosen = "at Youden (chosen on validation)"
    table = pd.DataFrame({"at 0.5": test_metrics["metrics_at_0_5"],
                          chosen: test_metrics["metrics_at_youden"] or {},
                          "at Youden (oracle: chosen on test)": test_metrics["metrics_at_oracle_youden"]}).T
    table = table.astype({c: "Int64" for c in _COUNTS if c in table.columns})
    if test_metrics["metrics_at_youden"] is None:
        table.attrs["missing"] = {chosen: test_metrics.get("youden_missing") or NO_YOUDEN_ONE_CLASS}
    return table


def baseline_table(test_metrics: dict[str, Any], data: Case1Data,
                   baseline: dict[str, Any] | None = None) -> pd.DataFrame:
    """The network beside the rule that looks at no image, on the same test slices.

    Args:
        test_metrics: :func:`case1_test_metrics`.
        data: the run's :class:`Case1Data` (its index, split and training-stage share).
        baseline: :func:`pe_utils.baseline_metrics` of ``data``'s split (computed when None).

    Returns:
        Two rows (the network at 0.5, the nearest annotated slice) with ``F1``, ``accuracy``,
        ``% test slices wrong`` and ``workload %``; both automate every test slice here, so
        both workloads are the training stage.
    """
    baseline = baseline if baseline is not None else baseline_metrics(data.index, data.split)
    m = test_metrics["metrics_at_0_5"]
    n_test = m["tn"] + m["fp"] + m["fn"] + m["tp"]
    network = {"F1": m["f1"], "accuracy": m["accuracy"],
               "% test slices wrong": 100.0 * (m["fp"] + m["fn"]) / n_test if n_test else float("nan"),
               "workload %": data.pct_training_stage}
    rule = {"F1": baseline["baseline_f1"], "accuracy": baseline["baseline_accuracy"],
            "% test slices wrong": baseline["baseline_error_rate"],
            "workload %": baseline["baseline_workload_pct"]}
    return pd.DataFrame({"network (TTA, threshold 0.5)": network,
                         "nearest annotated slice (no image)": rule}).T


def _method_rows(choices: pd.DataFrame) -> dict[str, pd.Series]:
    """The rows of :func:`pe_utils.compare_threshold_choices` by method: oracle, validation, conformal."""
    rows = {}
    for _, row in choices.iterrows():
        rows["conformal" if str(row.method).startswith("conformal") else str(row.method)] = row
    return rows


def _pair(row: pd.Series | None) -> list[float] | None:
    """``[upper, lower]`` of a choice, or None when its method found no pair."""
    if row is None or math.isnan(row.upper):
        return None
    return [float(row.upper), float(row.lower)]


def gallery_pair(choices: pd.DataFrame,
                 fallback: Sequence[float] = THESIS_THRESHOLD_PAIRS[0]) -> tuple[float, float, str]:
    """The threshold pair whose uncertain slices the gallery shows, and where it comes from.

    The oracle pair when one exists, else the validation pair, else ``fallback`` (the thesis's
    narrowest uncertain band, 0.75/0.25).

    Args:
        choices: :func:`pe_utils.compare_threshold_choices` (extra columns are ignored).
        fallback: ``(upper, lower)`` used when neither method found a pair.

    Returns:
        ``(upper, lower, which)`` with ``which`` in ``"oracle"``, ``"validation"``, ``"fallback"``.
    """
    rows = _method_rows(choices)
    for which in ("oracle", "validation"):
        pair = _pair(rows.get(which))
        if pair is not None:
            return pair[0], pair[1], which
    return float(fallback[0]), float(fallback[1]), "fallback"


def case1_record(data: Case1Data, *, profile: str, cfg: dict, test_metrics: dict[str, Any],
                 choices: pd.DataFrame, table: pd.DataFrame, history: list[dict], train_seconds: float,
                 conformal_alpha: float, baseline: dict[str, Any] | None = None,
                 notebook: str = "01_case1_supervised", neighbour: pd.DataFrame | None = None) -> dict[str, Any]:
    """The ``metrics.json`` of a Case1-style run (schema ``"case1"``), not yet written.

    Args:
        data: the run's :class:`Case1Data` (sizes, rate and test name, test labels).
        profile: the run's profile.
        cfg: from :func:`case1_config`.
        test_metrics: :func:`case1_test_metrics`.
        choices: :func:`pe_utils.compare_threshold_choices` with validation probabilities
            (rows oracle, validation, conformal).
        table: :func:`pe_utils.triage_table` over the thesis's pairs.
        history: what :func:`pe_utils.fit` returned.
        train_seconds: wall-clock seconds of ``fit``.
        conformal_alpha: the error bound given to ``compare_threshold_choices``.
        baseline: :func:`pe_utils.baseline_metrics` of ``data``'s split (computed when None).
        notebook: the notebook's name, the record's ``notebook`` key.
        neighbour: :func:`pe_utils.neighbour_choices` (beyond the thesis: the triage that also
            reads the nearest annotated slices' labels); its ``neighbour_*`` keys are added.

    Returns:
        A dict with every key of ``CASE1_KEYS`` (pe_utils.report.schema); pass it to
        ``write_metrics(output_dir, record, "case1")``.

    Raises:
        ValueError: ``choices`` lacks the validation or conformal row.
    """
    rows = _method_rows(choices)
    missing = [m for m in ("oracle", "validation", "conformal") if m not in rows]
    if missing:
        raise ValueError(f"choices lacks the {missing} row(s): pass val_probs and val_labels "
                         "to compare_threshold_choices")
    oracle, practical, conformal = rows["oracle"], rows["validation"], rows["conformal"]
    has_oracle = _pair(oracle) is not None
    at_05 = test_metrics["metrics_at_0_5"]
    n = data.n_dataset
    return {
        "notebook": notebook, "profile": profile, "sampling_rate": data.rate_key,
        "test_name": data.test_name,
        "seed": cfg["seed"], "arch": cfg["arch"], "epochs": cfg["epochs"],
        "n_dataset": n, "n_train": len(data.ids["train"]), "n_val": len(data.ids["val"]),
        "n_test": len(data.ids["test"]), "n_test_positive": int(data.labels[data.ids["test"]].sum()),
        "pct_training_stage": data.pct_training_stage,
        "auc": at_05["auc"], "f1": at_05["f1"], "accuracy": at_05["accuracy"], "metrics_at_0_5": at_05,
        **{k: test_metrics[k] for k in ("youden_threshold", "metrics_at_youden", "oracle_youden_threshold",
                                        "metrics_at_oracle_youden", "auc_no_tta")},
        "oracle_thresholds": _pair(oracle),
        "oracle_pct_uncertain": 100 * oracle.n_uncertain / n if has_oracle else None,
        "oracle_workload_pct": oracle.workload_pct if has_oracle else None,
        "practical_thresholds": _pair(practical),
        "practical_workload_pct": practical.workload_pct, "practical_error_rate": practical.error_rate_pct,
        "conformal_alpha": conformal_alpha, "conformal_thresholds": _pair(conformal),
        "conformal_workload_pct": conformal.workload_pct, "conformal_error_rate": conformal.error_rate_pct,
        # the oracle's figure stays the oracle's (Fig 6.16): null, not another pair's, without one
        "oracle_pct_positives_auto_correct": oracle.pct_positives_auto_correct if has_oracle else None,
        "practical_pct_positives_auto_correct": practical.pct_positives_auto_correct,
        **(baseline if baseline is not None else baseline_metrics(data.index, data.split)),
        "triage": table, "history": history, "train_seconds": train_seconds,
        "context": int(cfg.get("context", 0)),
        **(neighbour_record(neighbour) if neighbour is not None else {}),
    }
