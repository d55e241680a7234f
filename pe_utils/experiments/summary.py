"""Case1-style runs across seeds: per sampling rate, the mean, its spread and how many runs count.

A figure a run may lack (no oracle pair: every thesis pair makes an error on the test set,
so ``oracle_workload_pct`` is null) is averaged over the runs that have it; averaging it
silently over fewer runs is optimistic, so the count of runs that had it is kept beside
the mean (``"2 of 3 seeds"``) and every table or figure built from this shows it. The
spread is the sample standard deviation across seeds (``ddof=1``): error bars are
``mean +- std``, absent with a single run.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

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
