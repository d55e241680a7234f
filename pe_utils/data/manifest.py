"""Data manifests: which RSNA images an experiment uses, picked from a ``train.csv``, checked on disk.

The thesis gives only the sizes of its subsets (Dataset1, Dataset2, the Case2 test set;
specs in ``pe_utils/data/specs/*.json``), not which studies it took. :func:`build_manifest`
picks patients from a user's ``train.csv``, deterministically by seed, to hit a spec's image
count and positive count (:mod:`pe_utils.data.selection`); :func:`verify_manifest` checks a
local copy of the files. Nothing is ever downloaded here.

A manifest is a CSV with :data:`COLUMNS`; a JSON summary (achieved counts, seed, spec, kind)
is written beside it. Real data are checked by sha256, byte for byte. A manifest of the
phantom (``kind: "phantom"``, made by ``from-dir`` on a folder the phantom wrote) also holds
a pixel fingerprint per file and declares a tolerance: a regenerated file whose bytes differ
still passes when its UIDs and label are the same and its pixels lie within the tolerance
(why: :mod:`pe_utils.data.fingerprint`). ``python -m pe_utils manifest {build,verify,from-dir} --help``;
an input it cannot use (a file missing, a ``train.csv`` without a needed column) is one line
``error: ...`` and exit status 2. The module is longer than 300 lines because that command
line lives beside the three functions it drives.
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from ..io import atomic_open, read_json, sha256_file, write_json
from .fingerprint import COLUMN as FINGERPRINT
from .fingerprint import check_pixels, fingerprint_file, phantom_summary, pixel_tolerance
from .selection import PATIENT, pick_partial_patients, pick_whole_patients

#: every manifest's columns; a phantom's adds FINGERPRINT (:mod:`pe_utils.data.fingerprint`)
COLUMNS = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "path",
           "pe_present_on_image", "sha256"]
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


def read_train_csv(path: str | Path) -> pd.DataFrame:
    """The four columns of an RSNA ``train.csv`` a manifest needs, as strings and 0/1.

    Raises:
        ValueError: a column missing; the message names the file, what it lacks and what it has.
    """
    needed = COLUMNS[:3] + ["pe_present_on_image"]
    try:
        header = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except pd.errors.EmptyDataError:   # an empty file
        header = []
    missing = [c for c in needed if c not in header]
    if missing:
        raise ValueError(f"{path} lacks the column(s) {', '.join(missing)} that a manifest needs "
                         f"(RSNA's train.csv has {', '.join(needed)}); it has {', '.join(header) or 'none'}")
    df = pd.read_csv(path, usecols=needed, dtype=str)
    df["pe_present_on_image"] = df["pe_present_on_image"].astype(int)
    return df


def build_manifest(train: pd.DataFrame, spec: dict, seed: int = 0,
                   exclude_patients: set[str] | frozenset = frozenset(),
                   rsna_root: str | Path | None = None, workers: int = 4) -> tuple[pd.DataFrame, dict]:
    """Pick patients from ``train`` to meet ``spec``; see :func:`pe_utils.data.selection.select_groups`.

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
        picked = pick_partial_patients(pool, caps, target_n, target_p, seed)
    else:
        picked = pick_whole_patients(pool, target_n, target_p, seed)
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
    summary = dict(spec=spec["name"], kind="real", seed=seed,
                   target=dict(n_images=target_n, n_positive=target_p,
                               positive_fraction=round(target_p / target_n, 6)),
                   achieved=dict(n_images=n, n_positive=p, positive_fraction=round(p / n, 6),
                                 n_patients=int(manifest[PATIENT].nunique()),
                                 n_series=int(manifest["SeriesInstanceUID"].nunique())),
                   within_tolerance=bool(ok), tolerance=tol, partial=spec.get("partial"),
                   excluded_patients=len(exclude_patients),
                   sha256_filled=int((manifest["sha256"] != "").sum()))
    return manifest[COLUMNS], summary


def _map(fn, items, workers: int) -> list:
    with ThreadPoolExecutor(max(1, workers)) as pool:  # hashlib and numpy release the GIL
        return list(pool.map(fn, items))


