"""What a run sets up before its first batch: seeds, device, optimizer, schedule, precision.

- Optimiser (THESIS 4.1.3, 5.1.3): SGD with momentum 0.9 or Adam (:func:`build_optimizer`).
- Step-decayed learning rate, epoch- or iteration-based (THESIS 4.1.2, Appendix A):
  :func:`build_scheduler`; ``fit`` steps it per epoch, ``train_one_epoch`` per batch
  (:func:`step_scheduler`, as :func:`scheduler_interval` says).
- Precision: :func:`amp_dtype` turns the ``amp`` setting into an autocast dtype (bf16 where
  supported, else fp16, on CUDA only) and :func:`autocast` enters it; training, evaluation
  and test-time augmentation use the same pair so they run at the same precision.
"""
from __future__ import annotations

import math
import os
import random
import warnings
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch
from torch import nn


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python ``random``, numpy and torch (CPU and every CUDA device).

    Seeds fix the model's initialisation and dropout; splits, shuffling and augmentation
    take their own ``seed`` argument. ``deterministic=True`` also asks cuDNN/torch for
    deterministic kernels (slower on GPU; CPU training is deterministic already).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def pick_device(prefer: str | None = None) -> torch.device:
    """``prefer`` if given, else CUDA when available, else CPU."""
    if prefer is not None:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_optimizer(model: nn.Module, name: str, lr: float, momentum: float = 0.9,
                    weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """SGD (with ``momentum``, THESIS 4.1.3) or Adam (THESIS 5.1.3) over the model's
    trainable parameters (freeze first, then build the optimizer).

    Raises:
        ValueError: unknown name, lr <= 0, negative momentum/weight decay, nothing trainable.
    """
    name = name.lower()
    if name not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {name!r}")
    if lr <= 0 or momentum < 0 or weight_decay < 0:
        raise ValueError(f"need lr > 0, momentum >= 0, weight_decay >= 0; got {lr}, {momentum}, {weight_decay}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameter")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


class StepDecayLR(torch.optim.lr_scheduler.StepLR):
    """``StepLR`` that knows whether it counts epochs or iterations (``.interval``).

    ``lr = lr0 * gamma ** (t // step_size)`` with t the number of ``step()`` calls: epochs
    when ``interval == "epoch"`` (``fit`` calls it after each epoch), iterations when
    ``interval == "iteration"`` (``train_one_epoch`` calls it after each batch).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, step_size: int, gamma: float,
                 interval: str = "epoch", steps_per_epoch: int | None = None) -> None:
        self.interval = interval
        self.steps_per_epoch = steps_per_epoch
        super().__init__(optimizer, step_size=step_size, gamma=gamma)


def build_scheduler(optimizer: torch.optim.Optimizer, step: int, gamma: float,
                    schedule: str = "epoch", steps_per_epoch: int | None = None) -> StepDecayLR:
    """Step decay of the learning rate (THESIS Fig. 4.6, Appendix A).

    Args:
        optimizer: the optimizer whose learning rate decays.
        step: decay period, in epochs (``schedule="epoch"``) or iterations, i.e. batches
            (``schedule="iteration"``).
        gamma: factor applied every ``step`` (0 < gamma <= 1).
        schedule: ``"epoch"``: the decay depends on the training-set size (Appendix A);
            ``"iteration"``: it does not. To turn an epoch schedule into the iteration one
            Appendix A uses, pass ``step = epochs * steps_per_epoch`` of the reference set
            (:func:`iterations_for`).
        steps_per_epoch: batches per epoch of the training set, kept as
            ``scheduler.steps_per_epoch`` for reports (where the drops fall in epochs);
            the schedule does not depend on it.

    Returns:
        :class:`StepDecayLR` (a ``StepLR``), ``.interval`` = ``schedule``.

    Raises:
        ValueError: step < 1, gamma outside (0, 1], unknown schedule, steps_per_epoch < 1.
    """
    if schedule not in ("epoch", "iteration"):
        raise ValueError(f"schedule must be 'epoch' or 'iteration', got {schedule!r}")
    if int(step) < 1 or step != int(step):
        raise ValueError(f"step must be a positive integer, got {step}")
    if not 0 < gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    if steps_per_epoch is not None and steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    return StepDecayLR(optimizer, int(step), float(gamma), schedule, steps_per_epoch)


def iterations_for(epochs: float, n_train: int, batch_size: int, drop_last: bool = False) -> int:
    """Iterations in ``epochs`` epochs of ``n_train`` images (Appendix A's conversion of an
    epoch-based decay into an iteration-based one, fixed across training-set sizes)."""
    per_epoch = n_train // batch_size if drop_last else math.ceil(n_train / batch_size)
    return max(1, round(epochs * per_epoch))


def scheduler_interval(scheduler) -> str:
    """``"epoch"`` or ``"iteration"``: when ``scheduler`` steps (``.interval``; any other
    torch scheduler counts epochs)."""
    return getattr(scheduler, "interval", "epoch")


def step_scheduler(scheduler) -> None:
    """``scheduler.step()`` without torch's warning about the order of the two steps."""
    # GradScaler skips optimizer.step() while it calibrates fp16 scaling; torch then warns
    # that the scheduler stepped first, which for a step decay changes nothing
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
        scheduler.step()


def amp_dtype(device: torch.device | str, amp: bool | str | None) -> torch.dtype | None:
    """The autocast dtype of the ``amp`` setting on ``device``.

    Args:
        device: where the model runs.
        amp: ``"auto"``/``True``: bf16 on CUDA (fp16 where bf16 is unsupported), none on
            CPU; ``"bf16"``/``"fp16"``: that dtype on any device; ``False``/``None``/
            ``"off"``/``"none"``: full precision.

    Returns:
        ``torch.bfloat16``, ``torch.float16`` or ``None`` (no autocast).

    Raises:
        ValueError: another ``amp`` value.
    """
    if amp in (False, None, "off", "none"):
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    if amp in (True, "auto"):
        if torch.device(device).type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    raise ValueError(f"amp must be 'auto', True, False, 'bf16' or 'fp16', got {amp!r}")


def autocast(device: torch.device | str, dtype: torch.dtype | None) -> AbstractContextManager:
    """``torch.autocast`` on ``device``'s type at ``dtype`` (from :func:`amp_dtype`), or a
    context that changes nothing when ``dtype`` is None."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)
