"""Losses: binary focal loss with optional class weights (THESIS 4.1.3, 5.1.3).

(Case3's NT-Xent loss will live here too.)
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

_REDUCTIONS = ("mean", "sum", "none")


def class_weights(labels: Sequence[float] | np.ndarray | torch.Tensor) -> torch.Tensor:
    """Class weights of THESIS Eq. 5.1: ``w_c = n_samples / (n_classes * n_c)``.

    Example: 100 images, 20 positive: ``w_neg = 100 / (2 * 80) = 0.625``,
    ``w_pos = 100 / (2 * 20) = 2.5``.

    Args:
        labels: ``(N,)`` 0/1 labels of the training set.

    Returns:
        float32 tensor ``(2,)``: ``[w_neg, w_pos]`` (index = class).

    Raises:
        ValueError: labels other than 0/1, or a class with no sample.
    """
    y = torch.as_tensor(np.asarray(labels)).flatten()
    if y.numel() == 0:
        raise ValueError("labels is empty")
    if not torch.isin(y, torch.tensor([0, 1], dtype=y.dtype)).all():
        raise ValueError("labels must be 0 or 1")
    counts = torch.stack([(y == 0).sum(), (y == 1).sum()]).double()
    if (counts == 0).any():
        raise ValueError(f"both classes needed, got {int(counts[0])} negatives and "
                         f"{int(counts[1])} positives")
    return (y.numel() / (2 * counts)).float()


class FocalLoss(nn.Module):
    """Binary focal loss on logits (Lin et al. 2017, "Focal Loss for Dense Object
    Detection", arXiv:1708.02002; THESIS Eq. 4.1), with optional class weights (Eq. 5.1).

    ``FL(p_t) = -w_y * alpha_t * (1 - p_t)^gamma * log(p_t)``, ``p_t = p`` if ``y = 1``
    else ``1 - p``, ``p = sigmoid(logit)``. Computed by ``torchvision.ops.sigmoid_focal_loss``;
    this module adds the per-sample class weight ``w_y`` and the argument checks.

    Args:
        gamma: focusing parameter, >= 0 (2 in the thesis; 0 gives binary cross-entropy).
        class_weights: ``[w_neg, w_pos]`` (e.g. :func:`class_weights`), or ``None`` for 1, 1.
        reduction: ``"mean"`` (sum of the weighted losses / batch size, as Keras does with
            class weights), ``"sum"`` or ``"none"``.
        alpha: the paper's alpha-balancing in [0, 1] (weight of the positives), or ``None``
            for none (the thesis uses none; torchvision's ``alpha=-1``).

    Shapes: ``logits`` ``(B,)`` (any shape), ``targets`` same shape, 0/1 (any dtype).

    Raises:
        ValueError: negative gamma, alpha outside [0, 1], unknown reduction, class weights
            not two non-negative numbers, logits/targets of different shapes.
    """

    def __init__(self, gamma: float = 2.0, class_weights: Sequence[float] | torch.Tensor | None = None,
                 reduction: str = "mean", alpha: float | None = None) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        if alpha is not None and not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1] or None, got {alpha}")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.gamma = float(gamma)
        self.alpha = alpha
        self.reduction = reduction
        if class_weights is not None:
            w = torch.as_tensor(class_weights, dtype=torch.float32).flatten().clone()
            if w.numel() != 2 or not torch.isfinite(w).all() or (w < 0).any():
                raise ValueError(f"class_weights must be two finite non-negative numbers "
                                 f"[w_neg, w_pos], got {class_weights}")
            self.register_buffer("class_weights", w)  # (2,)
        else:
            self.register_buffer("class_weights", None)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if logits.shape != targets.shape:
            raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ")
        # the loss in float32 even under autocast: log(p_t) of fp16 logits is too coarse
        logits = logits.float()
        targets = targets.to(logits.dtype)
        from torchvision.ops import sigmoid_focal_loss  # lazily: torchvision's import costs ~1.5 s

        loss = sigmoid_focal_loss(logits, targets, alpha=-1 if self.alpha is None else self.alpha,
                                  gamma=self.gamma, reduction="none")  # (B,)
        if self.class_weights is not None:
            # w_y per sample: w_neg where y = 0, w_pos where y = 1
            w = self.class_weights.to(logits.device)
            loss = loss * torch.where(targets > 0.5, w[1], w[0])
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss

    def extra_repr(self) -> str:
        cw = None if self.class_weights is None else [round(v, 4) for v in self.class_weights.tolist()]
        return f"gamma={self.gamma}, alpha={self.alpha}, class_weights={cw}, reduction={self.reduction!r}"
