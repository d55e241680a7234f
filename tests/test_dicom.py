"""pe_utils.data.dicom (+ header, errors, windows): HU, windows, gray, metadata, typed errors.

The DICOM writers here (``write_ct`` and the ``bad_*`` makers) are also used by
tests/test_preprocess.py to build small RSNA-layout folders.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                         JPEG2000Lossless, JPEGLSLossless, MRImageStorage, RLELossless, UID)

from pe_utils.data import dicom, windows
from pe_utils.data.errors import (CorruptPixelDataError, DicomReadError, MissingDecoderError,
                                  NoPixelDataError, NotCTError, NotDicomError, TruncatedDicomError,
                                  UnsupportedImageError)

# Real transfer syntaxes for which no pydicom plugin exists (nor is planned for CT).
JPEG2000_PART2_LOSSLESS = UID("1.2.840.10008.1.2.4.92")
JPEG_XL_LOSSLESS = "1.2.840.10008.1.2.4.110"  # newer than pydicom 3.0, which cannot write it


# ----------------------------------------------------------------------------- writers
def write_ct(path, stored=None, *, size=(16, 16), uids=("1.2.3", "1.2.3.4", "1.2.3.4.5"),
             z=0.0, instance=1, slope=1.0, intercept=-1024.0, signed=True, bits=16,
             bits_stored=None, padding=None, padding_limit=None, modality="CT",
             transfer_syntax=ExplicitVRLittleEndian, identity=None, position=True,
             patient_id="PID-TEST"):
    """Write a one-slice CT DICOM file; ``stored`` (H, W) holds the stored pixel values.

    Returns the path. ``identity`` adds fake identity tags (name, birth date, ...).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if stored is None:
        stored = np.arange(size[0] * size[1]).reshape(size) % 2000
    dtype = {(8, False): np.uint8, (8, True): np.int8, (16, False): np.uint16,
             (16, True): np.int16, (32, False): np.uint32, (32, True): np.int32}[(bits, signed)]
    stored = np.asarray(stored).astype(dtype)
    study, series, sop = uids
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage if modality == "CT" else MRImageStorage
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.Modality = modality
    if patient_id is not None:
        ds.PatientID = patient_id
    for keyword, value in (identity or {}).items():
        setattr(ds, keyword, value)
    if position:
        ds.ImagePositionPatient = [-100.0, -100.0, z]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    if instance is not None:
        ds.InstanceNumber = instance
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = bits
    ds.BitsStored = bits_stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = int(signed)
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    vr = "SS" if signed else "US"
    if padding is not None:
        ds.add_new(0x00280120, vr, padding)
    if padding_limit is not None:
        ds.add_new(0x00280121, vr, padding_limit)
    ds.PixelData = stored.tobytes()
    if transfer_syntax != ExplicitVRLittleEndian:
        if transfer_syntax == ImplicitVRLittleEndian:
            meta.TransferSyntaxUID = transfer_syntax
        else:
            ds.compress(transfer_syntax, stored, generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)
    return path


def bad_not_dicom(path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is a text file, not a DICOM image\n" * 10)
    return path


def bad_truncated(path, **kw):
    write_ct(path, size=(32, 32), **kw)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 700])  # cut inside the pixel data
    return path


def bad_no_pixels(path, **kw):
    write_ct(path, **kw)
    ds = pydicom.dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    return path


def bad_not_ct(path, **kw):
    return write_ct(path, modality="MR", **kw)


def bad_multiframe(path, **kw):
    write_ct(path, **kw)
    ds = pydicom.dcmread(path)
    frames = np.zeros((2, ds.Rows, ds.Columns), np.int16)
    ds.NumberOfFrames = 2
    ds.PixelData = frames.tobytes()
    ds.save_as(path)
    return path


def bad_colour(path, **kw):
    write_ct(path, **kw)
    ds = pydicom.dcmread(path)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = np.zeros((ds.Rows, ds.Columns, 3), np.uint8).tobytes()
    ds.save_as(path)
    return path


def bad_missing_decoder(path, transfer_syntax=JPEG2000_PART2_LOSSLESS, **kw):
    """A file whose pixel data claims a codec no installed plugin decodes."""
    write_ct(path, **kw)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.PixelData = encapsulate([b"\xff\x0a" + bytes(64)])
    ds["PixelData"].VR = "OB"
    ds.save_as(path)
    return path


