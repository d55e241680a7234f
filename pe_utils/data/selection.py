"""Picking patients to hit a subset's size: the thesis gives counts, not which studies.

:func:`select_groups` picks groups (patients) whose image and positive counts sum as close
as possible to two targets; :func:`pick_whole_patients` takes every slice of the patients it
picks (Dataset1, Dataset2), :func:`pick_partial_patients` a seeded, capped sample of each
picked patient's slices (the Case2 test set). Everything is deterministic by seed and does
not depend on the row order of ``train.csv``. Used by :func:`pe_utils.data.manifest.build_manifest`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.util import hash_array

#: RSNA has one study per patient, so the study is the patient key (4.1.1)
PATIENT = "StudyInstanceUID"


def select_groups(n_images: np.ndarray, n_positive: np.ndarray, target_images: int,
                  target_positive: int | None = None, seed: int = 0,
                  max_rounds: int = 500) -> np.ndarray:
    """Pick groups (patients) whose images and positives sum as close as possible to targets.

    A seeded first-fit pass over the groups in random order, then best-improvement local
    search (add one, drop one, or swap one chosen group for one left out) until no move
    lowers ``|n - N| / N + |pos - P| / P``. Deterministic for a seed; a new seed gives
    another start and mostly other groups.

    Args:
        n_images, n_positive: (G,) ints per group.
        target_images, target_positive: the targets N and P (None: images only).
        seed: the random order of the first pass (ties are broken in that order too).
        max_rounds: cap on local-search moves.

    Returns:
        (G,) bool, True for chosen groups.
    """
    size = np.asarray(n_images, dtype=np.int64)
    pos = np.asarray(n_positive, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(size))
    size, pos = size[order], pos[order]  # work in seeded order so argmin ties follow the seed
    w_n = 1.0 / max(target_images, 1)
    w_p = 0.0 if target_positive is None else 1.0 / max(target_positive, 1)
    tp = 0 if target_positive is None else target_positive

    def loss(n, p):
        return np.abs(n - target_images) * w_n + np.abs(p - tp) * w_p

    chosen = np.zeros(len(size), dtype=bool)
    n, p = 0, 0
    for g in range(len(size)):
        if loss(n + size[g], p + pos[g]) < loss(n, p):
            chosen[g], n, p = True, n + size[g], p + pos[g]
    for _ in range(max_rounds):
        current = loss(n, p)
        if current == 0:
            break
        inside, outside = np.flatnonzero(chosen), np.flatnonzero(~chosen)
        moves = [(loss(n + size[outside], p + pos[outside]), outside, None),
                 (loss(n - size[inside], p - pos[inside]), None, inside)]
        if len(inside) and len(outside):
            # swap matrix: rows = group dropped, columns = group added
            swap = loss(n - size[inside][:, None] + size[outside][None, :],
                        p - pos[inside][:, None] + pos[outside][None, :])
            moves.append((swap.ravel(), outside, inside))
        best_value, best = current, None
        for values, add, drop in moves:
            if len(values) and values.min() < best_value:
                best_value, best = values.min(), (values.argmin(), add, drop)
        if best is None:
            break
        k, add, drop = best
        if add is not None and drop is not None:
            i, j = divmod(k, len(add))
            chosen[drop[i]], chosen[add[j]] = False, True
        elif add is not None:
            chosen[add[k]] = True
        else:
            chosen[drop[k]] = False
        n, p = int(size[chosen].sum()), int(pos[chosen].sum())
    result = np.zeros(len(size), dtype=bool)
    result[order] = chosen
    return result


def _spread(counts: list[int], limits: list[int], target: int) -> list[int]:
    """Move ``sum(counts)`` to ``target`` one unit per group in turn, within ``[0, limits]``."""
    counts = list(counts)
    while sum(counts) != target:
        step = 1 if sum(counts) < target else -1
        moved = False
        for i in range(len(counts)):
            if sum(counts) != target and 0 <= counts[i] + step <= limits[i]:
                counts[i] += step
                moved = True
        if not moved:
            break
    return counts


def pick_whole_patients(pool: pd.DataFrame, target_n: int, target_p: int, seed: int) -> pd.DataFrame:
    """Every row of the patients :func:`select_groups` picks."""
    groups = pool.groupby(PATIENT, sort=True)["pe_present_on_image"].agg(["size", "sum"])
    chosen = select_groups(groups["size"].to_numpy(), groups["sum"].to_numpy(), target_n, target_p, seed)
    return pool[pool[PATIENT].isin(groups.index[chosen])]


def pick_partial_patients(pool: pd.DataFrame, caps: dict, target_n: int, target_p: int,
                  seed: int) -> pd.DataFrame:
    """A seeded sample of each picked patient's slices: at most ``caps[c]`` of class c each.

    Each patient's slices of a class are ordered by a seeded hash of their SOPInstanceUID,
    so what a patient contributes depends on the seed and its own slices only (not on the
    pool or the row order). Patients are picked on their capped counts; then the per-class
    counts are trimmed or topped up one slice per patient in turn, in that order, so the
    set holds exactly ``target_p`` positives and ``target_n - target_p`` negatives when it can.
    """
    codes, uids = pd.factorize(pool[PATIENT], sort=True)
    label = pool["pe_present_on_image"].to_numpy().astype(np.int64)
    key = f"{seed & 0xFFFFFFFFFFFFFFFF:016x}"  # hash_array wants a 16-character key
    h = hash_array(pool["SOPInstanceUID"].to_numpy(dtype=object), hash_key=key)
    order = np.lexsort((h, label, codes))  # by patient, then class, then seeded hash
    cell = codes[order] * 2 + label[order]
    first = np.r_[0, np.flatnonzero(np.diff(cell)) + 1]
    rank = np.empty(len(pool), dtype=np.int64)
    rank[order] = np.arange(len(pool)) - np.repeat(first, np.diff(np.r_[first, len(pool)]))
    avail = {c: np.bincount(codes[label == c], minlength=len(uids)) for c in (1, 0)}
    capped = {c: np.minimum(avail[c], caps[c]) for c in (1, 0)}
    chosen = select_groups(capped[1] + capped[0], capped[1], target_n, target_p, seed)
    take = np.zeros((len(uids), 2), dtype=np.int64)
    for c, target in ((1, target_p), (0, target_n - target_p)):
        take[chosen, c] = _spread(list(capped[c][chosen]), list(avail[c][chosen]), target)
    return pool[rank < take[codes, label]]

