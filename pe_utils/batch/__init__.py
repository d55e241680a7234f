"""The batch wing: the papermill runner.

``plan`` (the plan file, where it is found) -> ``expand`` (runs, dependencies, parameters) ->
``state`` (keys, markers, staleness) -> ``prepare`` (the data) -> ``run`` (workers, scheduler)
-> ``html`` (offline pages, the index) and ``console`` (what is printed), driven by ``cli``.
The last wing: it may import any other; none imports it.
"""
from __future__ import annotations

from .._lazy import lazy_exports

EXPORTS: dict[str, tuple[str, ...]] = {
    "cli": ("main",),
    "plan": ("load_plan", "find_plan", "PlanError"),
    "expand": ("plan_runs",),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
