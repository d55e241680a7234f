"""Preprocessing throughput against a bare ``pydicom.dcmread(p).pixel_array`` loop.

    python bench/preprocess.py [--files 1200] [--compressed 180] [--j2k 24] [--workers N]

Writes 512 x 512 CT slices (``--distinct`` slices of the synthetic phantom when
``pe_utils.phantom`` is there, else of a disc phantom written here, copied under new UIDs
to the requested counts): uncompressed, RLE Lossless and JPEG 2000 Lossless. For each kind
it prints slices/s of:

- bare:       ``pydicom.dcmread(p).pixel_array`` in a loop, this process (the reference);
- pipeline:   what one worker does per slice (read, HU, windows, gray, resize, uint8),
              in a loop in this process: the per-slice cost;
- run 1 / run N: a whole ``preprocess()`` call (discovery, chunks, memmap, index,
              final gather and files) with 1 worker and with N workers;

each by wall clock and per CPU-second (this process and its finished workers: robust on a
shared machine), with its ratio to bare. Goal: pipeline and run 1 >= 0.6 x bare; run N's
wall rate close to N x run 1 (on a 2-core machine, 2 workers) and its CPU rate close to
run 1's (no parallel overhead). The default run takes one to two minutes.
A benchmark prints figures; it asserts nothing.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy: one thread per process

import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from pydicom.uid import JPEG2000Lossless, RLELossless  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pe_utils.data.dicom import THESIS_WINDOWS, read_windowed  # noqa: E402
from pe_utils.data.cache import quantize  # noqa: E402
from pe_utils.data.preprocess import preprocess  # noqa: E402
from pe_utils.data.resize import air_fill, resize  # noqa: E402


def write_base(root: Path, n: int) -> list[Path]:
    """n distinct uncompressed 512 x 512 slices: the synthetic phantom if present, else a disc."""
    try:
        from pe_utils.phantom.synthetic import generate
    except ImportError:
        generate = None
    if generate is not None:
        per_patient = 60
        generate(root, patients=-(-n // per_patient), slices_per_patient=per_patient,
                 compressed_fraction=0.0, seed=0)
        return sorted(root.rglob("*.dcm"))[:n]
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    rng = np.random.default_rng(0)
    y, x = np.mgrid[:512, :512]
    body = (y - 256) ** 2 / 200 ** 2 + (x - 256) ** 2 / 240 ** 2 < 1
    paths = []
    for k in range(n):
        stored = np.where(body, 1064 + rng.normal(0, 40, (512, 512)), -2000).astype(np.int16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.10.1.{k + 1}"
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.1"
        ds.SeriesInstanceUID = ds.StudyInstanceUID + ".0"
        ds.Modality, ds.PatientID = "CT", "BENCH"
        ds.ImagePositionPatient, ds.InstanceNumber = [0.0, 0.0, 1.25 * k], k + 1
        ds.Rows = ds.Columns = 512
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept, ds.PixelPaddingValue = 1, -1024, -2000
        ds.PixelData = stored.tobytes()
        path = root / f"{k:05d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_copies(sources: list[Path], root: Path, n: int, syntax=None) -> list[Path]:
    """n files in RSNA layout cycling through ``sources``, each with its own UIDs
    (series of 60 slices), re-encoded losslessly with ``syntax`` when given."""
    paths = []
    for i in range(n):
        ds = pydicom.dcmread(sources[i % len(sources)])
        study = f"1.2.826.0.1.3680043.10.2.{i // 60}"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, study + ".1"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{study}.1.{i % 60}"
        ds.ImagePositionPatient = [0.0, 0.0, 1.25 * (i % 60)]
        if syntax is not None:
            ds.compress(syntax, ds.pixel_array, generate_instance_uid=False)
        path = root / "train" / study / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def bench_kind(name: str, root: Path, paths: list[Path], size: int, workers: int,
               repeats: int, out: Path) -> None:
    """Print the rates of one kind of file. The candidates run in interleaved rounds and
    each keeps its fastest round, so a busy shared machine disturbs all of them alike."""
    fill = air_fill("gray", THESIS_WINDOWS)

    def bare():
        for p in paths:
            pydicom.dcmread(p).pixel_array

    def pipeline():
        for p in paths:
            image, _ = read_windowed(p)
            quantize(resize(image, size, fill))

    def run(n_workers):
        def go():
            preprocess(root, out, size=size, workers=n_workers, progress=False,
                       pseudonym_key="bench", overwrite=True)
        return go

    candidates = {"bare": bare, "pipeline": pipeline, "run 1": run(1)}
    if workers > 1:
        candidates[f"run {workers}"] = run(workers)
    bare()  # warm the page cache and the plugins
    wall = dict.fromkeys(candidates, float("inf"))
    cpu = dict.fromkeys(candidates, float("inf"))
    for _ in range(repeats):
        for key, fn in candidates.items():
            shutil.rmtree(out, ignore_errors=True)
            t0, c0 = time.perf_counter(), _cpu_seconds()
            fn()
            wall[key] = min(wall[key], time.perf_counter() - t0)
            cpu[key] = min(cpu[key], _cpu_seconds() - c0)
    n = len(paths)
    print(f"{name} (n={n}):")
    for key in candidates:
        print(f"  {key:<9} wall {n / wall[key]:6.0f}/s ({wall['bare'] / wall[key]:.2f})   "
              f"cpu {n / cpu[key]:6.0f}/s ({cpu['bare'] / cpu[key]:.2f})", flush=True)
    if workers > 1:
        print(f"  scaling  wall x{wall['run 1'] / wall[f'run {workers}']:.2f} with {workers} "
              f"workers (ideal x{workers}, on an idle machine)", flush=True)


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (pool workers are joined)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=1200, help="uncompressed slices")
    parser.add_argument("--compressed", type=int, default=180, help="RLE Lossless slices")
    parser.add_argument("--j2k", type=int, default=24, help="JPEG 2000 Lossless slices")
    parser.add_argument("--distinct", type=int, default=60,
                        help="distinct phantom slices the files are copied from")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the best counts")
    parser.add_argument("--data", help="folder for the generated files (default: a temp dir)")
    args = parser.parse_args(argv)

    base = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="pe_bench_"))
    try:
        start = time.perf_counter()
        sources = write_base(base / "base", args.distinct)
        kinds = [("uncompressed", base / "plain",
                  write_copies(sources, base / "plain", args.files)),
                 ("RLE", base / "rle",
                  write_copies(sources, base / "rle", args.compressed, RLELossless)),
                 ("JPEG 2000", base / "j2k",
                  write_copies(sources, base / "j2k", args.j2k, JPEG2000Lossless))]
        print(f"data: {time.perf_counter() - start:.0f} s to write; 512 x 512 int16 slices "
              f"({len(sources)} distinct); resize to {args.size}; {os.cpu_count()} CPUs; "
              f"pydicom {pydicom.__version__}")
        print("slices/s by wall clock and per CPU-second (the latter barely depends on other "
              "load);\n(ratio to bare dcmread().pixel_array in one process)")
        for name, root, paths in kinds:
            bench_kind(name, root, paths, args.size, args.workers, args.repeats,
                       base / f"cache-{root.name}")
    finally:
        if not args.data:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
