"""The training step: what one batch does, apart from the loop around it.

A step is a function ``step(model, batch, criterion, device, dtype) -> StepOutput``: it moves
the batch to ``device``, runs the model under autocast at ``dtype`` (``None``: full precision,
see :func:`pe_utils.learn.setup.amp_dtype`) and returns the batch's mean loss, its number of
items and the detached tensors the epoch's figures are computed from. The loop
(:mod:`pe_utils.learn.epochs`) does the rest: ``model.train()``/``eval()``, backward,
optimizer and scheduler steps, sums, and the figures. The same loop therefore trains a
classifier (:func:`supervised_step`: ``(x, y)`` batches, focal loss, probabilities kept) and
an encoder on pairs of views with NT-Xent (a contrastive step: ``(view1, view2)`` batches,
no labels, maybe no outputs at all).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .setup import autocast


@dataclass
class StepOutput:
    """What a step returns for one batch.

    Attributes:
        loss: scalar, mean over the batch; attached to the graph in training (the loop calls
            ``backward`` on it). ``None`` when there is no criterion (evaluation only): the
            epoch's loss is then NaN.
        n: number of items in the batch (images, or pairs of views); weights ``loss`` in the
            epoch's mean.
        outputs: detached tensors kept for the epoch's figures, each with the batch on its
            first dimension, e.g. ``{"probs": (B,), "labels": (B,)}``; the same keys in every
            batch. Empty when the figures need nothing.
    """

    loss: torch.Tensor | None
    n: int
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``x`` on ``device``, without blocking; image batches ``(B, C, H, W)`` on CUDA in
    channels_last (the memory format ``fit`` gives the model)."""
    if device.type == "cuda" and x.ndim == 4:
        return x.to(device, non_blocking=True, memory_format=torch.channels_last)
    return x.to(device, non_blocking=True)


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(x, y)`` of a supervised batch: ``(x, y, ...)`` or ``[x, y, ...]`` -> ``(x, y)``,
    ``(x,)`` or ``x`` alone -> ``(x, None)``."""
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def batch_len(batch: Any) -> int:
    """Items in ``batch``: the first dimension of its first tensor (``x`` of ``(x, y)``,
    ``view1`` of ``(view1, view2)``, the first value of a dict).

    Raises:
        TypeError: no tensor found.
    """
    while isinstance(batch, (tuple, list, dict)):
        if not batch:
            break
        batch = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    if not isinstance(batch, torch.Tensor):
        raise TypeError(f"cannot tell the size of a batch whose first item is {type(batch).__name__}")
    return int(batch.shape[0])


def supervised_step(model: nn.Module, batch: Any, criterion: nn.Module | None,
                    device: torch.device, dtype: torch.dtype | None) -> StepOutput:
    """One batch of a binary classifier.

    Args:
        model: returns logits ``(B,)`` for images ``(B, C, H, W)``.
        batch: ``(x (B, C, H, W), y (B,))``, labels 0/1 of any dtype.
        criterion: loss on ``(logits (B,) float32, y (B,) float32)``, mean over the batch,
            e.g. :class:`pe_utils.learn.losses.FocalLoss`; ``None``: no loss.
        device: where to compute.
        dtype: autocast dtype of the forward pass, or ``None``.

    Returns:
        :class:`StepOutput` with ``outputs = {"probs": sigmoid(logits) (B,) float32,
        "labels": y (B,) float32}``.

    Raises:
        ValueError: a batch without labels.
    """
    x, y = split_batch(batch)
    if y is None:
        raise ValueError("supervised_step needs (x, y) batches; got images only")
    x, y = to_device(x, device), y.to(device, non_blocking=True).float()
    with autocast(device, dtype):
        logits = model(x)                                  # (B,)
    logits = logits.float()
    # the loss in float32 outside autocast, the same in training and evaluation
    loss = criterion(logits, y) if criterion is not None else None
    probs = torch.sigmoid(logits.detach())                 # (B,)
    return StepOutput(loss=loss, n=int(x.shape[0]), outputs={"probs": probs, "labels": y.detach()})


def contrastive_step(model: nn.Module, batch: Any, criterion: nn.Module | None,
                     device: torch.device, dtype: torch.dtype | None) -> StepOutput:
    """One batch of contrastive pretraining: two views of each image, no labels.

    Args:
        model: returns projections ``(N, D)`` for images ``(N, C, H, W)``, e.g.
            :class:`pe_utils.learn.simclr.SimCLRModel`.
        batch: ``(view1 (N, C, H, W), view2 (N, C, H, W))``; a third item (labels) is
            refused: pretraining must not see them (thesis 4.2).
        criterion: loss on ``(z1, z2)``, e.g. :class:`pe_utils.learn.ntxent.NTXentLoss`;
            ``None``: no loss.
        device, dtype: as :func:`supervised_step`.

    Returns:
        :class:`StepOutput` with ``n = N`` (pairs) and ``outputs = {"twin_top1": (N,)}``: 1
        where view 1's nearest other view (cosine) is its twin, the accuracy of the pretext
        task, a figure that rises as the encoder learns.

    Raises:
        ValueError: a batch that is not two views of equal shape.
    """
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise ValueError("contrastive_step needs (view1, view2) batches and no labels; got "
                         f"{type(batch).__name__} of {len(batch) if isinstance(batch, (tuple, list)) else 1}")
    v1, v2 = batch
    if v1.shape != v2.shape:
        raise ValueError(f"the two views differ in shape: {tuple(v1.shape)} vs {tuple(v2.shape)}")
    n = int(v1.shape[0])
    with autocast(device, dtype):
        # one forward over both views: BatchNorm sees the 2N views together, as in SimCLR
        z = model(torch.cat([to_device(v1, device), to_device(v2, device)]))   # (2N, D)
    z1, z2 = z.float().split(n)                                                 # (N, D) each
    loss = criterion(z1, z2) if criterion is not None else None
    with torch.no_grad():
        u = nn.functional.normalize(torch.cat([z1, z2]).detach(), dim=1)      # (2N, D)
        sim = u @ u.T                                                           # (2N, 2N)
        sim.fill_diagonal_(-float("inf"))
        twin_top1 = (sim[:n].argmax(dim=1) == torch.arange(n, 2 * n, device=sim.device)).float()  # (N,)
    return StepOutput(loss=loss, n=n, outputs={"twin_top1": twin_top1})
