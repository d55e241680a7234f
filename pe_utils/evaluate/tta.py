"""Test-time augmentation: the mean probability of each image over a few augmented views.

Thesis 4.1.1: each test image is predicted under 5 test-time augmentations (the original,
two shifts, a rotation, a crop; :func:`pe_utils.data.augment.tta_views`, batched on the
device) and the mean sigmoid
probability is what :mod:`pe_utils.evaluate.triaging` compares with the two thresholds.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["predict_tta"]


def predict_tta(model, loader, device, views: Callable | None = None, amp: bool | str = "auto"):
    """Mean sigmoid probability of each image over test-time augmented views.

    Args:
        model: returns logits (B,) or (B, 1) for inputs (B, C, H, W).
        loader: yields ``(x, y)`` batches; iterated once, in order.
        device: where the model lives (``"cpu"``, ``"cuda"``, a ``torch.device``).
        views: ``views(x) -> list of V tensors (B, C, H, W)``; defaults to
            :func:`pe_utils.data.augment.tta_views` (5 views, the original first).
        amp: mixed precision, as ``fit`` takes it (``pe_utils.learn.amp_dtype``): ``"auto"``
            is bf16 autocast on CUDA (fp16 without bf16) and full precision on CPU.

    Returns:
        ``(mean_probs (N,), view_probs (N, V), labels (N,))``, float32 numpy arrays. The model
        runs in eval mode without gradients (its former mode is restored); probabilities are
        computed in float32 whatever the autocast dtype.

    Raises:
        ValueError: an unknown ``amp`` setting.
    """
    import torch

    from pe_utils.learn.setup import amp_dtype, autocast  # lazily, as torch: imports torch

    if views is None:
        from pe_utils.data.augment import tta_views as views  # lazily: augment imports kornia
    device = torch.device(device)
    dtype = amp_dtype(device, amp)
    was_training = model.training
    model.eval()
    all_probs, all_labels = [], []
    try:
        with torch.no_grad():
            for batch in loader:
                x, y = batch[0], batch[1]
                x = x.to(device, non_blocking=True)
                per_view = []
                for v in views(x):
                    with autocast(device, dtype):
                        logits = model(v)
                    per_view.append(torch.sigmoid(logits.float().reshape(len(x), -1)[:, 0]))
                all_probs.append(torch.stack(per_view, dim=1).cpu())  # (B, V)
                all_labels.append(torch.as_tensor(y).reshape(-1).float().cpu())
    finally:
        model.train(was_training)
    if not all_probs:
        return (np.zeros(0, np.float32), np.zeros((0, 0), np.float32), np.zeros(0, np.float32))
    view_probs = torch.cat(all_probs).numpy().astype(np.float32)
    labels = torch.cat(all_labels).numpy().astype(np.float32)
    return view_probs.mean(axis=1).astype(np.float32), view_probs, labels
