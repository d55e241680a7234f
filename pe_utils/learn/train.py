"""Training as plain functions: ``train_one_epoch``, ``evaluate``, ``fit``, ``predict``.

- Optimiser (THESIS 4.1.3, 5.1.3): SGD with momentum 0.9 or Adam (:func:`build_optimizer`).
- Step-decayed learning rate, epoch- or iteration-based (THESIS 4.1.2, Appendix A):
  :func:`build_scheduler`; ``fit`` steps it per epoch, ``train_one_epoch`` per batch.
- Figures per epoch, for training and validation: loss, accuracy, precision, recall, F1 of
  the epoch's confusion matrix, the thesis's per-batch-mean F1 and its upper bound
  (Appendix B), AUC (NaN with one class), computed by :mod:`pe_utils.evaluate.metrics`.
- No early stopping (THESIS 4.1.2): ``fit`` leaves the model of the last epoch in ``model``;
  ``checkpoint_dir/last.pt`` is written after every epoch (atomically) and
  ``checkpoint_dir/best.pt`` when the validation figure improves.
- Exact resume: ``fit(..., resume=True)`` continues after the last finished epoch and, on
  CPU, ends with the same weights and history (except the ``*_seconds`` timings) as an
  uninterrupted run. It relies on the loaders of :mod:`pe_utils.data.datasets` (order and
  augmentation depend only on ``(seed, epoch)``) and on the RNG states in the checkpoint
  (dropout).
- CUDA: automatic mixed precision (bf16 where supported, else fp16 with a GradScaler) and
  channels_last memory format.

A checkpoint is ``{"model", "optimizer", "scheduler", "epoch", "config", "history", "rng",
"scaler", "best"}``; ``epoch`` is the number of finished epochs; everything loads with
``torch.load(path, weights_only=True)``.
"""
from __future__ import annotations

import math
import os
import random
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from pe_utils.data.datasets import set_epoch
from pe_utils.evaluate.metrics import binary_metrics, f1_batch_upper_bound

LAST = "last.pt"
BEST = "best.pt"


# --------------------------------------------------------------------------- set-up
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


def _interval(scheduler) -> str:
    return getattr(scheduler, "interval", "epoch")


def _step_scheduler(scheduler) -> None:
    # GradScaler skips optimizer.step() while it calibrates fp16 scaling; torch then warns
    # that the scheduler stepped first, which for a step decay changes nothing
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
        scheduler.step()


def _amp_dtype(device: torch.device, amp: bool | str) -> torch.dtype | None:
    """The autocast dtype: ``amp="auto"``/``True`` -> bf16 (fp16 without bf16) on CUDA,
    none on CPU; ``"bf16"``/``"fp16"`` force it; ``False``/``None`` disable it."""
    if amp in (False, None, "off", "none"):
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        return torch.float16
    if amp in (True, "auto"):
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    raise ValueError(f"amp must be 'auto', True, False, 'bf16' or 'fp16', got {amp!r}")


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def _to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda" and x.ndim == 4:
        return x.to(device, non_blocking=True, memory_format=torch.channels_last)
    return x.to(device, non_blocking=True)


def _split_batch(batch) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


# --------------------------------------------------------------------------- epochs
def _batch_mean_f1(y_batches: list[np.ndarray], p_batches: list[np.ndarray], threshold: float) -> float:
    """``pe_utils.evaluate.metrics.batch_mean_f1`` (F1 per batch, 0 where undefined, averaged) from
    per-batch counts: the same numbers (a test checks it) without one scikit-learn call per
    batch (~1 ms each, a few % of a GPU epoch)."""
    n_batches = len(y_batches)
    if n_batches == 0:
        return math.nan
    sizes = [len(y) for y in y_batches]
    batch = np.repeat(np.arange(n_batches), sizes)
    y = np.concatenate(y_batches) > 0.5
    pred = np.concatenate(p_batches) >= threshold
    tp = np.bincount(batch, weights=y & pred, minlength=n_batches)
    fp = np.bincount(batch, weights=~y & pred, minlength=n_batches)
    fn = np.bincount(batch, weights=y & ~pred, minlength=n_batches)
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros(n_batches), where=denom > 0)
    return float(f1.mean())


