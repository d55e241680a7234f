"""Case1-style runs across seeds and methods: per sampling rate, the mean, its spread and how many
runs count; supervised (Case1) and contrastive (Case3) runs side by side (THESIS 6.2.4).

A figure a run may lack (no oracle pair: every thesis pair makes an error on the test set,
so ``oracle_workload_pct`` is null) is averaged over the runs that have it; averaging it
silently over fewer runs is optimistic, so the count of runs that had it is kept beside
the mean (``"2 of 3 seeds"``) and every table or figure built from this shows it. The
spread is the sample standard deviation across seeds (``ddof=1``): error bars are
``mean +- std``, absent with a single run.

A method is a family (``supervised``: notebook 01; ``contrastive``: notebook 03) and, for
Case3, the encoder's pretraining epochs: the thesis compares 75 and 150 (Figs 6.13-6.16).
Beyond the thesis, each family fed 2.5D input (a slice with its k neighbours as channels)
is a method of its own: ``supervised 2.5D (k=1)``, ``contrastive 2.5D (k=1)``.

Also what notebook 07 reads (:func:`reports_folder`) and Table 6.2 laid out beside the thesis's
(:func:`table_6_2`). The module is longer than 300 lines because it holds one idea whole: the
summary of the Case1-style runs, from the folder they are read from to the tables they make.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..paths import project_root
from ..profiles import SAMPLING_RATES


def rate_order(rates: Sequence[str]) -> list[str]:
    """The thesis's rates in Table 6.1's order, then any other rate as it first appears."""
    rates = list(dict.fromkeys(str(r) for r in rates))
    return [r for r in SAMPLING_RATES if r in rates] + [r for r in rates if r not in SAMPLING_RATES]


def per_rate_summary(runs: pd.DataFrame, columns: Sequence[str], rate: str = "sampling_rate"
                     ) -> pd.DataFrame:
    """Mean, std and count across runs (seeds) of each figure, one row per sampling rate.

    Args:
        runs: one row per run (:func:`pe_utils.read_metrics`), with column ``rate`` and
            ``columns``; null (None or NaN) where a run lacks a figure.
        columns: the numeric figures to summarise, e.g. ``["f1", "oracle_workload_pct"]``.
        rate: the column holding the sampling rate.

    Returns:
        DataFrame indexed by rate (Table 6.1's order) with ``n_runs`` and, per figure ``c``:
        ``c`` (mean over the runs that have it; NaN when none has), ``c_std`` (sample std
        across them; NaN with fewer than two), ``c_n`` (how many have it) and ``c_seeds``
        (``"k of n seeds"``).

    Raises:
        ValueError: a column missing from ``runs``.
    """
    missing = [c for c in [rate, *columns] if c not in runs.columns]
    if missing:
        raise ValueError(f"runs lack column(s) {missing}")
    order = rate_order(runs[rate])
    rates = runs[rate].astype(str).to_numpy()
    out = pd.DataFrame(index=pd.Index(order, name=rate))
    out["n_runs"] = [int((rates == r).sum()) for r in order]
    for c in columns:
        values = pd.to_numeric(runs[c], errors="coerce").to_numpy(dtype=float)   # None -> NaN
        per = [values[(rates == r) & np.isfinite(values)] for r in order]     # the runs having it
        out[c] = [float(v.mean()) if v.size else np.nan for v in per]
        out[f"{c}_std"] = [float(v.std(ddof=1)) if v.size > 1 else np.nan for v in per]
        out[f"{c}_n"] = [int(v.size) for v in per]
        out[f"{c}_seeds"] = [f"{v.size} of {m} seed{'s' if m != 1 else ''}" for v, m in zip(per, out["n_runs"])]
    return out


def mean_std_text(summary: pd.DataFrame, column: str, digits: int = 2, seeds: bool = False) -> pd.Series:
    """``"52.95 +- 1.20"`` per rate (``"52.95"`` with one run, ``""`` with none), for tables.

    Args:
        summary: :func:`per_rate_summary`.
        column: a summarised figure.
        digits: decimals.
        seeds: append ``" (2 of 3 seeds)"`` where some run lacks the figure.
    """
    def text(row) -> str:
        mean, std, n, n_runs = row[column], row[f"{column}_std"], row[f"{column}_n"], row["n_runs"]
        if not np.isfinite(mean):
            return f"none of {n_runs}" if seeds and n_runs else ""
        out = f"{mean:.{digits}f}" + (f" \u00b1 {std:.{digits}f}" if np.isfinite(std) else "")
        return out + (f" ({row[f'{column}_seeds']})" if seeds and n < n_runs else "")

    return summary.apply(text, axis=1)


def seeds_note(summary: pd.DataFrame, column: str, what: str) -> str:
    """One line saying at which rates some seeds lacked a figure, for a figure's title.

    Args:
        summary: :func:`per_rate_summary`.
        column: a summarised figure, e.g. ``"oracle_workload_pct"``.
        what: what having the figure means, e.g. ``"an oracle pair"``.

    Returns:
        ``"an oracle pair in every run"`` or ``"an oracle pair in 2 of 3 seeds at 1/4, 0 of 3
        at 1/3"`` (means are over the seeds that had it).
    """
    short = summary[summary[f"{column}_n"] < summary["n_runs"]]
    if short.empty:
        return f"{what} in every run"
    return f"{what} in " + ", ".join(f"{row[f'{column}_seeds']} at {rate}" for rate, row in short.iterrows())


def runs_by_method(runs: pd.DataFrame, columns: dict[str, str], thesis: pd.DataFrame | None = None,
                   rate: str = "sampling_rate") -> pd.DataFrame:
    """Runs and the thesis's values in long form, one trace per method for ``pe_utils.rate_curve``.

    Args:
        runs: one row per run with ``rate`` and the figures in ``columns``.
        columns: run figure -> method name, e.g. ``{"oracle_workload_pct": "ours (oracle)"}``.
        thesis: published values, one row per rate with column ``rate``; every other numeric
            column becomes the method ``"thesis <column>"`` (one value per rate: no bar).
        rate: the rate column.

    Returns:
        DataFrame with ``rate``, ``method`` and ``value``: one row per run and figure (NaN
        where a run lacks it, so ``rate_curve`` averages over the runs that have it), then
        the thesis's rows. ``rate_curve(df, "value", group="method")`` draws mean +- std.
    """
    parts = [pd.DataFrame({rate: runs[rate].astype(str), "method": name,
                           "value": pd.to_numeric(runs[column], errors="coerce")})
             for column, name in columns.items()]
    if thesis is not None:
        for column in thesis.drop(columns=[rate]).select_dtypes("number").columns:
            parts.append(pd.DataFrame({rate: thesis[rate].astype(str), "method": f"thesis {column}",
                                       "value": thesis[column].astype(float)}))
    return pd.concat(parts, ignore_index=True)


# ----------------------------------------------------------------------------- methods side by side
#: the notebooks whose runs the comparison holds -> their method family (THESIS 6.2.4)
METHOD_NOTEBOOKS = {"01_case1_supervised": "supervised", "03_case3_finetune": "contrastive"}
#: the batch cases that make a family's runs (Case3's fine-tuning needs its pretraining, 02)
METHOD_CASES = {"supervised": ("Case1", "01"), "contrastive": ("Case3", "02,03")}


def method_name(family: str, pretrain_epochs: float | None = None, context: float | None = None,
                epochs_of_2_5d: bool = False) -> str:
    """A method's name in tables and legends: ``"supervised"``, ``"contrastive (150 epochs)"``,
    ``"supervised 2.5D (k=1)"``, ``"contrastive 2.5D (k=1)"``.

    Args:
        family: ``"supervised"`` or ``"contrastive"``.
        pretrain_epochs: the contrastive encoder's pretraining epochs (None or NaN: not given).
        context: neighbouring slices on each side fed as channels (None, NaN or 0: one slice).
        epochs_of_2_5d: name a 2.5D contrastive method's pretraining epochs too,
            ``"contrastive 2.5D (k=1, 75 epochs)"``; by default a 2.5D method is named by its
            family and k alone (the plan pretrains one 2.5D encoder; :func:`method_runs` asks
            for the epochs where runs of two encoders would otherwise share a name).
    """
    epochs = pretrain_epochs is not None and np.isfinite(float(pretrain_epochs))
    if context is not None and np.isfinite(float(context)) and int(context) > 0:
        more = f", {int(pretrain_epochs)} epochs" if family == "contrastive" and epochs and epochs_of_2_5d else ""
        return f"{family} 2.5D (k={int(context)}{more})"
    return f"contrastive ({int(pretrain_epochs)} epochs)" if family == "contrastive" and epochs else family


def thesis_method(column: str) -> str:
    """A column of the thesis's tables (``"supervised"``, ``"contrastive_75"``) as :func:`method_name`."""
    family, _, epochs = str(column).partition("_")
    return method_name(family, float(epochs)) if epochs.isdigit() else str(column)


def _method_key(name: str) -> tuple:
    """Sort key: one slice before 2.5D (by k); within each, supervised, then contrastive by
    epochs, then any other name."""
    family, _, rest = name.partition(" (")
    family, _, _ = family.partition(" 2.5D")
    k = re.search(r" 2\.5D \(k=(\d+)", name)
    epochs = re.search(r"(\d+) epochs", rest)
    return (int(k.group(1)) if k else 0, 0 if family == "supervised" else 1 if family == "contrastive" else 2,
            int(epochs.group(1)) if epochs else -1, name)


def method_runs(runs: pd.DataFrame, rate: str = "sampling_rate") -> pd.DataFrame:
    """The supervised (Case1) and contrastive (Case3) runs, each named by its method.

    Args:
        runs: every run (:func:`pe_utils.read_metrics` of a report folder; other notebooks'
            rows, such as the pretraining's, are dropped); may be empty.
        rate: the sampling-rate column.

    Returns:
        The kept rows with ``family`` and ``method`` (:func:`method_name`: Case3 runs are
        grouped by ``pretrain_epochs``, so 75 and 150 epochs are two methods, and a 2.5D run
        (``context`` > 0) is a method of its own per family and k, named with its encoder's
        epochs only where 2.5D encoders of different epochs were fine-tuned), sorted by
        method, rate (Table 6.1's order) and seed; index reset. Empty (with those two
        columns) when no run is kept.
    """
    if "notebook" not in runs or rate not in runs:
        return pd.DataFrame(columns=["family", "method", rate])
    kept = runs[runs["notebook"].isin(list(METHOD_NOTEBOOKS)) & runs[rate].notna()].copy()
    kept["family"] = kept["notebook"].map(METHOD_NOTEBOOKS)
    epochs = kept["pretrain_epochs"] if "pretrain_epochs" in kept else pd.Series(np.nan, index=kept.index)
    context = kept["context"] if "context" in kept else pd.Series(np.nan, index=kept.index)
    epochs, context = pd.to_numeric(epochs, errors="coerce"), pd.to_numeric(context, errors="coerce")
    kept["method"] = [method_name(f, e, k) for f, e, k in zip(kept["family"], epochs, context)]
    # two 2.5D encoders' runs under one name would be averaged together: name their epochs
    mixed = epochs.groupby(kept["method"]).transform("nunique") > 1
    kept.loc[mixed, "method"] = [method_name(f, e, k, epochs_of_2_5d=True)
                                 for f, e, k in zip(kept["family"][mixed], epochs[mixed], context[mixed])]
    order = rate_order(kept[rate])
    keys = {"_m": kept["method"].map(_method_key), "_r": kept[rate].astype(str).map(order.index)}
    if "seed" in kept:
        keys["_s"] = pd.to_numeric(kept["seed"], errors="coerce")
    return kept.assign(**keys).sort_values(list(keys)).drop(columns=list(keys)).reset_index(drop=True)


def missing_methods(runs: pd.DataFrame, profile: str = "demo") -> list[str]:
    """What to run for a method family with no run: one line per missing family.

    Args:
        runs: :func:`method_runs`.
        profile: the profile to name in the command.

    Returns:
        e.g. ``["No contrastive (Case3) run here: `python -m pe_utils batch --profile demo
        --cases 02,03` makes them."]``; empty when both families have runs.
    """
    have = set(runs["family"]) if "family" in runs else set()
    return [f"No {family} ({case}) run here: `python -m pe_utils batch --profile {profile} --cases {cases}` "
            f"makes them." for family, (case, cases) in METHOD_CASES.items() if family not in have]


def method_long(runs: pd.DataFrame, column: str, thesis: pd.DataFrame | None = None,
                pooled: dict[str, str] | None = None, rate: str = "sampling_rate") -> pd.DataFrame:
    """One figure per run, per method, beside the thesis's values, in long form.

    Args:
        runs: :func:`method_runs`.
        column: the figure, e.g. ``"oracle_workload_pct"`` (null where a run lacks it).
        thesis: the thesis's values, one row per rate with column ``rate`` and one numeric
            column per method (``FIG_6_15``); named with :func:`thesis_method`.
        pooled: figures that do not depend on the method -> their name, e.g.
            ``{"baseline_f1": "no-image baseline"}``: one value per (rate, seed), from
            whichever method's run has it (the splits are the same).
        rate: the rate column.

    Returns:
        DataFrame with ``rate``, ``method``, ``source`` (``"ours"``, ``"thesis"`` or
        ``"baseline"``) and ``value``; several rows per (method, rate) are seeds.

    Raises:
        ValueError: ``column`` (or a pooled one) missing from non-empty ``runs``.
    """
    missing = [c for c in [column, *(pooled or {})] if len(runs) and c not in runs]
    if missing:
        raise ValueError(f"runs lack column(s) {missing}")
    parts = [pd.DataFrame({rate: runs[rate].astype(str), "method": runs["method"], "source": "ours",
                           "value": pd.to_numeric(runs[column], errors="coerce")})] if len(runs) else []
    for c, name in (pooled or {}).items():
        if len(runs):
            seeds = runs["seed"] if "seed" in runs else pd.Series(0, index=runs.index)
            one = runs.assign(_seed=seeds).drop_duplicates([rate, "_seed"])
            parts.append(pd.DataFrame({rate: one[rate].astype(str), "method": name, "source": "baseline",
                                       "value": pd.to_numeric(one[c], errors="coerce")}))
    if thesis is not None:
        for c in thesis.drop(columns=[rate]).select_dtypes("number").columns:
            parts.append(pd.DataFrame({rate: thesis[rate].astype(str), "method": thesis_method(c),
                                       "source": "thesis", "value": thesis[c].astype(float)}))
    if not parts:
        return pd.DataFrame(columns=[rate, "method", "source", "value"])
    return pd.concat(parts, ignore_index=True)


def method_table(runs: pd.DataFrame, column: str, thesis: pd.DataFrame | None = None, digits: int = 2,
                 rates: Sequence[str] | None = None, rate: str = "sampling_rate") -> pd.DataFrame:
    """A figure per rate and method as text, ours (mean +- std, seeds) beside the thesis's.

    Args:
        runs: :func:`method_runs`.
        column: the figure.
        thesis: as in :func:`method_long`.
        digits: decimals.
        rates: the rows, in order (default: the thesis's and the runs' rates in Table 6.1's
            order); ``""`` where a method has no value.
        rate: the rate column.

    Returns:
        DataFrame indexed by rate (``rates``), one column
        ``"<method> (ours)"`` per method (:func:`mean_std_text` with ``"(k of n seeds)"``
        where some seed lacks the figure) and ``"<method> (thesis)"`` per thesis column.
    """
    columns: dict[str, pd.Series] = {}
    for method, part in (runs.groupby("method", sort=False) if len(runs) else ()):
        columns[f"{method} (ours)"] = mean_std_text(per_rate_summary(part, [column], rate), column, digits, True)
    if thesis is not None:
        for c in thesis.drop(columns=[rate]).select_dtypes("number").columns:
            columns[f"{thesis_method(c)} (thesis)"] = thesis.set_index(rate)[c].map(lambda v: f"{v:.{digits}f}")
    if rates is None:
        rates = rate_order([*(thesis[rate] if thesis is not None else []), *(runs[rate] if len(runs) else [])])
    table = pd.DataFrame(columns, index=pd.Index([str(r) for r in rates], name=rate)).fillna("")
    return table[sorted(table.columns, key=lambda c: (_method_key(c.rsplit(" (", 1)[0]), c))]


def method_seeds_note(runs: pd.DataFrame, column: str, what: str, rate: str = "sampling_rate") -> str:
    """:func:`seeds_note` per method, joined: ``"supervised: an oracle pair in 2 of 3 seeds at 1/4;
    contrastive (150 epochs): an oracle pair in every run"`` (``""`` without runs)."""
    return "; ".join(f"{method}: {seeds_note(per_rate_summary(part, [column], rate), column, what)}"
                     for method, part in runs.groupby("method", sort=False)) if len(runs) else ""


def reports_folder(profile: str, reports_dir: str | Path | None = None) -> Path:
    """The folder whose ``metrics.json`` files the summary reads.

    Args:
        profile: the runs' profile (names the batch's default folder ``reports/<profile>``).
        reports_dir: a given folder (a batch's ``--out``), used as is.

    Returns:
        ``reports_dir``; else ``reports/<profile>`` if it holds a ``metrics.json``, else
        ``runs/`` (notebooks run by hand write there) if it does, else ``reports/<profile>``.
    """
    if reports_dir is not None:
        return Path(reports_dir)
    candidates = [project_root() / "reports" / profile, project_root() / "runs"]
    return next((c for c in candidates if c.is_dir() and any(c.rglob("metrics.json"))), candidates[0])


def table_6_2(case1: pd.DataFrame, thesis: pd.DataFrame) -> pd.DataFrame:
    """Table 6.2 per rate: training stage, uncertain share and workload (oracle pair) of the
    supervised runs, mean +- std across seeds, beside the thesis's, plus the workload at the
    validation pair and how many seeds had an oracle pair.

    Args:
        case1: the supervised rows of ``pe_utils.method_runs`` (non-empty).
        thesis: ``thesis_numbers.TABLE_6_2``.

    Returns:
        One row per rate (Table 6.1's order), column ``rate`` first, ready for
        ``pe_utils.workload_table``.
    """
    ours = per_rate_summary(case1, ["pct_training_stage", "oracle_pct_uncertain", "oracle_workload_pct",
                                    "practical_workload_pct"])
    printed = thesis.set_index("sampling_rate").reindex(ours.index)
    table = pd.DataFrame({
        "test": [SAMPLING_RATES.get(r, r) for r in ours.index],
        "training stage % (ours)": mean_std_text(ours, "pct_training_stage"),
        "training stage % (thesis)": printed.pct_training_stage,
        "uncertain % (ours, oracle)": mean_std_text(ours, "oracle_pct_uncertain"),
        "uncertain % (thesis)": printed.pct_uncertain,
        "workload % (ours, oracle)": mean_std_text(ours, "oracle_workload_pct"),
        "workload % (thesis)": printed.workload_pct,
        "workload % (ours, validation)": mean_std_text(ours, "practical_workload_pct"),
        "seeds with an oracle pair": ours.oracle_workload_pct_seeds,
    }, index=ours.index)
    return table.reset_index(names="rate")
