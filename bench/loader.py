"""Benchmark: what starting a loader's epoch costs, with and without worker processes.

The CPU half of the device path (:class:`pe_utils.data.slices.CacheSlices` over a memory-mapped
``images.npy``, as a cache gives it) through :func:`pe_utils.data.make_loader`, no model. For
each way of loading, over ``--epochs`` epochs, it prints the start-up of an epoch (from
``iter(loader)`` to the first batch) against the epoch's whole time:

1. ``workers=0``: slicing in the main process;
2. ``workers=N`` persistent (what ``make_loader`` gives): processes started at the first epoch,
   reused afterwards (the first epoch is printed apart);
3. ``workers=N`` not persistent (how ``make_loader`` used to build it): ``N`` processes
   started, and the dataset copied to them, at every epoch.

The ways alternate ``--repeats`` times in the same process; the best of each is reported
(other users of the machine only ever slow a run down). Wall time throughout: workers run
in other processes.

    python bench/loader.py                                 # CPU defaults, well under a minute
    python bench/loader.py --workers 8 --batch-size 32 --cache-size 256 --n-images 16384
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from pe_utils.data.datasets import make_loader, seed_worker, set_epoch
from pe_utils.data.slices import CacheSlices


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache-size", type=int, default=256, help="side of the stored uint8 images")
    p.add_argument("--n-images", type=int, default=4096)
    p.add_argument("--batch-size", type=int, default=32, help="Case1's batch (THESIS 4.1.2)")
    p.add_argument("--workers", type=int, default=2, help="N, the DataLoader workers compared with 0")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    return p.parse_args(argv)


def not_persistent(loader: DataLoader) -> DataLoader:
    """``loader`` rebuilt with ``persistent_workers=False`` (make_loader's former setting)."""
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=loader.sampler,
                      num_workers=loader.num_workers, pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                      worker_init_fn=seed_worker, generator=loader.generator, collate_fn=loader.collate_fn,
                      persistent_workers=False, prefetch_factor=loader.prefetch_factor)


def epochs(loader, n: int) -> list[tuple[float, float]]:
    """``(start-up, whole epoch)`` wall seconds of ``n`` epochs of ``loader``."""
    out = []
    for epoch in range(n):
        set_epoch(loader, epoch)
        t0 = time.perf_counter()
        it = iter(loader)
        next(it)
        t1 = time.perf_counter()
        for _ in it:
            pass
        out.append((t1 - t0, time.perf_counter() - t0))
    return out


def main(argv=None) -> int:
    args = parse(argv if argv is not None else sys.argv[1:])
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        np.save(Path(tmp) / "images.npy",
                rng.integers(0, 256, size=(args.n_images, args.cache_size, args.cache_size), dtype=np.uint8))
        images = np.load(Path(tmp) / "images.npy", mmap_mode="r")
        labels = (rng.random(args.n_images) < 0.3).astype(np.int64)

        def loader(workers: int, persistent: bool = True):
            ld = make_loader(CacheSlices(images, labels, None, seed=0), args.batch_size, shuffle=True, seed=0,
                             num_workers=workers)
            return ld if persistent else not_persistent(ld)

        ways = {"workers=0": lambda: loader(0),
                f"workers={args.workers} persistent": lambda: loader(args.workers),
                f"workers={args.workers} not persistent": lambda: loader(args.workers, persistent=False)}
        times: dict[str, list[list[tuple[float, float]]]] = {name: [] for name in ways}
        for _ in range(args.repeats):
            for name, make in ways.items():
                ld = make()
                times[name].append(epochs(ld, args.epochs))
                del ld  # persistent workers end with their loader

    print(f"CacheSlices over a memory map: {args.n_images} images of {args.cache_size}x{args.cache_size} uint8, "
          f"batch {args.batch_size} ({args.n_images // args.batch_size} batches an epoch), {args.epochs} epochs, "
          f"best of {args.repeats}, wall time:")
    baseline = None
    for name, runs in times.items():
        first = min(r[0][0] for r in runs), min(r[0][1] for r in runs)
        later = [min(np.mean([e[i] for e in r[1:]]) for r in runs) for i in (0, 1)] if args.epochs > 1 else first
        baseline = later[1] if baseline is None else baseline
        print(f"  {name:<26} start-up {1e3 * later[0]:8.1f} ms an epoch of {1e3 * later[1]:8.1f} ms "
              f"({100 * later[0] / later[1]:5.1f} %)   first epoch: start-up {1e3 * first[0]:8.1f} ms of "
              f"{1e3 * first[1]:8.1f} ms   epoch time / workers=0's: {later[1] / baseline:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
