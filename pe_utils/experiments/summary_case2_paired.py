"""Contrastive against supervised, seed by seed: the thesis's open question (6.3.2), and what is
missing for it.

The thesis saw Case4 beat Case2 at some training fractions and lose at others, from 2 and 3
runs, and wrote that "it is hard to know if it is due to the method, or the randomness". Here the
same seed gives both cases the same training subset, split and augmentation stream, so the
per-seed difference contrastive - supervised cancels that seed's luck; its mean over seeds, its
Student t interval and a paired test (:func:`pe_utils.paired_difference`) say per fraction
whether the data can tell the two apart. The last row pools the fractions honestly: each seed's
differences are averaged over the fractions every seed has, and those per-seed means are the
pairs (the fractions of one seed are nested subsets, not independent repeats).
"""
from __future__ import annotations

from pathlib import PurePath
from typing import Any, Sequence

import pandas as pd

from ..evaluate.intervals import paired_difference, seeds_to_resolve
from .summary_case2 import (ABLATION_COMMAND, CASE_COMMANDS, CASES, METRIC_LABELS, METRICS, THESIS_FRACTIONS,
                            default_runs, fraction_order, known)

#: the row label of the comparison pooled over fractions
ALL_FRACTIONS = "every fraction"


def seed_pairs(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (fraction, seed) the contrastive and the supervised figure (NaN where one is missing).

    Args:
        runs: :func:`pe_utils.case24_runs` (default runs are used).
        metric: e.g. ``"auc"``.

    Returns:
        DataFrame with ``fraction, seed, contrastive, supervised`` (one row per seed that has
        either run), fractions largest first.
    """
    one = default_runs(runs)
    if not len(one) or metric not in one:
        return pd.DataFrame(columns=["fraction", "seed", "contrastive", "supervised"])
    wide = one.pivot_table(index=["fraction", "seed"], columns="method", values=metric, aggfunc="mean",
                           dropna=False).reindex(columns=["contrastive", "supervised"])
    wide = wide.dropna(how="all").reset_index()
    wide.columns.name = None
    order = fraction_order(wide["fraction"])
    return wide.assign(_f=wide["fraction"].map(order.index)).sort_values(["_f", "seed"]).drop(columns="_f")


def verdict(diff: dict[str, Any], alpha: float = 0.05) -> str:
    """A :func:`pe_utils.paired_difference` result in plain words (contrastive - supervised); where
    the interval holds 0, roughly how many seeds the observed difference and spread would need
    (:func:`pe_utils.seeds_to_resolve`: a planning figure from the seeds at hand)."""
    n, mean, low, high = int(diff["n"]), diff["mean"], diff["low"], diff["high"]
    if n == 0:
        return "no pair of runs yet"
    if n == 1:
        return "cannot tell apart from one seed"
    if not known(diff["p_value"]):
        if mean == 0:
            return f"identical at all {n} seeds"
        better = "contrastive" if mean > 0 else "supervised"
        return f"{better} ahead by the same {abs(mean):.3f} at all {n} seeds (no spread to test)"
    if low <= 0 <= high:
        text = f"cannot tell apart at n={n}: the interval holds 0"
        if not known(diff.get("sd")):
            return text
        need = seeds_to_resolve(mean, diff["sd"], 1 - alpha)
        return text + (f" (a difference this size at this spread needs about {need} seeds)" if need else
                       " (a difference this small needs over 1,000 seeds at this spread)")
    text = f"{'contrastive' if mean > 0 else 'supervised'} better (n={n}, p={diff['p_value']:.2g})"
    if known(diff["wilcoxon_p"]) and diff["wilcoxon_p"] >= alpha:
        text += f"; Wilcoxon does not confirm (p={diff['wilcoxon_p']:.2g})"
    return text


def encoders_per_seed(runs: pd.DataFrame) -> tuple[int, int]:
    """``(seeds, encoders)`` of the default contrastive runs: how many seeds, and how many distinct
    pretrained encoders (``pretrained_from``'s folders) they fine-tuned; ``(0, 0)`` without them."""
    if not len(runs) or "pretrained_from" not in runs:
        return 0, 0
    contrastive = runs[(runs["method"] == "contrastive") & runs["experiment"].isna()]
    if not len(contrastive):
        return 0, 0
    folders = {str(PurePath(str(p)).parent) for p in contrastive["pretrained_from"].dropna()}
    return int(contrastive["seed"].nunique()), len(folders)


def pretraining_note(runs: pd.DataFrame) -> str:
    """What varies between the pairs, in words: whether each seed's contrastive run fine-tuned an
    encoder pretrained with that seed, or all of them one encoder (then a verdict holds for that
    pretraining only: the thesis's "the method, or the randomness" is half answered)."""
    seeds, encoders = encoders_per_seed(runs)
    if seeds < 2:
        return ""
    if encoders == 1:
        return (f"All {seeds} seeds fine-tune one pretrained encoder: a pair varies the patient split, the "
                "training subset, the new head's initialisation and the augmentation, not the pretraining, "
                "so a verdict below holds for that one encoder, not for the method.")
    if encoders >= seeds:
        return (f"Each of the {seeds} seeds fine-tunes an encoder pretrained with its own seed: a pair varies "
                "the pretraining too, so a verdict below covers the pretraining's randomness.")
    return (f"The {seeds} seeds fine-tune {encoders} pretrained encoders: some pairs share one, so the "
            "pretraining's randomness is only partly covered.")


def paired_comparison(runs: pd.DataFrame, metrics: Sequence[str] = METRICS, confidence: float = 0.95
                      ) -> pd.DataFrame:
    """Per fraction and metric, the paired difference contrastive - supervised over seeds.

    Returns:
        Long DataFrame: ``fraction`` (each having runs of both methods, paired by seed or not;
        then :data:`ALL_FRACTIONS` when two fractions or more
        are complete for every paired seed), ``metric``, :func:`pe_utils.paired_difference`'s
        keys (``mean, low, high, n, sd, p_value, test, wilcoxon_p, reason``), ``verdict`` and
        ``fractions`` (what the pooled row averages). A verdict that one method is better says
        so "for one encoder" when every seed fine-tuned the same pretraining (:func:`pretraining_note`).
    """
    seeds, encoders = encoders_per_seed(runs)
    shared = " for one pretrained encoder" if seeds > 1 and encoders == 1 else ""

    def said(d: dict) -> str:
        text = verdict(d, 1 - confidence)
        return text.replace(" better (", f" better{shared} (", 1) if shared else text

    rows = []
    for m in metrics:
        pairs = seed_pairs(runs, m)
        for fraction, part in pairs.groupby("fraction", sort=False):
            if part["contrastive"].isna().all() or part["supervised"].isna().all():
                continue   # one method only: case24_notes says what runs the other
            d = paired_difference(part["contrastive"], part["supervised"], confidence)
            rows.append(dict(fraction=fraction, metric=m, **d, verdict=said(d), fractions=""))
        both = pairs.dropna(subset=["contrastive", "supervised"])
        wide = both.pivot(index="seed", columns="fraction", values=["contrastive", "supervised"])
        complete = [f for f in fraction_order(both["fraction"])
                    if wide[("contrastive", f)].notna().all()] if len(both) else []
        if len(complete) >= 2:
            a = wide["contrastive"][complete].mean(axis=1)
            b = wide["supervised"][complete].mean(axis=1)
            d = paired_difference(a, b, confidence)
            rows.append(dict(fraction=ALL_FRACTIONS, metric=m, **d, verdict=said(d), fractions=", ".join(complete)))
    return pd.DataFrame(rows, columns=["fraction", "metric", "mean", "low", "high", "n", "sd", "p_value", "test",
                                       "wilcoxon_p", "reason", "verdict", "fractions"])


def _signed(v: float | None, digits: int) -> str:
    return f"{v:+.{digits}f}" if known(v) else ""


def paired_table(comparison: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """:func:`paired_comparison` as a table: per fraction and metric, the mean difference with its
    95 % interval, the p-values (t, and Wilcoxon from 6 pairs) and the verdict."""
    rows: dict[str, dict] = {}
    for r in comparison.to_dict("records"):
        label = METRIC_LABELS.get(r["metric"], r["metric"])
        interval = f" [{_signed(r['low'], digits)}, {_signed(r['high'], digits)}]" if known(r["low"]) else ""
        p = f"{r['p_value']:.2g}" if known(r["p_value"]) else ""
        if known(r["wilcoxon_p"]):
            p += f" (Wilcoxon {r['wilcoxon_p']:.2g})"
        row = rows.setdefault(r["fraction"], {})
        row[(label, "difference [95 % interval]")] = _signed(r["mean"], digits) + interval
        row[(label, "p")] = p
        row[(label, "verdict")] = r["verdict"]
    table = pd.DataFrame.from_dict(rows, orient="index")
    if len(table):
        table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table.rename_axis("training set %")


def case24_notes(runs: pd.DataFrame, profile: str = "demo") -> list[str]:
    """What the Case2/4 tables cannot show yet, and the command that makes it, one line each.

    Args:
        runs: :func:`pe_utils.case24_runs`; profile: the profile to name in the commands.

    Returns:
        Lines about a case with no run, fractions of Table 6.4 no run covers, a fraction or
        seed one case has and the other lacks (left out of the paired comparison), and Table
        6.3's experiments without a run; empty when nothing is missing.
    """
    command = "`python -m pe_utils batch --profile {p} --cases {c}`"
    one = default_runs(runs)
    notes = [f"No {method} (Case{case[-1]}) run of Table 6.4 here: "
             f"{command.format(p=profile, c=CASE_COMMANDS[case])} makes them."
             for case, method in CASES.items() if not len(one) or not (one["method"] == method).any()]
    have = {m: set(one.loc[one["method"] == m, "fraction"]) for m in CASES.values()}
    absent = [f for f in THESIS_FRACTIONS if not any(f in h for h in have.values())]
    if len(one) and absent:
        notes.append(f"Table 6.4's fractions without a run here: {', '.join(absent)} % (not in the {profile} "
                     f"profile's grid; {command.format(p='thesis', c='case2,case4')} runs all eleven).")
    for case, method in CASES.items():
        other = [m for m in CASES.values() if m != method][0]
        if have[method] and have[other]:
            lone = fraction_order(have[method] - have[other])
            if lone:
                other_case = [c for c, m in CASES.items() if m == other][0]
                notes.append(f"At {', '.join(lone)} %, {method} runs have no {other} partner yet: "
                             f"`python -m pe_utils batch --profile {profile} --cases {CASE_COMMANDS[other_case]} "
                             f"--fractions {','.join(lone)}` runs it.")
    pairs = seed_pairs(runs, "auc")
    lone_seeds = pairs[pairs["contrastive"].isna() ^ pairs["supervised"].isna()]
    lone_seeds = lone_seeds[lone_seeds["fraction"].isin(have["supervised"] & have["contrastive"])]
    if len(lone_seeds):
        which = [f"seed {int(r.seed)} at {r.fraction} % ({'supervised' if pd.isna(r.contrastive) else 'contrastive'}"
                 f" only)" for r in lone_seeds.itertuples()]
        notes.append(f"Left out of the paired comparison (no partner with the same seed): {'; '.join(which)}.")
    if note := pretraining_note(runs):
        notes.append(note)
    ablation = set(runs.loc[runs["experiment"].notna(), "experiment"].astype(int)) if len(runs) else set()
    missing = [e for e in range(1, 14) if e not in ablation]
    if missing:
        notes.append(f"Table 6.3's experiments without a run here: {_ranges(missing)} "
                     f"(`{ABLATION_COMMAND.format(profile=profile)}` replays the ablation).")
    return notes


def _ranges(numbers: list[int]) -> str:
    """``[1, 2, 3, 5, 12, 13]`` -> ``"1-3, 5, 12-13"``."""
    parts, start = [], None
    for i, n in enumerate(numbers):
        start = n if start is None else start
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(f"{start}" if start == n else f"{start}-{n}")
            start = None
    return ", ".join(parts)
