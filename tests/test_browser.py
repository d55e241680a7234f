"""The reports and the course in a real browser: Debian's Chromium driven by Playwright.

What a reader sees is checked where they see it: every page of the smoke batch (the index and
each run's reports) opens offline, with no request leaving the machine, no console error and
every plotly figure drawn; every link of the index resolves; the index fits a 1,366 px screen;
the static threshold slider of a Case1 report moves what it shows; no page shows a raw missing
value (``NaN``, ``None``, ``<NA>``) or a table cut with ``...``. Then JupyterLab: notebook
01 at the smoke profile runs to the end and its live explorer answers its sliders.

Playwright launches the system's ``chromium`` (``executable_path``; ``playwright install``
downloads browsers, which these machines cannot). ``make test`` leaves this file out, saying
so, where no chromium is installed; CI installs it first (.ci/run). Run alone:
``python -m pytest tests/test_browser.py``.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
SCREEN = {"width": 1366, "height": 800}   # the smallest laptop screen the reports must fit
# every plotly figure on the page has drawn its svg (an empty <div> is a figure that failed)
ALL_DRAWN = ("() => [...document.querySelectorAll('.plotly-graph-div')]"
             ".every(d => d.querySelector('svg.main-svg'))")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:   # `make test` deselects this file then; run by hand, say what is missing
        pytest.fail("browser tests: install Debian's chromium (apt-get install chromium) to run them")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Visit:
    """One page opened with every request leaving ``allowed`` aborted and recorded."""

    def __init__(self, browser, url: str, allowed: tuple[str, ...] = ("file:", "data:", "blob:", "about:")):
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport=SCREEN)
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.allowed = allowed
        self.page.goto(url, wait_until="load", timeout=120_000)

    def _route(self, route) -> None:
        if route.request.url.startswith(self.allowed):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def problems(self) -> list[str]:
        """Network requests, console errors and undrawn plotly figures, as sentences."""
        try:
            self.page.wait_for_function(ALL_DRAWN, timeout=30_000)
        except Exception:   # the figures left empty are named below
            pass
        empty = self.page.evaluate("() => [...document.querySelectorAll('.plotly-graph-div')]"
                                   ".filter(d => !d.querySelector('svg.main-svg')).length")
        return ([f"network request: {u}" for u in self.blocked] + [f"console error: {e}" for e in self.errors]
                + ([f"{empty} plotly figure(s) not drawn"] if empty else []))

    def close(self) -> None:
        self.context.close()


def _pages(out: Path) -> list[Path]:
    return [out / "index.html"] + sorted(p for p in out.rglob("*.html") if p.name != "index.html")


def test_every_page_opens_offline_with_every_figure_drawn(smoke_batch, browser):
    out, _ = smoke_batch
    pages = _pages(out)
    assert len(pages) >= 1 + 2 * 9   # the index and both reports of each of the 9 runs
    failures = {}
    for path in pages:
        visit = Visit(browser, path.as_uri())
        try:
            figures = visit.page.locator(".plotly-graph-div").count()
            problems = visit.problems()
        finally:
            visit.close()
        if problems:
            failures[str(path.relative_to(out))] = problems
        if path.name.endswith(".results.html") and "01_case1" in str(path):
            assert figures >= 5, path   # a Case1 report is mostly figures: they must be there
    assert failures == {}


#: what a reader must never see in a page's tables and outputs: a raw missing value, a cut table.
#: A table cell is read whole (``None`` as the cell's text; ``...`` ending it, as pandas cuts a long
#: text or a wide table); a line of output text by
#: token (``nan`` in ``val_auc=nan``, ``NaN``, ``<NA>``; ``None`` alone on its line), so that
#: prose ("None of the runs ...", "waiting...") is not taken for a missing value
RAW_CELL = re.compile(r"\bNaN\b|\bnan\b|^None$|<NA>|\bNaT\b|(\.\.\.|…)$")   # ...: a table or text cut
RAW_TEXT = re.compile(r"\bNaN\b|\bnan\b|^None$|<NA>|\bNaT\b")
RAW_VALUES_JS = """() => {
  const cells = [...document.querySelectorAll('.jp-Cell')];
  const where = e => { const c = e.closest('.jp-Cell'); return c ? 'cell ' + cells.indexOf(c) : 'page'; };
  const shown = e => !e.closest('.jp-InputArea') && e.getClientRects().length > 0;
  const found = [];
  for (const td of document.querySelectorAll('td, th'))
    if (shown(td)) found.push([where(td), 'table cell', td.innerText.trim()]);
  for (const out of document.querySelectorAll('.jp-OutputArea-output')) {
    if (!shown(out)) continue;
    const text = out.cloneNode(true);   // tables are read above, figures are drawings
    text.querySelectorAll('table, script, style, .plotly-graph-div').forEach(e => e.remove());
    for (const line of (text.innerText || text.textContent).split('\\n')) found.push([where(out), 'text', line.trim()]);
  }
  return found;
}"""


def raw_values(page) -> list[str]:
    """Every raw missing value or cut table a reader sees on ``page``, as "cell 15: table cell 'NaN'"."""
    hits = []
    for where, kind, text in page.evaluate(RAW_VALUES_JS):
        pattern = RAW_CELL if kind == "table cell" else RAW_TEXT
        if pattern.search(text):
            hits.append(f"{where}: {kind} {text[:120]!r}")
    return list(dict.fromkeys(hits))


def test_no_page_shows_a_raw_missing_value_or_a_cut_table(smoke_batch, browser):
    out, _ = smoke_batch
    pages = _pages(out)   # the index, and each run's results page and whole notebook
    assert len(pages) >= 1 + 2 * 9
    failures = {}
    for path in pages:
        visit = Visit(browser, path.as_uri())
        try:
            hits = raw_values(visit.page)
        finally:
            visit.close()
        if hits:
            failures[str(path.relative_to(out))] = hits
    assert failures == {}


def test_index_links_resolve_and_the_page_fits_the_screen(smoke_batch, browser):
    out, _ = smoke_batch
    visit = Visit(browser, (out / "index.html").as_uri())
    try:
        page = visit.page
        hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => [a.getAttribute('href'), a.href])")
        ids = set(page.eval_on_selector_all("[id]", "es => es.map(e => e.id)"))
        width = page.evaluate("() => document.documentElement.scrollWidth")
        figures = page.locator(".plotly-graph-div").count()
        problems = visit.problems()
    finally:
        visit.close()
    assert problems == []
    assert len(hrefs) >= 9 * 4
    for raw, resolved in hrefs:
        if raw.startswith("#"):
            assert raw[1:] in ids, raw
        else:
            url = urlparse(resolved)
            assert url.scheme == "file" and Path(unquote(url.path)).is_file(), raw
    assert width <= SCREEN["width"], f"the index is {width} px wide: it scrolls sideways at 1,366 px"
    assert figures >= 1   # Case1's summary above its table


def test_static_threshold_slider_moves_the_counts(smoke_batch, browser):
    """Click a step of the exported threshold figure's slider: the title and the bars follow it."""
    out, _ = smoke_batch
    reports = sorted((out / "01_case1_supervised").glob("*.results.html"))
    assert reports
    visit = Visit(browser, reports[0].as_uri())
    try:
        page = visit.page
        page.wait_for_function(ALL_DRAWN, timeout=30_000)
        figure = page.locator(".plotly-graph-div", has=page.locator(".slider-container")).first
        figure.scroll_into_view_if_needed()
        steps = figure.evaluate("d => d.layout.sliders[0].steps.map(s => [s.args[0].y.flat(), s.args[1]['title.text']])")
        before = figure.locator(".gtitle").first.text_content()
        assert before == steps[0][1]
        # the last step whose counts differ from the first, else the last (a smoke model may
        # leave every slice uncertain at every pair: the title still names the new pair)
        k = next((i for i in range(len(steps) - 1, 0, -1) if steps[i][0] != steps[0][0]), len(steps) - 1)
        label = figure.locator("g.slider-label-group text.slider-label").nth(k).bounding_box()
        grip = figure.locator("rect.slider-grip-rect").bounding_box()
        page.mouse.click(label["x"] + label["width"] / 2, grip["y"] + grip["height"] / 2)
        page.wait_for_function("([d, t]) => d.querySelector('.gtitle').textContent !== t",
                               arg=[figure.element_handle(), before], timeout=10_000)
        after = figure.locator(".gtitle").first.text_content()
        bars = [int(t) for t in figure.locator("g.trace.bars text.bartext").all_text_contents()]
        problems = visit.problems()
    finally:
        visit.close()
    assert after == steps[k][1] and after != before
    assert bars == [int(v) for v in steps[k][0]]   # the drawn counts are the step's
    assert problems == []


