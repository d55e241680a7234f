"""The summary notebook's plumbing that is not a lesson: which report folder it reads, and Table
6.2 (the supervised workload per rate) laid out beside the thesis's.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..paths import project_root
from ..profiles import SAMPLING_RATES
from .summary import mean_std_text, per_rate_summary

__all__ = ["reports_folder", "table_6_2"]


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
