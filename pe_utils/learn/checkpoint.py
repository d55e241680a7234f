"""Checkpoints: what a run writes so that it can resume exactly, and when it writes it.

A resumable checkpoint is ``{"model", "optimizer", "scheduler", "epoch", "config",
"history", "rng", "scaler", "best"}`` (STYLE 9); ``epoch`` is the number of finished epochs.
It holds only types ``torch.load(path, weights_only=True)`` accepts
(:func:`to_checkpoint_plain`), so a later notebook loads it without running pickled code.

What ``fit`` leaves in its ``checkpoint_dir`` (:class:`Checkpoints`):

- ``last.pt``: the run's only resumable checkpoint, rewritten when ``checkpoint_every``
  seconds have passed since its last write (or the run's start), and always after the
  final epoch. A killed run loses at most that many seconds of training, plus the epoch
  under way.
- ``best.pt``: the weights of the best validation epoch so far, ``{"model", "epoch",
  "config", "best"}`` (no optimizer, no RNG: not resumable). They are copied to the CPU when
  an epoch improves and written just before the next ``last.pt``: ``best.pt`` is never
  older than the best epoch ``last.pt`` records (it may be newer after a kill between the
  two writes; the resumed run trains that epoch again).

Both go through :func:`pe_utils.io.atomic_open`: a reader, or a resume after a kill, never
sees half a file. Exact resume on CPU relies on the loaders of :mod:`pe_utils.data.datasets`
(order and augmentation depend only on ``(seed, epoch)``) and on the RNG states saved here
(dropout).
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from pe_utils.io import atomic_open

LAST = "last.pt"
BEST = "best.pt"


def to_checkpoint_plain(obj: Any) -> Any:
    """``obj`` made of types ``torch.load(weights_only=True)`` accepts.

    Unlike :func:`pe_utils.io.to_plain` (JSON), NaN stays NaN (a history's AUC of an epoch
    with one class) and numpy arrays become tensors; dict, list, str, int, float, bool, None
    and tensors pass, tuples become lists, numpy scalars Python numbers, anything else its
    ``str``.
    """
    if obj is None or isinstance(obj, (bool, str, torch.Tensor)):
        return obj
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, (int, str)) else k: to_checkpoint_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_checkpoint_plain(v) for v in obj]
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
    """Restore what :func:`rng_state` saved (loaders in the same order)."""
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
    """``torch.save(checkpoint)`` to ``path`` atomically (:func:`pe_utils.io.atomic_open`);
    the folder is created. Returns ``path``."""
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        torch.save(checkpoint, fh)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``: a checkpoint written by ``fit``.

    Raises:
        FileNotFoundError: no such file.
    """
    return torch.load(Path(path), map_location=map_location, weights_only=True)


def config_diff(old: dict, new: dict, ignore: Iterable[str] = ()) -> list[str]:
    """``"key: old -> new"`` for each key whose value differs (keys in ``ignore`` skipped),
    sorted by key; ``<absent>`` stands for a missing key."""
    keys = sorted((set(old) | set(new)) - set(ignore), key=str)
    return [f"{k}: {old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r}"
            for k in keys if old.get(k, "<absent>") != new.get(k, "<absent>")]


def _any_process(due: bool) -> bool:
    """``due`` on this process or, under ``torch.distributed``, on any other."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return due
    # NCCL reduces CUDA tensors only; gloo CPU ones
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    flag = torch.tensor([int(due)], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


class Checkpoints:
    """When ``fit`` writes ``last.pt`` and ``best.pt`` to ``folder`` (module docstring).

    Args:
        folder: the checkpoint folder; ``None``: nothing is ever written.
        every: seconds between two writes of ``last.pt``; ``0``: after every epoch;
            ``None``: after the final epoch only.
        clock: seconds on a monotonic clock (default :func:`time.monotonic`; a test passes a
            fake one).

    Under ``torch.distributed`` (torchrun) every process writes after the same epochs, each
    its own folder: a write is due when it is due on any process (one all-reduce of a flag
    per epoch), so a resumed run restarts every process at the same epoch. Every process
    then gives a folder, or none does.

    Raises:
        ValueError: ``every`` negative.
    """

    def __init__(self, folder: str | Path | None, every: float | None = 300.0,
                 clock: Callable[[], float] | None = None) -> None:
        if every is not None and not every >= 0:
            raise ValueError(f"checkpoint_every must be >= 0 seconds or None, got {every!r}")
        self.folder = Path(folder) if folder is not None else None
        self.every = every
        self.clock = clock if clock is not None else time.monotonic
        self.since = self.clock()
        self.best: dict[str, Any] | None = None  # the best weights not yet on disk

    def keep_best(self, model: torch.nn.Module, best: dict[str, Any], config: dict) -> None:
        """Copy ``model``'s weights to the CPU as the best so far (``best``: metric, value,
        epoch); they reach ``best.pt`` with the next :meth:`write`."""
        if self.folder is None:
            return
        # a copy: the live parameters keep training; on CUDA this is one device-to-host copy
        weights = {k: v.detach().to("cpu", copy=True) if isinstance(v, torch.Tensor) else v
                   for k, v in model.state_dict().items()}
        self.best = {"model": weights, "epoch": int(best["epoch"]), "config": config, "best": dict(best)}

    def due(self, final: bool) -> bool:
        """Is a write due after this epoch? Always after the ``final`` one, else when
        ``every`` seconds have passed since the last write."""
        if self.folder is None:
            return False
        if final or self.every == 0:
            return True
        if self.every is None:
            return False
        return _any_process(self.clock() - self.since >= self.every)

    def write(self, checkpoint: dict[str, Any]) -> None:
        """Write the pending best weights to ``best.pt``, then ``checkpoint`` to ``last.pt``
        (in that order: ``best.pt`` is never older than what ``last.pt`` records), and
        restart the clock."""
        if self.folder is None:
            return
        if self.best is not None:
            save_checkpoint(self.folder / BEST, self.best)
            self.best = None
        save_checkpoint(self.folder / LAST, checkpoint)
        self.since = self.clock()
