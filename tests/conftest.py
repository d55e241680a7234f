"""Shared fixtures: one small phantom and its cache per test session."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A tiny RSNA-layout phantom (6 patients x 12 slices), generated once per session."""
    from pe_utils.phantom.synthetic import generate

    root = tmp_path_factory.mktemp("synth")
    generate(root, patients=6, slices_per_patient=12, positive_fraction=0.5, seed=0)
    return root


@pytest.fixture(scope="session")
def smoke_cache(synth_root, tmp_path_factory):
    """The phantom above preprocessed to a 64x64 gray cache."""
    from pe_utils.data.preprocess import preprocess

    out = tmp_path_factory.mktemp("cache") / "cache"
    preprocess(synth_root, out, size=64, channels="gray", workers=1, progress=False)
    return out


@pytest.fixture(scope="session")
def smoke_batch(smoke_cache, tmp_path_factory):
    """The whole course through the batch runner at the smoke profile: (report folder, console log)."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("reports") / "smoke"
    proc = subprocess.run(
        [sys.executable, "-m", "pe_utils", "batch", "--profile", "smoke", "--out", str(out),
         "--cache", str(smoke_cache)],
        capture_output=True, text=True, timeout=1500,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    return out, log
