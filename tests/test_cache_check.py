"""load_cache checks a cache when it opens it: a damaged one is refused with one message naming
the folder, what is wrong and how to make it again (pe_utils.data.cache, pe_utils.data.errors)."""
from __future__ import annotations

import pickle
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from pe_utils.data.cache import load_cache
from pe_utils.data.errors import CacheError


@pytest.fixture
def cache(smoke_cache, tmp_path):
    """A copy of the session's smoke cache (72 images) to damage."""
    return shutil.copytree(smoke_cache, tmp_path / "cache")


def refused(cache) -> str:
    with pytest.raises(CacheError) as info:
        load_cache(cache)
    message = str(info.value)
    assert isinstance(info.value, ValueError) and "\n" not in message
    assert message.startswith(f"the cache {cache} is damaged: ")
    assert f"delete {cache / 'settings.json'} and run `python -m pe_utils preprocess" in message
    return message


def test_a_sound_cache_opens_with_its_images_mapped_not_read(cache):
    loaded = load_cache(cache)
    assert isinstance(loaded.images, np.memmap) and loaded.images.shape[0] == len(loaded.index) == 72


def test_a_truncated_index_is_refused_with_the_counts(cache, synth_root):
    """What a user met: index.csv cut short (a full disk, a copy stopped half-way) failed the run
    later with KeyError: 'instance_number'."""
    text = (cache / "index.csv").read_bytes()
    (cache / "index.csv").write_bytes(text[:len(text) // 2])
    message = refused(cache)
    assert re.search(r"index\.csv has 3\d rows but images\.npy holds 72 images", message)
    assert f"--rsna-root {synth_root.resolve()} --out {cache}" in message   # from settings.json


def test_an_index_cut_in_its_header_names_the_missing_columns(cache):
    (cache / "index.csv").write_bytes((cache / "index.csv").read_bytes()[:60])
    message = refused(cache)
    assert "index.csv lacks the column(s) " in message and "instance_number, path" in message
    assert "(it has SOPInstanceUID, " in message


def test_an_index_without_a_column_is_refused(cache):
    index = pd.read_csv(cache / "index.csv", dtype=str)
    index.drop(columns="instance_number").to_csv(cache / "index.csv", index=False)
    assert "index.csv lacks the column(s) instance_number (it has " in refused(cache)


@pytest.mark.parametrize("name, damage, problem", [
    ("settings.json", lambda p: p.write_text('{"size": 6'), "settings.json is unreadable"),
    ("settings.json", lambda p: p.write_text("[1, 2]"), "settings.json is unreadable"),
    ("images.npy", lambda p: p.unlink(), "images.npy is missing or unreadable"),
    ("images.npy", lambda p: p.write_bytes(p.read_bytes()[:1000]), "images.npy is missing or unreadable"),
    ("index.csv", lambda p: p.write_text(""), "index.csv is missing or unreadable"),
    ("skipped.csv", lambda p: p.unlink(), "skipped.csv is missing or unreadable"),
    ("masks.npy", lambda p: np.save(p, np.zeros((3, 64, 64), np.uint8)), "masks.npy has shape (3, 64, 64)"),
])
def test_each_damaged_file_is_named(cache, name, damage, problem):
    damage(cache / name)
    assert problem in refused(cache)


def test_the_error_survives_a_process_boundary(cache):
    error = CacheError(cache, "index.csv has 1 rows but images.npy holds 2 images", "/data/rsna")
    back = pickle.loads(pickle.dumps(error))
    assert str(back) == str(error) and back.problem == error.problem


def test_the_remedy_the_message_gives_makes_the_same_cache(cache, synth_root):
    """Deleting settings.json and preprocessing again rebuilds the cache, with the same pseudonyms."""
    from pe_utils.data.preprocess import preprocess

    before = pd.read_csv(cache / "index.csv", dtype=str)
    text = (cache / "index.csv").read_bytes()
    (cache / "index.csv").write_bytes(text[:len(text) // 3])
    refused(cache)
    (cache / "settings.json").unlink()
    preprocess(synth_root, cache, size=64, channels="gray", workers=1, progress=False)
    again = load_cache(cache)
    pd.testing.assert_frame_equal(pd.read_csv(cache / "index.csv", dtype=str), before)
    assert again.images.shape[0] == 72
