"""Patient pseudonyms: the only patient identity a cache holds.

patient_id is "P" + the first 16 hex digits of HMAC-SHA256(key, PatientID, or
StudyInstanceUID when PatientID is empty). The key is the caller's when given, else a random
key generated once and kept in ``<cache>/.pseudonym_key`` (readable by its owner only).
Delete it, or pass your own key kept elsewhere, before sharing a cache: with the key, a
known PatientID can be checked against the pseudonyms.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from ..io import write_atomic

__all__ = ["pseudonym", "key_fingerprint", "load_or_make_key", "KEY_FILE"]

KEY_FILE = ".pseudonym_key"  # in the cache folder, when no key is given


def pseudonym(patient_key: str, key: bytes) -> str:
    """``"P"`` + 16 hex digits of HMAC-SHA256(key, patient_key): stable, not reversible."""
    return "P" + hmac.new(key, patient_key.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def key_fingerprint(key: bytes) -> str:
    """16 hex digits that tell two keys apart without revealing either (settings.json)."""
    return hmac.new(key, b"pe_utils pseudonym key fingerprint", hashlib.sha256).hexdigest()[:16]


def load_or_make_key(out: str | Path, given: str | bytes | None) -> bytes:
    """The HMAC key of a cache: ``given`` (text is UTF-8 encoded), else ``<out>/.pseudonym_key``.

    Args:
        out: the cache folder; a missing key file is created there (random, 64 hex digits,
            mode 0600) on first use.
        given: the caller's key, or None.

    Returns:
        The key as bytes.
    """
    if given is not None:
        return given.encode("utf-8") if isinstance(given, str) else bytes(given)
    key_file = Path(out) / KEY_FILE
    if key_file.exists():
        return key_file.read_text().strip().encode("ascii")
    key = secrets.token_hex(32)
    write_atomic(key_file, key + "\n", private=True)
    return key.encode("ascii")
