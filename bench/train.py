"""Benchmark: what the training helpers cost on top of a bare training loop.

Prints, for one model, batch size and set of synthetic images (uint8 in memory, as the
cache would give them):

1. images/s of a bare loop (pre-built batches on the device: forward, focal loss,
   backward, SGD step; AMP + channels_last on CUDA as ``fit`` does);
2. images/s of ``pe_utils.learn.fit`` over the training data path, with its checkpoint
   policy (``last.pt`` at most every 300 s and after the last epoch: once per run at these
   sizes) (goal: >= 0.9 x bare). ``--path device`` (default): ``CacheSlices``
   (uint8 batches, pinned) + ``DeviceLoader`` (resize and ``AffineAugment`` on the device);
   ``--path cpu``: the former ``CacheDataset`` + ``train_transform`` per image on the CPU;
3. images/s of the loader alone (the same path, no model; on the device path the CPU
   slicing alone too), against the bare training images/s (goal: >= 5 x). What starting
   each epoch's loader costs, with and without workers, is ``bench/loader.py``'s.

``--compile`` (``True`` or a mode such as ``reduce-overhead`` for CUDA graphs) passes
``compile=`` to ``fit`` and to the bare loop alike.

The bare loop and ``fit`` alternate ``--repeats`` times in the same process; the best of
each is reported (other users of the machine only ever slow a run down).

    python bench/train.py                         # CPU defaults, about a minute
    python bench/train.py --arch resnet50 --image-size 128 --device cuda --n-images 4096
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import nullcontext

import numpy as np
import torch

from pe_utils.data.augment import AffineAugment
from pe_utils.data.datasets import CacheDataset, make_loader, set_epoch
from pe_utils.data.slices import CacheSlices, DeviceLoader
from pe_utils.learn.losses import FocalLoss
from pe_utils.learn.models import build_classifier
from pe_utils.learn.checkpoint import save_checkpoint
from pe_utils.evaluate.metrics import epoch_figures
from pe_utils.learn.loop import fit
from pe_utils.learn.setup import build_optimizer, pick_device, seed_everything
from pe_utils.data.transforms import train_transform
from clock import Clock  # bench/ is on sys.path when run as a script


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--image-size", type=int, default=64, help="network input side")
    p.add_argument("--cache-size", type=int, default=128, help="side of the stored images (resized on load)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--n-images", type=int, default=256)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (shared machines: 1)")
    p.add_argument("--device", default=None, help="cpu, cuda (default: cuda if available)")
    p.add_argument("--path", choices=("device", "cpu"), default="device",
                   help="augmentation on the training device (batched) or per image on the CPU")
    p.add_argument("--compile", default=None,
                   help="torch.compile the model: 'default', 'reduce-overhead' (CUDA graphs), ...")
    return p.parse_args(argv)


def bare_loop(model, criterion, optimizer, batches, epochs, device) -> Clock:
    """Forward / backward / step over pre-built batches."""
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    model.train()
    with Clock(device) as clock:
        for _ in range(epochs):
            for x, y in batches:
                x = x.to(device, non_blocking=True, memory_format=torch.channels_last) \
                    if device.type == "cuda" else x
                y = y.to(device, non_blocking=True)
                with amp:
                    loss = criterion(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        float(loss.detach())  # one host sync, as fit's epoch summary does
    return clock


def main(argv=None) -> int:
    args = parse(argv if argv is not None else sys.argv[1:])
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.n_images, args.cache_size, args.cache_size), dtype=np.uint8)
    labels = (rng.random(args.n_images) < 0.3).astype(np.int64)
    if args.path == "device":
        # the loader only slices uint8 rows; resize and augmentation run on the device
        raw = make_loader(CacheSlices(images, labels, None, seed=0), args.batch_size, shuffle=True,
                          seed=0, num_workers=args.workers, device=device, drop_last=True)
        loader = DeviceLoader(raw, device, augment=AffineAugment(), image_size=args.image_size)
    else:
        dataset = CacheDataset(images, labels, None, transform=train_transform(),
                               image_size=args.image_size, seed=0)
        raw = loader = make_loader(dataset, args.batch_size, shuffle=True, seed=0,
                                   num_workers=args.workers, device=device, drop_last=True)
    n_per_epoch = len(loader) * args.batch_size

    seed_everything(0)
    model = build_classifier(args.arch, in_channels=1).to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    compile_opt = {None: False, "default": True}.get(args.compile, args.compile)
    runner = torch.compile(model, **({} if compile_opt is True else {"mode": compile_opt})) \
        if compile_opt else model
    criterion = FocalLoss(gamma=2.0).to(device)
    optimizer = build_optimizer(model, "sgd", lr=0.001)
    # the bare loop's data: the same images, resized and augmented once, kept as batches
    set_epoch(loader, 0)
    batches = [(x.to(device), y.to(device)) for x, y in loader]
    # warm-up (allocations, cuDNN, compilation): also one fit epoch, so that fit's own
    # first-call costs (compilation of the augmentation's kernels, workers) are not timed
    bare_loop(runner, criterion, optimizer, batches[:2], 1, device)
    with tempfile.TemporaryDirectory() as tmp:
        fit(model, criterion, optimizer, loader, None, 1, device, checkpoint_dir=tmp,
            progress=False, figures=epoch_figures, compile=compile_opt)

    print(f"device={device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"threads={torch.get_num_threads()}, arch={args.arch}, input={args.image_size}px "
          f"(stored {args.cache_size}px), batch={args.batch_size}, images/epoch={n_per_epoch}, "
          f"epochs={args.epochs}, workers={args.workers}, path={args.path}, compile={compile_opt}")
    n_images = n_per_epoch * args.epochs
    bare, fitted = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            bare.append(bare_loop(runner, criterion, optimizer, batches, args.epochs, device))
            with Clock(device) as clock:
                fit(model, criterion, optimizer, loader, None, args.epochs, device,
                    checkpoint_dir=f"{tmp}/run{r}", progress=False, figures=epoch_figures,
                    compile=compile_opt)
            fitted.append(clock)
            print(f"  repeat {r + 1}: bare {n_images / bare[-1].wall:7.1f} img/s wall "
                  f"({n_images / bare[-1].cpu:7.1f} CPU)   fit {n_images / fitted[-1].wall:7.1f} img/s wall "
                  f"({n_images / fitted[-1].cpu:7.1f} CPU)")

    # the loader alone: the same path (slicing + resize + augmentation), no model
    def time_loader(ld):
        n = 0
        with Clock(device) as clock:
            for epoch in range(max(1, args.epochs)):
                set_epoch(ld, epoch)
                for batch in ld:
                    n += batch[0].shape[0]
        return n, clock

    n, load_clock = time_loader(loader)
    n_raw, raw_clock = time_loader(raw) if raw is not loader else (n, load_clock)

    # one checkpoint write (model + optimizer): once per run shorter than fit's 300 s window
    with tempfile.TemporaryDirectory() as tmp:
        with Clock(device) as ckpt_clock:
            save_checkpoint(f"{tmp}/last.pt", {"model": model.state_dict(), "optimizer": optimizer.state_dict()})

    # CPU time is the fair clock on a shared CPU (workers=0); wall time on CUDA or with workers
    use_cpu = device.type == "cpu" and args.workers == 0
    key = (lambda c: c.cpu) if use_cpu else (lambda c: c.wall)
    clock_name = "process CPU time" if use_cpu else "wall time"
    bare_ips = n_images / min(key(c) for c in bare)
    fit_ips = n_images / min(key(c) for c in fitted)
    loader_ips = n / key(load_clock)
    print(f"figures by {clock_name}, best of {args.repeats}:")
    print(f"  bare training loop : {bare_ips:9.1f} images/s")
    print(f"  fit (loader + augmentation + figures + checkpoint): {fit_ips:9.1f} images/s   "
          f"ratio fit/bare = {fit_ips / bare_ips:.3f}   (goal >= 0.9)")
    print(f"  loader alone       : {loader_ips:9.1f} images/s   "
          f"ratio loader/training = {loader_ips / bare_ips:.1f}x   (goal >= 5x)")
    if raw is not loader:
        raw_ips = n_raw / key(raw_clock)
        print(f"    of which the CPU DataLoader (uint8 slices): {raw_ips:9.1f} images/s = "
              f"{raw_ips / bare_ips:.1f}x training; resize + augmentation on {device.type}: "
              f"{1 / (1 / loader_ips - 1 / raw_ips) if loader_ips < raw_ips else float('inf'):9.1f} images/s")
    epoch_s = n_per_epoch / bare_ips
    print(f"  per epoch of {n_per_epoch} images: training {epoch_s:.2f} s, loading "
          f"{n_per_epoch / loader_ips:.2f} s (serial with training when workers=0), "
          f"checkpoint write {key(ckpt_clock):.2f} s (wall {ckpt_clock.wall:.2f} s) once per run")
    if args.workers == 0:
        # less noisy than the ratio of two timed runs: fit = training + loading + checkpoint
        overhead = n_per_epoch / loader_ips + key(ckpt_clock) / args.epochs  # seconds per epoch
        print(f"  fit/bare expected from these parts: {epoch_s / (epoch_s + overhead):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
