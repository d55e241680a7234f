"""Case3's pretraining (THESIS 4.2): SimCLR on every image of the dataset, no split, no labels.

One function per step, shared by notebook 02 and ``python -m pe_utils pretrain`` (which adds
torchrun/DDP, :mod:`.pretrain_cli`): the settings (:func:`pretrain_config`), the loader of
pairs of views (:func:`pretrain_loader`), the network, loss and optimizer
(:func:`pretrain_setup`), the run itself through :func:`pe_utils.fit` with the contrastive
step (:func:`run_pretraining`), and the file it leaves (:func:`load_pretrained`).

The file: ``<output_dir>/simclr.pt``, ``{"model": SimCLRModel.state_dict(), "optimizer": None,
"scheduler": None, "epoch", "config", "history"}`` (plain types: ``torch.load(...,
weights_only=True)``), with ``simclr_epoch<NNN>.pt`` beside it for every epoch of
``snapshot_epochs`` (the thesis's 75-epoch encoder is epoch 75 of the 150-epoch run: the
learning rate is constant and each epoch's order and views depend only on ``(seed, epoch)``,
so the first 75 epochs of both runs are the same computation). The resume checkpoint of
``fit`` (``last.pt``, rewritten every ``checkpoint_every`` seconds and after the last epoch)
is in ``<output_dir>/checkpoints`` (one folder per process under DDP). A single process whose
settings match a finished ``torchrun`` pretraining in its folder loads it instead of training
again (:func:`distributed_result`).

The module is longer than 300 lines because it holds one idea whole: a pretraining run, from its
settings to the file it leaves and the ways back to that file.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from ..data import CacheSlices, DeviceLoader, SimCLRViews, context_rows, load_cache, make_loader
from ..learn.checkpoint import LAST, config_diff  # LAST: the file fit resumes from
from ..learn import (NTXentLoss, build_optimizer, build_simclr, contrastive_step, fit, load_checkpoint,
                     save_checkpoint, to_checkpoint_plain)
from ..profiles import resolve
from .case1 import _context_k  # one rule for a context setting: Case1's, whose data fine-tuning reads
from .resume import RESUME_IGNORE, cache_fingerprint, check_resume

#: the pretrained network a run leaves in its output folder
PRETRAINED = "simclr.pt"


def snapshot_name(epoch: int) -> str:
    """File name of the snapshot after ``epoch`` epochs: ``simclr_epoch075.pt``."""
    return f"simclr_epoch{int(epoch):03d}.pt"


def pretrain_config(profile: str, dataset: str = "dataset1", **given: Any) -> dict[str, Any]:
    """The profile's ``pretrain`` section with every non-``None`` given value on top.

    Case4's pretraining (``dataset`` Dataset2's, 5.2) learns the encoder that Case2's one-step
    fine-tuning reads, so its views come from Case2's input: the whole slice (no crop) at the
    ``case2`` section's image size, unless ``image_size`` is given. In the thesis profile both
    are 128 px whole slices already; the CPU demo's Case3 pretrains on Case1's crop at 32 px.

    ``context`` (k >= 0, :mod:`pe_utils.data.context`; beyond the thesis) pretrains on Case1's
    2.5D input: each slice with its k neighbours of the same series on each side as channels, so
    that Case3 fine-tunes the encoder on the input it learned from (:func:`pe_utils.case3_model`
    refuses another). 0, the default, is the thesis's single slice; as in
    :func:`pe_utils.case1_config`, ``cfg`` holds ``"context"`` only when it is not 0 (a
    single-slice run's settings, its checkpoints' config and a resume stay as they were).

    Raises:
        ValueError: unknown profile, a given name the section lacks, a context not a whole
            number >= 0, or a context with Dataset2 (Cases 2 and 4 read single slices).
    """
    context = _context_k(0 if given.get("context") is None else given["context"])
    cfg = resolve("pretrain", profile, **{k: v for k, v in given.items() if k != "context"})
    if str(dataset).startswith("dataset2"):
        if context:
            raise ValueError(f"context={context} is Case3's 2.5D input (Dataset1); Cases 2 and 4 read "
                             f"single slices, so {dataset} pretrains with context 0")
        cfg["crop"] = None
        if given.get("image_size") is None:
            cfg["image_size"] = resolve("case2", profile)["image_size"]
    if context:
        cfg["context"] = context
    return cfg


def pretrain_loader(cache: Any, cfg: dict, device: torch.device | str = "cpu", rank: int = 0,
                    world: int = 1) -> DeviceLoader:
    """Every image of the cache as pairs of views ``(view1, view2)``, each ``(B, C, s, s)`` on
    ``device``; no labels.

    The CPU loader only slices ``uint8`` rows (:class:`pe_utils.CacheSlices`); the
    :class:`pe_utils.DeviceLoader` resizes them on ``device`` and draws the two views there
    (:class:`pe_utils.SimCLRViews`: random crop and resize, contrast distortion, Gaussian blur,
    THESIS 4.2), each sample's from its key ``(seed, epoch, position)``.

    With a context k > 0 each image is the slice and its k neighbours of the same series on each
    side, stacked as ``C = (2k + 1) * C_slice`` channels (:func:`pe_utils.context_rows`, as Case1's
    loaders: the edge slice repeated at a series end, never a slice of another series); a view
    moves every channel together (one crop, one intensity map, one blur per sample) and mixes no
    channel into another (:class:`pe_utils.SimCLRViews`).

    Args:
        cache: a :func:`pe_utils.load_cache` result (anything with ``.images``, and ``.index``
            with a context) or its folder.
        cfg: from :func:`pretrain_config`; uses ``image_size``, ``batch_size``, ``seed``,
            ``num_workers``, ``crop`` (absent or None: the whole slice) and ``context``
            (absent: 0).
        device: where batches go (pinned memory on CUDA).
        rank, world: this process and the number of processes (torchrun). With ``world > 1``
            a ``DistributedSampler`` gives each process ``batch_size // world`` images per step,
            so a step sees the profile's global batch.

    Returns:
        A :class:`pe_utils.DeviceLoader` (``fit`` treats it as a DataLoader) whose order and views
        depend only on ``(seed, epoch)`` (:func:`pe_utils.set_epoch`); the last incomplete batch
        is dropped (every process needs the same N for the gathered loss).

    Raises:
        ValueError: ``batch_size`` not divisible by ``world``, fewer images than one batch, a bad
            context, or a context without the cache's index (:func:`pe_utils.context_rows`).
    """
    cache = load_cache(cache) if isinstance(cache, (str, Path)) else cache
    images, k = cache.images, _context_k(cfg.get("context", 0))
    if k and getattr(cache, "index", None) is None:
        raise ValueError(f"context={k} needs the cache's index (series and slice order): pass a "
                         "load_cache result or the cache's folder")
    batch = int(cfg["batch_size"])
    if batch % world:
        raise ValueError(f"batch_size {batch} is not divisible by the {world} processes")
    if len(images) < batch:
        raise ValueError(f"{len(images)} images are fewer than one batch of {batch}: lower batch_size")
    # the labels CacheSlices carries are zeros, and DeviceLoader's pair mode drops them anyway
    dataset = CacheSlices(images, np.zeros(len(images), np.float32), None, seed=cfg["seed"],
                          context=context_rows(cache.index, k) if k else None)
    if world == 1:
        slices = make_loader(dataset, batch, shuffle=True, seed=cfg["seed"], num_workers=cfg["num_workers"],
                             device=device, drop_last=True)
    else:
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=cfg["seed"],
                                     drop_last=True)
        slices = DataLoader(dataset, batch_size=batch // world, sampler=sampler, drop_last=True,
                            num_workers=cfg["num_workers"], pin_memory=torch.device(device).type == "cuda",
                            collate_fn=dataset.collate_batch,
                            generator=torch.Generator().manual_seed(int(cfg["seed"])))
    # the crop (pe_utils.data.crop) is Case1's box, so the encoder pretrains on the slices fine-tuning sees
    return DeviceLoader(slices, device, pairs=simclr_views(cfg), image_size=cfg["image_size"], crop=cfg.get("crop"))


def simclr_views(cfg: dict) -> SimCLRViews:
    """The two views of the profile's ``pretrain`` section (its ``view_*`` settings): the thesis's
    crop, contrast distortion and blur (4.2, 4.2.1); a profile may add brightness (our choice)."""
    return SimCLRViews(**{k.removeprefix("view_"): v for k, v in cfg.items() if k.startswith("view_")})


def pretrain_setup(cfg: dict, in_channels: int = 1, distributed: bool = False):
    """The SimCLR network, NT-Xent loss and SGD optimizer of THESIS 4.2, from ``cfg``.

    Args:
        cfg: from :func:`pretrain_config` (``arch``, ``hidden``, ``out_dim``, ``temperature``,
            ``lr``, ``momentum``, ``context``); seed torch first for a reproducible initialisation.
        in_channels: the cache's channels per slice, 1 (gray cache) or 3 (RGB windows); the
            encoder reads ``(2k + 1) * in_channels`` with a context k (2.5D).
        distributed: gather the negatives from every process (torchrun).

    Returns:
        ``(model, criterion, optimizer)``; the learning rate is constant (no scheduler).

    Raises:
        ValueError: a bad context in ``cfg``.
    """
    width = 2 * _context_k(cfg.get("context", 0)) + 1   # the slice and its neighbours
    model = build_simclr(cfg["arch"], in_channels=width * in_channels, hidden=cfg["hidden"], out_dim=cfg["out_dim"])
    criterion = NTXentLoss(temperature=cfg["temperature"], gather_distributed=distributed)
    optimizer = build_optimizer(model, "sgd", lr=cfg["lr"], momentum=cfg["momentum"])
    return model, criterion, optimizer


def contrastive_figures(per_batch: list[dict[str, np.ndarray]], threshold: float = 0.5) -> dict[str, float]:
    """An epoch's ``twin_top1``: the share of first views whose nearest other view is their twin
    (``fit``'s ``figures`` for :func:`pe_utils.contrastive_step`; ``threshold`` is unused)."""
    hits = [b["twin_top1"] for b in per_batch if "twin_top1" in b]
    return {"twin_top1": float(np.concatenate(hits).mean()) if hits else float("nan")}


def save_pretrained(path: str | Path, model: torch.nn.Module, epoch: int, config: dict,
                    history: list[dict]) -> Path:
    """Write a pretrained SimCLR network (module docstring) atomically; returns ``path``."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return save_checkpoint(path, {"model": state, "optimizer": None, "scheduler": None, "epoch": int(epoch),
                                  "config": to_checkpoint_plain(config), "history": to_checkpoint_plain(history)})


def run_pretraining(model: torch.nn.Module, criterion, optimizer, loader: DeviceLoader, cfg: dict,
                    output_dir: str | Path, device: torch.device | str, *, train_model: torch.nn.Module | None = None,
                    cache: Any = None, rank: int = 0, world: int = 1, resume: bool = True,
                    keep_checkpoints: bool = False, progress: bool = True,
                    on_epoch_end: Callable[[dict], None] | None = None,
                    checkpoint_every: float | None = 300.0) -> tuple[list[dict], Path]:
    """Train ``model`` for ``cfg["epochs"]`` epochs with NT-Xent and leave ``simclr.pt``.

    Args:
        model: from :func:`pretrain_setup` (the plain :class:`pe_utils.SimCLRModel`: what is saved).
        criterion, optimizer: from :func:`pretrain_setup`.
        loader: from :func:`pretrain_loader`.
        cfg: from :func:`pretrain_config` (its ``epochs`` and ``snapshot_epochs``; all of it
            is recorded in the checkpoints, with ``world_size``).
        output_dir: where ``simclr.pt``, the snapshots and ``checkpoints/`` go.
        device: where to train (AMP and channels_last on CUDA come from ``fit``).
        train_model: what ``fit`` trains, when it is a wrapper of ``model`` (DDP); default ``model``.
        cache: the :func:`pe_utils.load_cache` result the loader reads: its fingerprint is
            recorded, and checkpoints made from another cache are refused on resume
            (:func:`pe_utils.check_resume`); ``None`` (in-memory images): not checked.
        rank, world: this process and their number; only rank 0 writes ``simclr.pt`` and the
            snapshots, each process its own resume checkpoints (``checkpoints/rank<r>``).
        resume: continue from the last finished epoch of an interrupted run with the same config.
        keep_checkpoints: keep this process's resume checkpoints after the run (to extend it
            later with more epochs); by default they are removed once ``simclr.pt`` is written.
        progress: show a progress bar (rank 0 only).
        on_epoch_end: called with each epoch's record, after the checkpoint if one was due.
        checkpoint_every: seconds between two writes of the resume checkpoint (``fit``'s
            argument: ``0`` after every epoch, ``None`` after the last one only); a killed
            run resumes from the last one written. The snapshots are written regardless.

    Raises:
        ValueError: resuming from checkpoints made from another cache.

    Returns:
        ``(history, path)``: one record per epoch (``train_loss``, ``train_twin_top1``, ``lr``,
        ``train_seconds``, ...) and the path of ``simclr.pt``.
    """
    output_dir = Path(output_dir)
    config = {**cfg, "world_size": world, "in_channels": int(model.backbone.conv1.in_channels)}
    fingerprint = cache_fingerprint(cache) if getattr(cache, "dir", None) is not None else {}
    config.update({"cache_dir": str(cache.dir), **fingerprint} if fingerprint else {})
    snapshots = {int(e) for e in cfg.get("snapshot_epochs") or ()}
    ckpt_dir = output_dir / "checkpoints" / (f"rank{rank}" if world > 1 else "")

    def end_of_epoch(record: dict) -> None:
        # the epochs before this one (those of a resumed run included): what a snapshot records
        history_so_far[:] = history_so_far[:record["epoch"] - 1] + [record]
        if rank == 0 and record["epoch"] in snapshots:
            save_pretrained(output_dir / snapshot_name(record["epoch"]), model, record["epoch"], config,
                            history_so_far)
        if on_epoch_end is not None:
            on_epoch_end(record)

    reused = distributed_result(output_dir, config, snapshots) if world == 1 else None
    if reused is not None:   # the same pretraining, made by torchrun: not trained again
        print(f"reusing {output_dir / PRETRAINED}: this pretraining, made by torchrun over "
              f"{reused['config']['world_size']} processes")
        model.load_state_dict(reused["model"])
        return list(reused["history"]), output_dir / PRETRAINED
    if resume and fingerprint:
        check_resume(ckpt_dir, fingerprint, cache.dir)
    history_so_far: list[dict] = []
    if resume and snapshots and (ckpt_dir / LAST).is_file():
        history_so_far = list(load_checkpoint(ckpt_dir / LAST)["history"])
    history = fit(train_model if train_model is not None else model, criterion, optimizer, loader, None,
                  cfg["epochs"], device, checkpoint_dir=ckpt_dir, resume=resume, config=config,
                  resume_ignore=RESUME_IGNORE,
                  progress=progress and rank == 0, on_epoch_end=end_of_epoch, step=contrastive_step,
                  figures=contrastive_figures, checkpoint_every=checkpoint_every)
    path = output_dir / PRETRAINED
    if rank == 0:
        save_pretrained(path, model, len(history), config, history)
    if not keep_checkpoints:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        if world > 1 and rank == 0 and not any(ckpt_dir.parent.iterdir()):
            ckpt_dir.parent.rmdir()  # the other processes' folders are gone too
    return history, path


#: settings that may differ between a ``torchrun`` pretraining and the single process reusing it:
#: how many processes shared the global batch, and how each loaded its images
DISTRIBUTED_IGNORE = ("world_size", "num_workers", "cache_dir")


def distributed_result(output_dir: str | Path, config: dict, snapshots=()) -> dict | None:
    """A finished ``torchrun`` pretraining in ``output_dir`` made with ``config``, or None.

    ``torchrun -m pe_utils pretrain`` over several GPUs writes the same ``simclr.pt`` as one
    process would (the global batch is split, the negatives gathered from every process), and
    records its ``world_size``. A single-process run of the same settings (notebook 02 in the
    batch) then loads that file instead of training again.

    Args:
        output_dir: the run's output folder; config: the settings it would record (with the
            cache's fingerprint); snapshots: the epochs whose snapshots must be there too.

    Returns:
        The checkpoint dict of ``simclr.pt`` when it was made by more than one process with the
        same settings (:data:`DISTRIBUTED_IGNORE` aside) and every snapshot exists; else None.
    """
    path = Path(output_dir) / PRETRAINED
    if not path.is_file():
        return None
    ckpt = load_checkpoint(path, map_location="cpu")
    saved = ckpt.get("config") or {}
    if int(saved.get("world_size", 1)) <= 1:
        return None
    if config_diff(saved, to_checkpoint_plain(config), DISTRIBUTED_IGNORE):
        return None
    if any(not (Path(output_dir) / snapshot_name(e)).is_file() for e in snapshots):
        return None
    return ckpt


def pretrained_path(pretrain_dir: str | Path, epoch: int | None = None) -> Path:
    """The file of a pretraining run: ``simclr.pt``, or the snapshot after ``epoch`` epochs.

    Args:
        pretrain_dir: the run's output folder, or a checkpoint file itself.
        epoch: ``None`` (the run's last epoch) or an epoch with a snapshot (or the last one).

    Raises:
        FileNotFoundError: no such file; the message lists what the folder holds.
    """
    pretrain_dir = Path(pretrain_dir)
    if pretrain_dir.is_file():
        return pretrain_dir
    final = pretrain_dir / PRETRAINED
    path = final
    if epoch is not None and (pretrain_dir / snapshot_name(epoch)).is_file():
        path = pretrain_dir / snapshot_name(epoch)
    if not path.is_file():
        have = sorted(p.name for p in pretrain_dir.glob("simclr*.pt")) if pretrain_dir.is_dir() else []
        raise FileNotFoundError(f"no pretrained network in {pretrain_dir} (holds {have}): run notebook "
                                "02_case3_pretrain or `python -m pe_utils pretrain` first")
    return path


def load_pretrained(pretrain_dir: str | Path, epoch: int | None = None):
    """The pretrained SimCLR network of a run, rebuilt from its recorded config.

    Args:
        pretrain_dir, epoch: as :func:`pretrained_path`.

    Returns:
        ``(model, checkpoint)``: a :class:`pe_utils.SimCLRModel` on the CPU with the saved
        weights, and the checkpoint dict (``epoch``, ``config``, ``history``).

    Raises:
        FileNotFoundError: see :func:`pretrained_path`.
        ValueError: ``epoch`` given but the file holds another number of epochs.
    """
    path = pretrained_path(pretrain_dir, epoch)
    ckpt = load_checkpoint(path)
    if epoch is not None and int(ckpt["epoch"]) != int(epoch):
        raise ValueError(f"{path} holds {ckpt['epoch']} epochs, not {epoch}; snapshots: "
                         f"{sorted(p.name for p in path.parent.glob('simclr_epoch*.pt'))}")
    cfg = ckpt["config"]
    model = build_simclr(cfg["arch"], in_channels=cfg["in_channels"], hidden=cfg["hidden"], out_dim=cfg["out_dim"])
    model.load_state_dict(ckpt["model"])
    ckpt["path"] = str(path)
    return model, ckpt


def pretrain_record(cfg: dict, history: list[dict], path: str | Path, *, profile: str, n_images: int,
                    train_seconds: float, notebook: str = "02_case3_pretrain",
                    dataset: str = "dataset1") -> dict[str, Any]:
    """The ``metrics.json`` of a pretraining run (schema ``"pretrain"``), not yet written;
    ``dataset`` ``"dataset2"`` makes it Case4's pretraining (5.2)."""
    first, last = (history[0], history[-1]) if history else ({}, {})
    return {
        "notebook": notebook, "profile": profile, "case": "case3" if dataset == "dataset1" else "case4",
        "dataset": dataset, "arch": cfg["arch"],
        "image_size": cfg["image_size"], "context": int(cfg.get("context", 0)),
        "batch_size": cfg["batch_size"], "epochs": len(history),
        "lr": cfg["lr"], "temperature": cfg["temperature"], "seed": cfg["seed"], "n_images": n_images,
        "loss_first": first.get("train_loss"), "loss_last": last.get("train_loss"),
        "twin_top1_last": last.get("train_twin_top1"), "checkpoint": str(path),
        "snapshots": [snapshot_name(e) for e in cfg.get("snapshot_epochs") or () if e <= len(history)],
        "history": history, "train_seconds": train_seconds,
    }
