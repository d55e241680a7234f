"""The experiments wing: what two notebooks of a case share (config rules, loaders, metrics record).

Imports from ``data``, ``learn``, ``evaluate`` and the top-level modules; never from ``report``
or ``batch``.
"""
from __future__ import annotations

from .._lazy import lazy_exports

EXPORTS: dict[str, tuple[str, ...]] = {
    "case1": ("rate_name", "case1_config", "Case1Data", "case1_data", "case1_training",
              "keep_final_model"),
    "case1_results": ("case1_test_metrics", "gallery_pair", "case1_record"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