def _hash_all(root: str | Path, paths, workers: int) -> list[str]:
    files = [Path(root) / rel for rel in paths]
    return _map(lambda f: sha256_file(f) if f.is_file() else "", files, workers)


def manifest_from_dir(rsna_root: str | Path, workers: int = 4,
                      fingerprints: bool | None = None) -> pd.DataFrame:
    """Manifest of every image listed in ``rsna_root/train.csv``, with sha256 (e.g. a phantom).

    Args:
        rsna_root: an RSNA-layout folder.
        workers: threads hashing (and decoding) files.
        fingerprints: add the :data:`FINGERPRINT` column; None: when ``rsna_root`` holds a
            phantom (:func:`pe_utils.data.fingerprint.phantom_summary`).

    Returns:
        The manifest, :data:`COLUMNS` (+ :data:`FINGERPRINT`), sorted by UIDs.
    """
    train = read_train_csv(Path(rsna_root) / "train.csv").sort_values(COLUMNS[:3], kind="stable")
    train["path"] = ("train/" + train["StudyInstanceUID"] + "/" + train["SeriesInstanceUID"]
                     + "/" + train["SOPInstanceUID"] + ".dcm")
    train["sha256"] = _hash_all(rsna_root, train["path"], workers)
    columns = list(COLUMNS)
    if fingerprints is None:
        fingerprints = phantom_summary(rsna_root) is not None
    if fingerprints:
        train[FINGERPRINT] = _map(lambda rel: fingerprint_file(Path(rsna_root) / rel),
                                  train["path"], workers)
        columns.append(FINGERPRINT)
    return train[columns].reset_index(drop=True)


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest CSV (an empty sha256 or fingerprint stays ``""``)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = set(COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{path} is not a manifest: no column(s) {sorted(missing)}")
    df["pe_present_on_image"] = df["pe_present_on_image"].astype(int)
    return df


def read_summary(path: str | Path) -> dict | None:
    """The JSON summary beside the manifest CSV ``path``, or None."""
    return read_json(Path(path).with_suffix(".json"))


def write_manifest(manifest: pd.DataFrame, out: str | Path, summary: dict | None = None) -> Path:
    """Write the manifest CSV (atomically) and, if given, its summary as ``<out stem>.json``."""
    columns = COLUMNS + ([FINGERPRINT] if FINGERPRINT in manifest.columns else [])
    with atomic_open(out, "w") as fh:
        manifest[columns].to_csv(fh, index=False, lineterminator="\n")
    if summary is not None:
        write_json(Path(out).with_suffix(".json"), summary)
    return Path(out)


def verify_manifest(manifest: pd.DataFrame, rsna_root: str | Path, workers: int = 4,
                    pixel_tolerance_hu: float | None = None) -> pd.DataFrame:
    """Check every file of ``manifest`` under ``rsna_root``: present, sha256 (or pixels), label.

    Args:
        manifest: :func:`read_manifest`.
        rsna_root: the folder holding the files (and, optionally, ``train.csv``).
        workers: threads hashing and decoding files.
        pixel_tolerance_hu: None (real data): a file passes only with the manifest's sha256.
            A number (a phantom's, :func:`pixel_tolerance`): a file whose sha256 differs
            still passes when its header's UIDs are the manifest's and every block mean of
            its pixels lies within this many HU of the manifest's :data:`FINGERPRINT`.

    Returns:
        One row per problem, columns ``path``, ``problem`` (``missing``, ``sha256 mismatch``,
        ``no sha256 in manifest``, ``UIDs differ from manifest``, ``pixel data differs beyond
        tolerance``, ``pixel data unreadable``, ``label differs from train.csv``, ``not in
        train.csv``); empty if all is well. ``attrs["within_tolerance"]`` counts the files that
        passed on their pixels. Labels are compared (exactly) if ``rsna_root/train.csv`` exists.
    """
    root = Path(rsna_root)
    actual = _hash_all(root, manifest["path"], workers)
    fingerprinted = FINGERPRINT in manifest.columns and pixel_tolerance_hu is not None
    problems, recheck = [], []
    for i, (rel, want, got) in enumerate(zip(manifest["path"], manifest["sha256"], actual)):
        if not (root / rel).is_file():
            problems.append((rel, "missing"))
        elif not want:
            problems.append((rel, "no sha256 in manifest"))
        elif want != got and fingerprinted and manifest[FINGERPRINT].iloc[i]:
            recheck.append(manifest.iloc[i])  # other bytes may hold the same phantom slice
        elif want != got:
            problems.append((rel, "sha256 mismatch"))
    pixels = _map(lambda row: check_pixels(root / row["path"], tuple(row[c] for c in COLUMNS[:3]),
                                           row[FINGERPRINT], pixel_tolerance_hu), recheck, workers)
    problems += [(row["path"], p) for row, p in zip(recheck, pixels) if p is not None]
    csv = root / "train.csv"
    if csv.is_file():
        labels = read_train_csv(csv).set_index("SOPInstanceUID")["pe_present_on_image"]
        found = manifest["SOPInstanceUID"].map(labels)
        problems += [(r, "not in train.csv") for r in manifest["path"][found.isna()]]
        differs = found.notna() & (found != manifest["pe_present_on_image"])
        problems += [(r, "label differs from train.csv") for r in manifest["path"][differs]]
    result = pd.DataFrame(problems, columns=["path", "problem"])
    result.attrs["within_tolerance"] = sum(p is None for p in pixels)
    return result


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
    v = sub.add_parser("verify", help="check files against a manifest (sha256, or a phantom's pixels)")
    v.add_argument("--manifest", required=True,
                   help="a manifest CSV; a phantom's (see its .json) is checked within its pixel tolerance")
    v.add_argument("--rsna-root", required=True)
    v.add_argument("--workers", type=int, default=4)
    d = sub.add_parser("from-dir", help="manifest of every image of an RSNA-layout folder "
                       "(of a phantom's: with pixel fingerprints and their tolerance)")
    d.add_argument("--rsna-root", required=True)
    d.add_argument("--out", required=True)
    d.add_argument("--workers", type=int, default=4)
    d.add_argument("--note", help="how the folder was made, kept in the summary JSON")
    args = parser.parse_args(argv)

    try:   # the inputs: a file that is missing or not what it should be is one line, exit 2
        return _run(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    """One subcommand; raises FileNotFoundError or ValueError on an input it cannot use."""
    if args.command == "build":
        spec = load_spec(args.spec)
        exclude = set()
        for m in args.exclude:
            exclude |= set(read_manifest(m)[PATIENT])
        if spec.get("disjoint_from") and not args.exclude:
            raise ValueError(f"{spec['name']} must share no patient with {spec['disjoint_from']}: "
                             f"pass --exclude <their manifest>")
        train = read_train_csv(args.train_csv)
        try:   # the pick cannot meet the spec: not the inputs' fault, exit 1
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
        summary = dict(spec=None, source="from-dir", kind="real", note=args.note)
        summary.update(phantom_summary(args.rsna_root) or {})  # kind, generator, pixel_check
        summary["achieved"] = dict(n_images=n, n_positive=p, n_patients=int(manifest[PATIENT].nunique()))
        write_manifest(manifest, args.out, summary)
        print(f"{n} images ({p} positive), {summary['kind']} data -> {args.out}")
        return 0
    manifest = read_manifest(args.manifest)
    summary = read_summary(args.manifest)
    tolerance = pixel_tolerance(summary)
    if tolerance is not None:
        made_by = summary["generator"]["version"]
        found = (phantom_summary(args.rsna_root) or {}).get("generator", {}).get("version")
        print(f"phantom manifest (generator {made_by}): a file whose bytes differ passes with the "
              f"same UIDs, label and pixels within {tolerance} HU per block"
              + ("" if found == made_by else f"; note: {args.rsna_root} holds generator {found}'s"))
    problems = verify_manifest(manifest, args.rsna_root, args.workers, tolerance)
    for rel, problem in problems.itertuples(index=False):
        print(f"{problem}: {rel}")
    bad = problems[problems["problem"] != "no sha256 in manifest"]
    print(f"{len(manifest)} files checked: {len(bad)} problem(s)"
          + (f", {len(problems) - len(bad)} without sha256" if len(problems) > len(bad) else "")
          + (f", {problems.attrs['within_tolerance']} with other bytes but pixels within tolerance"
             if problems.attrs.get("within_tolerance") else ""))
    return 1 if len(bad) else 0
