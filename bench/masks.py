"""What the clot masks cost: storage beside the DICOM and in the cache, and preprocessing time.

    python bench/masks.py [--patients 10] [--slices 60] [--size 64] [--repeats 2]

Writes a phantom (the demo's settings: difficulty 0, 80 % positive patients, uncompressed),
then prints:

- the masks folder's size (one ``.npz`` per series) per 1,000 slices, beside the DICOM's;
- the share of the phantom's writing spent on the masks (``clot_masks`` + the ``.npz``);
- ``masks.npy`` in the cache per 1,000 slices;
- one worker's whole ``preprocess()`` of the same files with masks against without them
  (the same root hard-linked without its ``masks/``): wall and CPU seconds and their ratio.
  The two run in interleaved rounds and each keeps its fastest, so a busy shared machine
  disturbs both alike.

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pe_utils.data.preprocess import preprocess  # noqa: E402
from pe_utils.phantom import masks as phantom_masks  # noqa: E402
from pe_utils.phantom import writer  # noqa: E402
from pe_utils.phantom.synthetic import generate  # noqa: E402


def folder_bytes(folder: Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in folder.rglob(pattern) if p.is_file())


def timed_generate(root: Path, patients: int, slices: int) -> tuple[float, float]:
    """Generate the phantom; return (total seconds, seconds inside the mask functions)."""
    spent = [0.0]
    originals = (writer.clot_masks, writer.write_series_masks)

    def clocked(fn):
        def run(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - t
        return run

    writer.clot_masks, writer.write_series_masks = map(clocked, originals)
    try:
        t = time.perf_counter()
        generate(root, patients=patients, slices_per_patient=slices, positive_fraction=0.8,
                 seed=0, difficulty=0.0, compressed_fraction=0.0)
        return time.perf_counter() - t, spent[0]
    finally:
        writer.clot_masks, writer.write_series_masks = originals


def run_once(root: Path, out: Path, size: int) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    t, c = time.perf_counter(), time.process_time()
    preprocess(root, out, size=size, workers=1, progress=False, pseudonym_key="bench")
    return time.perf_counter() - t, time.process_time() - c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=10)
    parser.add_argument("--slices", type=int, default=60)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-masks-") as tmp:
        tmp = Path(tmp)
        root, bare = tmp / "phantom", tmp / "bare"
        total, in_masks = timed_generate(root, args.patients, args.slices)
        n = args.patients * args.slices
        mask_b = folder_bytes(root / phantom_masks.MASKS_DIR)
        dcm_b = folder_bytes(root / "train", "*.dcm")
        print(f"phantom: {n} slices ({args.patients} series) in {total:.1f} s, of which "
              f"masks {in_masks:.2f} s ({100 * in_masks / total:.1f} %)")
        print(f"masks/ folder: {mask_b / 1e3 * 1000 / n:.1f} kB per 1,000 slices "
              f"({mask_b / dcm_b * 100:.3f} % of the DICOM's {dcm_b / 1e6 * 1000 / n:.0f} MB "
              f"per 1,000 slices)")
        shutil.copytree(root, bare, copy_function=os.link,
                        ignore=shutil.ignore_patterns(phantom_masks.MASKS_DIR))
        best = {"with masks": (1e9, 1e9), "without": (1e9, 1e9)}
        for _ in range(args.repeats):
            for name, src in (("with masks", root), ("without", bare)):
                wall, cpu = run_once(src, tmp / ("cache-masks" if src == root else "cache-bare"), args.size)
                best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
        cache = tmp / "cache-masks"
        print(f"masks.npy at {args.size} px: "
              f"{(cache / 'masks.npy').stat().st_size / 1e6 * 1000 / n:.2f} MB per 1,000 slices "
              f"(images.npy {(cache / 'images.npy').stat().st_size / 1e6 * 1000 / n:.2f} MB)")
        for name, (wall, cpu) in best.items():
            print(f"preprocess {name:>10}: {wall:.2f} s wall, {cpu:.2f} s CPU "
                  f"({n / wall:.0f} slices/s)")
        (w1, c1), (w0, c0) = best["with masks"], best["without"]
        print(f"ratio with/without masks: wall {w1 / w0:.3f}, CPU {c1 / c0:.3f}")


if __name__ == "__main__":
    main()
