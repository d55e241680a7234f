"""Cases 2 and 4 side by side (THESIS 6.3): Table 6.4 with intervals over seeds, Table 6.3's
ablation, exam-level AUC, and what cannot be computed yet.

A run is one ``metrics.json`` of notebook 04 (``case2``: supervised) or 05 (``case4``:
contrastive) with its ``train_fraction`` (percent), ``seed`` and ``experiment`` (1-13 of
Table 6.3 / C.1, null for the default configuration). Table 6.4 and the exam-level results
count the default runs; Table 6.3 the ablation runs by experiment number. A run's main figures
score each test slice from its original view, as the thesis did; its test-time-augmentation
figures (``auc_tta``, ...) show beside them wherever the runs have them. A seed run twice
(two report folders read together) counts once, its figures averaged. Intervals are Student t
over seeds (:func:`pe_utils.mean_interval`); the thesis's own numbers are passed in (they live
in the report wing), as ``thesis_numbers.TABLE_6_4`` and ``TABLE_6_3``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..data.splits import TRAIN_FRACTIONS
from ..evaluate.intervals import mean_interval

#: case key of metrics.json -> method name of the tables (supervised first)
CASES = {"case2": "supervised", "case4": "contrastive"}
#: the notebooks whose runs are Case2/4 classifiers (Case4's pretraining, notebook 02 with
#: ``case`` "case4", is not one: it has no training fraction)
CASE_NOTEBOOKS = ("04_case2_supervised", "05_case4_contrastive")
#: the ``--cases`` token of the batch that makes a case's runs (plan cases: notebook 04; Case4's
#: pretraining on Dataset2, then notebook 05)
CASE_COMMANDS = {"case2": "case2", "case4": "case4"}
#: the ablation of Table 6.3 / C.1 through the batch (plan entry 04_case2_ablation, grid ``experiment``;
#: the demo profile leaves it out unless ``--cases`` names it)
ABLATION_COMMAND = "python -m pe_utils batch --profile {profile} --cases case2_ablation"
METRICS = ("auc", "f1", "accuracy")
METRIC_LABELS = {"auc": "AUC", "f1": "F1", "accuracy": "accuracy", "exam_auc_max": "exam AUC (max)",
                 "exam_auc_topk": "exam AUC (top k)", "oracle_f1": "F1 (oracle threshold)",
                 "oracle_accuracy": "accuracy (oracle threshold)", "auc_tta": "AUC (TTA)", "f1_tta": "F1 (TTA)",
                 "accuracy_tta": "accuracy (TTA)", "exam_auc_max_tta": "exam AUC (max, TTA)",
                 "exam_auc_topk_tta": "exam AUC (top k, TTA)"}
#: a main figure (original view, the thesis's way) -> the same figure of the TTA-averaged
#: probabilities, shown beside it where runs recorded it (beyond the thesis: Table 6.4 had no TTA)
TTA_FIGURES = {"auc": "auc_tta", "f1": "f1_tta", "accuracy": "accuracy_tta", "exam_auc_max": "exam_auc_max_tta",
               "exam_auc_topk": "exam_auc_topk_tta"}
#: our figures at the Youden threshold of the test ROC (``metrics_at_oracle``): the thesis's
#: own choice, so these sit beside its F1 and accuracy like for like
ORACLE_METRICS = {"oracle_f1": "f1", "oracle_accuracy": "accuracy"}
#: Table 6.3's toggles: thesis column -> (run key, kind)
TOGGLES = {"lr": ("lr", "number"), "batch_size": ("batch_size", "number"), "optimizer": ("optimizer", "text"),
           "augment": ("augment", "flag"), "dropout": ("dropout", "flag"), "sampling": ("sampling", "flag"),
           "class_weights": ("class_weights", "flag"), "bias": ("bias_prior", "prior")}


def fraction_label(value: Any) -> str:
    """A training-set percentage as the tables print it: ``100``, ``66.66``, ``5``."""
    return f"{round(float(value), 2):g}"


def fraction_order(labels: Sequence[str]) -> list[str]:
    """Distinct percentages, largest first (Table 6.4's order)."""
    return sorted(dict.fromkeys(str(v) for v in labels), key=lambda v: -float(v))


#: Table 6.4's percentages as labels (``data.splits.TRAIN_FRACTIONS`` holds them as shares)
THESIS_FRACTIONS = tuple(fraction_label(100 * f) for f in TRAIN_FRACTIONS)


def case24_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The Case2 and Case4 runs of ``runs`` (``pe_utils.read_metrics``), each named by its method:
    rows of notebooks 04 and 05 (:data:`CASE_NOTEBOOKS`) with ``case`` "case2" or "case4".

    Returns:
        The kept rows plus ``method`` and ``fraction`` (:func:`fraction_label`), ``experiment``
        as a nullable integer (<NA>: the default configuration) and ``configuration`` in words
        (``"default"``, ``"experiment 11"``), sorted by method, fraction (largest
        first), experiment and seed. Empty (with those columns) when there is none.

    Raises:
        ValueError: a Case2/4 run without ``train_fraction`` or ``seed`` (names the files).
    """
    mine = (runs["case"].isin(list(CASES)) & runs["notebook"].isin(CASE_NOTEBOOKS)
            if {"case", "notebook"} <= set(runs.columns) else pd.Series(False, index=runs.index))
    if not mine.any():
        return pd.DataFrame(columns=["case", "method", "fraction", "seed", "experiment", *METRICS])
    kept = runs[mine].copy()
    for key in ("train_fraction", "seed"):
        bad = kept[kept[key].isna()] if key in kept else kept
        if len(bad):
            paths = list(bad["path"]) if "path" in bad else list(bad.index)
            raise ValueError(f"Case2/4 metrics.json without {key!r}: {paths[:5]}")
    kept["method"] = kept["case"].map(CASES)
    kept["fraction"] = kept["train_fraction"].map(fraction_label)
    kept["experiment"] = pd.to_numeric(kept.get("experiment", pd.Series(np.nan, index=kept.index)),
                                       errors="coerce").round().astype("Int64")
    kept["configuration"] = ["default" if pd.isna(e) else f"experiment {e}" for e in kept["experiment"]]
    oracle = kept["metrics_at_oracle"] if "metrics_at_oracle" in kept else pd.Series(None, index=kept.index)
    for m, key in ORACLE_METRICS.items():
        kept[m] = [d.get(key) if isinstance(d, dict) else None for d in oracle]
    for m in (*METRICS, "exam_auc_max", "exam_auc_topk", *ORACLE_METRICS, *TTA_FIGURES.values()):
        kept[m] = pd.to_numeric(kept[m], errors="coerce") if m in kept else np.nan
    keys = dict(_m=kept["case"].map(list(CASES).index), _f=-kept["train_fraction"].astype(float),
                _e=kept["experiment"].fillna(0), _s=pd.to_numeric(kept["seed"], errors="coerce"))
    return kept.assign(**keys).sort_values(list(keys)).drop(columns=list(keys)).reset_index(drop=True)


def default_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """:func:`case24_runs` in the default configuration (no ``experiment``), one row per
    (method, fraction, seed): a repeated seed's figures averaged."""
    runs = runs[runs["experiment"].isna()] if len(runs) else runs
    figures = [c for c in (*METRICS, "exam_auc_max", "exam_auc_topk", *ORACLE_METRICS, *TTA_FIGURES.values())
               if c in runs]
    if not len(runs):
        return pd.DataFrame(columns=["method", "fraction", "seed", *figures])
    return runs.groupby(["method", "fraction", "seed"], as_index=False, sort=False)[figures].mean()


def with_tta(runs: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    """``metrics``, each followed by its TTA figure (:data:`TTA_FIGURES`) where a run of ``runs``
    recorded one (runs made without TTA, or before it was recorded, add no empty column)."""
    out = []
    for m in metrics:
        out.append(m)
        tta = TTA_FIGURES.get(m)
        if tta and tta in runs and pd.to_numeric(runs[tta], errors="coerce").notna().any():
            out.append(tta)
    return out


def known(value: Any) -> bool:
    """A figure that exists: not None, not NaN (a result's None turns NaN inside a DataFrame)."""
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _interval_text(r: dict, digits: int) -> str:
    """``"0.862 \u00b1 0.031 (n=3)"``; ``"0.862 (n=1)"`` with one seed; ``"no value in 2 runs"``
    where runs exist without the figure (an exam AUC of one-class exams); ``""`` with no run."""
    if not r["n"] or not known(r["mean"]):
        missing = int(r.get("n_missing") or 0)
        return f"no value in {missing} run{'s' if missing > 1 else ''}" if missing else ""
    text = f"{r['mean']:.{digits}f}"
    if known(r["low"]):
        text += f" \u00b1 {r['high'] - r['mean']:.{digits}f}"
    return text + f" (n={int(r['n'])})"


def fraction_summary(runs: pd.DataFrame, metrics: Sequence[str] = METRICS, confidence: float = 0.95
                     ) -> pd.DataFrame:
    """Mean and Student t interval over seeds per (method, fraction, metric).

    Args:
        runs: :func:`case24_runs` (default runs are used; ablation runs are not).
        metrics: the figures.
        confidence: the intervals' coverage.

    Returns:
        Long DataFrame: ``method, fraction, metric, mean, low, high, n, n_missing, reason``
        (:func:`pe_utils.mean_interval`; ``low``/``high`` NaN in this frame with one seed,
        ``reason`` saying why: the tables and figures print no interval there, never "nan").
    """
    rows = []
    one = default_runs(runs)
    for (method, fraction), part in (one.groupby(["method", "fraction"], sort=False) if len(one) else ()):
        for m in metrics:
            r = mean_interval(part[m] if m in part else [], confidence)
            rows.append(dict(method=method, fraction=fraction, metric=m,
                             **{k: r[k] for k in ("mean", "low", "high", "n", "n_missing", "reason")}))
    return pd.DataFrame(rows, columns=["method", "fraction", "metric", "mean", "low", "high", "n", "n_missing",
                                       "reason"])


def table_6_4(runs: pd.DataFrame, thesis: pd.DataFrame | None = None, metrics: Sequence[str] = METRICS,
              digits: int = 3, confidence: float = 0.95) -> pd.DataFrame:
    """Our Table 6.4 beside the thesis's: per fraction, each method's mean +- half the 95 % t
    interval over seeds with n, and the thesis's mean (3 supervised, 2 contrastive runs).

    Args:
        runs: :func:`case24_runs`.
        thesis: ``thesis_numbers.TABLE_6_4`` (long: ``train_fraction, method`` and ``metrics``).
        metrics: ours; ``"oracle_f1"`` and ``"oracle_accuracy"`` (:data:`ORACLE_METRICS`: at the
            test-ROC threshold, the thesis's choice) sit beside the thesis's F1 and accuracy.
            Each is followed by its TTA figure (``"AUC (TTA)"``: ours only, the thesis had none)
            where the runs recorded one (:func:`with_tta`).

    Returns:
        DataFrame indexed by fraction (every thesis fraction and any other run, largest
        first), columns ``(metric, "<method> (ours|thesis)")``; ``""`` where nothing is known.
    """
    metrics = with_tta(default_runs(runs), metrics)
    summary = fraction_summary(runs, metrics, confidence)
    fractions = fraction_order([*(thesis["train_fraction"].map(fraction_label) if thesis is not None else []),
                                *summary["fraction"]])
    columns: dict[tuple[str, str], pd.Series] = {}
    for m in metrics:
        for method in CASES.values():
            ours = summary[(summary.metric == m) & (summary.method == method)].set_index("fraction")
            columns[(METRIC_LABELS.get(m, m), f"{method} (ours)")] = pd.Series(
                {f: _interval_text(r, digits) for f, r in ours.to_dict("index").items()}, dtype=object)
            if thesis is not None and ORACLE_METRICS.get(m, m) in thesis:
                t = thesis[thesis.method == method]
                columns[(METRIC_LABELS.get(m, m), f"{method} (thesis)")] = pd.Series(
                    {fraction_label(f): f"{v:g}" for f, v in zip(t["train_fraction"], t[ORACLE_METRICS.get(m, m)])},
                    dtype=object)
    table = pd.DataFrame(columns).reindex(fractions).fillna("")
    table.index.name = "training set %"
    return table


def exam_level_table(runs: pd.DataFrame, digits: int = 3, confidence: float = 0.95) -> pd.DataFrame:
    """Exam-level AUC (each exam scored by its slices' max, and mean of the top k) beside the
    image-level AUC, per method and fraction: mean +- half the t interval over seeds (n).
    A run whose test exams held one class has no exam AUC and is left out of that cell's n.
    Each figure is followed by its TTA one where the runs recorded it (:func:`with_tta`)."""
    metrics = with_tta(default_runs(runs), ("auc", "exam_auc_max", "exam_auc_topk"))
    summary = fraction_summary(runs, metrics, confidence)
    if summary.empty:
        return pd.DataFrame(columns=["method", "training set %", *(METRIC_LABELS[m] for m in metrics)])
    summary["text"] = [_interval_text(r, digits) for r in summary.to_dict("records")]
    table = summary.pivot_table(index=["method", "fraction"], columns="metric", values="text",
                                aggfunc="first", sort=False)
    table = table.reindex(columns=list(metrics)).rename(columns={**METRIC_LABELS, "auc": "image AUC",
                                                                 "auc_tta": "image AUC (TTA)"})
    return table.rename_axis(index=["method", "training set %"], columns=None).fillna("")


def _flag(value: Any) -> bool | None:
    """A toggle's value as on/off (None: not recorded): 0, False, None, "none" are off."""
    if not known(value):
        return None
    if isinstance(value, str):
        return value.strip().lower() not in ("", "none", "false", "off", "no")
    return bool(value)


def toggle_differences(run: dict, thesis_row: dict) -> list[str]:
    """Table 6.3's toggles where a run differs from the thesis's experiment (recorded keys only),
    e.g. ``["batch 32 (thesis 256)", "no dropout (thesis: dropout)"]``. A null ``bias_prior``
    is no bias initialisation (CONTRACTS: float pi or null), so a run must record it."""
    out = []
    for column, (key, kind) in TOGGLES.items():
        if key not in run or (kind != "prior" and not known(run[key])):
            continue   # not recorded (a null bias_prior is recorded: no bias initialisation)
        ours, theirs = run[key], thesis_row[column]
        name = {"lr": "lr", "batch_size": "batch"}.get(column, column.replace("_", " "))
        if kind == "number" and not np.isclose(float(ours), float(theirs)):
            out.append(f"{name} {ours:g} (thesis {theirs:g})")
        elif kind == "text" and str(ours).lower() != str(theirs).lower():
            out.append(f"{ours} (thesis {theirs})")
        elif kind in ("flag", "prior") and bool(_flag(ours)) != bool(theirs):
            out.append(f"{'' if _flag(ours) else 'no '}{name} (thesis: {'' if theirs else 'no '}{name})")
    return out


def table_6_3(runs: pd.DataFrame, thesis: pd.DataFrame, digits: int = 3, confidence: float = 0.95
              ) -> pd.DataFrame:
    """Our ablation (Case2 runs with an ``experiment``) beside Table 6.3 and C.1, one row per
    experiment: the thesis's configuration, ours and its AUC/F1/accuracy (mean +- half the t
    interval, n), and where our runs' recorded toggles differ from the thesis's row.

    Args:
        runs: :func:`case24_runs`; thesis: ``thesis_numbers.TABLE_6_3``.
    """
    ablation = runs[(runs["case"] == "case2") & runs["experiment"].notna()] if len(runs) else runs
    experiments = sorted({*thesis["experiment"].astype(int), *(ablation["experiment"].astype(int) if len(ablation) else [])})
    by_exp = thesis.set_index("experiment")
    rows = []
    for e in experiments:
        part = ablation[ablation["experiment"] == e] if len(ablation) else ablation
        t = by_exp.loc[e].to_dict() if e in by_exp.index else None
        row: dict[str, Any] = {"experiment": e, "table": t["table"] if t else "",
                               "configuration (thesis)": _configuration(t) if t else "not in the thesis"}
        for m in METRICS:
            row[f"{METRIC_LABELS[m]} (ours)"] = _interval_text(mean_interval(part[m] if len(part) else [],
                                                                             confidence), digits)
            row[f"{METRIC_LABELS[m]} (thesis)"] = f"{t[m]:g}" if t else ""
        diffs = sorted({d for r in part.to_dict("records") for d in toggle_differences(r, t)}) if t else []
        row["ours differs in"] = ", ".join(diffs)
        rows.append(row)
    return pd.DataFrame(rows).set_index("experiment")


def ablation_summary(runs: pd.DataFrame, metrics: Sequence[str] = METRICS, confidence: float = 0.95
                     ) -> pd.DataFrame:
    """Mean and t interval over seeds per (Table 6.3 experiment, metric) of the Case2 ablation runs.

    Returns:
        Long DataFrame ``experiment, metric, mean, low, high, n, n_missing, reason`` (as
        :func:`fraction_summary`); empty without ablation runs.
    """
    ablation = runs[(runs["case"] == "case2") & runs["experiment"].notna()] if len(runs) else runs
    rows = [dict(experiment=int(e), metric=m, **{k: r[k] for k in ("mean", "low", "high", "n", "n_missing", "reason")})
            for e, part in (ablation.groupby("experiment") if len(ablation) else ())
            for m in metrics for r in [mean_interval(part[m], confidence)]]
    return pd.DataFrame(rows, columns=["experiment", "metric", "mean", "low", "high", "n", "n_missing", "reason"])


def _configuration(t: dict) -> str:
    flags = ", ".join(("" if t[c] else "no ") + c.replace("_", " ").replace("augment", "augmentation")
                      for c in ("augment", "dropout", "sampling", "class_weights", "bias"))
    return f"{t['dataset']}; lr {t['lr']:g}, batch {t['batch_size']}, {t['optimizer']}; {flags}"
