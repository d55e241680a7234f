"""The data wing's errors: why a file cannot be read as a CT slice, why a run cannot finish.

Every read error names the file and the cause, ``"<path>: <cause>"``, and keeps both apart
(``path``, ``reason``) so preprocessing can list the cause in ``skipped.csv``. Messages never
quote identity tags (PatientName, PatientID, dates, institution); in the RSNA layout the
path holds only UIDs.
"""
from __future__ import annotations

import os

__all__ = ["DicomReadError", "NotDicomError", "TruncatedDicomError", "NoPixelDataError",
           "NotCTError", "UnsupportedImageError", "MissingDecoderError", "CorruptPixelDataError",
           "PreprocessError", "PreprocessInterrupted"]


class DicomReadError(ValueError):
    """A file that cannot be read as a single-frame grayscale CT slice.

    Attributes:
        path: the file, as given.
        reason: the cause, without the path (what ``skipped.csv`` lists).
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # keep (path, reason) across process boundaries
        return (type(self), (self.path, self.reason))


class NotDicomError(DicomReadError):
    """The file is not DICOM (no ``DICM`` prefix and no parsable dataset)."""


class TruncatedDicomError(DicomReadError):
    """The file ends before its declared content does."""


class NoPixelDataError(DicomReadError):
    """The dataset has no (integer) Pixel Data element."""


class NotCTError(DicomReadError):
    """The dataset is not a CT image (Modality / SOP Class)."""


class UnsupportedImageError(DicomReadError):
    """Multi-frame, colour or otherwise not a single 2D grayscale image."""


class MissingDecoderError(DicomReadError):
    """The pixel data is compressed with a transfer syntax no installed plugin decodes."""


class CorruptPixelDataError(DicomReadError):
    """The (compressed) pixel data could not be decoded."""


class PreprocessError(RuntimeError):
    """A run that cannot go on or finish (``--strict`` with skipped files, settings clash)."""


class PreprocessInterrupted(PreprocessError):
    """Stopped on purpose after some chunks (testing hook); rerun to resume."""
