"""Shared fixtures: one small phantom and its cache per test session, and the kill of a running
preprocessing that the resume tests start from."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
def smoke_batch(tmp_path_factory):
    """The whole course through the batch runner at the smoke profile, on its phantom (made in the
    project's data/ on first use): (report folder, console log)."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("reports") / "smoke"
    proc = subprocess.run(
        [sys.executable, "-m", "pe_utils", "batch", "--profile", "smoke", "--out", str(out)],
        capture_output=True, text=True, timeout=1500,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    return out, log


def preprocess_cli(args, **popen):
    """``python -m pe_utils preprocess ARGS`` started from the checkout, one torch thread, output piped."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "pe_utils", "preprocess", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


@pytest.fixture
def killed_preprocess():
    """``kill(args, out, chunks=3)``: run ``python -m pe_utils preprocess ARGS`` (writing to ``out``)
    and SIGKILL it once ``chunks`` chunk records are on disk. Used by the resume tests of
    test_preprocess.py and test_masks.py. A run that ended before the kill fails the test rather
    than skipping it: the resume would then check nothing."""
    import signal
    import time

    def kill(args, out, chunks: int = 3, timeout: float = 60):
        proc = preprocess_cli(args)
        progress, deadline = Path(out) / "progress", time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(progress.glob("chunk_*.json"))) >= chunks:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert not (Path(out) / "settings.json").exists(), "the run finished before it was killed: use smaller chunks"
        assert progress.exists(), "the run was killed before it wrote a chunk"

    return kill


def tiny_cache(folder, patients=("P1", "P2"), key: str = "k1"):
    """A small finished cache: one 4x4 image per patient, pseudonymised with ``key`` (what the
    batch opens and checks before any run; the toy notebooks only pass the folder on)."""
    import json

    import numpy as np
    import pandas as pd

    from pe_utils.data.cache import INDEX_COLUMNS

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "images.npy", np.zeros((len(patients), 4, 4), np.uint8))
    index = pd.DataFrame({c: [f"{c}-{i}" for i in range(len(patients))] for c in INDEX_COLUMNS})
    for c in ("slice_index", "pe_present_on_image", "z", "instance_number"):
        index[c] = range(len(patients))
    index["patient_id"], index["StudyInstanceUID"] = list(patients), [f"S{p}" for p in patients]
    index.to_csv(folder / "index.csv", index=False)
    pd.DataFrame(columns=["path", "reason"]).to_csv(folder / "skipped.csv", index=False)
    (folder / "settings.json").write_text(json.dumps({"pseudonym": {"key_fingerprint": key}}))
    return folder
