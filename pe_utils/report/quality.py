"""What a number in a report means: when a run's model needs a check, and how each figure reads.

A notebook that ran to the end is not a model worth reading: a network that learnt nothing
still writes a ``metrics.json``, and its workload then says nothing about its sampling rate.
:func:`quality_checks` names what is wrong with a run's figures (AUC or F1 under a floor, no
error-free oracle pair); the batch index shows such a run as "check", not as a success.

:data:`RUN_COLUMNS` are the index's figure columns, each with what it means; :func:`cell_text`
turns a run's value into what the index prints: 1-2 decimals, and words where a value is
missing (``no error-free pair: 100 %``) with a footnote key into :data:`FOOTNOTES`.
:data:`METHOD_NOTES` is the legend of the three threshold choices (oracle, validation,
conformal) and :data:`FIELD_LABELS` the readable names of raw column names in tables.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["AUC_FLOOR", "F1_FLOOR", "quality_checks", "METHOD_NOTES", "IndexColumn", "RUN_COLUMNS",
           "FOOTNOTES", "cell_text", "worded", "FIELD_LABELS", "field_label"]

#: under these test figures a model is too weak for its workload to mean anything: an AUC of
#: 0.75 is well below the thesis's worst Case1 run (0.93), and an F1 of 0.3 at threshold 0.5
#: means the positives are mostly missed or drowned in false alarms
AUC_FLOOR = 0.75
F1_FLOOR = 0.30


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def quality_checks(metrics: Mapping[str, Any]) -> list[str]:
    """Why a run's figures need a check before anyone reads them (empty: nothing to check).

    Args:
        metrics: a run's ``metrics.json`` (any schema; only the keys present are checked:
            ``auc``, ``f1``, ``oracle_thresholds``).

    Returns:
        One short sentence per problem, e.g. ``"AUC 0.70 < 0.75"``, ``"F1 0.01 < 0.30"``,
        ``"no error-free oracle pair"``.
    """
    reasons = []
    auc, f1 = _number(metrics.get("auc")), _number(metrics.get("f1"))
    if "auc" in metrics and (auc is None or auc < AUC_FLOOR):
        reasons.append(f"AUC {auc:.2f} < {AUC_FLOOR:.2f}" if auc is not None else "no AUC")
    if "f1" in metrics and (f1 is None or f1 < F1_FLOOR):
        reasons.append(f"F1 {f1:.2f} < {F1_FLOOR:.2f}" if f1 is not None else "no F1")
    if "oracle_thresholds" in metrics and not metrics.get("oracle_thresholds"):
        reasons.append("no error-free oracle pair")
    return reasons


#: the legend of the three threshold choices, one honest sentence each
METHOD_NOTES: dict[str, str] = {
    "oracle": "chosen with the test labels, as the thesis does: the widest thesis pair with no error "
              "among the sure test predictions. Its errors are 0 by construction; it shows what the "
              "best pair could reach, not a choice anyone can make before knowing the labels.",
    "validation": "chosen without test labels: the widest thesis pair with no error among the sure "
                  "validation predictions, then applied to the test slices, where it may err.",
    "conformal": "thresholds from split-conformal calibration on the validation slices (crepes). Its "
                 "alpha bounds the miscoverage rate of the prediction sets on exchangeable data, "
                 "marginally (per class with Mondrian), not the error rate among the slices it labels "
                 "automatically: read its errors column.",
}


@dataclass(frozen=True)
class IndexColumn:
    """One figure column of the batch index.

    Attributes:
        key: the ``metrics.json`` key whose presence in a run shows the column.
        group: the header over several columns (``""``: none).
        label: the column's header.
        meaning: what the number means (the index's legend, the README).
        kind: how :func:`cell_text` words it.
    """
    key: str
    group: str
    label: str
    meaning: str
    kind: str = "pct"


RUN_COLUMNS: tuple[IndexColumn, ...] = (
    IndexColumn("auc", "", "AUC", "test AUC of the TTA-averaged probabilities (1 = perfect ranking, "
                "0.5 = chance)", "ratio"),
    IndexColumn("f1", "", "F1", "test F1 at threshold 0.5", "ratio"),
    IndexColumn("pct_training_stage", "", "training stage %", "% of the dataset annotated by hand up "
                "front (training + validation slices); part of every workload"),
    IndexColumn("oracle_workload_pct", "oracle (uses test labels)", "workload %",
                "% of the dataset annotated by hand: training stage + test slices left uncertain "
                "(Table 6.2)", "oracle_workload"),
    IndexColumn("oracle_thresholds", "oracle (uses test labels)", "errors %",
                "% of the sure (automatically labelled) test predictions that are wrong", "oracle_errors"),
    IndexColumn("practical_workload_pct", "validation", "workload %", "as for the oracle",
                "practical_workload"),
    IndexColumn("practical_error_rate", "validation", "errors %", "as for the oracle", "practical_errors"),
    IndexColumn("conformal_workload_pct", "conformal", "workload %", "as for the oracle"),
    IndexColumn("conformal_error_rate", "conformal", "errors %", "as for the oracle", "errors"),
    IndexColumn("n_images", "", "images", "images in the preprocessed cache", "count"),
)

#: the words of a missing value, explained once under the table
FOOTNOTES: dict[str, str] = {
    "no_pair": "no error-free pair: no thesis threshold pair left zero errors among the sure predictions "
               "(of the test slices for the oracle, of the validation slices for the validation choice), "
               "so nothing is labelled automatically and the whole dataset is annotated by hand (100 %).",
    "no_sure": "no sure prediction: every test slice fell between the two thresholds, so none was "
               "labelled automatically and there is no error rate to give.",
    "missing": "not recorded: the run's metrics.json has no value here.",
}


def _pct(value: float) -> str:
    return f"{value:.1f}"


def cell_text(column: IndexColumn, metrics: Mapping[str, Any]) -> tuple[str, str | None]:
    """What the index prints for one run in one column.

    Args:
        column: one of :data:`RUN_COLUMNS`.
        metrics: the run's ``metrics.json``.

    Returns:
        ``(text, footnote)``: percentages with 1 decimal, AUC and F1 with 2, counts whole;
        ``footnote`` is a key of :data:`FOOTNOTES` when the text is words, else None.
    """
    value = _number(metrics.get(column.key))
    kind = column.kind
    # the practical workload is 100 (not null) when no validation pair exists: say why
    no_practical = "practical_thresholds" in metrics and not metrics["practical_thresholds"]
    if (kind == "oracle_workload" and value is None) or (kind == "practical_workload" and no_practical):
        return "no error-free pair: 100 %", "no_pair"
    if kind == "oracle_errors":
        if not metrics.get("oracle_thresholds"):
            return "nothing automated", "no_pair"
        uncertain = _number(metrics.get("oracle_pct_uncertain"))
        n, n_test = _number(metrics.get("n_dataset")), _number(metrics.get("n_test"))
        if None not in (uncertain, n, n_test) and round(uncertain * n / 100) >= n_test:
            return "no sure prediction", "no_sure"
        return "0", None  # zero errors on the test set is how the oracle pair is chosen
    if kind == "practical_errors" and no_practical:
        return "nothing automated", "no_pair"
    if value is None:
        if kind in ("errors", "practical_errors"):
            return "no sure prediction", "no_sure"
        return "not recorded", "missing"
    if kind == "ratio":
        return f"{value:.2f}", None
    if kind == "count":
        return f"{value:,.0f}", None
    return _pct(value), None


def worded(runs: Any, columns: list[str]) -> Any:
    """``runs[columns]`` with every index figure written as the index writes it (:func:`cell_text`).

    A table of runs shows no ``nan``: a workload without an error-free pair reads "no error-free
    pair: 100 %", an error rate with nothing automated "nothing automated", a missing pair "none".

    Args:
        runs: a pandas DataFrame, one row per run's ``metrics.json``.
        columns: the columns to show; those of :data:`RUN_COLUMNS` are worded (the
            ``oracle_thresholds`` pair itself stays a pair, not the oracle's errors column).

    Returns:
        A new DataFrame with ``columns`` only.
    """
    by_key = {c.key: c for c in RUN_COLUMNS if c.kind != "oracle_errors"}
    records = runs.to_dict("records")
    out = runs[list(columns)].copy()
    for name in columns:
        if name in by_key:
            out[name] = [cell_text(by_key[name], r)[0] for r in records]
        elif name.endswith("_thresholds"):
            out[name] = [f"{p[0]:g}/{p[1]:g}" if isinstance(p, (list, tuple)) and len(p) == 2 else "none"
                         for p in out[name]]
    return out


#: readable names of the raw column names of the notebooks' tables (workload_table)
FIELD_LABELS: dict[str, str] = {
    "method": "threshold choice",
    "upper": "upper threshold",
    "lower": "lower threshold",
    "thresholds": "thresholds (upper/lower)",
    "uses_test_labels": "uses test labels",
    "n_uncertain": "uncertain test slices",
    "n_false": "wrong sure predictions",
    "n_false_pos": "false positives",
    "n_false_neg": "false negatives",
    "workload_pct": "workload %",
    "error_rate_pct": "errors % among sure predictions",
    "pct_positives_auto_correct": "positives labelled correctly %",
    "pct_training_stage": "training stage %",
    "pct_uncertain": "uncertain %",
    "pct_true": "true %",
    "pct_false": "false %",
    "test_name": "test",
}


def field_label(name: Any) -> str:
    """The readable name of a raw column name (:data:`FIELD_LABELS`), else the name with spaces."""
    return FIELD_LABELS.get(str(name), str(name).replace("_", " "))
