"""Case1's experiment set-up, shared by every notebook that annotates a partly labelled dataset.

Case1 (supervised, notebook 01) and Case3's fine-tuning (a pretrained encoder on the same
splits) run the same experiment around a different model: the settings of a sampling rate,
the three datasets and loaders over the cache, the loss, optimizer and schedule, and the
model kept at the end. Each is one function here, so the two notebooks cannot drift apart.
The figures and the ``metrics.json`` record of such a run are in :mod:`.case1_results`.
Nothing here trains or plots: the notebook calls :func:`pe_utils.fit` itself.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

# through the wings' re-exports: a module moving inside a wing does not break this one
from ..data import (AffineAugment, CacheDataset, CacheSlices, DeviceLoader, case1_split, context_rows,
                    eval_transform, load_cache, make_loader, parse_rate)
from ..learn import FocalLoss, build_optimizer, build_scheduler
from ..profiles import SAMPLING_RATES, SMALL_RATES, resolve
from .resume import cache_fingerprint

SPLITS = ("train", "val", "test")


def rate_name(sampling_rate: str | Fraction) -> tuple[str, str]:
    """``(rate_key, test_name)`` of a sampling rate: ``"1/3"`` -> ``("1/3", "Test33")``.

    Args:
        sampling_rate: ``"p/q"``, a Fraction or a thesis test name (``"Test33"``).

    Returns:
        The rate as a reduced ``"p/q"`` and its name in Table 6.1; a rate the thesis did not
        use is named ``"Rate<p>of<q>"``.

    Raises:
        ValueError: not a rate in (0, 1] (:func:`pe_utils.parse_rate`).
    """
    rate = parse_rate(sampling_rate)
    rate_key = f"{rate.numerator}/{rate.denominator}"
    return rate_key, SAMPLING_RATES.get(rate_key, f"Rate{rate.numerator}of{rate.denominator}")


def case1_config(profile: str, sampling_rate: str | Fraction, **given: Any) -> tuple[dict, str, str]:
    """The run's settings: the profile's ``case1`` section, the given values, the epochs rule.

    The smallest training sets (rates in :data:`pe_utils.profiles.SMALL_RATES`) train for
    ``epochs_small`` epochs, as in the thesis (4.1.2), unless ``epochs`` is given. A profile
    may instead name the epochs of each rate (``epochs_by_rate``, e.g. the demo's, which gives
    every rate about the same number of training steps); a rate it does not list follows the rule above.

    Args:
        profile: ``"smoke"``, ``"demo"`` or ``"thesis"``.
        sampling_rate: as :func:`rate_name` takes it.
        **given: notebook parameters (``seed``, ``arch``, ``epochs``, ...); ``None`` means
            "the profile's value". ``context`` (k >= 0, :mod:`pe_utils.data.context`): the
            network reads each slice with its k neighbours on each side as channels (2.5D);
            0, the default, is the thesis's single slice. No profile sets it yet (its
            default comes from code: a profile may add ``case1.context`` later, read the same
            way); ``cfg`` holds ``"context"`` only when it is not 0, so a single-slice run's
            settings (its checkpoints' config, its record) stay as they were: read it with
            ``cfg.get("context", 0)``.

    Returns:
        ``(cfg, rate_key, test_name)``: a new settings dict, ``"1/3"``, ``"Test33"``.

    Raises:
        ValueError: unknown profile, a bad rate, or a context not a whole number >= 0.
    """
    rate_key, test_name = rate_name(sampling_rate)
    context = given.pop("context", None)
    cfg = resolve("case1", profile, **given)
    context = _context_k(cfg.get("context", 0) if context is None else context)
    cfg.pop("context", None)
    if context:
        cfg["context"] = context
    if given.get("epochs") is None and rate_key in (cfg.get("epochs_by_rate") or {}):
        cfg["epochs"] = int(cfg["epochs_by_rate"][rate_key])
    elif given.get("epochs") is None and rate_key in SMALL_RATES:
        cfg["epochs"] = cfg["epochs_small"]
    return cfg, rate_key, test_name


def _context_k(value: Any) -> int:
    """A context setting as an int >= 0, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"context must be a whole number >= 0 (neighbours on each side), got {value!r}")
    return int(value)


