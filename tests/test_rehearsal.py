"""The rehearsal through the real-data path, each notebook once, at the thesis's shapes.

``batch --rehearse`` (two runs at a time, as ``make rehearse``) narrowed to one rate, one fraction and one seed: the rehearsal's phantom is
written in the RSNA layout with its ``train.csv``, the batch builds the three manifests and
caches from it, and every notebook of the thesis plan runs at the thesis profile's network,
image size and optimisers with the rehearsal's caps (``make rehearse`` runs all 155).
Marked slow: ResNet50 at 128 px on a CPU.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pe_utils.profiles import PROFILES, rehearsal_caps

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("00_preprocessing", "01_case1_supervised", "01_case1_context", "02_case3_pretrain",
             "03_case3_finetune", "03_case3_finetune_75", "02_case3_pretrain_context", "03_case3_finetune_context",
             "02_case4_pretrain", "04_case2_supervised", "05_case4_contrastive", "06_explain", "07_summary")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    out = tmp_path_factory.mktemp("rehearsal") / "reports"
    proc = subprocess.run([sys.executable, "-m", "pe_utils", "batch", "--rehearse", "--out", str(out),
                           "--rates", "1/4", "--fractions", "5", "--seeds", "0", "--runs-per-device", "2"],
                          cwd=REPO, capture_output=True, text=True, timeout=3000)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    markers = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/*.status.json")}
    return out, markers, proc.stdout


def test_every_notebook_ran_once_and_succeeded(rehearsal):
    _, markers, _ = rehearsal
    assert sorted(markers) == sorted(NOTEBOOKS)
    assert {m["status"] for m in markers.values()} == {"success"}


def test_every_run_read_the_caches_built_from_the_rsna_folder(rehearsal):
    out, markers, stdout = rehearsal
    built = REPO / "data" / "rehearse" / "data"
    assert "RSNA folder" in stdout and str(built) in stdout
    for name, marker in markers.items():
        for param, cache in (marker.get("data") or {}).items():
            assert Path(cache).parent == built, (name, param, cache)
    assert markers["05_case4_contrastive"]["data"] == {"cache_dir": str(built / "cache-dataset2"),
                                                       "test_cache_dir": str(built / "cache-test")}
    assert markers["01_case1_supervised"]["data"] == {"cache_dir": str(built / "cache-dataset1")}


def test_the_runs_use_the_thesis_networks_and_state_their_caps(rehearsal):
    out, markers, _ = rehearsal
    case1 = json.loads((out / "01_case1_supervised" / "rate-1_4" / "metrics.json").read_text())
    assert case1["arch"] == PROFILES["thesis"]["case1"]["arch"] == "resnet50"
    caps = rehearsal_caps()
    for name, marker in markers.items():
        assert marker["caps"] == caps, name
        page = next((out / name).glob("*.html")).read_text()
        assert "Rehearsal run: not a result" in page, name
    index = (out / "index.html").read_text()
    assert "Rehearsal: not results" in index and "cache-dataset2" in index


def test_a_finished_run_keeps_its_final_weights_and_no_resume_checkpoint(rehearsal):
    """At most one resumable checkpoint a run while it trains, none left after it (the notebooks
    remove ``last.pt`` unless ``keep_checkpoints``); the final weights stay."""
    out, _, _ = rehearsal
    assert not list(out.rglob("last.pt")), "resume checkpoints left behind"
    assert (out / "01_case1_supervised" / "rate-1_4" / "model.pt").is_file()
    assert (out / "02_case3_pretrain" / "02_case3_pretrain" / "simclr.pt").is_file()
