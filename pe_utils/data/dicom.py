"""Reading one CT slice: DICOM -> Hounsfield units -> the thesis's three windows -> gray.

The thesis (4.1.1) converts each slice to Hounsfield units (HU) with RescaleSlope and
RescaleIntercept, maps three fixed windows (lung, mediastinum, PE) to the R, G and B
channels, then converts RGB to gray "to alleviate computations". A window is a fixed
mapping, ``clip(hu, WL - WW/2, WL + WW/2)`` scaled to [0, 1], never a per-image min/max.

Two ways to get there, equal up to float32 rounding:

- ``to_gray(read_hu(path))``: the readable definition, one array operation per step.
- ``read_windowed(path)``: what :mod:`pe_utils.data.preprocess` uses. A stored pixel is an
  integer of at most 16 bits, so the whole chain stored value -> HU -> windows -> gray is
  a table of at most 65,536 entries, built once per (slope, intercept, padding, windows)
  and applied with one ``np.take``. Uncompressed pixel data is read straight from the
  element's bytes, which skips most of pydicom's per-call pixel pipeline; compressed data
  goes through pydicom's decoders (pylibjpeg plugins).

Bad files raise a :class:`DicomReadError` subclass whose message is ``"<path>: <cause>"``.
Messages never quote identity tags (PatientName, PatientID, dates, institution); in the
RSNA layout the path holds only UIDs.

(Longer than the usual module here: the raw header decoding and the typed diagnosis of
bad files are what make it fast and safe, and they belong to reading a slice.)
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    UID,
)

__all__ = [
    "Window", "LUNG_WINDOW", "MEDIASTINUM_WINDOW", "PE_WINDOW", "THESIS_WINDOWS",
    "GRAY_WEIGHTS", "AIR_HU", "SliceMeta", "read_hu", "read_slice", "read_windowed",
    "apply_window", "to_rgb", "to_gray", "DicomReadError", "NotDicomError",
    "TruncatedDicomError", "NoPixelDataError", "NotCTError", "UnsupportedImageError",
    "MissingDecoderError", "CorruptPixelDataError",
]


class Window(NamedTuple):
    """A display window in HU: ``level`` (WL, centre) and ``width`` (WW)."""

    level: float
    width: float


LUNG_WINDOW = Window(-600.0, 1500.0)  # thesis 4.1.1, R channel
MEDIASTINUM_WINDOW = Window(40.0, 400.0)  # thesis 4.1.1, G channel
PE_WINDOW = Window(100.0, 700.0)  # thesis 4.1.1, B channel
THESIS_WINDOWS = (LUNG_WINDOW, MEDIASTINUM_WINDOW, PE_WINDOW)  # order = R, G, B
GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma, as in PIL's "L" conversion
AIR_HU = -1000.0  # what padding pixels become


# ----------------------------------------------------------------------------- errors
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


# ----------------------------------------------------------------------------- metadata
@dataclass(frozen=True)
class SliceMeta:
    """What preprocessing needs from a slice's header.

    ``patient_key`` (PatientID, else StudyInstanceUID) exists only to be pseudonymised;
    it is left out of ``repr`` so it never reaches a log by accident.
    """

    path: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    z: float | None  # ImagePositionPatient[2], mm
    position: float | None  # ImagePositionPatient projected on the slice normal, mm
    instance_number: int | None
    rows: int
    columns: int
    transfer_syntax: str
    patient_key: str = field(repr=False, default="")


# What is read from the header: keyword -> (tag, how to read the raw value). Values of
# every other element are skipped by the parser, and these are decoded from their raw
# bytes here, which avoids pydicom's per-element conversion and validation (and its
# warnings, which may quote values).
_HEADER = {
    "SOPClassUID": (0x00080016, "str"), "SOPInstanceUID": (0x00080018, "str"),
    "Modality": (0x00080060, "str"), "PatientID": (0x00100020, "str"),
    "StudyInstanceUID": (0x0020000D, "str"), "SeriesInstanceUID": (0x0020000E, "str"),
    "InstanceNumber": (0x00200013, "num"), "ImagePositionPatient": (0x00200032, "nums"),
    "ImageOrientationPatient": (0x00200037, "nums"), "SamplesPerPixel": (0x00280002, "us"),
    "PhotometricInterpretation": (0x00280004, "str"), "NumberOfFrames": (0x00280008, "num"),
    "Rows": (0x00280010, "us"), "Columns": (0x00280011, "us"),
    "BitsAllocated": (0x00280100, "us"), "BitsStored": (0x00280101, "us"),
    "PixelRepresentation": (0x00280103, "us"), "PixelPaddingValue": (0x00280120, "us"),
    "PixelPaddingRangeLimit": (0x00280121, "us"), "RescaleIntercept": (0x00281052, "num"),
    "RescaleSlope": (0x00281053, "num"),
}
_PIXEL_DATA, _FLOAT_PIXEL_DATA, _DOUBLE_PIXEL_DATA = 0x7FE00010, 0x7FE00008, 0x7FE00009
_TAGS = [tag for tag, _ in _HEADER.values()] + [
    0x00080005, 0x00280006, 0x00280102, _PIXEL_DATA, _FLOAT_PIXEL_DATA, _DOUBLE_PIXEL_DATA]
_NATIVE_LE = {ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian}
_CT_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1",
                   "1.2.840.10008.5.1.4.1.1.2.2"}
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


def _parse(path: str) -> pydicom.Dataset:
    """Parse the header and the raw pixel bytes once; raise on non-DICOM or truncated files."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fp:
            try:
                ds = pydicom.dcmread(fp, specific_tags=_TAGS)
            except InvalidDicomError:
                fp.seek(0)
                head = fp.read(8)
                # A dataset without the 128-byte preamble (written by some old tools)
                # starts with an element of group 0x0002 or 0x0008.
                if len(head) < 8 or head[:2] not in (b"\x02\x00", b"\x08\x00"):
                    raise NotDicomError(path, "not a DICOM file (no 'DICM' prefix)") from None
                fp.seek(0)
                ds = pydicom.dcmread(fp, specific_tags=_TAGS, force=True)
            end = fp.tell()
    except DicomReadError:
        raise
    except FileNotFoundError:
        raise
    except Exception as exc:  # pydicom raises a mix of types on garbage
        raise NotDicomError(path, f"not a readable DICOM file ({type(exc).__name__})") from None
    if end > size:  # a skipped element's declared length runs past the end of the file
        raise TruncatedDicomError(path, f"file ends inside an element ({size} bytes)")
    if _PIXEL_DATA in ds:
        elem = ds.get_item(_PIXEL_DATA)
        got = len(elem.value or b"")
        if elem.length != 0xFFFFFFFF and got < elem.length:
            raise TruncatedDicomError(
                path, f"file ends inside the pixel data ({got} of {elem.length} bytes)")
    else:
        _diagnose_missing_pixels(path, ds)
    if "TransferSyntaxUID" not in ds.file_meta:
        raise NotDicomError(path, "no Transfer Syntax UID in the file meta information")
    return ds


