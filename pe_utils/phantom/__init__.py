"""The phantom wing: a procedural CT pulmonary-angiography phantom written as RSNA-layout DICOM.

It is the embedded default data set: every notebook runs on it when no RSNA data is given.
"""
from __future__ import annotations

from .._lazy import lazy_exports

EXPORTS: dict[str, tuple[str, ...]] = {
    "synthetic": ("generate", "make_patient", "RSNA_COLUMNS", "EXAM_COLUMNS"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, EXPORTS)
