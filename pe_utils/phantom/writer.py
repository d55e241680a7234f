"""Writing a patient as RSNA-layout DICOM: identities, UIDs, headers, one series per patient.

Each patient is one study holding one axial series, written as
``train/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` (CT Image Storage,
16-bit signed, HU = stored - 1024, padding outside the reconstruction circle), with the
``train.csv`` rows of the RSNA-STR PE challenge (:data:`RSNA_COLUMNS`), and the clot mask of
every slice in ``masks/<StudyInstanceUID>/<SeriesInstanceUID>.npz`` (:mod:`.masks`). Every file carries a
fake, realistic-looking identity (name, ID, birth date, institution, study date) so that
the de-identification of the pipeline is exercised on every run. UIDs and identities are
functions of ``(seed, patient index)`` only.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .anatomy import PatientPlan
from .masks import clot_masks, write_series_masks
from .render import HU_INTERCEPT, IMAGE_SIZE, PADDING_STORED, RenderedPatient, make_patient

#: the 17 columns of the RSNA-STR ``train.csv``, in order
RSNA_COLUMNS: tuple[str, ...] = (
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "pe_present_on_image",
    "negative_exam_for_pe", "qa_motion", "qa_contrast", "flow_artifact", "rv_lv_ratio_gte_1",
    "rv_lv_ratio_lt_1", "leftsided_pe", "chronic_pe", "true_filling_defect_not_pe",
    "rightsided_pe", "acute_and_chronic_pe", "central_pe", "indeterminate",
)
#: exam-level columns: identical on every row of a study
EXAM_COLUMNS: tuple[str, ...] = RSNA_COLUMNS[4:]

INSTITUTION = "Synthetic General Hospital"

_FIRST = ("Jane", "John", "Maria", "Ahmed", "Li", "Olga", "Pierre", "Fatima", "Kenji", "Ana",
          "Lucas", "Noor", "Elena", "Samuel", "Ines", "Tomas", "Aisha", "Victor", "Mei", "Hugo")
_LAST = ("Doe", "Roe", "Smith", "Peeters", "Janssens", "Garcia", "Nowak", "Dubois", "Rossi",
         "Novak", "Kim", "Okafor", "Silva", "Muller", "Haddad", "Ivanova", "Tanaka", "Moreau")


def make_identity(rng, index: int) -> dict:
    """A fake but realistic-looking identity, so that de-identification is always exercised."""
    female = bool(rng.random() < 0.5)
    first = _FIRST[rng.integers(len(_FIRST))]
    birth = f"{rng.integers(1935, 2000)}{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}"
    study = f"{rng.integers(2014, 2021)}{rng.integers(1, 13):02d}{rng.integers(1, 29):02d}"
    return dict(
        PatientName=f"{_LAST[rng.integers(len(_LAST))]}^{first}-{index:04d}",
        PatientID=f"PHX-{rng.integers(10000, 100000)}",
        PatientBirthDate=birth, PatientSex="F" if female else "M",
        StudyDate=study, SeriesDate=study, ContentDate=study,
        StudyTime=f"{rng.integers(7, 20):02d}{rng.integers(0, 60):02d}{rng.integers(0, 60):02d}",
        AccessionNumber=f"ACC{rng.integers(10**6, 10**7)}",
        InstitutionName=INSTITUTION,
        ReferringPhysicianName=f"{_LAST[rng.integers(len(_LAST))]}^{_FIRST[rng.integers(len(_FIRST))]}",
    )


def make_uid(seed: int, *parts) -> str:
    """A DICOM UID (pydicom's root + a hash) that depends on ``seed`` and ``parts`` only."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["pe-phantom", str(seed), *map(str, parts)]))


def series_header(plan: PatientPlan, ident: dict, study: str, series: str, frame: str):
    """The DICOM dataset shared by every slice of a series (per-slice fields set later)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, PYDICOM_IMPLEMENTATION_UID

    ps = round(plan.fov / IMAGE_SIZE, 6)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SOPClassUID = CTImageStorage
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
    for key, value in ident.items():
        setattr(ds, key, value)
    ds.Modality, ds.Manufacturer = "CT", "PE-PHANTOM"
    ds.StudyDescription = "CT PULMONARY ANGIOGRAM (synthetic phantom)"
    ds.SeriesDescription, ds.BodyPartExamined = "CTPA 512 axial", "CHEST"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.PatientPosition, ds.KVP, ds.SeriesNumber = "HFS", 100, 1
    ds.ImagePositionPatient = [round(-plan.fov / 2 + ps / 2, 4)] * 2 + [0.0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SliceThickness = ds.SpacingBetweenSlices = round(plan.dz, 4)
    ds.PixelSpacing = [ps, ps]
    ds.Rows = ds.Columns = IMAGE_SIZE
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = HU_INTERCEPT, 1, "HU"
    ds.WindowCenter, ds.WindowWidth = 100, 700
    ds.add_new(0x00280120, "SS", PADDING_STORED)  # PixelPaddingValue
    return ds


def exam_labels(plan: PatientPlan, rendered: RenderedPatient) -> dict:
    """The exam-level columns of a patient (:data:`EXAM_COLUMNS` -> 0/1), from what was rendered.

    An exam is positive when any slice is (a positive plan whose clots all fall below the
    visibility threshold is a negative exam); sides and ``central_pe`` come from the clots
    that were visible, the RV/LV ratio is drawn in the plan and reported for positives only.
    """
    pe = bool(rendered.labels.any())
    exam = {c: 0 for c in EXAM_COLUMNS}
    exam.update(plan.exam)
    exam["negative_exam_for_pe"] = int(not pe)
    exam["rv_lv_ratio_gte_1"] = int(pe and plan.exam["rv_lv_ratio_gte_1"])
    exam["rv_lv_ratio_lt_1"] = int(pe and not plan.exam["rv_lv_ratio_gte_1"])
    exam["rightsided_pe"] = int(1 in rendered.sides)
    exam["leftsided_pe"] = int(2 in rendered.sides)
    exam["central_pe"] = int(rendered.central)
    return exam


def write_series(out_dir: Path, seed: int, index: int, positive: bool, slices: int,
                  difficulty: float, transfer_syntax: str | None) -> list[dict]:
    """Plan, render and write one patient; return its ``train.csv`` rows (sorted by SOP UID)."""
    from pydicom.uid import ExplicitVRLittleEndian

    plan, rendered = make_patient(seed, index, positive, slices, difficulty)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 2]))
    ident = make_identity(rng, index)
    study, series, frame = (make_uid(seed, index, k) for k in ("study", "series", "frame"))
    series_dir = out_dir / "train" / study / series
    series_dir.mkdir(parents=True, exist_ok=True)

    exam = exam_labels(plan, rendered)
    ds = series_header(plan, ident, study, series, frame)
    m = len(plan.z)
    rows = []
    for k in range(m):  # InstanceNumber 1 is the most cranial slice, as scanners number them
        sop = make_uid(seed, index, "sop", k)
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = sop
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.InstanceNumber = m - k
        ds.ImagePositionPatient = ds.ImagePositionPatient[:2] + [round(float(plan.z[k]), 4)]
        ds.SliceLocation = round(float(plan.z[k]), 4)
        arr = rendered.stored[k]
        ds.PixelData = arr.tobytes()
        if transfer_syntax is not None:
            ds.compress(transfer_syntax, arr, encoding_plugin="pylibjpeg",
                        generate_instance_uid=False)
        ds.save_as(series_dir / f"{sop}.dcm", enforce_file_format=True)
        rows.append(dict(StudyInstanceUID=study, SeriesInstanceUID=series, SOPInstanceUID=sop,
                         pe_present_on_image=int(rendered.labels[k]), **exam))
    # the clot masks, from the occupancy that gave the labels (the DICOM bytes are untouched)
    masks, faint = clot_masks(rendered, IMAGE_SIZE)
    write_series_masks(out_dir, study, series, [r["SOPInstanceUID"] for r in rows], masks, faint)
    return sorted(rows, key=lambda r: r["SOPInstanceUID"])


def write_series_task(args: tuple) -> list[dict]:
    """:func:`write_series` of one argument tuple (what a process pool maps over)."""
    return write_series(*args)