def _diagnose_missing_pixels(path: str, ds: pydicom.Dataset) -> None:
    """No Pixel Data element: tell a truncated file from one that never had pixels.

    Only runs on that error path, so the second parse costs nothing on good files.
    """
    with open(path, "rb") as fp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            full = pydicom.dcmread(fp, force=True)
        except Exception:
            full = None
    if any("End of file" in str(w.message) for w in caught):
        raise TruncatedDicomError(path, "file ends inside the (encapsulated) pixel data")
    for part in (full, getattr(full, "file_meta", None)):
        for tag in list(part.keys()) if part is not None else []:
            elem = part.get_item(tag)
            value = getattr(elem, "value", None)
            if (isinstance(value, bytes) and elem.length != 0xFFFFFFFF
                    and len(value) < elem.length):
                raise TruncatedDicomError(path, f"file ends inside element {tag}")
    if "TransferSyntaxUID" not in ds.file_meta:
        raise TruncatedDicomError(path, "file ends inside its file meta information")
    if _FLOAT_PIXEL_DATA in ds or _DOUBLE_PIXEL_DATA in ds:
        raise NoPixelDataError(path, "float pixel data is not supported for CT")
    if not ds.keys():
        raise TruncatedDicomError(path, "file ends after its file meta information")
    # A file cut exactly between two elements looks like one without pixels: the
    # caller's image checks raise NoPixelDataError ("no Pixel Data element").


