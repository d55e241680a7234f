"""Case3's fine-tuning (THESIS 4.3): a pretrained SimCLR encoder in Case1's experiment, in two steps.

Everything but the model and the two steps is Case1's and comes from :mod:`.case1` and
:mod:`.case1_results` (the split at a sampling rate, the loaders and their augmentation, the
focal loss, SGD and step decay, TTA, triage, threshold choices, the record), so Case1 and Case3
compare on the same test slices:

- :func:`case3_config`: the profile's ``case1`` section, then its ``case3`` section (batch,
  the two steps' epochs and learning rates, ``keep_head_layers``, ``match_case1_epochs``), then
  the given values;
- :func:`case3_model`: the pretraining run's network turned into a classifier
  (:func:`pe_utils.to_classifier`), fed the input it was pretrained on: a 2.5D encoder
  (``context`` k > 0, :mod:`pe_utils.data.context`) fine-tunes on Case1's 2.5D data, and a
  fine-tuning context other than the encoder's is refused;
- :func:`case3_step`: step 1 freezes the encoder (its BatchNorm statistics too) and trains the
  new head from ``step1_lr``; step 2 trains the whole network from ``step2_lr``; each with
  Case1's loss, optimizer and step decay (:func:`pe_utils.case1_training`);
- :func:`join_histories`: both steps' epochs as one history (a ``step`` column);
- :func:`case3_record`: Case1's ``metrics.json`` record plus the pretraining's provenance.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import torch

from ..learn import set_backbone_trainable, to_classifier
from ..profiles import resolve
from .case1 import Case1Data, _context_k, case1_config, case1_training
from .case1_results import case1_record
from .pretrain import load_pretrained

STEPS = (1, 2)


def case3_config(profile: str, sampling_rate: str | Fraction, **given: Any) -> tuple[dict, str, str]:
    """The fine-tuning run's settings.

    Args:
        profile: ``"smoke"``, ``"demo"`` or ``"thesis"``.
        sampling_rate: as :func:`pe_utils.rate_name` takes it.
        **given: notebook parameters (``seed``, ``batch_size``, ``step1_epochs``, ``step2_lr``,
            ``keep_head_layers``, ...); ``None`` means "the profile's value". Where the profile
            sets ``match_case1_epochs`` (the demo), step 2 trains Case1's epochs at this rate less
            step 1's, so both cases train as many epochs at every rate; a given ``step2_epochs``
            wins. ``context`` (k >= 0; None: the pretrained encoder's): the 2.5D input of
            :func:`pe_utils.case1_config`, which must be the encoder's.

    Returns:
        ``(cfg, rate_key, test_name)``; ``cfg["epochs"]`` is the two steps' epochs together.
        ``cfg["arch"]`` is Case1's until :func:`case3_model` reads the pretrained network's;
        so is ``cfg["context"]``: the given value (0 included), absent when None, until
        :func:`case3_model` checks it against the encoder's and keeps it as Case1 does (only
        when not 0).

    Raises:
        ValueError: unknown profile, a bad rate, a step with fewer than 0 epochs, a context not
            a whole number >= 0.
    """
    context = given.pop("context", None)
    cfg, rate_key, test_name = case1_config(profile, sampling_rate)
    case1_epochs = cfg["epochs"]
    cfg.update(resolve("case3", profile, **given))
    if cfg.get("match_case1_epochs") and given.get("step2_epochs") is None:
        # the two steps together train Case1's epochs at this rate (the demo's equal budgets)
        cfg["step2_epochs"] = max(case1_epochs - cfg["step1_epochs"], 0)
    if min(cfg["step1_epochs"], cfg["step2_epochs"]) < 0:
        raise ValueError(f"step epochs must be >= 0, got {cfg['step1_epochs']} and {cfg['step2_epochs']}")
    cfg["epochs"] = cfg["step1_epochs"] + cfg["step2_epochs"]
    if context is not None:
        cfg["context"] = _context_k(context)
    return cfg, rate_key, test_name


def case3_model(pretrain_dir: str | Path, cfg: dict, pretrain_epochs: int | None = None):
    """The classifier to fine-tune: the pretrained encoder (and maybe the projection head's
    first layer) with Case1's new head.

    Args:
        pretrain_dir: the pretraining run's output folder (or its ``simclr.pt``).
        cfg: from :func:`case3_config` (``keep_head_layers``, ``dropout``, ``bias_prior``,
            ``context``); ``cfg["arch"]`` is set to the pretrained network's architecture and
            ``cfg["context"]`` to its context (absent when 0, as :func:`pe_utils.case1_config`).
        pretrain_epochs: which snapshot (``None``: the run's last epoch).

    Returns:
        ``(model, pretrained)``: a :class:`pe_utils.learn.models.Classifier` on the CPU, and
        ``{"pretrained_from", "pretrain_epochs", "arch", "image_size", "context"}`` of the file read.

    Raises:
        FileNotFoundError: no pretrained network there; ValueError: no snapshot of that epoch,
        or ``cfg["context"]`` given and not the encoder's (the encoder's first layer reads
        ``2k + 1`` slices: another input would not fit it, or mean something else).
    """
    simclr, ckpt = load_pretrained(pretrain_dir, pretrain_epochs)
    # a simclr.pt made before the 2.5D input records no context: one slice
    encoder = int(ckpt["config"].get("context", 0))
    wanted = cfg.pop("context", None)
    if wanted is not None and int(wanted) != encoder:
        raise ValueError(f"fine-tuning context={wanted} differs from the pretrained encoder's context={encoder} "
                         f"({ckpt['path']}): give context={encoder} (or None), or pretrain with context={wanted}")
    if encoder:
        cfg["context"] = encoder
    model = to_classifier(simclr, keep_head_layers=cfg["keep_head_layers"], dropout=cfg["dropout"],
                          bias_prior=cfg["bias_prior"])
    cfg["arch"] = ckpt["config"]["arch"]
    return model, {"pretrained_from": ckpt["path"], "pretrain_epochs": int(ckpt["epoch"]),
                   "arch": ckpt["config"]["arch"], "image_size": ckpt["config"]["image_size"], "context": encoder}


def case3_step(model: torch.nn.Module, cfg: dict, step: int, steps_per_epoch: int):
    """Set the model up for fine-tuning step 1 or 2 (THESIS 4.3) and build its training objects.

    Step 1: encoder frozen (no gradient, eval mode: its BatchNorm statistics stay as pretrained),
    new head trained from ``step1_lr``. Step 2: every layer trained from ``step2_lr``. Both use
    Case1's focal loss, optimizer and step decay over the trainable parameters.

    Args:
        model: from :func:`case3_model` (on its device).
        cfg: from :func:`case3_config`.
        step: 1 or 2.
        steps_per_epoch: batches per training epoch.

    Returns:
        ``(criterion, optimizer, scheduler, step_cfg)``; ``step_cfg`` is ``cfg`` with this step's
        ``lr``, ``epochs`` and ``step``: pass it to ``fit`` as ``config`` and ``epochs``.

    Raises:
        ValueError: a step other than 1 or 2.
    """
    if step not in STEPS:
        raise ValueError(f"step must be 1 or 2, got {step}")
    set_backbone_trainable(model, step == 2)
    step_cfg = {**cfg, "step": step, "lr": cfg[f"step{step}_lr"], "epochs": cfg[f"step{step}_epochs"]}
    criterion, optimizer, scheduler = case1_training(model, step_cfg, steps_per_epoch)
    return criterion, optimizer, scheduler, step_cfg


def join_histories(*histories: list[dict]) -> list[dict]:
    """The steps' histories as one: ``step`` (1, 2, ...) added, ``epoch`` counted on across steps
    (``epoch_in_step`` keeps each step's own count), so one learning-curve figure shows both."""
    joined, offset = [], 0
    for step, history in enumerate(histories, start=1):
        for record in history:
            joined.append({**record, "step": step, "epoch_in_step": record["epoch"],
                           "epoch": offset + record["epoch"]})
        offset += len(history)
    return joined


def case3_record(data: Case1Data, *, cfg: dict, pretrained: dict, notebook: str = "03_case3_finetune",
                 **case1_args: Any) -> dict[str, Any]:
    """The ``metrics.json`` of a fine-tuning run (schema ``"case3"``): Case1's record
    (:func:`pe_utils.case1_record`, its ``context`` included) plus ``case``, ``pretrain_epochs``,
    ``pretrained_from``, ``keep_head_layers`` and the steps' epochs and learning rates.

    Args:
        data, cfg: as :func:`pe_utils.case1_record` takes them (``cfg`` from :func:`case3_config`).
        pretrained: what :func:`case3_model` returned beside the model.
        notebook: the record's ``notebook`` key.
        **case1_args: every other argument of :func:`pe_utils.case1_record` (``profile``,
            ``test_metrics``, ``choices``, ``table``, ``history`` (:func:`join_histories` of the
            two steps), ``train_seconds``, ...), passed on unchanged.

    Raises:
        ValueError: as :func:`pe_utils.case1_record`.
    """
    record = case1_record(data, cfg=cfg, notebook=notebook, **case1_args)
    record.update({"case": "case3", "pretrain_epochs": pretrained["pretrain_epochs"],
                   "pretrained_from": pretrained["pretrained_from"], "keep_head_layers": cfg["keep_head_layers"],
                   **{f"step{s}_{k}": cfg[f"step{s}_{k}"] for s in STEPS for k in ("epochs", "lr")}})
    return record
