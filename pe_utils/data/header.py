"""A CT slice's DICOM header: parse it once, check it is a CT image, and keep what is needed.

Only the elements listed in ``_HEADER`` (plus the pixel data) are parsed, and their values
are decoded from the raw bytes here, which skips pydicom's per-element conversion and
validation (and its warnings, which may quote values). A bad file raises the
:mod:`pe_utils.data.errors` type of its cause; the typed diagnosis of a file without pixel
data (truncated, or never had any) lives here because it reads the header again.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError

from .errors import (DicomReadError, NoPixelDataError, NotCTError, NotDicomError,
                     TruncatedDicomError, UnsupportedImageError)

__all__ = ["SliceMeta", "read_header", "PIXEL_DATA"]


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


# What is read from the header: keyword -> (tag, how to read the raw value); every other
# element is skipped by the parser.
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
PIXEL_DATA, _FLOAT_PIXEL_DATA, _DOUBLE_PIXEL_DATA = 0x7FE00010, 0x7FE00008, 0x7FE00009
_TAGS = [tag for tag, _ in _HEADER.values()] + [
    0x00080005, 0x00280006, 0x00280102, PIXEL_DATA, _FLOAT_PIXEL_DATA, _DOUBLE_PIXEL_DATA]
_CT_SOP_CLASSES = {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1",
                   "1.2.840.10008.5.1.4.1.1.2.2"}


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
    if PIXEL_DATA in ds:
        elem = ds.get_item(PIXEL_DATA)
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
    if PIXEL_DATA not in ds:
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
    """The :class:`SliceMeta` of header values ``h``; raise when a UID is missing."""
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


def read_header(path: str) -> tuple[pydicom.Dataset, dict, SliceMeta]:
    """Parse ``path`` and check it holds one single-frame grayscale CT image.

    Args:
        path: a DICOM file.

    Returns:
        ``(ds, header, meta)``: the dataset (the header elements and the raw pixel bytes),
        the values of ``_HEADER`` present in it by keyword, and its :class:`SliceMeta`.

    Raises:
        DicomReadError: a subclass naming the file and the cause.
        FileNotFoundError: no such file.
    """
    ds = _parse(path)
    header = _header(ds, path)
    _check_image(ds, header, path)
    return ds, header, _meta(header, str(ds.file_meta.TransferSyntaxUID), path)
