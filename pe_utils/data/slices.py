"""Batches of raw ``uint8`` cache slices with their keys, for augmentation on the device.

The device path in two halves. :class:`CacheSlices` only slices whole batches of ``uint8``
rows out of the memory-mapped cache (one fancy-indexing read per batch, no per-image Python, no float
conversion, no resize), so a CPU core feeds many times what a GPU trains on.
:class:`DeviceLoader` does the rest on the device, per batch: float conversion, resize and
the augmentation of :mod:`pe_utils.data.augment`.

Each item carries its key ``[seed, epoch, position]``: the device augmentation draws the
sample's parameters from it (:mod:`pe_utils.data.keys`), as :class:`CacheDataset` seeds
its CPU transform from the same triple.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as nnf

from .crop import apply_crop, check_crop
from .datasets import CacheDataset, set_epoch

__all__ = ["CacheSlices", "DeviceLoader"]


class CacheSlices(CacheDataset):
    """The rows of the cache as ``uint8`` tensors, with labels and augmentation keys.

    Args:
        images, labels, indices, seed: as :class:`pe_utils.data.datasets.CacheDataset`
            (no ``transform``, no ``image_size``: the device does both).
        context: ``None`` (default): one slice per item (the thesis). Else the 2.5D table
            ``(N, 2k + 1)`` of :func:`pe_utils.data.context.context_rows` over the whole cache
            (row i = image i): each item's image is the stack of those rows' images as channels,
            neighbour-major, the slice itself in the middle
            (:func:`pe_utils.data.context.center_channel` takes it back out). Labels and keys
            stay the slice's own.

    Items: ``(x, y, key)``: ``x`` uint8 ``(C', H, W)`` with ``C' = (2k + 1) * C`` (C = 1 for
    a gray cache, k = 0 without ``context``), ``y`` float32 scalar, ``key`` int64 ``(3,)`` =
    ``[seed, epoch, position]``. A DataLoader from
    :func:`pe_utils.data.datasets.make_loader` fetches a whole batch at once
    (:meth:`__getitems__`): ``(x (B, C', H, W) uint8, y (B,), keys (B, 3))``.

    Raises:
        ValueError: as :class:`CacheDataset`; a ``context`` table not ``(N, odd)`` integers in
            ``[0, N)`` with row i in its middle column.
    """

    #: make_loader passes this as ``collate_fn``: __getitems__ returns the batch collated
    collate_batch = staticmethod(lambda batch: batch)

    def __init__(self, images: np.ndarray, labels: Sequence[float] | np.ndarray,
                 indices: Sequence[int] | np.ndarray | None, seed: int = 0,
                 context: np.ndarray | None = None) -> None:
        super().__init__(images, labels, indices, transform=None, image_size=None, seed=seed)
        self.context = None if context is None else _check_context(np.asarray(context), len(images))

    @property
    def k(self) -> int:
        """Neighbours on each side (0: the single slice)."""
        return 0 if self.context is None else self.context.shape[1] // 2

    @property
    def slice_channels(self) -> int:
        """Channels of one cache slice: ``C`` (1 gray, 3 RGB windows)."""
        return 1 if self.images.ndim == 3 else int(self.images.shape[1])

    @property
    def channels(self) -> int:
        """Channels of an item: ``(2k + 1) * C``."""
        return (2 * self.k + 1) * self.slice_channels

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y, keys = self.__getitems__([i])
        return x[0], y[0], keys[0]

    def __getitems__(self, positions: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One batch: ``(x (B, C, H, W) uint8, y (B,) float32, keys (B, 3) int64)``."""
        pos = np.asarray(positions, dtype=np.int64)
        rows = self.indices[pos]
        if self.context is None:
            # sorted rows read the memory map front to back; the order is put back afterwards
            order = np.argsort(rows, kind="stable")
            a = np.empty((len(rows),) + self.images.shape[1:], dtype=np.uint8)
            a[order] = self.images[rows[order]]
        else:
            # each distinct row read once, front to back (neighbours are shared within a batch)
            table = self.context[rows]                                    # (B, 2k + 1)
            unique, inverse = np.unique(table.ravel(), return_inverse=True)
            a = np.asarray(self.images[unique])[inverse]                  # (B * (2k + 1), [C,] H, W)
            a = a.reshape((len(rows), -1) + self.images.shape[-2:])       # (B, (2k + 1) * C, H, W)
        x = torch.from_numpy(np.ascontiguousarray(a))
        if x.ndim == 3:
            x = x.unsqueeze(1)  # (B, 1, H, W)
        keys = torch.empty((len(pos), 3), dtype=torch.int64)
        keys[:, 0], keys[:, 1] = self.seed, self.epoch
        keys[:, 2] = torch.from_numpy(pos)
        return x, torch.from_numpy(self.labels[pos]), keys


def _check_context(table: np.ndarray, n: int) -> np.ndarray:
    """``table`` as int64 if it is a context table over ``n`` cache rows, else ValueError."""
    if table.ndim != 2 or table.shape[0] != n or table.shape[1] % 2 == 0:
        raise ValueError(f"context must be ({n}, 2k + 1) (one row per cache image), got shape {table.shape}")
    if not np.issubdtype(table.dtype, np.integer):
        raise ValueError(f"context must hold row numbers (integers), got {table.dtype}")
    table = table.astype(np.int64, copy=False)
    if n and (table.min() < 0 or table.max() >= n):
        raise ValueError(f"context rows out of range [0, {n})")
    if not np.array_equal(table[:, table.shape[1] // 2], np.arange(n)):
        raise ValueError("context's middle column must be each row itself (context_rows builds it so)")
    return table


class DeviceLoader:
    """A DataLoader of ``uint8`` slices, turned into float batches on ``device``.

    Args:
        loader: yields ``(x uint8 (B, C, H, W), y (B,), keys (B, 3))``, e.g.
            ``make_loader(CacheSlices(...), ...)`` (pinned memory when ``device`` is CUDA);
            ``(x, y)`` batches pass too when nothing is augmented.
        device: where the batches go.
        augment: e.g. :class:`pe_utils.data.augment.AffineAugment`; ``None``: no augmentation (evaluation).
        pairs: e.g. :class:`pe_utils.data.augment.SimCLRViews`: yield ``(view1, view2)`` and NO labels
            (pretraining must not see them, THESIS 4.2).
        image_size: side to resize to on the device, before augmenting (area when
            shrinking, bilinear when enlarging, as :class:`pe_utils.data.CacheDataset`);
            ``None`` keeps the cache's size.
        crop: ``(top, left, height, width)`` fractions of the slice cut out before the resize
            (:mod:`pe_utils.data.crop`); ``None`` (default): the whole slice.

    Iterating yields ``(x (B, C, h, w) float32 in [0, 1], y (B,) float32)`` on ``device``
    (channels_last on CUDA), or ``(view1, view2)`` with ``pairs``. ``len``, ``set_epoch``
    (the keys carry the epoch), ``dataset``, ``sampler``, ``batch_sampler`` and ``generator``
    are the wrapped loader's, so :func:`pe_utils.learn.fit` uses it as a DataLoader.

    Raises:
        ValueError: both ``augment`` and ``pairs``; at iteration, a batch without keys while
            augmenting.
    """

    def __init__(self, loader, device: torch.device | str, augment=None, pairs=None,
                 image_size: int | None = None, crop=None) -> None:
        if augment is not None and pairs is not None:
            raise ValueError("give augment (supervised batches) or pairs (two views), not both")
        if image_size is not None and int(image_size) < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        self.loader, self.device = loader, torch.device(device)
        self.augment, self.pairs = augment, pairs
        self.image_size = None if image_size is None else int(image_size)
        self.crop = check_crop(crop)

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        set_epoch(self.loader, epoch)

    def __getattr__(self, name: str):
        # dataset, sampler, batch_sampler, generator, batch_size...: the wrapped loader's
        if name in ("loader", "__setstate__", "__getstate__"):
            raise AttributeError(name)
        return getattr(self.loader, name)

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        x = apply_crop(x, self.crop)  # a view of the uint8 rows: the same box for every image
        x = x.to(self.device, non_blocking=True)
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        if x.ndim == 3:
            x = x.unsqueeze(1)
        s = self.image_size
        if s is not None and tuple(x.shape[-2:]) != (s, s):
            mode = "area" if s <= min(x.shape[-2:]) else "bilinear"
            x = nnf.interpolate(x, size=(s, s), mode=mode, **({} if mode == "area" else {"align_corners": False}))
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def __iter__(self):
        for batch in self.loader:
            x, y = batch[0], batch[1]
            keys = batch[2] if len(batch) > 2 else None
            if keys is None and (self.augment is not None or self.pairs is not None):
                raise ValueError("augmenting needs (x, y, keys) batches, e.g. from CacheSlices")
            x = self._images(x)
            if self.pairs is not None:
                yield self.pairs(x, keys)
                continue
            if self.augment is not None:
                x = self.augment(x, keys)
            yield x, y.to(self.device, non_blocking=True).float()