@dataclass
class Case1Data:
    """The cache split at one rate, as datasets and loaders (see :func:`case1_data`)."""

    rate_key: str                       # the sampling rate, "1/3"
    test_name: str                      # its name in Table 6.1, "Test33"
    index: pd.DataFrame                 # the cache's index.csv, row i = image i
    labels: np.ndarray                  # (N,) float32 pe_present_on_image
    split: np.ndarray                   # (N,) "train" | "val" | "test"
    ids: dict[str, np.ndarray]          # split name -> image numbers, int64
    datasets: dict[str, CacheDataset]   # train, val, test without augmentation (for galleries)
    loaders: dict[str, DeviceLoader]    # train shuffled per epoch (augmented on the device); val, test in order
    n_dataset: int                      # images in the whole dataset
    n_training_stage: int               # train + val: annotated by hand up front
    in_channels: int                    # what the network reads: (2 * context + 1) * C, C = 1 gray | 3 RGB
    cache_dir: Path                     # the cache's folder (named when a resume is refused)
    fingerprint: dict[str, str | None]  # what identifies the cache's content (.resume)
    context: int = 0                    # neighbours on each side (pe_utils.data.context); 0: one slice
    context_table: np.ndarray | None = None  # (N, 2 * context + 1) cache rows, None when context is 0

    @property
    def pct_training_stage(self) -> float:
        """% of the dataset in the training stage (Table 6.2's first row)."""
        return 100 * self.n_training_stage / self.n_dataset

    def sizes(self) -> pd.DataFrame:
        """Images and positives per split: a 2 x 3 table."""
        return pd.DataFrame({name: {"images": len(i), "positives": int(self.labels[i].sum())}
                             for name, i in self.ids.items()})

    def images(self, name: str, items: Sequence[int] | np.ndarray | None = None) -> list[np.ndarray]:
        """Items of split ``name`` as the network sees them (first channel), for galleries.

        With a context (2.5D), the slice itself, never a neighbour: ``datasets`` hold the
        single slices (the middle channels of the network's input).

        Args:
            name: ``"train"``, ``"val"`` or ``"test"``.
            items: positions in that split (e.g. the uncertain test slices); None: all.

        Returns:
            One ``(image_size, image_size)`` float array per item (augmented for ``"train"``).
        """
        dataset = self.datasets[name]
        items = range(len(dataset)) if items is None else items
        return [dataset[int(i)][0][0].numpy() for i in items]


