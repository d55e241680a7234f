"""A smoke run of every course notebook through the batch runner (their shape: test_notebook_shape.py).

Slow (minutes): the session's ``smoke_batch`` fixture runs the whole plan once at the smoke
profile; every test here reads what it wrote.
"""
from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.slow


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
    # every smoke test set holds both classes (the premise of a defined AUC; 9/10 keeps 6 test
    # slices, 3 positive), so every AUC must be a number in [0, 1]: NaN (null) fails
    assert ((case1.n_test_positive > 0) & (case1.n_test_positive < case1.n_test)).all(), \
        case1[["sampling_rate", "n_test", "n_test_positive"]]
    for column in ("auc", "auc_no_tta"):
        values = [case1.set_index("sampling_rate")[column].get(rate) for rate in SAMPLING_RATES]
        bad = {rate: v for rate, v in zip(SAMPLING_RATES, values)
               if v is None or not math.isfinite(v) or not 0 <= v <= 1}
        assert not bad, f"{column} missing, NaN or out of [0, 1]: {bad}"
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