def set_transfer_syntax_bytes(path, old: str, new: str):
    """Patch the file meta's Transfer Syntax UID in place (for UIDs pydicom cannot write)."""
    data = Path(path).read_bytes()
    old_b, new_b = old.encode(), new.encode() + b"\0" * (len(new) % 2)
    i = data.index(old_b)
    assert data[i - 4:i - 2] == b"UI"
    old_len = struct.unpack("<H", data[i - 2:i])[0]
    data = data[:i - 2] + struct.pack("<H", len(new_b)) + new_b + data[i + old_len:]
    group_length = struct.unpack("<I", data[140:144])[0] + len(new_b) - old_len
    Path(path).write_bytes(data[:140] + struct.pack("<I", group_length) + data[144:])


BAD_FILES = {  # maker -> expected error type
    bad_not_dicom: NotDicomError,
    bad_truncated: TruncatedDicomError,
    bad_no_pixels: NoPixelDataError,
    bad_not_ct: NotCTError,
    bad_multiframe: UnsupportedImageError,
    bad_colour: UnsupportedImageError,
    bad_missing_decoder: MissingDecoderError,
}


# ----------------------------------------------------------------------------- windows
def test_window_constants_are_the_thesis_ones():
    assert windows.THESIS_WINDOWS == ((-600, 1500), (40, 400), (100, 700))
    assert windows.LUNG_WINDOW.level == -600 and windows.PE_WINDOW.width == 700


def test_apply_window_hand_values():
    hu = np.array([-2000, -1350, -600, 0, 150, 1000], np.float32)
    expected = [0, 0, 0.5, 1350 / 1500, 1, 1]  # lung: [-1350, 150]
    np.testing.assert_allclose(windows.apply_window(hu, -600, 1500), expected, atol=1e-7)
    out = windows.apply_window(hu, 40, 400)  # mediastinum: [-160, 240]
    np.testing.assert_allclose(out, [0, 0, 0, 160 / 400, 310 / 400, 1], atol=1e-7)
    assert out.dtype == np.float32


def test_apply_window_is_fixed_not_per_image():
    narrow = np.array([10.0, 20.0], np.float32)  # a min/max rescale would give [0, 1]
    np.testing.assert_allclose(windows.apply_window(narrow, 40, 400),
                               [170 / 400, 180 / 400], atol=1e-7)
    with pytest.raises(ValueError):
        windows.apply_window(narrow, 40, 0)


def test_to_rgb_and_gray_hand_values():
    hu = np.array([[100.0, -1000.0]], np.float32)
    rgb = windows.to_rgb(hu)
    assert rgb.shape == (3, 1, 2)
    # 100 HU: lung (100 + 1350) / 1500, mediastinum (100 + 160) / 400, PE (100 + 250) / 700
    r, g, b = 1450 / 1500, 260 / 400, 350 / 700
    np.testing.assert_allclose(rgb[:, 0, 0], [r, g, b], atol=1e-6)
    np.testing.assert_allclose(rgb[:, 0, 1], [350 / 1500, 0, 0], atol=1e-6)  # air
    gray = windows.to_gray(hu)
    assert gray.shape == (1, 2) and gray.dtype == np.float32
    np.testing.assert_allclose(gray[0, 0], 0.299 * r + 0.587 * g + 0.114 * b, atol=1e-6)
    np.testing.assert_allclose(gray[0, 1], 0.299 * 350 / 1500, atol=1e-6)


@pytest.mark.parametrize("kind", ["hu", "gray", "rgb"])
def test_window_table_equals_the_float32_functions(kind):
    # the lookup table read_windowed applies, against the readable definition
    hu = np.linspace(-3000.0, 3000.0, 1201)
    table = windows.window_table(hu, kind, windows.THESIS_WINDOWS)
    hu32 = hu.astype(np.float32)
    expected = {"hu": hu32, "gray": windows.to_gray(hu32[None])[0],
                "rgb": windows.to_rgb(hu32[None])[:, 0]}[kind]
    assert table.dtype == np.float32 and table.shape == expected.shape
    np.testing.assert_allclose(table, expected, atol=2e-6)


def test_reading_module_reexports_the_windows_and_errors():
    # notebooks import the window names from pe_utils.data.dicom: the same objects
    assert dicom.THESIS_WINDOWS is windows.THESIS_WINDOWS and dicom.to_gray is windows.to_gray
    assert dicom.DicomReadError is DicomReadError


# ----------------------------------------------------------------------------- reading
def test_read_hu_slope_intercept(tmp_path):
    stored = np.array([[0, 600], [1000, 1200]])
    path = write_ct(tmp_path / "a.dcm", stored, slope=2.0, intercept=-1000.0)
    hu = dicom.read_hu(path)
    assert hu.dtype == np.float32 and hu.shape == (2, 2)
    np.testing.assert_array_equal(hu, [[-1000, 200], [1000, 1400]])


