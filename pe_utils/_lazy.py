"""Lazy re-exports (PEP 562), shared by the package and each of its wings.

A wing's ``__init__`` lists ``{module: (names...)}``; a name is imported from its module on
first use, so ``import pe_utils`` (and the command line, and preprocessing workers) stay
free of torch until a name that needs it is touched.
"""
from __future__ import annotations

import importlib
from typing import Callable


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]]
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package`` re-exporting ``exports``.

    Args:
        package: the package's ``__name__``.
        exports: module path relative to the package (``"learn.train"``) -> public names.

    Raises:
        ValueError: a name listed under two modules (one home per concept).
    """
    where: dict[str, str] = {}
    for module, names in exports.items():
        for name in names:
            if name in where:
                raise ValueError(f"{name!r} is exported by both {where[name]!r} and {module!r}")
            where[name] = module

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        setattr(importlib.import_module(package), name, value)  # later look-ups skip this
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(importlib.import_module(package))) | set(where))

    return __getattr__, __dir__, sorted(where)
