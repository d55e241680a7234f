"""Writing the whole phantom: ``generate()`` and ``python -m pe_utils synth``.

Which patients are positive and which series are compressed is drawn from the dataset seed;
each patient is then planned, rendered and written on its own
(:func:`pe_utils.phantom.writer.write_series`), so the output does not depend on the number
of worker processes. See :mod:`pe_utils.phantom` for what the phantom holds.
"""
from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import numpy as np

from ..io import atomic_open, read_json, write_json
from ..profiles import PROFILES
from .anatomy import DEFAULT_DIFFICULTY, MAX_DZ, SCAN_MM
from .masks import MASKS_DIR
from .masks import write_marker as write_mask_marker
from .writer import RSNA_COLUMNS, write_series_task

#: Bump on any deliberate change of the phantom's pixels, headers or labels. It is written in
#: each phantom folder (:data:`MARKER`) and recorded in its manifest (data_manifest/), whose
#: check reports a phantom made by another version instead of a pixel mismatch.
GENERATOR_VERSION = "2.2"  # 2.0: Dataset1's statistics (whole chest, short clots, 4.2 % positive);
# 2.1: the easy end of the difficulty (the demo's phantom) has partly occluding central and lobar clots;
# 2.2: central clots only there, 0.60-0.80 of the radius (anatomy.KNOBS; difficulty 0.3 and above unchanged)
MARKER = ".pe_phantom"    # written in out_dir: lets a re-run replace its own old phantom
RLE_LOSSLESS, J2K_LOSSLESS = "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90"
DEMO = PROFILES["demo"]["data"]  # the defaults of generate() and of the command line