@pytest.mark.parametrize("signed", [True, False])
def test_padding_value_becomes_air(tmp_path, signed):
    pad = -2000 if signed else 0
    stored = np.array([[pad, 1024], [1064, pad]])
    path = write_ct(tmp_path / "a.dcm", stored, padding=pad, signed=signed)
    np.testing.assert_array_equal(dicom.read_hu(path), [[-1000, 0], [40, -1000]])


def test_padding_range_limit(tmp_path):
    stored = np.array([[-2000, -1500, -1024], [0, 1024, -1999]])
    path = write_ct(tmp_path / "a.dcm", stored, padding=-2000, padding_limit=-1500,
                    intercept=0.0)
    np.testing.assert_array_equal(dicom.read_hu(path), [[-1000, -1000, -1024],
                                                        [0, 1024, -1000]])


def test_padding_written_unsigned_for_signed_pixels(tmp_path):
    """PixelPaddingValue's bit pattern counts, whether written as US or SS."""
    path = write_ct(tmp_path / "a.dcm", np.array([[-2000, 0]]), intercept=0.0)
    ds = pydicom.dcmread(path)
    ds.add_new(0x00280120, "US", 65536 - 2000)
    ds.save_as(path)
    np.testing.assert_array_equal(dicom.read_hu(path), [[-1000, 0]])


@pytest.mark.parametrize("bits,signed,bits_stored", [
    (16, True, 16), (16, False, 16), (16, True, 12), (16, False, 12), (8, False, 8),
    (8, True, 8)])
def test_uncompressed_fast_path_matches_pydicom(tmp_path, bits, signed, bits_stored):
    rng = np.random.default_rng(0)
    half = 1 << (bits_stored - 1)
    lo, hi = (-half, half) if signed else (0, 2 * half)
    stored = rng.integers(lo, hi, size=(8, 12))
    path = write_ct(tmp_path / "a.dcm", stored, bits=bits, signed=signed,
                    bits_stored=bits_stored, intercept=-1024.0)
    if bits_stored < bits:  # garbage in the unused high bits must be ignored
        ds = pydicom.dcmread(path)
        raw = np.frombuffer(ds.PixelData, np.uint16) | np.uint16(0xA000)
        ds.PixelData = raw.tobytes()
        ds.save_as(path)
    expected = pydicom.dcmread(path).pixel_array.astype(np.float64) - 1024
    np.testing.assert_array_equal(dicom.read_hu(path), expected)
    np.testing.assert_array_equal(expected + 1024, stored)


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless, ImplicitVRLittleEndian])
def test_compressed_and_implicit_files_decode(tmp_path, syntax):
    stored = np.random.default_rng(1).integers(-2000, 2000, size=(40, 36))  # J2K: >= 32 px
    path = write_ct(tmp_path / "a.dcm", stored, transfer_syntax=syntax)
    hu, meta = dicom.read_slice(path)
    assert meta.transfer_syntax == syntax
    np.testing.assert_array_equal(hu, stored - 1024.0)


@pytest.mark.parametrize("syntax,bits", [(ExplicitVRLittleEndian, 16), (RLELossless, 16),
                                         (ExplicitVRLittleEndian, 32)])  # 32: no table
@pytest.mark.parametrize("channels", ["gray", "rgb"])
def test_read_windowed_equals_the_definition(tmp_path, syntax, bits, channels):
    stored = np.random.default_rng(2).integers(-2000, 3000, size=(16, 16))
    path = write_ct(tmp_path / "a.dcm", stored, padding=-2000, transfer_syntax=syntax,
                    slope=0.5, intercept=-800.0, bits=bits)
    image, meta = dicom.read_windowed(path, channels)
    hu = dicom.read_hu(path)
    expected = dicom.to_gray(hu) if channels == "gray" else dicom.to_rgb(hu)
    assert image.shape == expected.shape and image.dtype == np.float32
    np.testing.assert_allclose(image, expected, atol=2e-6)
    assert meta.sop_instance_uid == "1.2.3.4.5"


def test_any_size_is_accepted(tmp_path):
    path = write_ct(tmp_path / "a.dcm", np.zeros((20, 7)))
    assert dicom.read_hu(path).shape == (20, 7)


def test_metadata(tmp_path):
    path = write_ct(tmp_path / "a.dcm", uids=("1.9", "1.9.1", "1.9.1.7"), z=-12.5, instance=7,
                    patient_id="SECRET-ID")
    _, meta = dicom.read_slice(path)
    assert (meta.study_instance_uid, meta.series_instance_uid, meta.sop_instance_uid) == \
        ("1.9", "1.9.1", "1.9.1.7")
    assert meta.z == -12.5 and meta.position == -12.5 and meta.instance_number == 7
    assert meta.patient_key == "SECRET-ID"
    assert "SECRET-ID" not in repr(meta)
    assert meta.path == str(path)