def _read_value(elem, kind: str):
    """Decode one element: raw bytes for a RawDataElement, else its converted value."""
    if isinstance(elem, RawDataElement):
        raw = elem.value
        if not raw:
            return None
        if kind == "us":
            return int.from_bytes(raw[:2], "little" if elem.is_little_endian else "big")
        text = raw.decode("latin-1").strip("\x00 ")
        if kind == "str":
            return text or None
        parts = [float(t) for t in text.split("\\") if t.strip()]
        if not parts:
            return None
        return parts if kind == "nums" else parts[0]
    value = elem.value
    if value is None or value == "":
        return None
    if kind == "nums":
        return [float(v) for v in value]
    if kind == "num":
        return float(value[0] if isinstance(value, (list, pydicom.multival.MultiValue)) else value)
    if kind == "us":
        return int(value[0] if isinstance(value, (list, pydicom.multival.MultiValue)) else value)
    return str(value).strip() or None


def _header(ds: pydicom.Dataset, path: str) -> dict:
    """The values of :data:`_HEADER` present in ``ds`` (missing ones are absent)."""
    header = {}
    for keyword, (tag, kind) in _HEADER.items():
        if tag in ds:
            try:
                value = _read_value(ds.get_item(tag), kind)
            except (ValueError, UnicodeDecodeError):
                raise DicomReadError(path, f"unreadable {keyword}") from None
            if value is not None:
                header[keyword] = value
    return header


def _check_image(ds: pydicom.Dataset, h: dict, path: str) -> None:
    """Raise unless ``ds`` is a single-frame grayscale CT image with integer pixels."""
    if _PIXEL_DATA not in ds:
        raise NoPixelDataError(path, "no Pixel Data element")
    modality = h.get("Modality", "")
    if modality != "CT" and not (not modality and h.get("SOPClassUID") in _CT_SOP_CLASSES):
        raise NotCTError(path, f"modality is {modality or 'missing'!r}, not 'CT'")
    frames = int(h.get("NumberOfFrames", 1))
    if frames > 1:
        raise UnsupportedImageError(path, f"multi-frame image ({frames} frames); "
                                          "expected one 2D slice per file")
    samples = h.get("SamplesPerPixel", 1)
    photometric = h.get("PhotometricInterpretation", "MONOCHROME2")
    # MONOCHROME1 only inverts the display; HU come from the rescale either way.
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise UnsupportedImageError(
            path, f"colour data ({samples} samples per pixel, {photometric}); "
                  "expected grayscale")
    for name in ("Rows", "Columns", "BitsAllocated"):
        if not h.get(name):
            raise UnsupportedImageError(path, f"missing or zero {name}")
    if h["BitsAllocated"] not in (8, 16, 32):
        raise UnsupportedImageError(path, f"BitsAllocated {h['BitsAllocated']} not supported")


def _meta(h: dict, ts: str, path: str) -> SliceMeta:
    for name in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        if not h.get(name):
            raise DicomReadError(path, f"missing {name}")
    z = position = None
    ipp = h.get("ImagePositionPatient")
    if ipp is not None and len(ipp) == 3:
        z = position = float(ipp[2])
        iop = h.get("ImageOrientationPatient")
        if iop is not None and len(iop) == 6:
            r, c = iop[:3], iop[3:]
            normal = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2],
                      r[0] * c[1] - r[1] * c[0])
            if sum(n * n for n in normal) > 0.25:  # axial gives (0, 0, 1): position == z
                position = float(sum(p * n for p, n in zip(ipp, normal)))
    number = h.get("InstanceNumber")
    return SliceMeta(
        path=path, sop_instance_uid=h["SOPInstanceUID"],
        study_instance_uid=h["StudyInstanceUID"],
        series_instance_uid=h["SeriesInstanceUID"], z=z, position=position,
        instance_number=None if number is None else int(number), rows=h["Rows"],
        columns=h["Columns"], transfer_syntax=ts,
        patient_key=h.get("PatientID") or h["StudyInstanceUID"])


