"""Datasets and DataLoaders over the preprocessed cache (``images.npy`` memory map).

Reproducibility (the contract :func:`pe_utils.learn.train.fit` relies on to resume exactly):

- shuffling: :class:`EpochSampler` draws the permutation of epoch ``e`` from a fresh
  ``torch.Generator`` seeded with ``seed + e`` (as ``DistributedSampler`` does), so the
  order of any epoch is known without replaying the ones before it;
- augmentation: :class:`CacheDataset` seeds torch's CPU generator with a hash of
  ``(seed, epoch, position)`` around each sample's transform and restores it afterwards, so
  a sample's augmentation depends neither on the order, nor on the worker that loads it,
  nor on anything else drawn from the global generator (dropout keeps its own stream).

On a GPU the per-image CPU transform is the ceiling: the device path
(:class:`pe_utils.data.slices.CacheSlices` + :class:`pe_utils.data.slices.DeviceLoader` +
:mod:`pe_utils.data.augment`) slices ``uint8`` batches here and augments them on the device,
keyed by the same ``(seed, epoch, position)``. This CPU path stays, unchanged.

Call :func:`set_epoch` (``fit`` does) before iterating a loader for epoch ``e``. Worker
processes are persistent (started at the first epoch, reused by the next ones): the sampler
runs in the main process, and a :class:`CacheDataset` keeps its epoch in shared memory, so
the value ``set_epoch`` writes reaches the workers' copies of the dataset.

Typical use with a cache and a Case1 split::

    cache = load_cache(cache_dir)
    split = case1_split(cache.index, "1/3", seed=0)          # "train"/"val"/"test" per row
    labels = cache.index["pe_present_on_image"].to_numpy()
    train_ds = CacheDataset(cache.images, labels, np.flatnonzero(split == "train"),
                            transform=train_transform(), image_size=64, seed=0)
    train_loader = make_loader(train_ds, batch_size=32, shuffle=True, seed=0, device=device)
"""
from __future__ import annotations

import mmap
import random
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as nnf
from torch.utils.data import DataLoader, Dataset, Sampler

from .crop import apply_crop, check_crop

_MASK64 = (1 << 64) - 1


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one sample's augmentation, well mixed from ``(seed, epoch, index)``.

    SplitMix64 finaliser applied to each field in turn: cheap (no numpy object per sample)
    and neighbouring indices or epochs give unrelated streams.
    """
    h = 0x9E3779B97F4A7C15
    for v in (seed, epoch, index):
        h = (h ^ (int(v) & _MASK64)) & _MASK64
        h = (h + 0x9E3779B97F4A7C15) & _MASK64
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
        h = h ^ (h >> 31)
    return h & ((1 << 63) - 1)


class CacheDataset(Dataset):
    """Images of the cache, as float tensors in [0, 1], with their binary labels.

    Args:
        images: the cache's ``uint8`` array (usually the memory map ``Cache.images``),
            ``(N, H, W)`` for gray or ``(N, 3, H, W)`` for the RGB-window cache.
        labels: ``(N,)`` 0/1 labels aligned with ``images`` (row i labels image i), e.g.
            ``cache.index["pe_present_on_image"].to_numpy()``.
        indices: which rows of the cache this dataset holds (e.g. ``np.flatnonzero(split ==
            "train")``); ``None`` for all rows. Repeats are allowed (oversampling).
        transform: applied to each ``(C, h, w)`` float tensor after resizing (e.g.
            :func:`pe_utils.data.transforms.train_transform`); ``None`` for none.
        image_size: side ``h = w`` to resize to (antialiased area interpolation when
            shrinking, bilinear when enlarging); ``None`` keeps the cache's size.
        seed: base seed of the per-sample augmentation.
        crop: ``(top, left, height, width)`` fractions of the slice cut out before the resize
            (:mod:`pe_utils.data.crop`, as :class:`pe_utils.data.slices.DeviceLoader`);
            ``None`` (default): the whole slice.

    Items: ``(x, y)``: ``x`` float32 ``(C, h, w)`` with C = 1 or 3, ``y`` float32 scalar.

    Raises:
        ValueError: bad shapes, labels not aligned with images, indices out of range,
            labels other than 0/1.
    """

    def __init__(self, images: np.ndarray, labels: Sequence[float] | np.ndarray,
                 indices: Sequence[int] | np.ndarray | None, transform: Callable | None = None,
                 image_size: int | None = None, seed: int = 0, crop=None) -> None:
        if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[1] not in (1, 3)):
            raise ValueError(f"images must be (N, H, W) or (N, C, H, W) with C in (1, 3), "
                             f"got {images.shape}")
        labels = np.asarray(labels)
        if labels.shape != (len(images),):
            raise ValueError(f"labels must be aligned with images: shape ({len(images)},), "
                             f"got {labels.shape}")
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("labels must be 0 or 1")
        indices = np.arange(len(images)) if indices is None else np.asarray(indices, dtype=np.int64)
        if indices.ndim != 1:
            raise ValueError(f"indices must be 1-D, got shape {indices.shape}")
        if len(indices) and (indices.min() < 0 or indices.max() >= len(images)):
            raise ValueError(f"indices out of range [0, {len(images)})")
        if image_size is not None and int(image_size) < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        self.images = images
        self.indices = indices
        self.labels = labels[indices].astype(np.float32)  # (n,) labels of this dataset, in order
        self.transform = transform
        self.image_size = None if image_size is None else int(image_size)
        self.seed = int(seed)
        # shared memory: persistent loader workers (forked or spawned) read what set_epoch
        # writes here; a plain pickle or deepcopy makes an independent copy
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self.crop = check_crop(crop)

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self) -> dict:
        # a worker started by spawn/forkserver gets the memory map's file name, not a copy
        # of the whole cache (pickling a np.memmap copies its data)
        state = self.__dict__.copy()
        img = self.images
        if (isinstance(img, np.memmap) and isinstance(img.base, mmap.mmap) and img.filename
                and img.flags.c_contiguous):
            state["images"] = ("memmap", img.filename, img.offset, img.shape, img.dtype.str)
        return state

    def __setstate__(self, state: dict) -> None:
        img = state["images"]
        if isinstance(img, tuple) and img[0] == "memmap":
            _, filename, offset, shape, dtype = img
            state["images"] = np.memmap(filename, dtype=np.dtype(dtype), mode="r", offset=offset, shape=shape)
        self.__dict__.update(state)

    @property
    def epoch(self) -> int:
        """The epoch whose augmentation stream (and keys) items are drawn from."""
        return int(self._epoch)

    @epoch.setter
    def epoch(self, epoch: int) -> None:
        self._epoch.fill_(int(epoch))

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch`` (see the module docstring); loader
        workers already started see it too."""
        self.epoch = epoch

    def load(self, i: int) -> torch.Tensor:
        """Image ``i`` of this dataset, resized but not transformed: float32 ``(C, h, w)``."""
        a = np.asarray(self.images[self.indices[i]])
        x = torch.from_numpy(a.astype(np.float32) / 255.0)
        if x.ndim == 2:
            x = x.unsqueeze(0)  # (1, H, W)
        x = apply_crop(x, self.crop)
        if self.image_size is not None and x.shape[-2:] != (self.image_size, self.image_size):
            size = (self.image_size, self.image_size)
            if self.image_size <= min(x.shape[-2:]):
                # area = average of the source pixels each output pixel covers (antialiased)
                x = nnf.interpolate(x.unsqueeze(0), size=size, mode="area").squeeze(0)
            else:
                x = nnf.interpolate(x.unsqueeze(0), size=size, mode="bilinear",
                                    align_corners=False).squeeze(0)
        return x

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.load(i)
        if self.transform is not None:
            gen = torch.default_generator
            state = gen.get_state()
            # CPU generator only (not torch.manual_seed): never touches CUDA in a worker
            # keyed by the position, not the cache row: oversampled copies of an image
            # (repeated indices, Case2) get different augmentations
            gen.manual_seed(sample_seed(self.seed, self.epoch, i))
            try:
                x = self.transform(x)
            finally:
                gen.set_state(state)
        return x, torch.tensor(self.labels[i])


