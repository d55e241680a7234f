"""Case1 and Case3 beyond the thesis: triage that also reads what the series already says.

The expert has labelled p of every q slices of each series; the network labels the rest one
slice at a time. :mod:`pe_utils.evaluate.neighbours` combines each slice's TTA probability with
the labels of its nearest annotated slices below and above (a fixed rule, no retraining, never
a test label); this module runs the thesis's two-threshold triage on that combination beside the
image-only triage and the rule that looks at no image (:mod:`pe_utils.evaluate.baseline`), so
notebooks 01 and 03 show the three side by side and their ``metrics.json`` records them.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..evaluate import baseline_metrics, compare_threshold_choices, neighbour_features, neighbour_probability

__all__ = ["neighbour_probs", "neighbour_choices", "triage_comparison", "neighbour_record", "neighbour_verdict",
           "triage_by_rate", "neighbour_triage"]


def neighbour_probs(data, probs, val_probs, rule: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """The test and validation probabilities combined with their neighbours' labels.

    Args:
        data: the run's :class:`pe_utils.experiments.case1.Case1Data` (index, split, labels, ids).
        probs, val_probs: the network's TTA probabilities, in ``data.ids["test"]`` and
            ``data.ids["val"]`` order (:func:`pe_utils.predict_tta` over the run's loaders).
        rule: :data:`pe_utils.evaluate.neighbours.NEIGHBOUR_RULES`.

    Returns:
        ``(test, validation)`` probabilities. Only annotated slices' labels are read (the training
        stage's: train and validation); a validation slice never sees its own.
    """
    annotated = np.asarray(data.split) != "test"
    combined = []
    for split, p in (("test", probs), ("val", val_probs)):
        features = neighbour_features(data.index, annotated, data.ids[split], data.labels)
        combined.append(neighbour_probability(p, features, rule))
    return combined[0], combined[1]


def neighbour_choices(data, probs, y_test, val_probs, y_val, alpha: float = 0.05,
                      rule: str = "mean") -> pd.DataFrame:
    """:func:`pe_utils.compare_threshold_choices` (oracle, validation, conformal) on the combined
    probabilities: the same pairs, the same choices, the same workload as the image-only triage."""
    test, val = neighbour_probs(data, probs, val_probs, rule)
    return compare_threshold_choices(test, y_test, data.n_dataset, data.n_training_stage, val_probs=val,
                                     val_labels=y_val, alpha=alpha)


def _row(choices: pd.DataFrame, method: str) -> pd.Series:
    return choices[choices["method"].astype(str).str.startswith(method)].iloc[0]


def _pair_text(row: pd.Series, none: str) -> str:
    return none if math.isnan(row.upper) else f"{row.upper:g}/{row.lower:g}"


def triage_comparison(data, image_choices: pd.DataFrame, neighbour: pd.DataFrame,
                      baseline: dict[str, Any] | None = None) -> pd.DataFrame:
    """Image-only triage, neighbour-aware triage and the no-image rule, one row each.

    Columns: the oracle pair (the thesis's choice, on test labels) and its workload, the pair
    chosen on validation, its workload and the % of its sure test slices that are wrong. A
    missing pair is said in words; the no-image rule automates every test slice.
    """
    baseline = baseline if baseline is not None else baseline_metrics(data.index, data.split)
    rows = {}
    for name, choices in (("image only (the thesis)", image_choices), ("image + neighbours' labels", neighbour)):
        oracle, val = _row(choices, "oracle"), _row(choices, "validation")
        rows[name] = {
            "oracle pair": _pair_text(oracle, "no error-free pair"),
            "oracle workload %": round(float(oracle.workload_pct), 2),
            "validation pair": _pair_text(val, "none: every slice to experts"),
            "validation workload %": round(float(val.workload_pct), 2),
            "% wrong among sure (validation pair)": round(float(val.error_rate_pct), 2),
        }
    rows["nearest annotated slice (no image)"] = {
        "oracle pair": "no thresholds: labels only", "oracle workload %": round(baseline["baseline_workload_pct"], 2),
        "validation pair": "no thresholds: labels only",
        "validation workload %": round(baseline["baseline_workload_pct"], 2),
        "% wrong among sure (validation pair)": round(baseline["baseline_error_rate"], 2),
    }
    table = pd.DataFrame(rows).T
    # a pair that automates nothing has no sure slice to be wrong about
    table.attrs["missing"] = {"% wrong among sure (validation pair)": "nothing automated"}
    return table


def neighbour_record(neighbour: pd.DataFrame) -> dict[str, Any]:
    """The neighbour-aware triage's keys of a Case1/Case3 ``metrics.json`` (schema ``case1``)."""
    oracle, val = _row(neighbour, "oracle"), _row(neighbour, "validation")
    has_oracle = not math.isnan(oracle.upper)
    return {
        "neighbour_rule": "mean",
        "neighbour_oracle_thresholds": [float(oracle.upper), float(oracle.lower)] if has_oracle else None,
        "neighbour_oracle_workload_pct": float(oracle.workload_pct) if has_oracle else None,
        "neighbour_practical_thresholds": None if math.isnan(val.upper) else [float(val.upper), float(val.lower)],
        "neighbour_practical_workload_pct": float(val.workload_pct),
        "neighbour_practical_error_rate": float(val.error_rate_pct),
    }


class Sentence(str):
    """A sentence a notebook shows as text, not as a quoted string."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_markdown_(self) -> str:
        return str(self)


def _errors(rate: float) -> str:
    return "nothing automated" if not np.isfinite(rate) else f"{rate:.2f} % of its sure slices wrong"


def neighbour_verdict(table: pd.DataFrame) -> Sentence:
    """:func:`triage_comparison` in words: what the neighbours' labels change, and whether the
    labels alone do as well as the network (a pair that automates nothing is said so)."""
    image, both, rule = table.iloc[0], table.iloc[1], table.iloc[2]
    wrong = "% wrong among sure (validation pair)"
    gain = image["validation workload %"] - both["validation workload %"]
    text = (f"With the validation-chosen pair, reading the neighbours' labels leaves "
            f"{both['validation workload %']:.1f} % of the dataset to experts ({_errors(both[wrong])}) against "
            f"{image['validation workload %']:.1f} % for the image alone ({_errors(image[wrong])}): "
            f"{gain:+.1f} points.")
    if np.isfinite(both[wrong]) and rule[wrong] <= both[wrong]:
        text += (f" The labels alone do as well: copying the nearest annotated slice automates every test "
                 f"slice ({rule['validation workload %']:.1f} % workload) with {rule[wrong]:.2f} % wrong.")
    else:
        text += (f" The labels alone are not enough: copying the nearest annotated slice gets "
                 f"{rule[wrong]:.2f} % of the test slices wrong.")
    return Sentence(text)


#: the figures :func:`triage_by_rate` sets side by side: (label, metrics.json key)
TRIAGE_FIGURES = (
    ("workload %, image only", "practical_workload_pct"),
    ("workload %, + neighbours' labels", "neighbour_practical_workload_pct"),
    ("% wrong among sure, image only", "practical_error_rate"),
    ("% wrong among sure, + neighbours' labels", "neighbour_practical_error_rate"),
    ("% wrong, nearest annotated slice (no image)", "baseline_error_rate"),
)


def triage_by_rate(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method (:func:`pe_utils.method_runs`: supervised, contrastive, 2.5D) and rate, the
    validation-chosen triage without and with the neighbours' labels, and the no-image rule's
    error: mean +- std over seeds. Runs made before the neighbour-aware triage existed lack its
    figures and are said to in the cell ("not recorded"), not shown as missing numbers."""
    from .summary import mean_std_text, per_rate_summary

    keys = [k for _, k in TRIAGE_FIGURES]
    if not len(runs):
        return pd.DataFrame(columns=["method", "rate", *(label for label, _ in TRIAGE_FIGURES)])
    runs = runs.assign(**{k: pd.to_numeric(runs[k], errors="coerce") if k in runs else np.nan for k in keys})
    parts = []
    for method, part in runs.groupby("method", sort=False):
        summary = per_rate_summary(part, keys)
        table = pd.DataFrame({label: mean_std_text(summary, key).replace("", "not recorded")
                              for label, key in TRIAGE_FIGURES}, index=summary.index)
        table.insert(0, "method", method)
        parts.append(table.reset_index(names="rate"))
    return pd.concat(parts, ignore_index=True)


def neighbour_triage(data, choices: pd.DataFrame, probs, y_test, val_probs, y_val,
                     alpha: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What notebooks 01 and 03 show: ``(neighbour, comparison)``, the neighbour-aware choices
    (:func:`neighbour_choices`) and :func:`triage_comparison` beside the image-only ``choices``."""
    neighbour = neighbour_choices(data, probs, y_test, val_probs, y_val, alpha=alpha)
    return neighbour, triage_comparison(data, choices, neighbour)
