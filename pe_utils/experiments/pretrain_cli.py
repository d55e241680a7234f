"""``python -m pe_utils pretrain``: Case3's pretraining from the command line, on one or several GPUs.

The same functions as notebook 02 (:mod:`.pretrain`). Started by ``torchrun --nproc_per_node K``
(``WORLD_SIZE`` > 1 in the environment) it trains with DistributedDataParallel: each process
takes ``batch_size / K`` images of every global batch (``DistributedSampler``), NT-Xent gathers
the negatives of every process (``NTXentLoss(gather_distributed=True)``: each step sees the
profile's global batch, as one process would), BatchNorm is synchronised across GPUs on CUDA
(SimCLR's global BN; CPU processes keep per-process statistics: ``SyncBatchNorm`` needs CUDA),
and rank 0 writes the same ``simclr.pt`` as a single process::

    python -m pe_utils pretrain --profile demo --cache data/cache-demo --out runs/02_case3_pretrain
    torchrun --nproc_per_node 8 -m pe_utils pretrain --profile thesis --cache CACHE --out OUT

The backend is NCCL on CUDA and gloo on the CPU. The order of the images differs from a single
process's (``DistributedSampler`` instead of :class:`pe_utils.data.datasets.EpochSampler`), so
the weights are not bit-identical to a one-process run; each is reproducible on its own.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..data import load_cache, prepare_cache
from ..io import write_json
from ..learn import pick_device, seed_everything
from .pretrain import pretrain_config, pretrain_loader, pretrain_record, pretrain_setup, run_pretraining


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pe_utils pretrain",
                                description="SimCLR pretraining of Case3 (THESIS 4.2) on every image of a cache")
    p.add_argument("--profile", default="demo", help="smoke | demo | thesis (the 'pretrain' section)")
    p.add_argument("--cache", default=None, help="preprocessed cache folder (default: the profile's phantom)")
    p.add_argument("--out", required=True, help="output folder: simclr.pt, snapshots, checkpoints/, metrics.json")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the profile's)")
    p.add_argument("--batch-size", type=int, default=None, help="global batch (default: the profile's)")
    p.add_argument("--seed", type=int, default=None,
                   help="initialisation, order and views (default: the profile's; the batch's Case4 runs one per seed)")
    p.add_argument("--context", type=int, default=None,
                   help="2.5D: each slice with K neighbours of its series on each side as channels, the input "
                        "notebook 03 then fine-tunes on (default 0: one slice, the thesis)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if checkpoints exist")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep the per-epoch resume checkpoints after the run (to extend it later)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def _distributed_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) without it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def main(argv: list[str] | None = None) -> int:
    """Run the pretraining; returns 0. Under torchrun every process runs this."""
    args = parse(list(sys.argv[1:] if argv is None else argv))
    rank, world, local_rank = _distributed_env()
    device = pick_device(args.device)
    if world > 1:
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        cfg = pretrain_config(args.profile, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                              context=args.context)
        # one process prepares the data (a phantom may have to be made), the others wait for it
        if rank == 0:
            cache_dir = prepare_cache(args.profile, args.cache, progress=not args.quiet)
        if world > 1:
            dist.barrier()
        if rank != 0:
            cache_dir = prepare_cache(args.profile, args.cache, progress=False)
        cache = load_cache(cache_dir)
        loader = pretrain_loader(cache, cfg, device, rank=rank, world=world)
        in_channels = loader.dataset.slice_channels   # per slice; pretrain_setup widens it for a context
        seed_everything(cfg["seed"])  # the same initial weights in every process
        model, criterion, optimizer = pretrain_setup(cfg, in_channels, distributed=world > 1)
        model.to(device)
        train_model = model
        if world > 1:
            if device.type == "cuda":
                train_model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            train_model = DistributedDataParallel(train_model, device_ids=[device.index] if device.type == "cuda" else None)
        out = Path(args.out)
        start = time.perf_counter()
        history, path = run_pretraining(model, criterion, optimizer, loader, cfg, out, device,
                                        train_model=train_model, cache=cache, rank=rank, world=world,
                                        resume=not args.no_resume, keep_checkpoints=args.keep_checkpoints,
                                        progress=not args.quiet)
        if rank == 0:
            record = pretrain_record(cfg, history, path, profile=args.profile, n_images=len(cache.images),
                                     train_seconds=time.perf_counter() - start, notebook="pretrain_cli")
            # the report wing's write_metrics is out of this wing's reach: the same keys, plain JSON
            write_json(out / "metrics.json", record)
            last = history[-1] if history else {}
            print(f"pretrained {len(history)} epoch(s) on {len(cache.images)} images, {world} process(es): "
                  f"loss {last.get('train_loss', float('nan')):.4f}; wrote {path}")
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()
    return 0
