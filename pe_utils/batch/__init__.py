"""The batch wing: the papermill runner (plan, run state, execution, HTML pages, the index).

The last wing: it may import any other; none imports it.
"""
from __future__ import annotations

from .._lazy import lazy_exports

EXPORTS: dict[str, tuple[str, ...]] = {
    "cli": ("main",),
    "plan": ("load_plan", "plan_runs", "PlanError"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
