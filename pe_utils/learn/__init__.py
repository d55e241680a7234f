"""The learn wing: models, losses, the training step and loop, checkpoints.

Imports from ``data`` and the top-level modules only; never from ``evaluate``, ``report`` or
``batch`` (``tests/test_layout.py`` enforces it).
"""
from __future__ import annotations

from .._lazy import lazy_exports

EXPORTS: dict[str, tuple[str, ...]] = {
    "models": ("build_classifier", "set_backbone_trainable", "load_weights"),
    "losses": ("FocalLoss", "class_weights"),
    "train": ("seed_everything", "pick_device", "build_optimizer", "build_scheduler",
              "train_one_epoch", "evaluate", "fit", "predict"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