# --- JupyterLab: the course as a user opens it ----------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(smoke_cache, tmp_path_factory):
    """JupyterLab on 127.0.0.1 with a token, serving notebook 01 at the smoke profile."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook
    import nbformat

    root = tmp_path_factory.mktemp("lab")
    nb = parameterize_notebook(load_notebook_node(str(REPO / "notebooks" / "01_case1_supervised.ipynb")),
                               {"profile": "smoke", "cache_dir": str(smoke_cache), "output_dir": str(root / "out")})
    nbformat.write(nb, root / "case1.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    # a fresh user: no settings, workspace or config of this machine's user leak in
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / "config"), JUPYTERLAB_SETTINGS_DIR=str(root / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(root / "workspaces"))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--port={port}",
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.expose_app_in_browser=True"]   # window.jupyterapp: run cells by command
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(root / "server.log", "w")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise AssertionError("JupyterLab did not start:\n" + (root / "server.log").read_text()[-3000:])
                time.sleep(0.5)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


EXPLORER = "[...document.querySelectorAll('.widget-vbox')].filter(e => e.innerText.includes('Two-threshold')).pop()"


def _explorer_text(page, part: str) -> str:
    """The text of the explorer's HTML line holding ``part`` ("workload": the counts)."""
    return page.locator(".widget-vbox").filter(has_text="Two-threshold triage").last \
        .locator(".widget-html").filter(has_text=part).first.inner_text()