def _epoch_figures(loss_sum: float, n: int, probs: list[torch.Tensor], labels: list[torch.Tensor],
                   threshold: float) -> dict[str, Any]:
    """Figures of one epoch from its per-batch probabilities and labels."""
    if n == 0:
        return {"loss": math.nan, "n": 0}
    p_batches = [p.cpu().numpy() for p in probs]
    y_batches = [y.cpu().numpy() for y in labels]
    p, y = np.concatenate(p_batches), np.concatenate(y_batches)
    m = binary_metrics(y, p, threshold=threshold)
    m.pop("threshold", None)
    out: dict[str, Any] = {"loss": loss_sum / n, "n": n, **m}
    # Appendix B: the thesis's F1, per batch (0 without positives) and averaged, and its bound
    out["f1_batch_mean"] = _batch_mean_f1(y_batches, p_batches, threshold)
    out["f1_batch_bound"] = f1_batch_upper_bound([int((b > 0.5).sum()) for b in y_batches])
    return out


def train_one_epoch(model: nn.Module, criterion: nn.Module, optimizer: torch.optim.Optimizer,
                    loader: Iterable, device: torch.device | str, scheduler=None,
                    scaler: torch.amp.GradScaler | None = None, amp: bool | str = "auto",
                    threshold: float = 0.5, bar=None) -> dict[str, Any]:
    """One pass over ``loader`` in training mode.

    Args:
        model: on ``device`` already; returns logits ``(B,)``.
        criterion: loss on ``(logits, targets)``, mean over the batch.
        optimizer: updated once per batch.
        loader: yields ``(x (B, C, H, W), y (B,))``.
        device: where to compute.
        scheduler: stepped after each batch if it is iteration-based (``.interval ==
            "iteration"``); an epoch-based one is left to the caller (``fit`` steps it).
        scaler: GradScaler for fp16 autocast (``fit`` makes one when needed).
        amp: see :func:`fit`.
        threshold: decision threshold of the figures.
        bar: optional tqdm bar, updated per batch.

    Returns:
        ``loss`` (mean per image), ``n``, ``tn, fp, fn, tp, accuracy, precision, recall,
        f1, auc`` (of the epoch's predictions made in training mode, as Keras reports
        them), ``f1_batch_mean``, ``f1_batch_bound``, ``lr_end``, ``skipped`` (batches of
        one image are skipped: BatchNorm cannot train on them).
    """
    device = torch.device(device)
    dtype = _amp_dtype(device, amp)
    model.train()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    probs, labels = [], []
    n = skipped = 0
    for batch in loader:
        x, y = _split_batch(batch)
        if x.shape[0] < 2:
            skipped += 1
            if bar is not None:
                bar.update(1)
            continue
        x, y = _to_device(x, device), y.to(device, non_blocking=True).float()
        with _autocast(device, dtype):
            logits = model(x)                     # (B,)
            loss = criterion(logits, y)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if scheduler is not None and _interval(scheduler) == "iteration":
            _step_scheduler(scheduler)
        # accumulate on the device: no host sync per batch
        loss_sum += loss.detach().double() * x.shape[0]
        probs.append(torch.sigmoid(logits.detach().float()))
        labels.append(y.detach())
        n += x.shape[0]
        if bar is not None:
            bar.update(1)
    if skipped:
        warnings.warn(f"skipped {skipped} training batch(es) of one image (BatchNorm needs 2+); "
                      "use drop_last=True or another batch size", stacklevel=2)
    out = _epoch_figures(float(loss_sum), n, probs, labels, threshold)
    out["lr_end"] = optimizer.param_groups[0]["lr"]
    out["skipped"] = skipped
    return out


