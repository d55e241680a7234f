"""``fit``: epochs of training and validation, checkpoints, exact resume, the best epoch.

- No early stopping (THESIS 4.1.2): ``fit`` leaves the model of the last epoch in ``model``.
- Validation after every ``val_every``-th epoch and always after the last one (default: every
  epoch); an epoch without validation has no ``val_*`` key in its history record.
- Checkpoints (:mod:`pe_utils.learn.checkpoint`): one resumable ``checkpoint_dir/last.pt``,
  rewritten (atomically) at most every ``checkpoint_every`` seconds (default 300) and after
  the final epoch; ``checkpoint_dir/best.pt`` holds the best validated epoch's weights only.
- Exact resume: ``fit(..., resume=True)`` continues after the epoch ``last.pt`` holds and, on
  CPU, ends with the same weights and history (except the ``*_seconds`` timings) as an
  uninterrupted run.
- CUDA: automatic mixed precision (bf16 where supported, else fp16 with a GradScaler) and
  channels_last memory format.
- Generic: what a batch does is the ``step`` (:mod:`pe_utils.learn.steps`) and what an epoch
  reports is the ``figures`` callable (:mod:`pe_utils.learn.epochs`); a Case1 classifier
  passes ``figures=pe_utils.evaluate.metrics.epoch_figures``, a SimCLR encoder a
  contrastive step and no figures.
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from pe_utils.data.datasets import set_epoch

from .checkpoint import (BEST, LAST, Checkpoints, config_diff, load_checkpoint, rng_state,
                         set_rng_state, to_checkpoint_plain)
from .epochs import Figures, Step, evaluate, train_one_epoch
from .setup import amp_dtype, scheduler_interval, step_scheduler
from .steps import supervised_step


def _better(metric: str, value: float, best: float | None) -> bool:
    """Does ``value`` beat ``best``? Lower is better for a ``*loss`` metric, higher for any
    other; NaN never beats a number and any number beats NaN."""
    if best is None:
        return True
    if math.isnan(value):
        return False
    if math.isnan(best):
        return True
    return value < best if metric.endswith("loss") else value > best


def _choose_metric(chosen: str | None, record: dict[str, Any]) -> str:
    """``chosen``, or ``val_auc`` when the record has it and ``val_loss`` otherwise.

    Raises:
        ValueError: ``chosen`` is not in the record (the figures do not give it).
    """
    metric = chosen or ("val_auc" if "val_auc" in record else "val_loss")
    if metric not in record:
        raise ValueError(f"best_metric {metric!r} is not among this run's validation figures "
                         f"{sorted(k for k in record if k.startswith('val_'))}: pass figures that "
                         "give it, or another best_metric")
    return metric


def _compiled(model: nn.Module, compile: bool | str | dict) -> nn.Module:
    """``model``, or ``torch.compile(model, ...)`` as :func:`fit`'s ``compile`` says."""
    if compile is False or compile is None:
        return model
    if compile is True:
        return torch.compile(model)
    if isinstance(compile, str):
        return torch.compile(model, mode=compile)
    if isinstance(compile, dict):
        return torch.compile(model, **compile)
    raise ValueError(f"compile must be a bool, a mode name or a dict of torch.compile keywords, got {compile!r}")


def _resume(ckpt_dir: Path, config: dict, ignore: Iterable[str], model: nn.Module,
            optimizer: torch.optim.Optimizer, scheduler, scaler, loaders) -> dict[str, Any] | None:
    """Load ``ckpt_dir/last.pt`` into the run's objects if it was made with ``config``;
    ``None`` (with a warning naming the differences) otherwise."""
    if not (ckpt_dir / LAST).is_file():
        return None
    # on CPU: RNG states must stay CPU tensors; load_state_dict moves the rest
    ckpt = load_checkpoint(ckpt_dir / LAST, map_location="cpu")
    diff = config_diff(ckpt.get("config") or {}, config, ignore)
    if diff:
        warnings.warn(f"not resuming from {ckpt_dir / LAST}: made with another config "
                      f"({'; '.join(diff[:8])}); training from scratch", stacklevel=3)
        return None
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt.get("scheduler") is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"], loaders)
    return ckpt


