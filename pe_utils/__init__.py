"""pe_utils: the helper package of the PE contrastive-learning course.

The package lives in wings along the data flow (``phantom`` -> ``data`` -> ``learn`` ->
``evaluate`` -> ``experiments`` -> ``report`` -> ``batch``), each importing only from the wings
before it, plus a few top-level modules (``profiles``, ``paths``, ``io``). Every public name
is re-exported from its wing and here: notebooks import a few names per wing
(``from pe_utils.learn import fit``, ``from pe_utils.evaluate import triage``), and a quick
script may take them from ``pe_utils`` itself. Names load lazily
(PEP 562): ``import pe_utils`` stays cheap for the command line and the preprocessing workers,
and torch is imported only when a name that needs it is used.
"""
from __future__ import annotations

import importlib

from ._lazy import lazy_exports

__version__ = "0.1.0"

#: the wings in import order: a wing imports only from those before it (tests/test_layout.py)
WINGS: tuple[str, ...] = ("phantom", "data", "learn", "evaluate", "experiments", "report", "batch")
_TOP: dict[str, tuple[str, ...]] = {
    "profiles": ("PROFILES", "SAMPLING_RATES", "THESIS_THRESHOLD_PAIRS", "resolve"),
    "paths": ("default_paths", "default_output_dir", "project_root", "resolve_cache_dir"),
}


def _all_exports() -> dict[str, tuple[str, ...]]:
    exports = dict(_TOP)
    for wing in WINGS:
        if wing == "batch":  # the runner is a command, not a notebook API
            continue
        for module, names in importlib.import_module(f".{wing}", __name__).EXPORTS.items():
            # a name spelled like a wing (learn's ``evaluate``) would be shadowed by the wing
            # itself once imported: it stays reachable from its wing (``pe_utils.learn.evaluate``)
            exports[f"{wing}.{module}"] = tuple(n for n in names if n not in WINGS)
    return exports


__getattr__, __dir__, __all__ = lazy_exports(__name__, _all_exports())
