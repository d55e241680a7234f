"""pe_utils.batch.index_page: the index says what each number means (no kernel needed).

A report folder is laid out by hand: a preprocessing run, three Case1 runs given in the wrong
order (one whose model failed, as the issue saw it), a failed run and a pending summary. The
page is checked as text here; tests/test_browser.py opens a real one in Chromium.
"""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pe_utils.batch.html import external_scripts
from pe_utils.batch.index_page import write_index

CASE1 = {"notebook": "01_case1_supervised", "pct_training_stage": 91.6667, "n_dataset": 160, "n_test": 13}


def _case1(rate, **figures):
    return CASE1 | {"sampling_rate": rate} | figures


RUNS = [  # (index, run id, status, metrics)
    (3, "rate-1_4", "success", _case1("1/4", auc=0.6961, f1=0.0130, oracle_thresholds=None, oracle_workload_pct=None,
                                      oracle_pct_uncertain=None, practical_thresholds=None,
                                      practical_workload_pct=100.0, practical_error_rate=None,
                                      conformal_workload_pct=30.125, conformal_error_rate=14.9375)),
    (1, "rate-9_10", "success", _case1("9/10", auc=0.981234, f1=0.876543, oracle_thresholds=[0.9, 0.1],
                                       oracle_workload_pct=93.4375, oracle_pct_uncertain=1.875,
                                       practical_thresholds=[0.95, 0.05], practical_workload_pct=94.0,
                                       practical_error_rate=0.0, conformal_workload_pct=92.5,
                                       conformal_error_rate=3.3333)),
    (2, "rate-1_2", "failed", None),
    (0, "00_preprocessing", "success", {"notebook": "00_preprocessing", "n_images": 160}),
    (4, "07_summary", "pending", None),
]


def _row(out: Path, index, run_id, status, metrics):
    notebook = metrics["notebook"] if metrics else ("07_summary" if run_id == "07_summary" else "01_case1_supervised")
    base = f"{notebook}/{run_id}"
    files = {"ipynb": f"{base}.ipynb", "html": f"{base}.html", "log": f"{base}.log",
             "results_html": f"{base}.results.html", "metrics": f"{base}/metrics.json"}
    if metrics:
        (out / base).mkdir(parents=True)
        (out / files["metrics"]).write_text(json.dumps(metrics))
        for key in ("ipynb", "html", "results_html", "log"):
            (out / files[key]).write_text("x")
    row = {"index": index, "notebook": notebook, "run_id": run_id, "status": status, "files": files,
           "shown": {"sampling_rate": metrics["sampling_rate"]} if metrics and "sampling_rate" in metrics else {},
           "duration_s": 65.4, "summary": run_id == "07_summary"}
    if status == "failed":
        row["error"] = {"ename": "ValueError", "evalue": "boom"}
    return row


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    write_index(out, [_row(out, *run) for run in RUNS])
    return out, (out / "index.html").read_text()


class _Cells(HTMLParser):
    """Every table row as a list of cell texts, and every id and href on the page."""

    def __init__(self):
        super().__init__()
        self.rows, self.ids, self.hrefs, self._cell = [], set(), [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a":
            self.hrefs.append(attrs["href"])
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def _parse(text):
    parser = _Cells()
    parser.feed(text)
    return parser


def _run_row(text, run_id):
    return next(r for r in _parse(text).rows if len(r) > 1 and r[1].startswith(run_id))


def test_a_failed_model_shows_check_with_its_reason_not_success(page):
    _, text = page
    row = _run_row(text, "rate-1_4")
    assert row[2].startswith("check") and "AUC 0.70 < 0.75" in row[2] and "F1 0.01 < 0.30" in row[2]
    assert "no error-free oracle pair" in row[2]
    assert "class='status check'" in text and _run_row(text, "rate-9_10")[2] == "success"
    assert "1 check" in text and "1 failed" in text


def test_every_workload_sits_beside_its_error_rate_and_the_training_stage(page):
    _, text = page
    head = [r for r in _parse(text).rows if r and r[0] == "#" and "AUC" in r][0]
    assert head[4:] == ["AUC", "F1", "training stage %", "oracle (uses test labels)", "validation",
                        "conformal", "reports"]
    sub = _parse(text).rows[_parse(text).rows.index(head) + 1]
    assert sub == ["workload %", "errors %"] * 3
    good = _run_row(text, "rate-9_10")
    assert good[4:12] == ["0.98", "0.88", "91.7", "93.4", "0", "94.0", "0.0", "92.5"]
    assert good[12] == "3.3"


def test_missing_values_read_as_words_with_a_footnote_that_resolves(page):
    _, text = page
    bad = _run_row(text, "rate-1_4")
    assert bad[7:13] == ["no error-free pair: 100 %1", "nothing automated1", "no error-free pair: 100 %1",
                         "nothing automated1", "30.1", "14.9"]
    parsed = _parse(text)
    for href in parsed.hrefs:
        if href.startswith("#"):
            assert href[1:] in parsed.ids, href
    assert "no thesis threshold pair left zero errors" in text


def test_rows_in_run_order_with_plain_numbers(page):
    _, text = page
    order = [run.split("/")[1] for run in re.findall(r"data-run='([^']+)'", text)]
    assert order == ["00_preprocessing", "rate-9_10", "rate-1_2", "rate-1_4", "07_summary"]
    assert "np.float64" not in text and "0.981234" not in text
    assert not re.search(r">\d+\.\d{3,}<", text)      # no cell with 3 decimals or more


def test_legend_explains_the_three_choices(page):
    _, text = page
    legend = text[text.index("class='legend'"):]
    for words in ("oracle", "validation", "conformal", "miscoverage", "not the error rate", "uses test labels"):
        assert words in text, words
    assert legend.index("oracle") < legend.index("validation") < legend.index("conformal")


def test_summary_figure_is_inline_and_offline(page):
    out, text = page
    assert external_scripts(text) == []
    assert text.count("plotly.js v") == 1 and text.count("Plotly.newPlot(") == 1   # one case with rates
    assert text.index("Plotly.newPlot(") < text.index("rate-9_10")                  # above the table
    runs = json.loads((out / "runs.json").read_text())
    by_id = {r["run_id"]: r for r in runs}
    assert by_id["rate-1_4"]["checks"][0].startswith("AUC") and by_id["rate-9_10"]["checks"] == []
    assert by_id["rate-9_10"]["key_figures"]["auc"] == 0.981234


def test_links_point_at_files_that_exist(page):
    out, text = page
    for href in _parse(text).hrefs:
        if not href.startswith("#"):
            assert (out / href).exists(), href
