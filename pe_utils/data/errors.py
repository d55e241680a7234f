"""The data wing's errors: why a file cannot be read as a CT slice, why a run cannot finish,
why a cache cannot be opened.

Every read error names the file and the cause, ``"<path>: <cause>"``, and keeps both apart
(``path``, ``reason``) so preprocessing can list the cause in ``skipped.csv``. Messages never
quote identity tags (PatientName, PatientID, dates, institution); in the RSNA layout the
path holds only UIDs.
"""
from __future__ import annotations

import os

__all__ = ["DicomReadError", "NotDicomError", "TruncatedDicomError", "NoPixelDataError",
           "NotCTError", "UnsupportedImageError", "MissingDecoderError", "CorruptPixelDataError",
           "PreprocessError", "PreprocessInterrupted", "CacheError"]


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


class CacheError(ValueError):
    """A cache folder that is damaged or incomplete: a file missing or unreadable, a column
    missing, ``index.csv`` and ``images.npy`` of different lengths.

    The message names the folder, what is wrong and how to make the cache again. Preprocessing
    keeps a finished cache whose settings match (even with ``--overwrite``), so the remedy
    deletes ``settings.json`` first; the folder's pseudonym key stays, and with it the
    patients' pseudonyms.

    Attributes:
        cache_dir: the cache folder.
        problem: what is wrong, without the folder and the remedy.
        rsna_root: the DICOM folder the cache was made from, when its settings say.
    """

    def __init__(self, cache_dir: str | os.PathLike, problem: str, rsna_root: str | None = None):
        self.cache_dir, self.problem, self.rsna_root = str(cache_dir), problem, rsna_root
        settings = os.path.join(self.cache_dir, "settings.json")
        super().__init__(
            f"the cache {self.cache_dir} is damaged: {problem}; make it again: delete {settings} and "
            f"run `python -m pe_utils preprocess --rsna-root {rsna_root or '<the DICOM folder>'} "
            f"--out {self.cache_dir}` with the options that made it")

    def __reduce__(self):  # keep the parts across process boundaries (DataLoader workers)
        return (type(self), (self.cache_dir, self.problem, self.rsna_root))