def case1_data(cache: Any, rate: str | Fraction, cfg: dict,
               device: torch.device | str = "cpu") -> Case1Data:
    """Split the cache at ``rate`` (:func:`pe_utils.case1_split`) and build datasets and loaders.

    Args:
        cache: a :func:`pe_utils.load_cache` result, or its folder (str or Path).
        rate: the sampling rate (``"1/3"``, a Fraction or ``"Test33"``).
        cfg: from :func:`case1_config`; uses ``seed``, ``image_size``, ``batch_size``,
            ``augment``, ``num_workers``, ``crop`` (absent or None: the whole slice), the
            same box for the training, validation and test batches and the galleries, and
            ``context`` (absent: 0): with k > 0 every split's loader gives each slice with its
            k neighbours of the same series on each side as channels
            (:func:`pe_utils.data.context.context_rows`, built once from the cache's index) and
            ``in_channels`` is ``(2k + 1) * C``; ``datasets`` (galleries) keep the single slice.
        device: where batches go (pinned memory on CUDA).

    Returns:
        A :class:`Case1Data` (with the cache's fingerprint, :func:`pe_utils.cache_fingerprint`).
        Loader order and augmentation depend only on ``cfg["seed"]`` and the epoch, never on
        torch's global random state.

    Raises:
        ValueError: a bad rate, a bad context, or a cache whose index lacks the Case1 columns
            (or, with a context, has two rows at one slice of a series).
    """
    if isinstance(cache, (str, Path)):
        cache = load_cache(cache)
    index = cache.index
    k = _context_k(cfg.get("context", 0))
    table = context_rows(index, k) if k else None   # one table for every split
    labels = index.pe_present_on_image.to_numpy().astype(np.float32)
    split = case1_split(index, rate, seed=cfg["seed"])
    ids = {name: np.flatnonzero(split == name) for name in SPLITS}
    crop = cfg.get("crop")  # pe_utils.data.crop: one box for every image of every split
    # galleries and single images: the split as the network sees it, without augmentation
    datasets = {name: CacheDataset(cache.images, labels, ids[name], transform=eval_transform(),
                                   image_size=cfg["image_size"], seed=cfg["seed"], crop=crop)
                for name in SPLITS}
    # training batches: the loader only slices uint8 rows; resizing and the thesis's augmentation
    # (AffineAugment, drawn per sample from (seed, epoch, index)) run batched on the device
    loaders = {name: DeviceLoader(
                   make_loader(CacheSlices(cache.images, labels, ids[name], seed=cfg["seed"], context=table),
                               batch_size=cfg["batch_size"], shuffle=(name == "train"), seed=cfg["seed"],
                               num_workers=cfg["num_workers"], device=device),
                   device, augment=AffineAugment() if (name == "train" and cfg["augment"]) else None,
                   image_size=cfg["image_size"], crop=crop)
               for name in SPLITS}
    rate_key, test_name = rate_name(rate)
    return Case1Data(
        rate_key=rate_key, test_name=test_name, index=index, labels=labels, split=split, ids=ids, datasets=datasets, loaders=loaders,
        n_dataset=len(index), n_training_stage=len(ids["train"]) + len(ids["val"]),
        in_channels=(2 * k + 1) * (1 if cache.images.ndim == 3 else int(cache.images.shape[1])),
        cache_dir=Path(cache.dir), fingerprint=cache_fingerprint(cache), context=k, context_table=table,
    )


def case1_training(model: torch.nn.Module, cfg: dict, steps_per_epoch: int):
    """The loss, optimizer and learning-rate schedule of Case1 (4.1.2-4.1.3), from ``cfg``.

    Binary focal loss (``gamma``), ``optimizer`` (SGD with ``momentum`` in the thesis) at
    ``lr`` over the model's trainable parameters (freeze first), step decay by ``lr_gamma``
    every ``lr_step`` epochs or iterations (``schedule``).

    Args:
        model: the classifier, already on its device.
        cfg: from :func:`case1_config`.
        steps_per_epoch: batches per training epoch (``len(loaders["train"])``).

    Returns:
        ``(criterion, optimizer, scheduler)`` for :func:`pe_utils.fit`.

    Raises:
        ValueError: bad settings (see :func:`pe_utils.build_optimizer`, :func:`pe_utils.build_scheduler`).
    """
    criterion = FocalLoss(gamma=cfg["gamma"])
    optimizer = build_optimizer(model, cfg["optimizer"], lr=cfg["lr"], momentum=cfg["momentum"])
    scheduler = build_scheduler(optimizer, step=cfg["lr_step"], gamma=cfg["lr_gamma"],
                                schedule=cfg["schedule"], steps_per_epoch=steps_per_epoch)
    return criterion, optimizer, scheduler


def keep_final_model(model: torch.nn.Module, output_dir: str | Path, keep_checkpoints: bool = False,
                     checkpoint_dir: str | Path | None = None) -> Path:
    """Save the evaluated model as ``output_dir/model.pt``; drop the resume checkpoints unless kept.

    Args:
        model: the model after its last epoch (the one the run evaluated).
        output_dir: the run's folder.
        keep_checkpoints: keep ``fit``'s checkpoints (``last.pt`` to resume or extend the run,
            ``best.pt`` the best validation epoch's weights).
        checkpoint_dir: where ``fit`` wrote them (default ``output_dir/checkpoints``).

    Returns:
        The path of ``model.pt`` (a state dict: load it with :func:`pe_utils.load_weights`).
    """
    path = Path(output_dir) / "model.pt"
    torch.save(model.state_dict(), path)
    if not keep_checkpoints:
        shutil.rmtree(Path(checkpoint_dir) if checkpoint_dir is not None else Path(output_dir) / "checkpoints",
                      ignore_errors=True)
    return path
