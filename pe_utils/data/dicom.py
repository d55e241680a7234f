"""Reading one CT slice: DICOM -> Hounsfield units (-> the thesis's windows, see windows.py).

The thesis (4.1.1) converts each slice to Hounsfield units (HU) with RescaleSlope and
RescaleIntercept; :mod:`pe_utils.data.windows` then maps HU to the three windows and gray.
Two ways to get there, equal up to float32 rounding:

- ``to_gray(read_hu(path))``: the readable definition, one array operation per step.
- ``read_windowed(path)``: what :mod:`pe_utils.data.preprocess` uses. A stored pixel is an
  integer of at most 16 bits, so the whole chain stored value -> HU -> windows -> gray is
  a table of at most 65,536 entries, built once per (slope, intercept, padding, windows)
  and applied with one ``np.take``. Uncompressed pixel data is read straight from the
  element's bytes, which skips most of pydicom's per-call pixel pipeline; compressed data
  goes through pydicom's decoders (pylibjpeg plugins).

The header is parsed and checked by :mod:`pe_utils.data.header`; bad files raise a
:class:`~pe_utils.data.errors.DicomReadError` subclass whose message is ``"<path>: <cause>"``.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pydicom
from pydicom.pixels import get_decoder
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    UID,
)

# The errors, SliceMeta and the window names are re-exported: callers (notebooks, tests,
# report.plots) import them from here, the module of reading a slice.
from .errors import (CorruptPixelDataError, DicomReadError, MissingDecoderError,  # noqa: F401
                     NoPixelDataError, NotCTError, NotDicomError, TruncatedDicomError,
                     UnsupportedImageError)
from .header import PIXEL_DATA, SliceMeta, read_header
from .windows import (GRAY_WEIGHTS, LUNG_WINDOW, MEDIASTINUM_WINDOW, PE_WINDOW,  # noqa: F401
                      THESIS_WINDOWS, Window, apply_window, to_gray, to_rgb, window_table)

__all__ = [
    "Window", "LUNG_WINDOW", "MEDIASTINUM_WINDOW", "PE_WINDOW", "THESIS_WINDOWS",
    "GRAY_WEIGHTS", "AIR_HU", "SliceMeta", "read_hu", "read_slice", "read_windowed",
    "apply_window", "to_rgb", "to_gray", "DicomReadError", "NotDicomError",
    "TruncatedDicomError", "NoPixelDataError", "NotCTError", "UnsupportedImageError",
    "MissingDecoderError", "CorruptPixelDataError",
]

AIR_HU = -1000.0  # what padding pixels become
_NATIVE_LE = {ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian}
# Which pip package brings a decoder, by transfer syntax (pydicom 3 plugins).
_DECODER_HINTS = {
    "1.2.840.10008.1.2.4.50": "pillow or pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pylibjpeg-libjpeg or pyjpegls",
    "1.2.840.10008.1.2.4.81": "pylibjpeg-libjpeg or pyjpegls",
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.5": "pylibjpeg-rle",
}


class _Pixels(NamedTuple):
    codes: np.ndarray  # (H, W) unsigned integers: the raw stored codes
    key: tuple  # what the value table depends on (see _table)


def _stored_codes(ds: pydicom.Dataset, h: dict, path: str) -> _Pixels:
    """The stored pixel codes as unsigned integers, plus the parameters to interpret them."""
    ts = UID(str(ds.file_meta.TransferSyntaxUID))
    rows, cols, bits = h["Rows"], h["Columns"], h["BitsAllocated"]
    signed = h.get("PixelRepresentation", 0) == 1
    nbytes = bits // 8
    if ts in _NATIVE_LE:
        # Uncompressed: the element's bytes are the pixels; pydicom's pixel pipeline
        # would cost about as much again as parsing the file.
        raw = ds.get_item(PIXEL_DATA).value or b""
        expected = rows * cols * nbytes
        if len(raw) < expected:
            raise TruncatedDicomError(
                path, f"pixel data holds {len(raw)} bytes, {expected} expected "
                      f"for {rows}x{cols} pixels of {bits} bits")
        codes = np.frombuffer(raw, dtype=f"<u{nbytes}", count=rows * cols).reshape(rows, cols)
    else:
        try:
            decoder = get_decoder(ts)
        except NotImplementedError:
            raise MissingDecoderError(
                path, f"pydicom {pydicom.__version__} has no decoder for transfer syntax "
                      f"{ts} ({ts.name}); transcode the file (e.g. gdcmconv --raw) or "
                      "install a pydicom version with a plugin for it") from None
        if not decoder.is_available:
            hint = _DECODER_HINTS.get(str(ts), "a pydicom pixel-data plugin")
            raise MissingDecoderError(
                path, f"transfer syntax {ts} ({ts.name}) needs a decoder that is not "
                      f"installed: pip install {hint}")
        try:
            arr = ds.pixel_array
        except Exception as exc:  # plugins raise anything from ValueError to RuntimeError
            raise CorruptPixelDataError(
                path, f"could not decode the {ts.name} pixel data ({type(exc).__name__})"
            ) from None
        if arr.shape != (rows, cols):
            raise UnsupportedImageError(path, f"decoded pixel array has shape {arr.shape}")
        nbytes = arr.dtype.itemsize
        codes = np.ascontiguousarray(arr).view(f"u{nbytes}")
    bits_stored = min(h.get("BitsStored") or 8 * nbytes, 8 * nbytes)
    slope = float(h.get("RescaleSlope", 1.0))
    intercept = float(h.get("RescaleIntercept", 0.0))
    pad = h.get("PixelPaddingValue")
    pad_limit = h.get("PixelPaddingRangeLimit") if pad is not None else None
    return _Pixels(codes, (nbytes, signed, bits_stored, slope, intercept, pad, pad_limit))


def _interpret(codes: np.ndarray, nbytes: int, signed: bool, bits_stored: int) -> np.ndarray:
    """Raw codes -> stored values (int64): keep the low BitsStored bits, sign-extend if signed.

    Same result as pydicom's unused-bits correction (shift left, arithmetic shift right).
    """
    mask = (1 << bits_stored) - 1
    values = codes.astype(np.int64) & mask
    if signed:
        values = np.where(values >= 1 << (bits_stored - 1), values - (1 << bits_stored), values)
    return values


def _padding_code(value: int, nbytes: int) -> int:
    # PixelPaddingValue may be written as US or SS whatever PixelRepresentation says;
    # its bit pattern in the pixel's width is what the stored pixels are compared with.
    return value & ((1 << (8 * nbytes)) - 1)


def _hu_values(codes: np.ndarray, key: tuple) -> np.ndarray:
    """Stored codes -> HU (float64), padding -> air."""
    nbytes, signed, bits_stored, slope, intercept, pad, pad_limit = key
    values = _interpret(codes, nbytes, signed, bits_stored)
    hu = values * slope + intercept
    if pad is not None:
        pad_value = _interpret(np.asarray(_padding_code(pad, nbytes)), nbytes, signed,
                               bits_stored)
        if pad_limit is None:
            padded = values == pad_value
        else:
            limit = _interpret(np.asarray(_padding_code(pad_limit, nbytes)), nbytes,
                               signed, bits_stored)
            lo, hi = min(pad_value, limit), max(pad_value, limit)
            padded = (values >= lo) & (values <= hi)
        hu = np.where(padded, AIR_HU, hu)
    return hu


@lru_cache(maxsize=32)
def _table(key: tuple, kind: str, windows: tuple[Window, ...]) -> np.ndarray:
    """Value table over every code of the pixel width (read-only).

    Shape (codes,) for ``kind`` "hu" and "gray", (3, codes) for "rgb"."""
    codes = np.arange(1 << (8 * key[0]), dtype=np.int64)
    table = window_table(_hu_values(codes, key), kind, windows)
    table.setflags(write=False)
    return table


def _apply_table(pixels: _Pixels, kind: str, windows: tuple[Window, ...]) -> np.ndarray:
    nbytes = pixels.key[0]
    if nbytes > 2:  # 32-bit pixels: a 4G-entry table is no option, compute directly
        hu = _hu_values(pixels.codes, pixels.key).astype(np.float32)
        if kind == "hu":
            return hu
        return to_rgb(hu, windows) if kind == "rgb" else to_gray(hu, windows)
    table = _table(pixels.key, kind, tuple(Window(*w) for w in windows))
    # intp indices make np.take take its fastest path
    index = pixels.codes.astype(np.intp)
    if kind == "rgb":
        return np.stack([np.take(t, index) for t in table])
    return np.take(table, index)


# ----------------------------------------------------------------------------- public API
def _read(path: str) -> tuple[_Pixels, SliceMeta]:
    ds, header, meta = read_header(path)
    return _stored_codes(ds, header, path), meta


def read_slice(path: str | os.PathLike) -> tuple[np.ndarray, SliceMeta]:
    """Read a CT slice as Hounsfield units, with the metadata preprocessing needs.

    Args:
        path: a DICOM file holding one single-frame grayscale CT image of any size,
            uncompressed or compressed (RLE, JPEG 2000 and others with a pylibjpeg plugin).

    Returns:
        ``(hu, meta)``: ``hu`` float32 (Rows, Columns), RescaleSlope/RescaleIntercept applied,
        pixels equal to PixelPaddingValue (or within PixelPaddingRangeLimit) set to
        -1000 HU (air); ``meta`` a :class:`SliceMeta`.

    Raises:
        DicomReadError: a subclass naming the file and the cause (not DICOM, truncated,
            no pixel data, not CT, multi-frame/colour, missing decoder, corrupt data).
    """
    pixels, meta = _read(str(path))
    return _apply_table(pixels, "hu", ()), meta


def read_hu(path: str | os.PathLike) -> np.ndarray:
    """The slice in ``path`` as float32 HU (H, W); see :func:`read_slice`."""
    return read_slice(path)[0]


def read_windowed(path: str | os.PathLike, channels: str = "gray",
                  windows: tuple[Window, ...] = THESIS_WINDOWS) -> tuple[np.ndarray, SliceMeta]:
    """Read a slice straight to windowed values: the fast path of preprocessing.

    Equal (up to float32 rounding) to ``to_gray(read_hu(path), windows)`` for
    ``channels="gray"`` and ``to_rgb(read_hu(path), windows)`` for ``"rgb"``.

    Returns:
        ``(image, meta)``: float32 in [0, 1], (H, W) for gray or (3, H, W) for rgb.

    Raises:
        DicomReadError: as :func:`read_slice`; ValueError for an unknown ``channels``.
    """
    if channels not in ("gray", "rgb"):
        raise ValueError(f"channels must be 'gray' or 'rgb', not {channels!r}")
    if channels == "gray" and len(windows) != 3:
        raise ValueError("gray conversion needs exactly three windows (R, G, B)")
    pixels, meta = _read(str(path))
    return _apply_table(pixels, channels, tuple(windows)), meta
