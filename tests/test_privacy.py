"""Patient identity never leaves the DICOM files: not in the cache, the logs or any report.

The phantom writes a fake identity into every file (name, ID, birth date, institution, dates);
we read those back from the headers and search every byte the suite wrote for them.
"""
from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

IDENTITY_TAGS = ("PatientName", "PatientID", "PatientBirthDate", "InstitutionName", "StudyDate",
                 "AccessionNumber", "ReferringPhysicianName")


def identities(rsna_root: Path) -> set[str]:
    """Every identity value in the headers of the phantom (and each part of the names)."""
    found: set[str] = set()
    for path in sorted(rsna_root.rglob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for tag in IDENTITY_TAGS:
            value = str(ds.get(tag, "") or "")
            if value:
                found.add(value)
            if tag == "PatientName":
                found.update(part for part in value.split("^") if len(part) >= 6)
    return found


def leaks(folder: Path, secrets: set[str]) -> list[str]:
    hits = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits += [f"{path.relative_to(folder)}: {s}" for s in secrets if s.encode() in data]
    return hits


def test_the_phantom_carries_identities(synth_root):
    secrets = identities(synth_root)
    assert any(s.startswith("PHX-") for s in secrets)
    assert any("^" in s for s in secrets)


def test_no_identity_in_the_cache(synth_root, smoke_cache):
    assert leaks(smoke_cache, identities(synth_root)) == []


@pytest.mark.slow  # runs the whole smoke batch (minutes), shared with test_notebooks.py
def test_no_identity_in_reports_or_logs(synth_root, smoke_batch):
    out, log = smoke_batch
    secrets = identities(synth_root)
    assert leaks(out, secrets) == []
    assert not [s for s in secrets if s in log]