def test_patient_key_falls_back_to_study_uid(tmp_path):
    path = write_ct(tmp_path / "a.dcm", uids=("1.9", "1.9.1", "1.9.1.7"), patient_id=None,
                    position=False, instance=None)
    _, meta = dicom.read_slice(path)
    assert meta.patient_key == "1.9"
    assert meta.z is None and meta.position is None and meta.instance_number is None


def test_position_is_along_the_slice_normal(tmp_path):
    path = write_ct(tmp_path / "a.dcm", z=5.0)
    ds = pydicom.dcmread(path)
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]  # sagittal: normal is -x
    ds.ImagePositionPatient = [30.0, 0.0, 5.0]
    ds.save_as(path)
    _, meta = dicom.read_slice(path)
    assert meta.z == 5.0 and meta.position == pytest.approx(-30.0)


# ----------------------------------------------------------------------------- bad files
@pytest.mark.parametrize("maker", list(BAD_FILES), ids=lambda m: m.__name__)
def test_bad_file_raises_typed_error_naming_the_file(tmp_path, maker):
    path = maker(tmp_path / "1.2.3.4.99.dcm")
    expected = BAD_FILES[maker]
    for read in (dicom.read_hu, dicom.read_windowed):
        with pytest.raises(expected) as info:
            read(path)
        error = info.value
        assert isinstance(error, DicomReadError) and isinstance(error, ValueError)
        assert error.path == str(path) and str(error).startswith(str(path))
        assert error.reason and error.reason in str(error)


def test_error_reasons_say_the_cause(tmp_path):
    cases = {bad_not_dicom: "not a DICOM", bad_truncated: "ends", bad_no_pixels: "Pixel Data",
             bad_not_ct: "MR", bad_multiframe: "multi-frame", bad_colour: "colour",
             bad_missing_decoder: "1.2.840.10008.1.2.4.92"}
    for maker, words in cases.items():
        with pytest.raises(DicomReadError, match=words):
            dicom.read_hu(maker(tmp_path / f"{maker.__name__}.dcm"))


class _NoDecoder:
    is_available = False


def test_missing_decoder_names_the_package(tmp_path, monkeypatch):
    # pylibjpeg-libjpeg is a dependency, so JPEG-LS decodes here: make the plugin absent
    monkeypatch.setattr(dicom, "get_decoder", lambda ts: _NoDecoder())
    path = bad_missing_decoder(tmp_path / "a.dcm", transfer_syntax=JPEGLSLossless)
    with pytest.raises(MissingDecoderError) as info:
        dicom.read_hu(path)
    assert "1.2.840.10008.1.2.4.80" in str(info.value)
    assert "pip install" in str(info.value) and "pylibjpeg-libjpeg" in str(info.value)


def test_jpeg_xl_has_no_decoder(tmp_path):
    path = bad_missing_decoder(tmp_path / "a.dcm")
    set_transfer_syntax_bytes(path, JPEG2000_PART2_LOSSLESS, JPEG_XL_LOSSLESS)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == JPEG_XL_LOSSLESS
    with pytest.raises(MissingDecoderError, match="1.2.840.10008.1.2.4.110") as info:
        dicom.read_hu(path)
    assert "transcode" in info.value.reason


def test_corrupt_compressed_data(tmp_path):
    path = bad_missing_decoder(tmp_path / "a.dcm", transfer_syntax=JPEG2000Lossless)
    with pytest.raises(CorruptPixelDataError, match="JPEG 2000"):
        dicom.read_hu(path)


@pytest.mark.filterwarnings("ignore:End of file reached")  # pydicom's, before our error
@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, RLELossless])
def test_truncated_anywhere(tmp_path, syntax):
    """Cut anywhere, a file never reads silently; cut inside the pixel data, it is 'truncated'.

    (A cut exactly between two header elements leaves a well-formed file without pixels:
    'no pixel data' is then all one can say.)
    """
    good = write_ct(tmp_path / "good.dcm", np.random.default_rng(3).integers(0, 3000, (32, 32)),
                    transfer_syntax=syntax)
    data = good.read_bytes()
    pixel_start = pydicom.dcmread(good)["PixelData"].file_tell
    cut_path = tmp_path / "cut.dcm"
    for cut in list(range(133, pixel_start, 7)) + [pixel_start + 20, len(data) // 2,
                                                   len(data) - 1]:
        cut_path.write_bytes(data[:cut])
        with pytest.raises((TruncatedDicomError, NotDicomError, NoPixelDataError)) as info:
            dicom.read_hu(cut_path)
        if cut > pixel_start:
            assert isinstance(info.value, TruncatedDicomError), (cut, info.value)
    cut_path.write_bytes(data[:60])
    with pytest.raises(NotDicomError):
        dicom.read_hu(cut_path)
