"""pe_utils.io: atomic writes, private files, sha256, JSON of numpy/pandas values."""
from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pe_utils.io import (atomic_open, read_json, sha256_file, sha256_text, to_plain, write_atomic,
                         write_json)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("mode", ["w", "wb"])
def test_writer_that_raises_midway_leaves_the_old_file(tmp_path, mode):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_open(path, mode) as fh:
            fh.write("new, half" if mode == "w" else b"new, half")
            fh.flush()
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_writer_that_raises_leaves_no_file_when_there_was_none(tmp_path):
    path = tmp_path / "sub" / "new.json"
    with pytest.raises(KeyboardInterrupt):  # BaseException too: Ctrl-C mid-write
        with atomic_open(path) as fh:
            fh.write("{")
            raise KeyboardInterrupt
    assert not path.exists() and _leftovers(path.parent) == []


def test_clean_exit_replaces_the_file(tmp_path):
    path = tmp_path / "a" / "b" / "out.txt"  # folders are created
    path.parent.mkdir(parents=True)
    path.write_text("old")
    with atomic_open(path) as fh:
        fh.write("new é")
        assert path.read_text() == "old"  # nothing visible before the rename
    assert path.read_text(encoding="utf-8") == "new é"
    assert _leftovers(path.parent) == []


def test_bad_mode_raises(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "x", "a"):
            pass


def test_private_files_are_owner_only(tmp_path):
    old_umask = os.umask(0)  # so the mode comes from atomic_open, not from the umask
    try:
        private = write_atomic(tmp_path / "key", b"secret", private=True)
        public = write_atomic(tmp_path / "page.html", "<p>")
    finally:
        os.umask(old_umask)
    assert private.read_bytes() == b"secret" and _mode(private) == 0o600
    assert public.read_text() == "<p>" and _mode(public) == 0o644


def test_private_replaces_a_world_readable_file(tmp_path):
    path = tmp_path / "key"
    path.write_text("old")
    path.chmod(0o644)
    write_atomic(path, "new", private=True)
    assert path.read_text() == "new" and _mode(path) == 0o600


def test_sha256_of_one_file_is_of_its_bytes(tmp_path):
    data = os.urandom(3 << 20)  # over the 1 MiB block: the digest spans blocks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert sha256_file(str(path)) == sha256_file(path)


def test_sha256_of_several_files_covers_names_order_and_bytes(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.npy"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    expected = hashlib.sha256(b"a.csv\0one" + b"b.npy\0two").hexdigest()
    assert sha256_file(a, b) == expected
    assert sha256_file(b, a) != expected  # order matters
    c = tmp_path / "c.csv"
    c.write_bytes(b"one")
    assert sha256_file(c, b) != expected  # names matter, not only bytes
    assert sha256_file(a, b) != sha256_file(a)


def test_sha256_of_a_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        sha256_file(tmp_path / "nope")


def test_sha256_text():
    assert sha256_text("é") == hashlib.sha256("é".encode("utf-8")).hexdigest()


def test_to_plain_numpy_scalars_and_arrays():
    out = to_plain({"i": np.int64(3), "f": np.float32(0.5), "b": np.bool_(True),
                    "a": np.arange(3), "m": np.eye(2, dtype=np.int8), 1: "key"})
    assert out == {"i": 3, "f": 0.5, "b": True, "a": [0, 1, 2], "m": [[1, 0], [0, 1]], "1": "key"}
    assert type(out["i"]) is int and type(out["f"]) is float and type(out["b"]) is bool
    json.dumps(out)  # JSON-ready


@pytest.mark.parametrize("value", [float("nan"), np.nan, np.float32("nan"), np.inf, -math.inf])
def test_to_plain_nan_and_inf_become_none(value):
    assert to_plain(value) is None
    assert to_plain([1.0, value]) == [1.0, None]


def test_to_plain_frames_series_paths_and_tuples(tmp_path):
    frame = pd.DataFrame({"rate": ["1/3", "9/10"], "auc": [0.8, np.nan], "n": np.array([1, 2])})
    assert to_plain(frame) == [{"rate": "1/3", "auc": 0.8, "n": 1}, {"rate": "9/10", "auc": None, "n": 2}]
    assert to_plain(pd.Series([0.5, np.nan])) == [0.5, None]
    assert to_plain((0.9, 0.1)) == [0.9, 0.1]
    assert to_plain(tmp_path) == str(tmp_path)
    assert to_plain({"x": None, "s": "text"}) == {"x": None, "s": "text"}


def test_write_json_and_read_json_round_trip(tmp_path):
    path = write_json(tmp_path / "m.json", {"auc": np.float64(0.75), "bad": np.nan})
    assert path.read_text().endswith("\n")
    assert read_json(path) == {"auc": 0.75, "bad": None}


@pytest.mark.parametrize("text", ["{half", "", "[1, 2]", "3", "\x00\x01"])
def test_read_json_returns_none_on_garbage(tmp_path, text):
    path = tmp_path / "m.json"
    path.write_text(text)
    assert read_json(path) is None


def test_read_json_returns_none_on_missing_file_and_bad_bytes(tmp_path):
    assert read_json(tmp_path / "missing.json") is None
    assert read_json(tmp_path) is None  # a folder
    (tmp_path / "latin.json").write_bytes(b'{"a": "\xff"}')  # not UTF-8
    assert read_json(tmp_path / "latin.json") is None
