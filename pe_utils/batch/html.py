"""What the batch runner writes besides executed notebooks: offline HTML reports and the index.

Kept apart from planning and running because it is all about pages: nbconvert's HTML export
made to work offline, the error banner of a failed run, and ``index.html`` over every run of a
report folder (its figure columns are :data:`pe_utils.report.schema.INDEX_FIGURES`).

Offline means no ``<script src="http...">`` anywhere: nbconvert's ``lab`` template loads
require.js, MathJax and mermaid from CDNs, and plotly's notebook renderer adds a MathJax CDN tag
to every figure. The export drops all of them. plotly.js itself is inlined once per page by the
notebook renderer's init output (``plotly.io.renderers.default = "plotly_mimetype+notebook"``);
without require.js on the page that bundle sets ``window.Plotly``, which the figures call.
LaTeX in markdown stays as written (``$x$``) since MathJax is not there to typeset it.
"""
from __future__ import annotations

import datetime as _dt
import html
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterable

from ..io import read_json, write_atomic
# the index's columns: the metrics.json keys documented beside the schema, in their order
from ..report.schema import INDEX_FIGURES

_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""


class _ScriptFinder(HTMLParser):
    """Offsets of every ``<script src=...>`` start tag (script bodies are not parsed as HTML)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.found: list[tuple[tuple[int, int], str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        src = dict(attrs).get("src") if tag == "script" else None
        if src:
            self.found.append((self.getpos(), self.get_starttag_text() or "", src))


def _is_external(src: str) -> bool:
    return src.strip().lower().startswith(("http:", "https:", "//"))


def external_scripts(page: str) -> list[str]:
    """The ``src`` of every ``<script>`` in ``page`` that loads from another host."""
    finder = _ScriptFinder()
    finder.feed(page)
    finder.close()
    return [src for _, _, src in finder.found if _is_external(src)]


def strip_external_scripts(page: str) -> tuple[str, int]:
    """Remove every ``<script src="http...">...</script>`` element; return (page, count)."""
    finder = _ScriptFinder()
    finder.feed(page)
    finder.close()
    line_starts = [0]
    for line in page.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    cuts = []
    for (line, col), tag_text, src in finder.found:
        if not _is_external(src):
            continue
        start = line_starts[line - 1] + col
        end = page.find("</script>", start + len(tag_text))
        end = len(page) if end < 0 else end + len("</script>")
        cuts.append((start, end))
    for start, end in reversed(cuts):
        page = page[:start] + "<!-- external script dropped: offline report -->" + page[end:]
    return page, len(cuts)


def _exporter(results_only: bool):
    import jinja2
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"offline.html.j2": _OFFLINE_TEMPLATE})],
        template_file="offline.html.j2",
        embed_images=True,           # markdown images inline too, not only outputs
        exclude_input=results_only,  # the code-hidden variant for readers who want results
        exclude_input_prompt=results_only,
        exclude_output_prompt=results_only,
    )


def export_html(ipynb: str | Path, html_path: str | Path, *, results_only: bool = False,
                title: str | None = None, source_dir: str | Path | None = None) -> int:
    """Export an executed notebook to a self-contained, offline HTML page.

    Args:
        ipynb: the executed notebook.
        html_path: the page to write (atomically).
        results_only: hide code cells' inputs (markdown and outputs stay).
        title: the page's ``<title>``; the notebook's file name by default.
        source_dir: folder of the notebook as written (markdown images are looked up, and
            inlined, from there); the executed notebook's folder by default.

    Returns:
        How many external ``<script src>`` tags were dropped (plotly's MathJax CDN tag, ...).
    """
    import nbformat

    nb = nbformat.read(str(ipynb), as_version=4)
    # widget state would make the template load the widget manager from a CDN; the static
    # outputs the notebooks print next to their widgets are what a report shows
    nb.metadata.pop("widgets", None)
    resources = {"metadata": {"name": title or Path(ipynb).stem,
                              "path": str(source_dir or Path(ipynb).parent)}}
    page, _ = _exporter(results_only).from_notebook_node(nb, resources=resources)
    page, dropped = strip_external_scripts(page)
    write_atomic(html_path, page)
    return dropped


def add_failure_banner(ipynb: str | Path, error: dict, log_name: str) -> None:
    """Put a markdown cell saying why the run failed at the top of the executed notebook.

    papermill already adds a red banner linking to the failing cell when a cell raised; this
    one names the error itself, and covers what papermill does not flag (a dead kernel, a
    cell timeout, a kernel that would not start).
    """
    import nbformat

    path = Path(ipynb)
    if not path.exists():
        nb = nbformat.v4.new_notebook()
    else:
        nb = nbformat.read(str(path), as_version=4)
    nb.cells = [c for c in nb.cells if "batch-error-banner" not in c.metadata.get("tags", [])]
    where = f" in cell [{error['cell']}]" if error.get("cell") is not None else ""
    text = (f'<div style="border:2px solid #c62828; padding:0.6em; background:#ffebee">'
            f"<b>This run failed</b>{where}: <code>{html.escape(str(error.get('ename', 'Error')))}: "
            f"{html.escape(str(error.get('evalue', ''))[:500])}</code><br>"
            f"The full traceback is below (and in <code>{html.escape(log_name)}</code>).</div>")
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["tags"] = ["batch-error-banner"]
    nb.cells.insert(0, cell)
    write_atomic(path, nbformat.writes(nb))


# ---------------------------------------------------------------------------------------------
# the index page

def _fmt_duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return ""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def _fmt_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _link(out: Path, target: str | None, text: str) -> str:
    if not target or not (out / target).exists():
        return ""
    return f'<a href="{html.escape(target)}">{html.escape(text)}</a>'


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.92em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.35em 0.7em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.links, td.num { white-space: nowrap; }
.status { font-weight: 600; padding: 0.1em 0.5em; border-radius: 0.6em; }
.success { background: #e8f5e9; color: #1b5e20; } .failed { background: #ffebee; color: #b71c1c; }
.skipped { background: #fff8e1; color: #8d6e00; } .pending { background: #eceff1; color: #455a64; }
.note { color: #666; font-size: 0.85em; max-width: 40em; }
.summary { border: 1px solid #90caf9; background: #e3f2fd; padding: 0.7em 1em; margin: 1em 0; }
"""


def write_index(out: str | Path, rows: Iterable[dict], *, title: str | None = None) -> Path:
    """Write ``out/index.html`` and ``out/runs.json``: every run, its state and its figures.

    Args:
        out: the batch's report folder.
        rows: one dict per run with ``index`` (or None), ``notebook``, ``run_id``, ``status``
            (success/failed/skipped/pending), ``shown`` (the parameters worth a column),
            ``duration_s``, ``error``/``reason``, ``files`` (paths relative to ``out``),
            ``summary`` (the summary notebook's run), ``outdated`` (its marker predates the
            current code or parameters).

    Returns:
        The index page's path.
    """
    out = Path(out)
    rows = list(rows)
    for row in rows:
        metrics = read_json(out / row["files"]["metrics"]) if row.get("files") else None
        row["metrics"] = metrics or {}
    figures = [k for k in INDEX_FIGURES
               if any(isinstance(r["metrics"].get(k), (int, float)) for r in rows)]
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = title or f"Batch report: {out.name}"
    profiles = sorted({str((r.get("parameters") or {}).get("profile")) for r in rows if r.get("parameters")})
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p>{len(rows)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
             + (f"; profile {html.escape(', '.join(profiles))}" if profiles else "")
             + f". Updated {now}.</p>"]
    for row in rows:
        if row.get("summary") and row["status"] == "success":
            links = " · ".join(x for x in (_link(out, row["files"]["results_html"], "results"),
                                          _link(out, row["files"]["html"], "with code")) if x)
            parts.append(f"<div class='summary'><b>Summary of all runs</b> "
                         f"({html.escape(row['notebook'])}): {links}</div>")
    head = ["#", "notebook", "run", "parameters", "status", "duration",
            *[INDEX_FIGURES[k] for k in figures], "reports"]
    parts.append("<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)
                 + "</tr></thead><tbody>")
    for row in rows:
        files = row.get("files") or {}
        status = row["status"]
        note = ""
        if row.get("error"):
            err = row["error"]
            note = f"{err.get('ename', 'Error')}: {err.get('evalue', '')}"[:300]
        elif row.get("reason"):
            note = row["reason"]
        if (row.get("attempt") or 1) > 1:
            note += f" (after {row['attempt']} attempts: the kernel died)"
        if row.get("outdated"):
            note = (note + " " if note else "") + "(stale: code or parameters changed since)"
        params = ", ".join(f"{k}={v}" for k, v in (row.get("shown") or {}).items())
        reports = " · ".join(x for x in (
            _link(out, files.get("results_html"), "results"), _link(out, files.get("html"), "full"),
            _link(out, files.get("ipynb"), "notebook"), _link(out, files.get("log"), "log"),
            _link(out, files.get("metrics"), "metrics.json")) if x)
        cells = [
            "" if row.get("index") is None else str(row["index"]),
            html.escape(row["notebook"]), html.escape(row["run_id"]), html.escape(params),
            f"<span class='status {html.escape(status)}'>{html.escape(status)}</span>"
            + (f"<div class='note'>{html.escape(note)}</div>" if note else ""),
            _fmt_duration(row.get("duration_s")),
            *[html.escape(_fmt_value(row["metrics"].get(k))) for k in figures],
            reports,
        ]
        numeric = {0, 5, *range(6, 6 + len(figures))}
        parts.append("<tr>" + "".join(
            f"<td class='num'>{c}</td>" if i in numeric else
            f"<td class='links'>{c}</td>" if i == len(cells) - 1 else f"<td>{c}</td>"
            for i, c in enumerate(cells)) + "</tr>")
    parts.append("</tbody></table>")
    parts.append("<p class='note'>results: code hidden · full: with code · log: papermill's cell "
                 "log · each run's artefacts are in the folder next to its report.</p></body></html>")
    write_atomic(out / "index.html", "\n".join(parts))
    machine = [{k: v for k, v in row.items() if k != "metrics"} | {"key_figures": {
        k: row["metrics"][k] for k in figures if k in row["metrics"]}} for row in rows]
    write_atomic(out / "runs.json", json.dumps(machine, indent=1, default=str))
    return out / "index.html"