def fit(model: nn.Module, criterion: nn.Module, optimizer: torch.optim.Optimizer,
        train_loader: DataLoader, val_loader: DataLoader | None, epochs: int,
        device: torch.device | str, scheduler=None, checkpoint_dir: str | Path | None = None,
        resume: bool = False, config: dict | None = None, progress: bool = True,
        on_epoch_end: Callable[[dict], None] | None = None, amp: bool | str = "auto",
        best_metric: str | None = None, threshold: float = 0.5,
        resume_ignore: Iterable[str] = ("epochs",), step: Step = supervised_step,
        figures: Figures | None = None, compile: bool | str | dict = False,
        checkpoint_every: float | None = 300.0, val_every: int = 1) -> list[dict[str, Any]]:
    """Train for ``epochs`` epochs; the model of the last epoch stays in ``model``.

    Args:
        model: e.g. :func:`pe_utils.learn.models.build_classifier`; moved to ``device``
            (channels_last on CUDA).
        criterion: e.g. :class:`pe_utils.learn.losses.FocalLoss`.
        optimizer: built on the model's parameters (:func:`pe_utils.learn.setup.build_optimizer`).
        train_loader, val_loader: from :func:`pe_utils.data.make_loader`; ``fit`` calls
            :func:`pe_utils.data.set_epoch` on both before each epoch. ``val_loader`` may be
            ``None`` (no validation figures, no ``best.pt``).
        epochs: total number of epochs (also when resuming).
        device: e.g. :func:`pe_utils.learn.setup.pick_device`.
        scheduler: :func:`pe_utils.learn.setup.build_scheduler` (stepped per epoch or per
            batch as it says).
        checkpoint_dir: where ``last.pt`` (the resumable checkpoint) and ``best.pt`` (the
            best epoch's weights) go; ``None``: none.
        resume: continue from ``checkpoint_dir/last.pt`` if it exists and was made with the
            same ``config`` (model, optimizer, scheduler, scaler, history and RNG states are
            restored; the model's current weights are overwritten). Without the file, or
            when its config differs (another run in the same folder), start from scratch,
            with a warning naming the differences.
        config: plain settings stored in the checkpoints (how the run was made); compare
            equal after a round trip through the checkpoint (tuples become lists).
        progress: show a tqdm bar (one tick per batch, figures per epoch).
        on_epoch_end: called with each epoch's record, after the checkpoint if one was due.
        amp: ``"auto"`` (bf16/fp16 autocast on CUDA only), ``False``, ``"bf16"``, ``"fp16"``.
        best_metric: the record's validation figure that chooses the best epoch (whose
            weights go to ``best.pt`` and whose figure to the checkpoint's ``best``), e.g.
            ``"val_auc"``, ``"val_f1"``, ``"val_loss"``; lower is better for a name ending
            in ``loss``, higher for any other; an epoch with NaN loses to any number.
            ``None`` (default): ``"val_auc"`` when ``figures`` give an AUC, else
            ``"val_loss"``. A name the figures do not give raises at the first validated epoch,
            before its checkpoint is written.
        threshold: decision threshold passed to ``figures``.
        resume_ignore: config keys that may differ on resume (by default ``epochs``, so a
            finished run can be extended).
        step: what one batch does (default :func:`pe_utils.learn.steps.supervised_step`).
        figures: the epoch's figures from the step's outputs, e.g.
            :func:`pe_utils.evaluate.metrics.epoch_figures`; ``None``: loss and n only.
        compile: run the model through ``torch.compile`` (off by default): ``True`` (default
            mode), a mode name such as ``"reduce-overhead"`` (CUDA graphs, for launch-bound
            small batches) or a dict of ``torch.compile`` keywords. The checkpoints hold
            ``model``'s own weights (no ``_orig_mod.`` prefix). An option, not a default:
            whether it pays depends on the GPU, the batch and the compile time
            (``bench/train.py --compile`` measures it).
        checkpoint_every: seconds between two writes of ``last.pt`` (a ResNet50's, with its
            optimizer, is about 200 MB): a killed run trains again at most this long plus
            the epoch it was in. ``0``: after every epoch (what a test of exact resume
            wants); ``None``: after the final epoch only. The final epoch is always written.
        val_every: validate after every ``val_every``-th epoch (epochs ``val_every``,
            ``2 val_every``, ...) and always after the final one; the other epochs have no
            ``val_*`` figures and cannot be the best. ``1`` (default): every epoch. A larger
            value saves passes over a validation set that is large beside the training set
            (Case2 at small training fractions: :func:`pe_utils.case2_val_every`).

    Returns:
        History: one dict per epoch, with ``epoch`` (1-based), ``lr`` (at the epoch's
        start), ``train_<k>`` and (validated epochs only) ``val_<k>`` for k in loss, n and
        every key of ``figures`` (with ``epoch_figures``: accuracy, precision, recall, f1,
        f1_batch_mean, f1_batch_bound, auc, tn, fp, fn, tp); ``train_lr_end``,
        ``train_skipped``, ``train_seconds``, ``val_seconds`` (validated epochs only; the
        ``*_seconds`` are the only entries that differ between two identical runs).

    Raises:
        ValueError: epochs < 0, val_every < 1, resume without checkpoint_dir, checkpoint_every < 0, a
            best_metric not named ``val_*`` (at once) or not given by the figures (at the
            first validated epoch).
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if isinstance(val_every, bool) or not isinstance(val_every, (int, np.integer)) or val_every < 1:
        raise ValueError(f"val_every must be an integer >= 1 (validate every n-th epoch), got {val_every!r}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    if best_metric is not None and not best_metric.startswith("val_"):
        raise ValueError(f"best_metric must name a validation figure ('val_auc', 'val_loss', ...), "
                         f"got {best_metric!r}")
    checkpoints = Checkpoints(checkpoint_dir, checkpoint_every)  # its clock starts now
    device = torch.device(device)
    dtype = amp_dtype(device, amp)
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    if isinstance(criterion, nn.Module):
        criterion.to(device)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    # the compiled module shares model's parameters: checkpoints keep saving ``model``
    runner = _compiled(model, compile)
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    loaders = (train_loader, val_loader)
    config = to_checkpoint_plain(config or {})

    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"metric": best_metric, "value": None, "epoch": None}
    start = 0
    ckpt = _resume(ckpt_dir, config, resume_ignore, model, optimizer, scheduler, scaler, loaders) \
        if resume else None
    if ckpt is not None:
        history = list(ckpt["history"])
        start = int(ckpt["epoch"])
        saved = dict(ckpt.get("best") or best)
        # another best_metric than the checkpoint's: the best so far is unknown
        if best_metric is None or saved.get("metric") in (None, best_metric):
            best = saved
        if start >= epochs:
            warnings.warn(f"{ckpt_dir / LAST} already has {start} epochs (asked {epochs}): "
                          "nothing to train", stacklevel=2)
    if start == 0 and ckpt_dir is not None:
        # a fresh run in a used folder: an old best.pt would pass for this run's
        (ckpt_dir / BEST).unlink(missing_ok=True)

    total = max(0, epochs - start) * len(train_loader)
    bar = tqdm(total=total, disable=not progress, desc="fit", unit="batch", dynamic_ncols=True)
    try:
        for epoch in range(start, epochs):
            for ld in loaders:
                if ld is not None:
                    set_epoch(ld, epoch)
            lr = optimizer.param_groups[0]["lr"]
            t0 = time.perf_counter()
            tr = train_one_epoch(runner, criterion, optimizer, train_loader, device, scheduler=scheduler,
                                 scaler=scaler, amp=amp, threshold=threshold, bar=bar, step=step,
                                 figures=figures)
            t1 = time.perf_counter()
            validate = val_loader is not None and ((epoch + 1) % val_every == 0 or epoch + 1 == epochs)
            va = evaluate(runner, criterion, val_loader, device, amp=amp, threshold=threshold, step=step,
                          figures=figures) if validate else {}
            t2 = time.perf_counter()
            if scheduler is not None and scheduler_interval(scheduler) == "epoch":
                step_scheduler(scheduler)
            record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr}
            record.update({f"train_{k}": v for k, v in tr.items()})
            # evaluate also returns the step's outputs (arrays): the history keeps figures only
            record.update({f"val_{k}": v for k, v in va.items() if not isinstance(v, np.ndarray)})
            record["train_seconds"] = t1 - t0
            if validate:
                record["val_seconds"] = t2 - t1
            record = to_checkpoint_plain(record)
            if validate:
                metric = _choose_metric(best["metric"], record)
                if _better(metric, record[metric], best["value"]):
                    best = {"metric": metric, "value": record[metric], "epoch": epoch + 1}
                    checkpoints.keep_best(model, best, config)
            history.append(record)
            if checkpoints.due(final=epoch + 1 == epochs):
                checkpoints.write({
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "epoch": epoch + 1,
                    "config": config,
                    "history": history,
                    "best": best,
                    "rng": rng_state(loaders),
                })
            # a figure the epoch could not compute (an AUC of one class) is left out, not shown as nan
            bar.set_postfix({k: f"{record[k]:.4f}" for k in ("train_loss", "val_loss", "val_auc", "val_f1")
                             if k in record and record[k] is not None and math.isfinite(record[k])})
            if on_epoch_end is not None:
                on_epoch_end(record)
    finally:
        bar.close()
    return history
