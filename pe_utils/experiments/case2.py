"""Case2 (THESIS 5.1, 6.3): a general classifier trained on a shrinking share of Dataset2.

The settings (:func:`case2_config`: the profile's ``case2`` section, one of Table 6.3's named
experiments, the notebook's toggles; :func:`case2_setup` adds the run's folder, device and
seeds, the first step that notebooks 04 and 05 share), the caches (:func:`case2_caches`), the split and loaders
(:func:`case2_data`: patient split 80/20, the training fraction of Table 6.4, then the
re-sampling), the loss, optimizer and schedule (:func:`case2_training`, through Case1's
:func:`pe_utils.case1_training`), the schedule lesson of Appendix A (:func:`schedule_comparison`).
Evaluation and the record are in :mod:`.case2_results`; Case4 (5.2) runs the same functions
around a pretrained encoder (:func:`pe_utils.case4_model`).

Seeds pair the runs: one seed fixes the patient split, the fraction subset, the re-sampling and
the loaders' order and augmentation, whether the model is Case2's or Case4's, so the paired
difference of notebook 07 compares the two methods on the same data.

The module is longer than 300 lines because it holds one idea whole: a Case2 run's training
side, from its settings and data to its loss, schedule and validation cadence.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..data import (AffineAugment, CacheSlices, DeviceLoader, TRAIN_FRACTIONS, dataset_cache, load_cache,
                    make_loader, patient_split, prepare_dataset2, resample, train_fraction_subset)
from ..data.dataset2 import DATASETS, subset_1609_rows
from ..learn import FocalLoss, build_scheduler, class_weights, pick_device, seed_everything
from ..paths import default_output_dir
from ..profiles import load_experiments, resolve
from .case1 import case1_training
from .resume import RESUME_IGNORE, cache_fingerprint, check_resume

#: Table 6.3's toggles, as parameters of notebook 04 (and 05)
TOGGLES = ("dataset", "lr", "batch_size", "optimizer", "augment", "dropout", "sampling", "class_weights",
           "bias")
#: the thesis's path through the toggles, read from ``pe_utils/settings/table_6_3.toml`` where each
#: experiment cites its row: Table 6.3's 1-11 (1 Dataset1; 2-10 the 16.09 % subset: 3 dropout,
#: 4 no augmentation, 5 lr 0.1, 6 batch 64, 7 class weights and bias, 8 Adam, 9 re-sampling,
#: 10 batch 256; 11 Dataset2, the kept setting) and Table C.1's 12-13 (11 at lr 0.001 and 0.1).
#: ``dropout`` and ``bias`` are on/off: on means the profile's dropout rate and Eq. 5.2's pi = 0.01
EXPERIMENTS: dict[int, dict[str, Any]] = load_experiments()
#: Eq. 5.2's prior
BIAS_PI = 0.01


def fraction_of(train_fraction: float) -> float:
    """A Table 6.4 percentage (100, 66.66, 5, ...) as the share of the training set (1.0, 0.6666, 0.05).

    Raises:
        ValueError: outside (0, 100].
    """
    value = float(train_fraction)
    if not 0 < value <= 100:
        raise ValueError(f"train_fraction is a percentage in (0, 100] (Table 6.4: 100 ... 5), got {train_fraction}")
    return round(value / 100, 6)


def case2_config(profile: str, experiment: int | None = None, train_fraction: float | None = None,
                 **given: Any) -> dict[str, Any]:
    """The run's settings: the profile's ``case2`` section, then ``experiment``'s toggles, then ``given``.

    Args:
        profile: ``"smoke"``, ``"demo"`` or ``"thesis"``.
        experiment: 1-13 (Table 6.3, Table C.1) or None (the profile's setting, exp. 11's choices).
        train_fraction: the run's % of the training set; a profile's ``epochs_by_fraction``
            (the demo's: a small set gets more epochs, so that it trains for about as many
            steps as the whole set) sets the epochs of the fractions it lists, unless
            ``epochs`` is given. The thesis trains every fraction 50 epochs (5.1.2): no list.
        **given: notebook parameters; ``None`` means "the profile's (or the experiment's) value".
            ``dropout`` is a rate, ``bias`` a bool (or give ``bias_prior``, the pi of Eq. 5.2).

    Returns:
        A new dict with every setting, ``experiment`` and ``bias_prior`` (pi or None).

    Raises:
        ValueError: unknown profile or experiment, a toggle that contradicts the experiment,
            or a bad value of sampling, schedule, dataset or optimizer.
    """
    cfg = resolve("case2", profile)
    given = {k: v for k, v in given.items() if v is not None}
    if "bias" in given:
        given["bias_prior"] = (cfg["bias_prior"] or BIAS_PI) if given.pop("bias") else None
    if experiment is not None:
        if int(experiment) not in EXPERIMENTS:
            raise ValueError(f"experiment must be one of {sorted(EXPERIMENTS)} (Table 6.3, C.1), got {experiment}")
        experiment = int(experiment)
        toggles = dict(EXPERIMENTS[experiment])
        toggles["dropout"] = cfg["dropout"] if toggles["dropout"] else 0.0
        toggles["bias_prior"] = (cfg["bias_prior"] or BIAS_PI) if toggles.pop("bias") else None
        clash = {k: (v, toggles[k]) for k, v in given.items() if k in toggles and v != toggles[k]}
        if clash:
            raise ValueError(f"experiment {experiment} sets {', '.join(f'{k}={t!r}' for k, (_, t) in clash.items())}; "
                             f"the run also got {', '.join(f'{k}={v!r}' for k, (v, _) in clash.items())}: give one")
        cfg.update(toggles)
    cfg.update(given)
    cfg["experiment"] = experiment
    by_fraction = {float(k): int(v) for k, v in (cfg.get("epochs_by_fraction") or {}).items()}
    if "epochs" not in given and train_fraction is not None and float(train_fraction) in by_fraction:
        cfg["epochs"] = by_fraction[float(train_fraction)]
    for key, allowed in (("sampling", ("resample", "none")), ("schedule", ("epoch", "iteration")),
                         ("dataset", DATASETS), ("optimizer", ("sgd", "adam"))):
        if cfg[key] not in allowed:
            raise ValueError(f"{key} must be one of {allowed}, got {cfg[key]!r}")
    return cfg


#: the settings that tell Case2/Case4 runs apart, printed when a run starts
SETUP_SHOWN = ("experiment", "dataset", "arch", "lr", "batch_size", "optimizer", "sampling", "schedule")


def case2_setup(notebook: str, profile: str, experiment: int | None = None, train_fraction: float = 100,
                output_dir: str | Path | None = None, **given: Any) -> tuple[dict[str, Any], Path, torch.device]:
    """A Case2 or Case4 run's start, the same in notebooks 04 and 05: its settings
    (:func:`case2_config`), its folder (made), its device, and the seed set for initialisation.

    Args:
        notebook: the notebook's name (``"04_case2_supervised"``), the default folder's parent.
        output_dir: the run's folder; None: ``runs/<notebook>/fraction-<f>-seed<seed>``.
        profile, experiment, train_fraction, **given: as :func:`case2_config`.

    Returns:
        ``(cfg, output_dir, device)``; the device and the settings in :data:`SETUP_SHOWN` are printed.
    """
    cfg = case2_config(profile, experiment, train_fraction, **given)
    folder = Path(output_dir) if output_dir is not None else default_output_dir(
        notebook, f"fraction-{train_fraction}-seed{cfg['seed']}")
    folder.mkdir(parents=True, exist_ok=True)
    device = pick_device()
    seed_everything(cfg["seed"])
    print(device, {k: cfg[k] for k in SETUP_SHOWN})
    return cfg, folder, device


def case2_caches(profile: str, cfg: dict, cache_dir=None, test_cache_dir=None) -> tuple[Path, Path]:
    """``(training cache, test cache)`` of a run: Dataset2's two caches (:func:`pe_utils.prepare_dataset2`),
    or Dataset1's cache (exp. 1: :func:`pe_utils.prepare_cache`) with Dataset2's test set."""
    if cfg["dataset"] != "dataset1":
        return prepare_dataset2(profile, cache_dir, test_cache_dir)
    test = Path(test_cache_dir).resolve() if test_cache_dir is not None else prepare_dataset2(profile)[1]
    return dataset_cache(profile, "dataset1", cache_dir), test


@dataclass
class Case2Data:
    """Dataset2 split by patient, the training fraction, the re-sampled training rows, the test set."""

    train_fraction: float                # percent of Table 6.4 (100 ... 5)
    index: pd.DataFrame                  # the training cache's index (row i = image i)
    labels: np.ndarray                   # (N,) float32 labels of that cache
    split: np.ndarray                    # (N,) "train" | "val" | "unused" (outside the dataset)
    ids: dict[str, np.ndarray]           # train (re-sampled, repeats), train_subset, val: rows of the
                                         # training cache; test: rows of the test cache
    test_index: pd.DataFrame
    test_labels: np.ndarray
    loaders: dict[str, DeviceLoader]
    sizes_by_fraction: dict[float, int]  # percent -> training images per epoch (after re-sampling)
    in_channels: int
    cache_dir: Path
    test_cache_dir: Path
    fingerprint: dict[str, Any] = field(default_factory=dict)

    @property
    def exam_ids(self) -> np.ndarray:
        """Each test slice's exam (StudyInstanceUID) for the exam-level AUC."""
        return self.test_index["StudyInstanceUID"].astype(str).to_numpy()

    def sizes(self) -> pd.DataFrame:
        """Images, positives and % positive per set (train before and after the re-sampling)."""
        sets = {"train (fraction)": self.labels[self.ids["train_subset"]],
                "train (re-sampled)": self.labels[self.ids["train"]],
                "validation": self.labels[self.ids["val"]], "test": self.test_labels}
        return pd.DataFrame({k: {"images": len(v), "positives": int(v.sum()),
                                 "% positive": 100 * float(v.mean()) if len(v) else float("nan")}
                             for k, v in sets.items()}).T.astype({"images": int, "positives": int})