class EpochSampler(Sampler[int]):
    """Indices ``0..n-1``, shuffled per epoch by a generator seeded with ``seed + epoch``.

    Args:
        n: dataset length.
        shuffle: ``False`` gives ``0..n-1`` in order, every epoch.
        seed: base seed of the permutations.
    """

    def __init__(self, n: int, shuffle: bool = True, seed: int = 0) -> None:
        self.n = int(n)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed numpy and ``random`` in a worker from torch's worker seed.

    Torch seeds each worker from the loader's generator; numpy and ``random`` would
    otherwise inherit the parent's state (the same in every worker). Our own augmentation
    does not need this (it is seeded per sample), a user's numpy-based transform does. Workers
    are persistent, so they are seeded once per loader, not once per epoch.
    """
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int = 0,
                num_workers: int = 0, device: str | torch.device = "cpu",
                drop_last: bool = False) -> DataLoader:
    """A DataLoader whose order and augmentation depend only on ``(seed, epoch)``.

    Args:
        dataset: usually a :class:`CacheDataset`.
        batch_size: images per batch.
        shuffle: shuffle per epoch (:class:`EpochSampler`); ``False`` for evaluation.
        seed: seed of the shuffling and of the loader's generator.
        num_workers: worker processes (0: load in the main process), started at the first
            iteration and kept for the next epochs (``persistent_workers``). Results do
            not depend on it.
        device: where the batches go; pinned memory when it is CUDA.
        drop_last: drop the last incomplete batch.

    Returns:
        A DataLoader with ``loader.sampler`` an :class:`EpochSampler`; call
        :func:`set_epoch` on it before each epoch.

    Raises:
        ValueError: ``batch_size < 1`` or ``num_workers < 0``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    generator = torch.Generator().manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochSampler(len(dataset), shuffle=shuffle, seed=seed),
        num_workers=num_workers,
        pin_memory=torch.device(device).type == "cuda",
        drop_last=drop_last,
        worker_init_fn=seed_worker if num_workers > 0 else None,
        generator=generator,
        # a dataset that fetches whole batches (CacheSlices.__getitems__) collates them itself
        collate_fn=getattr(dataset, "collate_batch", None),
        # workers live as long as the loader: no process start per epoch; set_epoch reaches
        # them through the dataset's shared epoch (CacheDataset) and the main-process sampler
        persistent_workers=num_workers > 0,
        prefetch_factor=4 if num_workers > 0 else None,
    )


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Tell a loader's sampler and dataset which epoch comes next (if they care).

    Any iterable of batches is accepted (a list of tensors in a test, a custom loader): what
    has no sampler or dataset is left alone.
    """
    for obj in (getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None),
                getattr(loader, "dataset", None)):
        if obj is not None and hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)