def assign(patients: int, positive_fraction: float, compressed_fraction: float,
           seed: int) -> tuple[set[int], dict[int, str]]:
    """Which patients get emboli, and which series are compressed with which transfer syntax.

    Returns:
        ``(positives, syntax)``: the indices of positive patients (exactly
        ``round(positive_fraction * patients)``) and ``{index: transfer syntax UID}`` for the
        compressed series.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0]))
    positives = set(rng.permutation(patients)[: int(round(positive_fraction * patients))].tolist())
    compressed = rng.permutation(patients)[: int(round(compressed_fraction * patients))]
    # RLE twice as often as JPEG 2000, whose encoder costs 50 ms a slice
    syntax = {int(i): (RLE_LOSSLESS, RLE_LOSSLESS, J2K_LOSSLESS)[j % 3] for j, i in enumerate(compressed)}
    return positives, syntax


def read_marker(folder: str | Path) -> dict | None:
    """What the phantom in ``folder`` says about itself, or None when ``folder`` holds none.

    Returns:
        The marker's JSON (``generator_version``, the ``generate`` arguments); a marker of
        an older phantom, plain text, gives ``{"generator_version": None}``.
    """
    path = Path(folder) / MARKER
    if not path.is_file():
        return None
    return read_json(path) or {"generator_version": None}


def generate(out_dir, patients: int = DEMO["patients"],
             slices_per_patient: int = DEMO["slices_per_patient"],
             positive_fraction: float = DEMO["positive_fraction"], seed: int = 0, *,
             difficulty: float = DEFAULT_DIFFICULTY, compressed_fraction: float = 0.25,
             workers: int = 1, progress: bool = False) -> Path:
    """Write the phantom as an RSNA-layout folder.

    Args:
        out_dir: target folder; gets ``train.csv``, ``train/<Study>/<Series>/<SOP>.dcm`` and
            the clot masks, ``masks/<Study>/<Series>.npz`` (:mod:`pe_utils.phantom.masks`).
            A previous phantom there is replaced; any other ``train/`` folder is refused.
        patients: number of patients (one study with one series each).
        slices_per_patient: axial slices per series (512x512 each), ``SCAN_MM / slices``
            mm apart (at most ``MAX_DZ``): 60 slices cover the chest in 5 mm slices.
        positive_fraction: share of patients with emboli (rounded to whole patients); about
            5-30 % of a positive series' slices are positive (13 % on average).
        seed: everything is a function of it; the same seed gives identical files.
        difficulty: in [0, 1]; see :mod:`pe_utils.phantom`.
        compressed_fraction: share of series written with a lossless compressed transfer
            syntax (RLE Lossless, and JPEG 2000 Lossless for every third), as in RSNA data.
        workers: processes, one patient per task; the output does not depend on it.
        progress: show a progress bar.

    Returns:
        The path of ``train.csv``.

    Raises:
        ValueError: a count below 1, or a fraction or difficulty outside [0, 1].
        FileExistsError: ``out_dir/train`` exists and holds no phantom (no :data:`MARKER`).
    """
    if patients < 1 or slices_per_patient < 1 or workers < 1:
        raise ValueError("patients, slices_per_patient and workers must be >= 1")
    for name, value in (("positive_fraction", positive_fraction), ("difficulty", difficulty),
                        ("compressed_fraction", compressed_fraction)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    out_dir = Path(out_dir)
    if (out_dir / "train").exists():
        if not (out_dir / MARKER).exists():
            raise FileExistsError(f"{out_dir / 'train'} exists and is not a phantom; "
                                  "choose an empty folder")
        shutil.rmtree(out_dir / "train")
        (out_dir / "train.csv").unlink(missing_ok=True)  # it listed the files just removed
    if (out_dir / MASKS_DIR).exists() and (out_dir / MARKER).exists():
        shutil.rmtree(out_dir / MASKS_DIR)  # the old phantom's clot masks
    out_dir.mkdir(parents=True, exist_ok=True)
    # written first, so that a run killed half-way is still recognised as a phantom and replaced
    write_json(out_dir / MARKER, dict(
        written_by="pe_utils.phantom (safe to delete)", generator_version=GENERATOR_VERSION,
        arguments=dict(patients=patients, slices_per_patient=slices_per_patient,
                       positive_fraction=positive_fraction, seed=seed, difficulty=difficulty,
                       compressed_fraction=compressed_fraction)))
    write_mask_marker(out_dir, GENERATOR_VERSION)  # masks/<Study>/<Series>.npz follow

    positives, syntax = assign(patients, positive_fraction, compressed_fraction, seed)
    tasks = [(out_dir, int(seed), i, i in positives, int(slices_per_patient), float(difficulty),
              syntax.get(i)) for i in range(patients)]
    if workers == 1:
        results = map(write_series_task, tasks)
    else:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=workers)
        results = pool.map(write_series_task, tasks)
    if progress:
        from tqdm.auto import tqdm

        results = tqdm(results, total=patients, desc="phantom", unit="patient")
    try:
        rows = [row for series_rows in results for row in series_rows]
    finally:
        if workers > 1:
            pool.shutdown()
    # train.csv is written last and atomically: its presence says every file it lists is there
    path = out_dir / "train.csv"
    with atomic_open(path, "w") as f:
        writer = csv.DictWriter(f, fieldnames=RSNA_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m pe_utils synth --out DIR [--patients N] ...``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m pe_utils synth",
        description="Write the synthetic CTPA phantom as RSNA-layout DICOM (train.csv + train/).")
    parser.add_argument("--out", required=True, help="output folder (RSNA layout)")
    parser.add_argument("--patients", type=int, default=DEMO["patients"],
                        help="patients, one series each (default: %(default)s, the demo profile)")
    parser.add_argument("--slices-per-patient", type=int, default=DEMO["slices_per_patient"],
                        help=f"slices per series, {SCAN_MM:.0f} mm / N apart, at most {MAX_DZ:g} mm "
                             "(default: %(default)s)")
    parser.add_argument("--positive-fraction", type=float, default=DEMO["positive_fraction"],
                        help="share of patients with emboli; 5-30 %% of a positive series' slices "
                             "are positive, 13 %% on average (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same files (default: 0)")
    parser.add_argument("--difficulty", type=float, default=DEFAULT_DIFFICULTY,
                        help="0 easy (more central, longer clots) .. 1 hard (more subsegmental, "
                             "thinner clots, more look-alikes, more noise) (default: %(default)s)")
    parser.add_argument("--compressed-fraction", type=float, default=0.25,
                        help="share of series written RLE or JPEG 2000 lossless (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1, help="processes (default: 1)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    args = parser.parse_args(argv)
    try:
        path = generate(args.out, args.patients, args.slices_per_patient, args.positive_fraction,
                        args.seed, difficulty=args.difficulty,
                        compressed_fraction=args.compressed_fraction, workers=args.workers,
                        progress=args.progress)
    except (ValueError, FileExistsError) as err:
        print(f"error: {err}")
        return 2
    print(f"wrote {path}")
    return 0
