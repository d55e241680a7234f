"""Benchmark: what Case3's pretraining helpers cost on top of a bare contrastive loop.

Prints, for one encoder, batch size and set of synthetic images (uint8 in memory, as the cache
would give them):

1. images/s of a bare loop: pre-built pairs of views in memory, both views forward in one
   pass, NT-Xent, backward, SGD step (AMP + channels_last on CUDA as ``fit`` does);
2. images/s of ``run_pretraining`` (``fit`` with the contrastive step) over the loader of
   :func:`pe_utils.pretrain_loader` (``CacheSlices`` + ``DeviceLoader`` drawing ``SimCLRViews``),
   with ``fit``'s checkpoint policy (``last.pt`` at most every ``--checkpoint-every`` seconds,
   by default fit's, and after the last epoch) and ``simclr.pt`` at the end (goal: >= 0.9 x
   bare), and the bytes the run wrote; the former policy (a ``last.pt`` after every epoch)
   alongside, as the reference;
3. images/s of the loader alone (slicing, resize, two views per image: twice Case1's
   augmentation work) against the bare training images/s (goal: >= 5 x).

An "image" is one pair of views. The bare loop and the runs alternate ``--repeats`` times in the
same process; the best of each is reported (other users of the machine only ever slow a run down).

    python bench/pretrain.py                      # CPU defaults, about a minute
    python bench/pretrain.py --arch resnet50 --image-size 128 --batch-size 256 --device cuda --n-images 8192
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import nullcontext
from types import SimpleNamespace

import numpy as np
import torch

from pe_utils.data.datasets import set_epoch
from pe_utils.experiments.pretrain import pretrain_config, pretrain_loader, pretrain_setup, run_pretraining
from pe_utils.learn.checkpoint import save_checkpoint
from pe_utils.learn.setup import pick_device, seed_everything
from clock import Clock  # bench/ is on sys.path when run as a script


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--image-size", type=int, default=32, help="side of the views")
    p.add_argument("--cache-size", type=int, default=128, help="side of the stored images (resized on load)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--n-images", type=int, default=256)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (shared machines: 1)")
    p.add_argument("--device", default=None, help="cpu, cuda (default: cuda if available)")
    p.add_argument("--checkpoint-every", type=float, default=None,
                   help="seconds between two last.pt writes (default: fit's; 0: every epoch)")
    return p.parse_args(argv)


def bytes_written() -> int | None:
    """Bytes this process has passed to write() so far (Linux ``/proc/self/io``), else None."""
    try:
        with open("/proc/self/io") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("wchar"))
    except (OSError, StopIteration):
        return None


def bare_loop(model, criterion, optimizer, pairs, epochs, device) -> Clock:
    """Both views forward together, NT-Xent, backward, step, over pre-built pairs."""
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    model.train()
    with Clock(device) as clock:
        for _ in range(epochs):
            for v1, v2 in pairs:
                x = torch.cat([v1, v2])
                if device.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                with amp:
                    z1, z2 = model(x).float().split(len(v1))
                loss = criterion(z1, z2)
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
    cache = SimpleNamespace(images=rng.integers(0, 256, size=(args.n_images, args.cache_size, args.cache_size),
                                                dtype=np.uint8))
    cfg = pretrain_config("smoke", arch=args.arch, image_size=args.image_size, batch_size=args.batch_size,
                          epochs=args.epochs, num_workers=args.workers, lr=0.001)
    loader = pretrain_loader(cache, cfg, device)
    n_per_epoch = len(loader) * args.batch_size

    seed_everything(0)
    model, criterion, optimizer = pretrain_setup(cfg)
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    criterion.to(device)
    # the bare loop's data: the same views, drawn once, kept on the device
    set_epoch(loader, 0)
    pairs = [(v1.to(device), v2.to(device)) for v1, v2 in loader]
    bare_loop(model, criterion, optimizer, pairs[:1], 1, device)  # warm-up (allocations, cuDNN)

    print(f"device={device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"threads={torch.get_num_threads()}, arch={args.arch}, views={args.image_size}px "
          f"(stored {args.cache_size}px), batch={args.batch_size} pairs, images/epoch={n_per_epoch}, "
          f"epochs={args.epochs}, workers={args.workers}")
    n_images = n_per_epoch * args.epochs
    # the policy measured, and the former one (a last.pt after every epoch) as a reference
    policies = {"every epoch (former)": {"checkpoint_every": 0},
                (f"every {args.checkpoint_every:g} s" if args.checkpoint_every is not None else "fit's default"):
                    {} if args.checkpoint_every is None else {"checkpoint_every": args.checkpoint_every}}
    bare: list[Clock] = []
    fitted: dict[str, list[Clock]] = {name: [] for name in policies}
    written: dict[str, list[float]] = {name: [] for name in policies}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            bare.append(bare_loop(model, criterion, optimizer, pairs, args.epochs, device))
            line = f"  repeat {r + 1}: bare {n_images / bare[-1].cpu:7.1f} img/s CPU"
            for i, (name, every) in enumerate(policies.items()):
                before = bytes_written()
                with Clock(device) as clock:
                    run_pretraining(model, criterion, optimizer, loader, cfg, f"{tmp}/run{r}-{i}", device,
                                    resume=False, progress=False, **every)
                fitted[name].append(clock)
                written[name].append(bytes_written() - before if before is not None else float("nan"))
                line += f"   checkpoint {name}: {n_images / clock.cpu:7.1f} ({n_images / clock.wall:7.1f} wall)"
            print(line)

    # the loader alone: slicing, resize and two views per image, no model
    n = 0
    with Clock(device) as load_clock:
        for epoch in range(max(1, args.epochs)):
            set_epoch(loader, epoch)
            for v1, _ in loader:
                n += v1.shape[0]

    # what writing costs: one resumable checkpoint (weights + SGD momentum), timed, per byte
    with tempfile.TemporaryDirectory() as tmp:
        with Clock(device) as ckpt_clock:
            path = save_checkpoint(f"{tmp}/last.pt", {"model": model.state_dict(), "optimizer": optimizer.state_dict()})
        ckpt_bytes = path.stat().st_size

    use_cpu = device.type == "cpu" and args.workers == 0
    key = (lambda c: c.cpu) if use_cpu else (lambda c: c.wall)
    clock_name = "process CPU time" if use_cpu else "wall time"
    bare_ips = n_images / min(key(c) for c in bare)
    loader_ips = n / key(load_clock)
    print(f"figures by {clock_name}, best of {args.repeats} (an image = one pair of views):")
    print(f"  bare contrastive loop: {bare_ips:9.1f} images/s")
    for name in policies:
        fit_ips = n_images / min(key(c) for c in fitted[name])
        print(f"  run_pretraining, last.pt {name} and after the last epoch: {fit_ips:9.1f} images/s   "
              f"ratio run/bare = {fit_ips / bare_ips:.3f}   (goal >= 0.9)   "
              f"written per run of {args.epochs} epochs (checkpoints + simclr.pt): {min(written[name]) / 1e6:.1f} MB")
    print(f"  loader alone (two views each): {loader_ips:9.1f} images/s   "
          f"ratio loader/training = {loader_ips / bare_ips:.1f}x   (goal >= 5x)")
    epoch_s = n_per_epoch / bare_ips
    print(f"  per epoch of {n_per_epoch} images: training {epoch_s:.2f} s, loading {n_per_epoch / loader_ips:.2f} s "
          f"(serial with training when workers=0 on the CPU)")
    print(f"  one last.pt: {ckpt_bytes / 1e6:.1f} MB in {key(ckpt_clock):.3f} s ({ckpt_clock.wall:.3f} s wall)")
    if args.workers == 0:
        # less noisy than the ratio of two timed runs: training + loading + the bytes the run wrote
        train_s, load_s = n_images / bare_ips, n_images / loader_ips
        for name in policies:
            write_s = min(written[name]) / ckpt_bytes * key(ckpt_clock)
            print(f"  run/bare expected from these parts, last.pt {name}: "
                  f"{train_s / (train_s + load_s + write_s):.3f} (writes {write_s:.2f} s a run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