def _wait_change(page, before: str, timeout: int = 30_000) -> str:
    """Wait until the whole explorer (counts, gallery captions) reads other than ``before``."""
    page.wait_for_function(f"t => {EXPLORER}.innerText !== t", arg=before, timeout=timeout)
    page.wait_for_timeout(500)   # the kernel sends the counts, then the gallery: let both land
    return page.evaluate(f"() => {EXPLORER}.innerText")


def _set_slider(page, index: int, value: float) -> None:
    """Type ``value`` into the explorer's ``index``-th slider readout, as a user would."""
    readout = page.locator(".widget-vbox").filter(has_text="Two-threshold triage").last \
        .locator(".widget-slider .widget-readout").nth(index)
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(f"{value:g}")
    page.keyboard.press("Enter")


def test_notebook_runs_in_jupyterlab_and_its_explorer_answers(lab, browser):
    base, token = lab
    local = (f"{base}/", "data:", "blob:", "about:", f"{base.replace('http', 'ws')}/")
    visit = Visit(browser, f"{base}/lab/tree/case1.ipynb?token={token}", allowed=local)
    page = visit.page
    try:
        kernel = ("() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                  " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
                  " return !!k && k.status === 'idle'; }")
        page.wait_for_function(kernel, timeout=120_000)
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        # every code cell has run (its prompt holds a number, "[7]:", no longer "[ ]:" or "[*]:"),
        # or one raised (Run All stops there)
        page.wait_for_function("() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];"
                               " return (p.length && p.every(e => /\\[\\d+\\]/.test(e.textContent)))"
                               " || document.querySelector('.jp-Notebook').innerText.includes('Traceback'); }",
                               timeout=600_000)
        text = page.locator(".jp-Notebook").inner_text()
        assert "Traceback" not in text, text[text.find("Traceback") - 2000:][:4000]
        assert page.locator(".widget-slider").count() == 2   # the live explorer, not the static figure

        # the preset buttons show their whole label ("0.75/0.25", not "0.75/0....")
        cut = page.eval_on_selector_all(".widget-toggle-button", "bs => bs.filter(b => b.scrollWidth > b.clientWidth)"
                                        ".map(b => b.textContent)")
        assert cut == []
        counts, whole = _explorer_text(page, "workload"), page.evaluate(f"() => {EXPLORER}.innerText")
        gallery = whole[whole.index("nearest the thresholds"):]
        # upper to its lowest: every slice above 0.01 becomes sure positive (lower is pushed to 0)
        _set_slider(page, 0, 0.01)
        moved = _wait_change(page, whole)
        assert _explorer_text(page, "workload") != counts
        assert moved[moved.index("nearest the thresholds"):] != gallery   # the gallery follows
        assert "just changed class" in moved
        _set_slider(page, 1, 0.5)   # lower past upper: upper is pushed above it
        _wait_change(page, moved)
        values = page.locator(".widget-vbox").filter(has_text="Two-threshold triage").last \
            .locator(".widget-slider .widget-readout").all_inner_texts()
        assert float(values[1]) == 0.5 and float(values[0]) > 0.5
        problems = visit.problems()
    finally:
        visit.close()
    assert [p for p in problems if not re.search(r"favicon", p)] == []