# ----------------------------------------------------------------------------- pixels
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
        raw = ds.get_item(_PIXEL_DATA).value or b""
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
    """Value table over every code of the pixel width.

    Shape (codes,) for ``kind`` "hu" and "gray", (3, codes) for "rgb"."""
    nbytes = key[0]
    codes = np.arange(1 << (8 * nbytes), dtype=np.int64)
    hu = _hu_values(codes, key)
    if kind == "hu":
        table = hu.astype(np.float32)
    else:
        channels = [_window64(hu, w.level, w.width) for w in windows]
        if kind == "gray":
            table = np.clip(sum(c * w for c, w in zip(channels, GRAY_WEIGHTS)), 0.0, 1.0)
        else:
            table = np.stack(channels)
        table = table.astype(np.float32)
    table.setflags(write=False)
    return table


def _window64(hu: np.ndarray, level: float, width: float) -> np.ndarray:
    lo = level - width / 2.0
    return (np.clip(hu, lo, lo + width) - lo) / width


def _apply_table(pixels: _Pixels, kind: str, windows: tuple[Window, ...]) -> np.ndarray:
    nbytes = pixels.key[0]
    if nbytes > 2:  # 32-bit pixels: a 4G-entry table is no option, compute directly
        hu = _hu_values(pixels.codes, pixels.key)
        if kind == "hu":
            return hu.astype(np.float32)
        rgb = to_rgb(hu.astype(np.float32), windows)
        return rgb if kind == "rgb" else _luma(rgb)
    table = _table(pixels.key, kind, tuple(Window(*w) for w in windows))
    # intp indices make np.take take its fastest path
    index = pixels.codes.astype(np.intp)
    if kind == "rgb":
        return np.stack([np.take(t, index) for t in table])
    return np.take(table, index)


# ----------------------------------------------------------------------------- public API
def _read(path: str) -> tuple[_Pixels, SliceMeta]:
    ds = _parse(path)
    h = _header(ds, path)
    _check_image(ds, h, path)
    meta = _meta(h, str(ds.file_meta.TransferSyntaxUID), path)
    return _stored_codes(ds, h, path), meta


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


def apply_window(hu: np.ndarray, level: float, width: float) -> np.ndarray:
    """Fixed window: clip ``hu`` to [level - width/2, level + width/2], scale to [0, 1].

    Args:
        hu: HU values, any shape.
        level: window level (centre), HU.
        width: window width, HU, > 0.

    Returns:
        float32 array of ``hu``'s shape in [0, 1]. Never rescaled by the image's own range.
    """
    if width <= 0:
        raise ValueError(f"window width must be positive, got {width}")
    lo = np.float32(level - width / 2.0)
    out = np.clip(np.asarray(hu, dtype=np.float32), lo, lo + np.float32(width))
    out -= lo
    out *= np.float32(1.0 / width)
    return out


def to_rgb(hu: np.ndarray, windows: tuple[Window, ...] = THESIS_WINDOWS) -> np.ndarray:
    """Stack one windowed image per window: (H, W) HU -> (len(windows), H, W) float32.

    With the default windows the channels are R = lung, G = mediastinum, B = PE.
    """
    return np.stack([apply_window(hu, *w) for w in windows])


def _luma(rgb: np.ndarray) -> np.ndarray:
    r, g, b = rgb
    gray = r * np.float32(GRAY_WEIGHTS[0]) + g * np.float32(GRAY_WEIGHTS[1])
    gray += b * np.float32(GRAY_WEIGHTS[2])
    return np.clip(gray, 0.0, 1.0, out=gray)


def to_gray(hu: np.ndarray, windows: tuple[Window, ...] = THESIS_WINDOWS) -> np.ndarray:
    """The thesis's gray image: :func:`to_rgb` then BT.601 luma 0.299 R + 0.587 G + 0.114 B.

    Args:
        hu: (H, W) HU values.
        windows: exactly three windows, taken as R, G, B.

    Returns:
        float32 (H, W) in [0, 1].
    """
    if len(windows) != 3:
        raise ValueError("gray conversion needs exactly three windows (R, G, B)")
    return _luma(to_rgb(hu, windows))