@torch.no_grad()
def evaluate(model: nn.Module, criterion: nn.Module | None, loader: Iterable,
             device: torch.device | str, amp: bool | str = "auto", threshold: float = 0.5) -> dict[str, Any]:
    """Model in eval mode over ``loader``, no gradient.

    Returns:
        The figures of :func:`train_one_epoch` (``loss`` NaN without a criterion) plus
        ``probs`` ``(N,)`` and ``labels`` ``(N,)`` numpy arrays, in the loader's order.
    """
    device = torch.device(device)
    dtype = _amp_dtype(device, amp)
    model.to(device).eval()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    probs, labels = [], []
    n = 0
    for batch in loader:
        x, y = _split_batch(batch)
        x, y = _to_device(x, device), y.to(device, non_blocking=True).float()
        with _autocast(device, dtype):
            logits = model(x)
        if criterion is not None:
            loss_sum += criterion(logits.float(), y).double() * x.shape[0]
        probs.append(torch.sigmoid(logits.float()))
        labels.append(y)
        n += x.shape[0]
    out = _epoch_figures(float(loss_sum) if criterion is not None else math.nan, n, probs, labels, threshold)
    out["probs"] = torch.cat(probs).cpu().numpy() if probs else np.zeros(0, np.float32)
    out["labels"] = torch.cat(labels).cpu().numpy() if labels else np.zeros(0, np.float32)
    return out


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, device: torch.device | str,
            amp: bool | str = "auto") -> np.ndarray:
    """Probabilities (sigmoid of the logits), ``(N,)`` float32, in the loader's order.

    The model is put in eval mode; batches may be ``(x, y)`` or ``x`` alone.
    """
    device = torch.device(device)
    dtype = _amp_dtype(device, amp)
    model.to(device).eval()
    out = []
    for batch in loader:
        x, _ = _split_batch(batch)
        with _autocast(device, dtype):
            logits = model(_to_device(x, device))
        out.append(torch.sigmoid(logits.float()).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


# --------------------------------------------------------------------------- checkpoints
def _plain(obj: Any) -> Any:
    """``obj`` made of types ``torch.load(weights_only=True)`` accepts (dict, list, str,
    int, float, bool, None, tensors); anything else becomes its ``str``."""
    if obj is None or isinstance(obj, (bool, str, torch.Tensor)):
        return obj
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, (int, str)) else k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    return str(obj)


def rng_state(loaders: Iterable[DataLoader | None] = ()) -> dict[str, Any]:
    """Every RNG state as plain data (tensors and lists): torch CPU, CUDA, numpy, python
    ``random``, and each loader's generator (its workers' base seed)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached_gaussian": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss_next": py_state[2]},
        "loaders": [(ld.generator.get_state() if getattr(ld, "generator", None) is not None else None)
                    for ld in loaders],
    }


def set_rng_state(state: dict[str, Any], loaders: Iterable[DataLoader | None] = ()) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    npst = state["numpy"]
    np.random.set_state((npst["kind"], npst["keys"].numpy().astype(np.uint32), npst["pos"],
                         npst["has_gauss"], npst["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    for ld, gs in zip(loaders, state.get("loaders", []), strict=False):
        if ld is not None and gs is not None and getattr(ld, "generator", None) is not None:
            ld.generator.set_state(gs)


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename: a reader (or a
    resume after a kill) never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``: a checkpoint written by :func:`fit`."""
    return torch.load(Path(path), map_location=map_location, weights_only=True)


def _config_diff(old: dict, new: dict, ignore: set[str]) -> list[str]:
    """``"key: old -> new"`` for each key whose value differs (keys in ``ignore`` skipped)."""
    keys = sorted((set(old) | set(new)) - ignore, key=str)
    return [f"{k}: {old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r}"
            for k in keys if old.get(k, "<absent>") != new.get(k, "<absent>")]


