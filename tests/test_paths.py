"""pe_utils.paths: the one resolver of which cache a run reads, and the default folders."""
from __future__ import annotations

from pathlib import Path

import pytest

import pe_utils
from pe_utils.paths import default_output_dir, default_paths, project_root, resolve_cache_dir


def test_project_root_is_the_checkout():
    root = project_root()
    assert (root / "pyproject.toml").is_file()
    assert Path(pe_utils.__file__).resolve().parent == root / "pe_utils"
    assert default_output_dir("case1", "smoke") == root / "runs" / "case1" / "smoke"


def test_default_paths_sit_side_by_side(tmp_path):
    assert default_paths("demo", tmp_path) == (tmp_path / "synthetic-demo", tmp_path / "cache-demo")
    assert default_paths("smoke") == (project_root() / "data" / "synthetic-smoke",
                                      project_root() / "data" / "cache-smoke")


def test_neither_given_gives_the_phantom_of_the_profile(tmp_path):
    cache, source = resolve_cache_dir("demo", root=tmp_path)
    assert (cache, source) == (tmp_path / "cache-demo", tmp_path / "synthetic-demo")
    cache, source = resolve_cache_dir("thesis")
    assert (cache, source) == (project_root() / "data" / "cache-thesis",
                               project_root() / "data" / "synthetic-thesis")


def test_a_given_cache_wins_and_has_no_source(tmp_path):
    assert resolve_cache_dir("demo", cache_dir=tmp_path / "c", root=tmp_path / "r") == (
        tmp_path / "c", None)


def test_an_rsna_folder_alone_gets_its_own_cache_beside_the_phantoms(tmp_path):
    rsna = tmp_path / "downloads" / "rsna-pe"
    cache, source = resolve_cache_dir("demo", rsna_root=rsna, root=tmp_path / "data")
    assert (cache, source) == (tmp_path / "data" / "cache-rsna-pe-demo", rsna)
    # one cache per profile: the profile sets the size and channels
    assert resolve_cache_dir("thesis", rsna_root=rsna, root=tmp_path / "data")[0] == (
        tmp_path / "data" / "cache-rsna-pe-thesis")
    assert resolve_cache_dir("demo", rsna_root=rsna)[0] == (
        project_root() / "data" / "cache-rsna-pe-demo")


def test_cache_and_rsna_folder_together(tmp_path):
    assert resolve_cache_dir("demo", tmp_path / "c", tmp_path / "rsna", root=tmp_path / "r") == (
        tmp_path / "c", tmp_path / "rsna")


@pytest.mark.parametrize("given", ["cache_dir", "rsna_root", "root"])
def test_relative_paths_come_back_absolute(tmp_path, monkeypatch, given):
    # a notebook (cwd notebooks/) and the batch (cwd the checkout) must agree on one folder
    monkeypatch.chdir(tmp_path)
    cache, source = resolve_cache_dir("demo", **{given: "here/rsna"})
    assert cache.is_absolute() and (source is None or source.is_absolute())
    expected = {"cache_dir": tmp_path / "here" / "rsna",
                "rsna_root": project_root() / "data" / "cache-rsna-demo",
                "root": tmp_path / "here" / "rsna" / "cache-demo"}[given]
    assert cache == expected
    if given == "rsna_root":
        assert source == tmp_path / "here" / "rsna"
