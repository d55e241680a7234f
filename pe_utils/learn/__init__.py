"""The learn wing: models, losses, the training step and loop, checkpoints.

Imports from ``data`` and the top-level modules only; never from ``evaluate``, ``report`` or
``batch`` (``tests/test_layout.py`` enforces it).
"""
from __future__ import annotations

from .._lazy import lazy_exports

EXPORTS: dict[str, tuple[str, ...]] = {
    "models": ("build_classifier", "set_backbone_trainable", "load_weights"),
    "losses": ("FocalLoss", "class_weights"),
    "setup": ("seed_everything", "pick_device", "build_optimizer", "StepDecayLR", "build_scheduler",
              "iterations_for", "scheduler_interval", "step_scheduler", "amp_dtype", "autocast"),
    "steps": ("StepOutput", "supervised_step", "contrastive_step", "to_device", "split_batch", "batch_len"),
    "epochs": ("train_one_epoch", "evaluate", "predict"),
    "loop": ("fit",),
    "checkpoint": ("save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state",
                   "to_checkpoint_plain", "config_diff"),
    "ntxent": ("NTXentLoss", "all_gather_with_grad"),
    "simclr": ("ProjectionHead", "SimCLRModel", "build_simclr", "to_classifier"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
