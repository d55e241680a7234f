"""One pass over a loader: ``train_one_epoch``, ``evaluate``, ``predict``.

The pass is generic: a *step* (:mod:`pe_utils.learn.steps`) turns each batch into a loss and
the detached tensors to keep, and an optional *figures* callable turns the epoch's kept
tensors into numbers::

    figures(outputs_per_batch: list[dict[str, np.ndarray]], threshold: float) -> dict

e.g. :func:`pe_utils.evaluate.metrics.epoch_figures` (confusion matrix, AUC, the thesis's
per-batch F1 and its bound; Appendix B) for :func:`~pe_utils.learn.steps.supervised_step`.
Without figures an epoch reports its mean loss and size only. The learn wing never imports
the evaluate wing: the caller passes the figures in.

Kept tensors stay on the device during the epoch (no host sync per batch) and are copied
to the host once per key at its end.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from .setup import amp_dtype, autocast, scheduler_interval, step_scheduler
from .steps import StepOutput, batch_len, split_batch, supervised_step, to_device

Step = Callable[..., StepOutput]
Figures = Callable[[list, float], dict]


def _gather(kept: list[dict[str, torch.Tensor]]) -> tuple[list[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """The kept tensors on the host: per batch, and each key concatenated over the epoch."""
    if not kept:
        return [], {}
    per_key: dict[str, list[np.ndarray]] = {}
    whole: dict[str, np.ndarray] = {}
    for key in kept[0]:
        tensors = [b[key] for b in kept]
        if all(t.ndim >= 1 for t in tensors):
            # one device-to-host copy per key instead of one per batch
            whole[key] = torch.cat(tensors).cpu().numpy()
            per_key[key] = np.split(whole[key], np.cumsum([t.shape[0] for t in tensors])[:-1])
        else:  # a scalar per batch
            per_key[key] = [t.cpu().numpy() for t in tensors]
            whole[key] = np.stack(per_key[key])
    per_batch = [{key: per_key[key][i] for key in per_key} for i in range(len(kept))]
    return per_batch, whole


def _pass(model: nn.Module, criterion: nn.Module | None, loader: Iterable, device: torch.device,
          dtype: torch.dtype | None, step: Step, optimizer: torch.optim.Optimizer | None = None,
          scheduler=None, scaler: torch.amp.GradScaler | None = None, bar=None) -> dict[str, Any]:
    """Every batch through ``step``; with an ``optimizer``, also backward and updates."""
    training = optimizer is not None
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    has_loss = True
    kept: list[dict[str, torch.Tensor]] = []
    n = skipped = 0
    for batch in loader:
        if training and batch_len(batch) < 2:
            skipped += 1  # BatchNorm cannot train on one item
            if bar is not None:
                bar.update(1)
            continue
        out = step(model, batch, criterion, device, dtype)
        if training:
            if out.loss is None:
                raise ValueError("training needs a loss: the step returned loss=None (no criterion?)")
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(out.loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                out.loss.backward()
                optimizer.step()
            if scheduler is not None and scheduler_interval(scheduler) == "iteration":
                step_scheduler(scheduler)
        if out.loss is None:
            has_loss = False
        else:  # accumulate on the device: no host sync per batch
            loss_sum += out.loss.detach().double() * out.n
        kept.append(out.outputs)
        n += out.n
        if bar is not None:
            bar.update(1)
    per_batch, whole = _gather(kept)
    return {"loss_sum": float(loss_sum) if has_loss else math.nan, "n": n, "skipped": skipped,
            "per_batch": per_batch, "whole": whole}


def _figures(result: dict[str, Any], figures: Figures | None, threshold: float) -> dict[str, Any]:
    n = result["n"]
    if n == 0:
        return {"loss": math.nan, "n": 0}
    out: dict[str, Any] = {"loss": result["loss_sum"] / n, "n": n}
    if figures is not None:
        out.update(figures(result["per_batch"], threshold))
    return out


def train_one_epoch(model: nn.Module, criterion: nn.Module, optimizer: torch.optim.Optimizer,
                    loader: Iterable, device: torch.device | str, scheduler=None,
                    scaler: torch.amp.GradScaler | None = None, amp: bool | str = "auto",
                    threshold: float = 0.5, bar=None, step: Step = supervised_step,
                    figures: Figures | None = None) -> dict[str, Any]:
    """One pass over ``loader`` in training mode.

    Args:
        model: on ``device`` already (``fit`` moves it).
        criterion: the loss ``step`` calls, mean over the batch.
        optimizer: updated once per batch.
        loader: yields the batches ``step`` takes (``(x (B, C, H, W), y (B,))`` for
            :func:`~pe_utils.learn.steps.supervised_step`).
        device: where to compute.
        scheduler: stepped after each batch if it is iteration-based (``.interval ==
            "iteration"``); an epoch-based one is left to the caller (``fit`` steps it).
        scaler: GradScaler for fp16 autocast (``fit`` makes one when needed).
        amp: see :func:`pe_utils.learn.setup.amp_dtype`.
        threshold: decision threshold passed to ``figures``.
        bar: optional tqdm bar, updated per batch.
        step: what one batch does (:mod:`pe_utils.learn.steps`).
        figures: the epoch's figures from the step's kept outputs (module docstring), e.g.
            :func:`pe_utils.evaluate.metrics.epoch_figures`; ``None``: loss and n only.

    Returns:
        ``loss`` (mean per item), ``n``, then what ``figures`` gives (of the epoch's
        outputs made in training mode, as Keras reports them), ``lr_end``, ``skipped``
        (batches of one item are skipped with a warning: BatchNorm cannot train on them).
    """
    device = torch.device(device)
    dtype = amp_dtype(device, amp)
    model.train()
    result = _pass(model, criterion, loader, device, dtype, step, optimizer=optimizer,
                   scheduler=scheduler, scaler=scaler, bar=bar)
    if result["skipped"]:
        warnings.warn(f"skipped {result['skipped']} training batch(es) of one image (BatchNorm needs 2+); "
                      "use drop_last=True or another batch size", stacklevel=2)
    out = _figures(result, figures, threshold)
    out["lr_end"] = optimizer.param_groups[0]["lr"]
    out["skipped"] = result["skipped"]
    return out


@torch.no_grad()
def evaluate(model: nn.Module, criterion: nn.Module | None, loader: Iterable,
             device: torch.device | str, amp: bool | str = "auto", threshold: float = 0.5,
             step: Step = supervised_step, figures: Figures | None = None) -> dict[str, Any]:
    """Model in eval mode over ``loader``, no gradient.

    Args: as :func:`train_one_epoch`; ``criterion`` may be ``None`` (``loss`` NaN).

    Returns:
        ``loss``, ``n`` and what ``figures`` gives, plus every output the step keeps,
        concatenated over the loader in its order as numpy arrays (``probs`` ``(N,)`` and
        ``labels`` ``(N,)`` with :func:`~pe_utils.learn.steps.supervised_step`; none for an
        empty loader).
    """
    device = torch.device(device)
    dtype = amp_dtype(device, amp)
    model.to(device).eval()
    result = _pass(model, criterion, loader, device, dtype, step)
    out = _figures(result, figures, threshold)
    out.update(result["whole"])
    return out


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, device: torch.device | str,
            amp: bool | str = "auto") -> np.ndarray:
    """Probabilities of a binary classifier (sigmoid of the logits), ``(N,)`` float32, in
    the loader's order.

    The model is put in eval mode; batches may be ``(x, y)`` or ``x`` alone.
    """
    device = torch.device(device)
    dtype = amp_dtype(device, amp)
    model.to(device).eval()
    out = []
    for batch in loader:
        x, _ = split_batch(batch)
        with autocast(device, dtype):
            logits = model(to_device(x, device))
        out.append(torch.sigmoid(logits.float()).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)