def _loader(images, labels, ids, cfg: dict, device, train: bool) -> DeviceLoader:
    """Case1's loader (:func:`pe_utils.case1_data`): uint8 rows, resized and augmented on the device."""
    return DeviceLoader(make_loader(CacheSlices(images, labels, ids, seed=cfg["seed"]), batch_size=cfg["batch_size"],
                                    shuffle=train, seed=cfg["seed"], num_workers=cfg["num_workers"], device=device),
                        device, augment=AffineAugment() if (train and cfg["augment"]) else None,
                        image_size=cfg["image_size"])


def training_rows(index: pd.DataFrame, split: np.ndarray, fraction: float, cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(subset, trained)``: the fraction's rows (:func:`pe_utils.train_fraction_subset`), then the
    rows an epoch trains on: re-sampled AFTER the fraction is drawn (positives x3, 2/3 of the
    negatives; 5.1.1) when ``cfg["sampling"] == "resample"``."""
    subset = train_fraction_subset(index, split, fraction, seed=cfg["seed"])
    if cfg["sampling"] != "resample":
        return subset, subset
    labels = index["pe_present_on_image"].to_numpy()[subset]
    return subset, subset[resample(labels, seed=cfg["seed"])]


def case2_data(cache: Any, test_cache: Any, cfg: dict, train_fraction: float = 100,
               device: torch.device | str = "cpu") -> Case2Data:
    """Split, shrink, re-sample and load (5.1.1, Table 6.4).

    The validation patients depend on ``cfg["seed"]`` only, never on the fraction; the test set
    is the whole test cache. Table 6.3's 16.09 % dataset is a patient subset of Dataset2
    (:func:`pe_utils.subset_1609_rows`); rows outside the dataset are ``"unused"``.

    Args:
        cache, test_cache: :func:`pe_utils.load_cache` results or their folders.
        cfg: from :func:`case2_config`.
        train_fraction: percent of the training set kept (Table 6.4).
        device: where batches go.
    """
    cache = load_cache(cache) if isinstance(cache, (str, Path)) else cache
    test_cache = load_cache(test_cache) if isinstance(test_cache, (str, Path)) else test_cache
    index, labels = cache.index, cache.index["pe_present_on_image"].to_numpy().astype(np.float32)
    rows = subset_1609_rows(index, cfg["seed"]) if cfg["dataset"] == "dataset2_1609" else np.arange(len(index))
    split = np.full(len(index), "unused", dtype=object)
    split[rows] = patient_split(index.iloc[rows].reset_index(drop=True), seed=cfg["seed"])
    split = split.astype(str)
    subset, trained = training_rows(index, split, fraction_of(train_fraction), cfg)
    sizes = {round(100 * f, 2): len(training_rows(index, split, f, cfg)[1]) for f in TRAIN_FRACTIONS}
    test_labels = test_cache.index["pe_present_on_image"].to_numpy().astype(np.float32)
    ids = {"train": trained, "train_subset": subset, "val": np.flatnonzero(split == "val"),
           "test": np.arange(len(test_labels))}
    loaders = {"train": _loader(cache.images, labels, ids["train"], cfg, device, True),
               "val": _loader(cache.images, labels, ids["val"], cfg, device, False),
               "test": _loader(test_cache.images, test_labels, ids["test"], cfg, device, False)}
    return Case2Data(train_fraction=float(train_fraction), index=index, labels=labels, split=split, ids=ids,
                     test_index=test_cache.index, test_labels=test_labels, loaders=loaders,
                     sizes_by_fraction=sizes, in_channels=1 if cache.images.ndim == 3 else int(cache.images.shape[1]),
                     cache_dir=Path(cache.dir), test_cache_dir=Path(test_cache.dir),
                     fingerprint={**cache_fingerprint(cache),
                                  **{f"test_{k}": v for k, v in cache_fingerprint(test_cache).items()}})


def lr_step_iterations(cfg: dict, data: Case2Data) -> int:
    """The decay period of an iteration schedule (Appendix A): ``lr_step`` epochs of the reference
    training set (``schedule_reference_fraction``, 25 % in the thesis), in batches."""
    n_ref = data.sizes_by_fraction.get(round(100 * cfg["schedule_reference_fraction"], 2))
    if n_ref is None:
        n_ref = len(training_rows(data.index, data.split, cfg["schedule_reference_fraction"], cfg)[1])
    return max(1, int(cfg["lr_step"]) * math.ceil(n_ref / cfg["batch_size"]))


def case2_training(model: torch.nn.Module, cfg: dict, data: Case2Data):
    """Focal loss (with Eq. 5.1's class weights when ``class_weights``), the optimizer and the step
    decay of Case1 (:func:`pe_utils.case1_training`), counted in epochs or iterations (Appendix A).

    Class weights are computed on the rows an epoch trains on (after the re-sampling: our choice;
    the thesis does not say which).

    Returns:
        ``(criterion, optimizer, scheduler, weights)``; ``weights`` is ``[w_neg, w_pos]`` or None.
    """
    steps = len(data.loaders["train"])
    step = cfg["lr_step"] if cfg["schedule"] == "epoch" else lr_step_iterations(cfg, data)
    criterion, optimizer, scheduler = case1_training(model, {**cfg, "lr_step": step}, steps)
    weights = None
    if cfg["class_weights"]:
        weights = class_weights(data.labels[data.ids["train"]])
        criterion = FocalLoss(gamma=cfg["gamma"], class_weights=weights)
        weights = [float(w) for w in weights]
    return criterion, optimizer, scheduler, weights


#: validation may cost at most this share of an epoch's training passes (:func:`case2_val_every`)
VAL_SHARE = 0.25
#: forward passes a trained image costs (forward and backward), an evaluated one costing 1
TRAIN_PASSES = 3


def case2_val_every(n_train: int, n_val: int, share: float = VAL_SHARE, train_passes: int = TRAIN_PASSES) -> int:
    """How often a Case2/4 run validates: every ``ceil(n_val / (share * train_passes * n_train))``-th epoch.

    The rule keeps validation's passes, on average over the epochs, within ``share`` of the training
    passes (a trained image costs ``train_passes`` forward passes, a validated one 1). The validation
    set never shrinks with the training fraction (6.3.2: "neither the validation set nor the test
    set has been modified"), so at 5 % of the training set, validating every epoch would cost more
    passes than training. With the default share (0.25) validation is at most a fifth of a run's
    passes, which leaves room for the final epoch's validation and the test scoring within a
    quarter of the run (the estimate of ``python -m pe_utils batch --estimate`` counts them). At the
    thesis's sizes (3,989 validation images; 16,364 re-sampled training images an epoch at 100 %)
    it validates every epoch from 100 % down to 33.34 %, every 2nd epoch at 25 and 20 %, every 4th at
    10 % and every 7th at 5 %; ``fit`` always validates after the last epoch.

    Why this is allowed: the thesis plots Case2's per-epoch learning curves only for the tuning of
    Table 6.3 on the whole training set (Figs 6.17, 6.18, C.1-C.3), where the rule validates every
    epoch; Table 6.4's shrinking fractions are reported by their test figures alone (6.3.2), and
    the last epoch's model is the one evaluated (no early stopping; Appendix A's NB). A notebook
    that wants every epoch passes ``val_every=1``.

    Args:
        n_train: images an epoch trains on (after re-sampling: ``len(data.ids["train"])``).
        n_val: validation images.
        share: validation passes allowed per training pass, > 0.
        train_passes: forward passes of one trained image.

    Returns:
        ``val_every`` for :func:`pe_utils.fit`, >= 1.

    Raises:
        ValueError: ``share`` or ``train_passes`` not positive, or a negative size.
    """
    if not share > 0 or not train_passes > 0:
        raise ValueError(f"share and train_passes must be positive, got {share} and {train_passes}")
    if n_train < 0 or n_val < 0:
        raise ValueError(f"image counts cannot be negative, got n_train={n_train}, n_val={n_val}")
    if n_train == 0:
        return 1
    return max(1, math.ceil(n_val / (share * train_passes * n_train)))


def case2_resume(data: Case2Data, cfg: dict, checkpoint_dir: str | Path, val_every: int | None = None
                 ) -> dict[str, Any]:
    """``fit``'s keyword arguments of a Case2/4 run: resume from ``checkpoint_dir`` (refusing checkpoints
    made from other caches: :func:`pe_utils.check_resume`), the run's config, and ``val_every``.

    Args:
        data, cfg: the run's :func:`case2_data` and :func:`case2_config`.
        checkpoint_dir: the run's checkpoint folder.
        val_every: validate every n-th epoch (and after the last); ``None``: :func:`case2_val_every`
            of the run's training and validation sizes.
    """
    check_resume(checkpoint_dir, data.fingerprint, data.cache_dir)
    config = {**cfg, "train_fraction": data.train_fraction, "cache_dir": str(data.cache_dir), **data.fingerprint}
    if val_every is None:
        val_every = case2_val_every(len(data.ids["train"]), len(data.ids["val"]))
    return {"checkpoint_dir": Path(checkpoint_dir), "resume": True, "config": config,
            "resume_ignore": RESUME_IGNORE, "val_every": int(val_every)}


def schedule_comparison(cfg: dict, sizes_by_fraction: dict[float, int],
                        fractions: tuple[float, ...] = (100, 50, 25, 10)) -> pd.DataFrame:
    """Appendix A's lesson: the learning rate per epoch, epoch- versus iteration-based decay,
    for training sets of several sizes (stepping the suite's own :func:`pe_utils.build_scheduler`).

    With an epoch schedule the drops fall at the same epochs whatever the size, so a large set
    trains many more steps at the high rate; the iteration schedule drops after a fixed number
    of batches (``lr_step`` epochs of the reference fraction's set).

    Returns:
        Long table: ``schedule``, ``train_fraction`` (%), ``steps_per_epoch``, ``epoch`` (1..),
        ``lr`` (the rate during that epoch's first batch).
    """
    ref = sizes_by_fraction[round(100 * cfg["schedule_reference_fraction"], 2)]
    period = {"epoch": cfg["lr_step"], "iteration": max(1, cfg["lr_step"] * math.ceil(ref / cfg["batch_size"]))}
    rows = []
    for schedule in ("epoch", "iteration"):
        for pct in fractions:
            steps = max(1, math.ceil(sizes_by_fraction[pct] / cfg["batch_size"]))
            optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg["lr"])
            scheduler = build_scheduler(optimizer, period[schedule], cfg["lr_gamma"], schedule, steps)
            for epoch in range(1, cfg["epochs"] + 1):
                rows.append(dict(schedule=schedule, train_fraction=pct, steps_per_epoch=steps, epoch=epoch,
                                 lr=optimizer.param_groups[0]["lr"]))
                for _ in range(steps if schedule == "iteration" else 1):
                    optimizer.step()
                    scheduler.step()
    return pd.DataFrame(rows)
