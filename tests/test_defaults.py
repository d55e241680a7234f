"""pe_utils.data.defaults: the default phantom is made once, rebuilt when stale; prepare_cache's three ways."""
from __future__ import annotations

import json

import pytest

from pe_utils import profiles
from pe_utils.data import defaults
from pe_utils.data.cache import load_cache
from pe_utils.data.preprocess import preprocess
from pe_utils.phantom import synthetic

TINY = dict(patients=2, slices_per_patient=6, positive_fraction=0.5, seed=0, size=32,
            channels="gray", workers=1)


@pytest.fixture
def tiny(monkeypatch):
    """A 2-patient x 6-slice profile cached at 32 px, and a count of phantom generations."""
    monkeypatch.setitem(profiles.PROFILES, "tiny", {"data": dict(TINY)})
    calls = []
    real = synthetic.generate

    def counting(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, "generate", counting)
    return calls


def _stamp(path):
    return path.stat().st_mtime_ns, path.stat().st_ino


# ----------------------------------------------------------------------------- ensure_default_data
def test_default_data_is_built_once_and_reused(tiny, tmp_path):
    cache_dir = defaults.ensure_default_data("tiny", tmp_path, progress=False)
    assert cache_dir == (tmp_path / "cache-tiny").resolve()
    assert len(tiny) == 1
    cache = load_cache(cache_dir)
    assert cache.images.shape == (12, 32, 32)
    assert cache.index["patient_id"].nunique() == 2
    assert json.loads((tmp_path / "synthetic-tiny" / "phantom.json").read_text())["patients"] == 2
    before = {name: _stamp(cache_dir / name) for name in ("images.npy", "index.csv", "settings.json")}

    again = defaults.ensure_default_data("tiny", tmp_path, progress=False)
    assert again == cache_dir
    assert len(tiny) == 1  # not regenerated
    assert {name: _stamp(cache_dir / name) for name in before} == before  # nor preprocessed


def test_a_new_generator_rebuilds_phantom_and_cache(tiny, tmp_path, monkeypatch):
    cache_dir = defaults.ensure_default_data("tiny", tmp_path, progress=False)
    settings = _stamp(cache_dir / "settings.json")
    monkeypatch.setattr(defaults, "_generator_hash", lambda: "a changed generator")
    defaults.ensure_default_data("tiny", tmp_path, progress=False)
    assert len(tiny) == 2
    # same file names, so only deleting the cache makes it follow the new pixels
    assert _stamp(cache_dir / "settings.json") != settings
    stamp = json.loads((tmp_path / "synthetic-tiny" / "phantom.json").read_text())
    assert stamp["generator_sha256"] == "a changed generator"


def test_new_profile_sizes_rebuild_what_they_change(tiny, tmp_path, monkeypatch):
    cache_dir = defaults.ensure_default_data("tiny", tmp_path, progress=False)
    # the phantom's size: a new phantom and a new cache
    monkeypatch.setitem(profiles.PROFILES["tiny"]["data"], "patients", 3)
    defaults.ensure_default_data("tiny", tmp_path, progress=False)
    assert len(tiny) == 2
    assert load_cache(cache_dir).index["patient_id"].nunique() == 3
    # the cache's side only: the phantom is kept, the cache remade
    monkeypatch.setitem(profiles.PROFILES["tiny"]["data"], "size", 16)
    defaults.ensure_default_data("tiny", tmp_path, progress=False)
    assert len(tiny) == 2
    assert load_cache(cache_dir).images.shape == (18, 16, 16)


def test_an_interrupted_generation_is_redone(tiny, tmp_path, monkeypatch):
    defaults.ensure_default_data("tiny", tmp_path, progress=False)
    monkeypatch.setattr(defaults, "_generator_hash", lambda: "new")
    counting = synthetic.generate  # the fixture's counter

    def killed(*args, **kwargs):
        counting(*args, **kwargs)
        raise KeyboardInterrupt  # after the files, before the stamp

    monkeypatch.setattr(synthetic, "generate", killed)
    with pytest.raises(KeyboardInterrupt):
        defaults.ensure_default_data("tiny", tmp_path, progress=False)
    assert len(tiny) == 2 and not (tmp_path / "synthetic-tiny" / "phantom.json").exists()
    monkeypatch.setattr(synthetic, "generate", counting)
    defaults.ensure_default_data("tiny", tmp_path, progress=False)
    assert len(tiny) == 3


def test_a_folder_that_is_not_a_phantom_is_left_alone(tiny, tmp_path):
    foreign = tmp_path / "synthetic-tiny" / "train" / "mine.dcm"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"someone's data")
    with pytest.raises(FileExistsError):
        defaults.ensure_default_data("tiny", tmp_path, progress=False)
    assert foreign.read_bytes() == b"someone's data"


def test_unknown_profile(tmp_path):
    with pytest.raises(ValueError, match="unknown profile"):
        defaults.ensure_default_data("no-such-profile", tmp_path, progress=False)


# ----------------------------------------------------------------------------- prepare_cache
@pytest.fixture
def tiny_phantom(tiny, tmp_path):
    """An RSNA-layout folder of the tiny profile (made directly, not through the defaults)."""
    root = tmp_path / "rsna"
    synthetic.generate(root, **{k: TINY[k] for k in ("patients", "slices_per_patient",
                                                     "positive_fraction", "seed")})
    tiny.clear()
    return root


def test_prepare_cache_uses_a_given_cache_as_it_is(tiny_phantom, tmp_path, tiny):
    given = tmp_path / "mine"
    preprocess(tiny_phantom, given, size=8, workers=1, progress=False)
    settings = _stamp(given / "settings.json")
    got = defaults.prepare_cache("tiny", cache_dir=given, root=tmp_path / "data", progress=False)
    assert got == given.resolve()
    assert _stamp(given / "settings.json") == settings  # not rebuilt at the profile's 32 px
    assert load_cache(got).images.shape[1:] == (8, 8)
    assert tiny == [] and not (tmp_path / "data").exists()


def test_prepare_cache_preprocesses_an_rsna_folder(tiny_phantom, tmp_path, tiny):
    got = defaults.prepare_cache("tiny", rsna_root=tiny_phantom, root=tmp_path / "data",
                                 progress=False)
    assert got == (tmp_path / "data" / "cache-rsna-tiny").resolve()
    cache = load_cache(got)
    assert cache.images.shape == (12, 32, 32) and cache.settings["channels"] == "gray"
    assert cache.settings["rsna_root"] == str(tiny_phantom.resolve())
    assert tiny == []
    # with a cache folder too, the folder is preprocessed there
    there = defaults.prepare_cache("tiny", cache_dir=tmp_path / "there", rsna_root=tiny_phantom,
                                   progress=False)
    assert there == (tmp_path / "there").resolve()
    columns = ["SOPInstanceUID", "slice_index", "pe_present_on_image"]  # pseudonym keys differ
    assert load_cache(there).index[columns].equals(cache.index[columns])


def test_prepare_cache_with_neither_makes_the_default_data(tiny, tmp_path):
    got = defaults.prepare_cache("tiny", root=tmp_path, progress=False)
    assert got == (tmp_path / "cache-tiny").resolve()
    assert len(tiny) == 1 and load_cache(got).images.shape == (12, 32, 32)


def test_a_given_folder_without_a_cache_is_refused(tmp_path):
    empty = tmp_path / "not-a-cache"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="not-a-cache"):
        defaults.prepare_cache("smoke", cache_dir=empty, progress=False)
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        defaults.prepare_cache("smoke", cache_dir=tmp_path / "no-such-folder", progress=False)
