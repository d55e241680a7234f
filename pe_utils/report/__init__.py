"""The report wing: plotly figures, the threshold explorer, the metrics.json schema, the thesis's numbers.

Imports from every wing but ``batch``.
"""
from __future__ import annotations

from .._lazy import lazy_exports

EXPORTS: dict[str, tuple[str, ...]] = {
    "widgets": ("ThresholdExplorer", "threshold_explorer"),
    "schema": ("write_metrics", "read_metrics"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