def _better(metric: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    if math.isnan(value):
        return False
    if math.isnan(best):
        return True
    return value > best if metric.endswith("auc") else value < best


# --------------------------------------------------------------------------- fit
def fit(model: nn.Module, criterion: nn.Module, optimizer: torch.optim.Optimizer,
        train_loader: DataLoader, val_loader: DataLoader | None, epochs: int,
        device: torch.device | str, scheduler=None, checkpoint_dir: str | Path | None = None,
        resume: bool = False, config: dict | None = None, progress: bool = True,
        on_epoch_end: Callable[[dict], None] | None = None, amp: bool | str = "auto",
        best_metric: str = "val_auc", threshold: float = 0.5,
        resume_ignore: Iterable[str] = ("epochs",)) -> list[dict[str, Any]]:
    """Train for ``epochs`` epochs; the model of the last epoch stays in ``model``.

    Args:
        model: e.g. :func:`pe_utils.learn.models.build_classifier`; moved to ``device``
            (channels_last on CUDA).
        criterion: e.g. :class:`pe_utils.learn.losses.FocalLoss`.
        optimizer: built on the model's parameters (:func:`build_optimizer`).
        train_loader, val_loader: from :func:`pe_utils.data.make_loader`; ``fit`` calls
            :func:`pe_utils.data.set_epoch` on both before each epoch. ``val_loader`` may be
            ``None`` (no validation figures, no ``best.pt``).
        epochs: total number of epochs (also when resuming).
        device: e.g. :func:`pick_device`.
        scheduler: :func:`build_scheduler` (stepped per epoch or per batch as it says).
        checkpoint_dir: where ``last.pt`` (every epoch) and ``best.pt`` go; ``None``: none.
        resume: continue from ``checkpoint_dir/last.pt`` if it exists and was made with the
            same ``config`` (model, optimizer, scheduler, scaler, history and RNG states are
            restored; the model's current weights are overwritten). Without the file, or
            when its config differs (another run in the same folder), start from scratch,
            with a warning naming the differences.
        config: plain settings stored in the checkpoints (how the run was made); compare
            equal after a round trip through the checkpoint (tuples become lists).
        progress: show a tqdm bar (one tick per batch, figures per epoch).
        on_epoch_end: called with each epoch's record after its checkpoint is written.
        amp: ``"auto"`` (bf16/fp16 autocast on CUDA only), ``False``, ``"bf16"``, ``"fp16"``.
        best_metric: ``"val_auc"`` (higher is better; an epoch with NaN AUC loses to any
            number) or ``"val_loss"`` (lower is better) chooses ``best.pt``.
        threshold: decision threshold of the epoch figures.
        resume_ignore: config keys that may differ on resume (by default ``epochs``, so a
            finished run can be extended).

    Returns:
        History: one dict per epoch, with ``epoch`` (1-based), ``lr`` (at the epoch's
        start), ``train_<k>`` and ``val_<k>`` for k in loss, accuracy, precision, recall,
        f1, f1_batch_mean, f1_batch_bound, auc, tn, fp, fn, tp, n; ``train_lr_end``,
        ``train_skipped``, ``train_seconds``, ``val_seconds`` (the only entries that
        differ between two identical runs).

    Raises:
        ValueError: epochs < 0, resume without checkpoint_dir, unknown best_metric.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    if best_metric not in ("val_auc", "val_loss"):
        raise ValueError(f"best_metric must be 'val_auc' or 'val_loss', got {best_metric!r}")
    device = torch.device(device)
    dtype = _amp_dtype(device, amp)
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    if isinstance(criterion, nn.Module):
        criterion.to(device)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    loaders = (train_loader, val_loader)
    config = _plain(config or {})

    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"metric": best_metric, "value": None, "epoch": None}
    start = 0
    ckpt = None
    if resume and (ckpt_dir / LAST).is_file():
        # on CPU: RNG states must stay CPU tensors; load_state_dict moves the rest
        ckpt = load_checkpoint(ckpt_dir / LAST, map_location="cpu")
        diff = _config_diff(ckpt.get("config") or {}, config, set(resume_ignore))
        if diff:
            warnings.warn(f"not resuming from {ckpt_dir / LAST}: made with another config "
                          f"({'; '.join(diff[:8])}); training from scratch", stacklevel=2)
            ckpt = None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt.get("scheduler") is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        history = list(ckpt["history"])
        best = dict(ckpt.get("best") or best)
        start = int(ckpt["epoch"])
        set_rng_state(ckpt["rng"], loaders)
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
            tr = train_one_epoch(model, criterion, optimizer, train_loader, device, scheduler=scheduler,
                                 scaler=scaler, amp=amp, threshold=threshold, bar=bar)
            t1 = time.perf_counter()
            va = evaluate(model, criterion, val_loader, device, amp=amp, threshold=threshold) \
                if val_loader is not None else {}
            t2 = time.perf_counter()
            if scheduler is not None and _interval(scheduler) == "epoch":
                _step_scheduler(scheduler)
            record: dict[str, Any] = {"epoch": epoch + 1, "lr": lr}
            record.update({f"train_{k}": v for k, v in tr.items()})
            record.update({f"val_{k}": v for k, v in va.items() if k not in ("probs", "labels")})
            record["train_seconds"], record["val_seconds"] = t1 - t0, t2 - t1
            record = _plain(record)
            history.append(record)
            if val_loader is not None and _better(best_metric, record[best_metric], best["value"]):
                best = {"metric": best_metric, "value": record[best_metric], "epoch": epoch + 1}
                improved = True
            else:
                improved = False
            if ckpt_dir is not None:
                ckpt = {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "epoch": epoch + 1,
                    "config": config,
                    "history": history,
                    "best": best,
                    "rng": rng_state(loaders),
                }
                save_checkpoint(ckpt_dir / LAST, ckpt)
                if improved:
                    save_checkpoint(ckpt_dir / BEST, ckpt)
            bar.set_postfix({k: f"{record[k]:.4f}" for k in ("train_loss", "val_loss", "val_auc", "val_f1")
                             if k in record})
            if on_epoch_end is not None:
                on_epoch_end(record)
    finally:
        bar.close()
    return history
