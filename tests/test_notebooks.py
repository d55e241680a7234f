"""The course notebooks: their shape (STYLE.md 11-16), and a smoke run of every one through the batch runner."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    names = [p.stem for p in NOTEBOOKS]
    assert {"00_preprocessing", "01_case1_supervised", "07_summary"} <= set(names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_shape(path):
    nb = nbformat.read(path, as_version=4)
    cells = nb.cells
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    assert tagged[0].cell_type == "code"
    assert any(line.split("=")[0].strip() == "profile" for line in tagged[0].source.splitlines()), \
        f"{path.name}: the parameters cell must define `profile`"
    # goal first, then one imports cell, then the parameters
    assert cells[0].cell_type == "markdown" and "Goal" in cells[0].source
    assert cells[1].cell_type == "code" and "import" in cells[1].source
    assert cells[2] is tagged[0]
    # ends with a summary and questions
    assert cells[-1].cell_type == "markdown" and "Summary" in cells[-1].source
    assert "Questions" in cells[-1].source
    # committed without outputs
    for cell in cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name} carries outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_are_flat_and_commented(path):
    nb = nbformat.read(path, as_version=4)
    source = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", [])).source
    for line in source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert "=" in line and "#" in line, f"{path.name}: parameter without its reason: {line!r}"


def test_smoke_batch_runs_every_notebook_at_every_rate(smoke_batch):
    from pe_utils.profiles import SAMPLING_RATES
    from pe_utils.report.schema import CASE1_REQUIRED, read_metrics

    out, _ = smoke_batch
    runs = read_metrics(out)
    assert set(runs.notebook) >= {"00_preprocessing", "01_case1_supervised"}
    case1 = runs[runs.notebook == "01_case1_supervised"]
    assert sorted(case1.sampling_rate) == sorted(SAMPLING_RATES)
    for key in CASE1_REQUIRED:
        assert key in case1.columns, key
    assert case1.auc.between(0, 1).all() or case1.auc.isna().any()
    assert (case1.pct_training_stage.round(0) >= 25).all()
    # the training share follows the rate: 9/10 keeps more than 1/4
    by_rate = case1.set_index("sampling_rate").pct_training_stage
    assert by_rate["9/10"] > by_rate["1/2"] > by_rate["1/4"]


def test_smoke_batch_reports_are_offline_html(smoke_batch):
    import re

    out, _ = smoke_batch
    pages = sorted(out.rglob("*.html"))
    assert (out / "index.html") in pages
    # one executed notebook, one full and one results-only page per run at least
    assert len(pages) >= 2 * 9
    for page in pages:
        text = page.read_text(errors="replace")
        assert not re.search(r"<script[^>]+src=[\"']?(https?:)?//", text), page
    index = (out / "index.html").read_text()
    for name in ("00_preprocessing", "01_case1_supervised", "07_summary"):
        assert name in index
