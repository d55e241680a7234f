"""Data manifests: which RSNA images an experiment uses, picked from a ``train.csv``, checked by sha256.

The thesis gives only the sizes of its subsets (Dataset1, Dataset2, the Case2 test set;
specs in ``data_manifest/specs/*.json``), not which studies it took. :func:`build_manifest`
picks whole patients from a user's ``train.csv``, deterministically by seed, to hit a
spec's image count and positive count; :func:`verify_manifest` checks a local copy of the
files against the manifest's sha256. Nothing is ever downloaded here.

A manifest is a CSV with :data:`COLUMNS`; a JSON summary (achieved counts, seed, spec)
is written beside it. ``python -m pe_utils manifest {build,verify,from-dir} --help``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.util import hash_array

COLUMNS = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "path",
           "pe_present_on_image", "sha256"]
#: RSNA has one study per patient, so the study is the patient key (4.1.1)
PATIENT = "StudyInstanceUID"
#: the thesis's subset specs ship inside the package, so ``--spec dataset1`` works from any folder
SPEC_DIR = Path(__file__).resolve().parent / "specs"


def load_spec(spec: str | Path) -> dict:
    """Read a spec: a name in ``pe_utils/data/specs`` (``"dataset1"``) or a JSON path."""
    path = Path(spec)
    if not path.suffix:
        path = SPEC_DIR / f"{spec}.json"
    if not path.exists():
        known = sorted(p.stem for p in SPEC_DIR.glob("*.json"))
        raise FileNotFoundError(f"no spec {spec!r} (looked for {path}); known: {known}")
    return json.loads(path.read_text())


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


def read_train_csv(path: str | Path) -> pd.DataFrame:
    """The four columns of an RSNA ``train.csv`` a manifest needs, as strings and 0/1."""
    df = pd.read_csv(path, usecols=COLUMNS[:3] + ["pe_present_on_image"], dtype=str)
    df["pe_present_on_image"] = df["pe_present_on_image"].astype(int)
    return df


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


def _pick_whole(pool: pd.DataFrame, target_n: int, target_p: int, seed: int) -> pd.DataFrame:
    """Every row of the patients :func:`select_groups` picks."""
    groups = pool.groupby(PATIENT, sort=True)["pe_present_on_image"].agg(["size", "sum"])
    chosen = select_groups(groups["size"].to_numpy(), groups["sum"].to_numpy(), target_n, target_p, seed)
    return pool[pool[PATIENT].isin(groups.index[chosen])]


def _pick_partial(pool: pd.DataFrame, caps: dict, target_n: int, target_p: int,
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


def build_manifest(train: pd.DataFrame, spec: dict, seed: int = 0,
                   exclude_patients: set[str] | frozenset = frozenset(),
                   rsna_root: str | Path | None = None, workers: int = 4) -> tuple[pd.DataFrame, dict]:
    """Pick patients from ``train`` to meet ``spec``; see :func:`select_groups`.

    Args:
        train: rows of ``train.csv`` (:func:`read_train_csv`).
        spec: a spec dict (:func:`load_spec`): ``n_images``, ``n_positive``, ``tolerance``,
            optional ``partial`` caps for a positive-rich set made of slices of each patient.
        seed: which patients (and, with ``partial``, which of their slices).
        exclude_patients: StudyInstanceUIDs never picked (e.g. Dataset2's, for the test set).
        rsna_root: if given, fill ``sha256`` for the files present there.
        workers: threads hashing files.

    Returns:
        ``(manifest, summary)``: the manifest DataFrame (:data:`COLUMNS`) and a dict of
        targets, achieved counts and whether they lie within the spec's tolerance.

    Raises:
        ValueError: the pool is too small, or the best pick misses the tolerance.
    """
    pool = train[~train[PATIENT].isin(exclude_patients)].reset_index(drop=True)
    target_n, target_p = int(spec["n_images"]), int(spec["n_positive"])
    if len(pool) < target_n or pool["pe_present_on_image"].sum() < target_p:
        raise ValueError(
            f"train.csv too small for {spec['name']}: the pool offers {len(pool)} images "
            f"({pool['pe_present_on_image'].sum()} positive) after excluding "
            f"{len(exclude_patients)} patients; the spec needs {target_n} ({target_p} positive)")
    partial = spec.get("partial")
    if partial:
        caps = {1: partial["max_positive_per_patient"], 0: partial["max_negative_per_patient"]}
        picked = _pick_partial(pool, caps, target_n, target_p, seed)
    else:
        picked = _pick_whole(pool, target_n, target_p, seed)
    # canonical order: the manifest must not depend on the row order of train.csv
    manifest = picked.sort_values(COLUMNS[:3], kind="stable").reset_index(drop=True)
    manifest["path"] = ("train/" + manifest["StudyInstanceUID"] + "/" + manifest["SeriesInstanceUID"]
                        + "/" + manifest["SOPInstanceUID"] + ".dcm")
    n, p = len(manifest), int(manifest["pe_present_on_image"].sum())
    tol = spec["tolerance"]
    ok = (abs(n - target_n) <= tol["n_images_rel"] * target_n
          and abs(p / max(n, 1) - target_p / target_n) <= tol["positive_fraction_abs"])
    if not ok:
        raise ValueError(f"{spec['name']}: best pick {n} images / {p} positive misses the target "
                         f"{target_n} / {target_p} beyond tolerance {tol}; train.csv too small?")
    manifest["sha256"] = _hash_all(rsna_root, manifest["path"], workers) if rsna_root else ""
    summary = dict(spec=spec["name"], seed=seed, target=dict(n_images=target_n, n_positive=target_p,
                   positive_fraction=round(target_p / target_n, 6)),
                   achieved=dict(n_images=n, n_positive=p, positive_fraction=round(p / n, 6),
                                 n_patients=int(manifest[PATIENT].nunique()),
                                 n_series=int(manifest["SeriesInstanceUID"].nunique())),
                   within_tolerance=bool(ok), tolerance=tol, partial=spec.get("partial"),
                   excluded_patients=len(exclude_patients),
                   sha256_filled=int((manifest["sha256"] != "").sum()))
    return manifest[COLUMNS], summary


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hash_all(root: str | Path, paths, workers: int) -> list[str]:
    def one(rel):
        full = Path(root) / rel
        return sha256_file(full) if full.is_file() else ""
    with ThreadPoolExecutor(max(1, workers)) as pool:  # hashlib releases the GIL
        return list(pool.map(one, paths))


def manifest_from_dir(rsna_root: str | Path, workers: int = 4) -> pd.DataFrame:
    """Manifest of every image listed in ``rsna_root/train.csv``, with sha256 (e.g. a phantom)."""
    train = read_train_csv(Path(rsna_root) / "train.csv").sort_values(COLUMNS[:3], kind="stable")
    train["path"] = ("train/" + train["StudyInstanceUID"] + "/" + train["SeriesInstanceUID"]
                     + "/" + train["SOPInstanceUID"] + ".dcm")
    train["sha256"] = _hash_all(rsna_root, train["path"], workers)
    return train[COLUMNS].reset_index(drop=True)


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest CSV (empty sha256 stays ``""``)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = set(COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{path} is not a manifest: no column(s) {sorted(missing)}")
    df["pe_present_on_image"] = df["pe_present_on_image"].astype(int)
    return df


def write_manifest(manifest: pd.DataFrame, out: str | Path, summary: dict | None = None) -> Path:
    """Write the manifest CSV and, if given, its summary as ``<out stem>.json`` beside it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    manifest[COLUMNS].to_csv(out, index=False, lineterminator="\n")
    if summary is not None:
        out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    return out


def verify_manifest(manifest: pd.DataFrame, rsna_root: str | Path, workers: int = 4) -> pd.DataFrame:
    """Check every file of ``manifest`` under ``rsna_root``: present, sha256, label.

    Returns:
        One row per problem, columns ``path``, ``problem`` (``missing``, ``sha256 mismatch``,
        ``no sha256 in manifest``, ``label differs from train.csv``, ``not in train.csv``);
        empty if all is well. Labels are compared only if ``rsna_root/train.csv`` exists.
    """
    actual = _hash_all(rsna_root, manifest["path"], workers)
    problems = []
    for rel, want, got in zip(manifest["path"], manifest["sha256"], actual):
        if not (Path(rsna_root) / rel).is_file():
            problems.append((rel, "missing"))
        elif not want:
            problems.append((rel, "no sha256 in manifest"))
        elif want != got:
            problems.append((rel, "sha256 mismatch"))
    csv = Path(rsna_root) / "train.csv"
    if csv.is_file():
        labels = read_train_csv(csv).set_index("SOPInstanceUID")["pe_present_on_image"]
        found = manifest["SOPInstanceUID"].map(labels)
        problems += [(r, "not in train.csv") for r in manifest["path"][found.isna()]]
        differs = found.notna() & (found != manifest["pe_present_on_image"])
        problems += [(r, "label differs from train.csv") for r in manifest["path"][differs]]
    return pd.DataFrame(problems, columns=["path", "problem"])


def main(argv: list[str] | None = None) -> int:
    """``python -m pe_utils manifest {build,verify,from-dir}``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m pe_utils manifest", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="pick a thesis subset from a train.csv")
    b.add_argument("--train-csv", required=True)
    b.add_argument("--spec", required=True, help="dataset1 | dataset2 | case2_test | path to a JSON spec")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", required=True, help="manifest CSV (a .json summary is written beside it)")
    b.add_argument("--exclude", nargs="*", default=[], metavar="MANIFEST", help="patients never picked")
    b.add_argument("--rsna-root", help="fill sha256 from the files found here")
    b.add_argument("--workers", type=int, default=4)
    v = sub.add_parser("verify", help="check files against a manifest's sha256")
    v.add_argument("--manifest", required=True)
    v.add_argument("--rsna-root", required=True)
    v.add_argument("--workers", type=int, default=4)
    d = sub.add_parser("from-dir", help="manifest of every image of an RSNA-layout folder")
    d.add_argument("--rsna-root", required=True)
    d.add_argument("--out", required=True)
    d.add_argument("--workers", type=int, default=4)
    d.add_argument("--note", help="how the folder was made, kept in the summary JSON")
    args = parser.parse_args(argv)

    if args.command == "build":
        spec = load_spec(args.spec)
        exclude = set()
        for m in args.exclude:
            exclude |= set(read_manifest(m)[PATIENT])
        if spec.get("disjoint_from") and not args.exclude:
            print(f"error: {spec['name']} must share no patient with {spec['disjoint_from']}: "
                  f"pass --exclude <their manifest>", file=sys.stderr)
            return 2
        train = read_train_csv(args.train_csv)
        try:
            manifest, summary = build_manifest(train, spec, args.seed, exclude, args.rsna_root,
                                               args.workers)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        # which train.csv it came from: the same file and seed rebuild the same manifest
        summary["train_csv"] = dict(rows=len(train), sha256=sha256_file(args.train_csv))
        write_manifest(manifest, args.out, summary)
        t, a = summary["target"], summary["achieved"]
        print(f"{spec['name']}: {a['n_images']} images, {a['n_positive']} positive "
              f"({100 * a['positive_fraction']:.2f} %) from {a['n_patients']} patients; target "
              f"{t['n_images']}, {t['n_positive']} ({100 * t['positive_fraction']:.2f} %) -> {args.out}")
        return 0
    if args.command == "from-dir":
        manifest = manifest_from_dir(args.rsna_root, args.workers)
        n, p = len(manifest), int(manifest["pe_present_on_image"].sum())
        write_manifest(manifest, args.out, dict(spec=None, source="from-dir", note=args.note, achieved=dict(
            n_images=n, n_positive=p, n_patients=int(manifest[PATIENT].nunique()))))
        print(f"{n} images ({p} positive) -> {args.out}")
        return 0
    manifest = read_manifest(args.manifest)
    problems = verify_manifest(manifest, args.rsna_root, args.workers)
    for rel, problem in problems.itertuples(index=False):
        print(f"{problem}: {rel}")
    bad = problems[problems["problem"] != "no sha256 in manifest"]
    print(f"{len(manifest)} files checked: {len(bad)} problem(s)"
          + (f", {len(problems) - len(bad)} without sha256" if len(problems) > len(bad) else ""))
    return 1 if len(bad) else 0
