"""``index.html`` over every run of a report folder, and ``runs.json`` for machines.

Apart from :mod:`pe_utils.batch.html` (the notebooks' own pages) because the index says what
each number means, which is a page of its own: one section per notebook in run order, a
small summary figure of each case with sampling rates (workload and AUC by rate, inline
plotly, offline), then its table. Columns, their meaning, the words of a missing value and
the "check" status of a weak model come from :mod:`pe_utils.report.quality`. The page fits a
1,366 px screen: figure columns wrap their headers and words instead of widening the table.
"""
from __future__ import annotations

import datetime as _dt
import html
import itertools
import json
from pathlib import Path
from typing import Any, Iterable

from ..io import read_json, write_atomic
from ..profiles import SAMPLING_RATES
from ..report.quality import (AUC_FLOOR, F1_FLOOR, FOOTNOTES, METHOD_NOTES, RUN_COLUMNS, IndexColumn,
                              cell_text, quality_checks)

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1em 1.5em; color: #222; }
h2 { margin: 1.4em 0 0.3em; font-size: 1.2em; }
table { border-collapse: collapse; font-size: 0.85em; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.45em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; } th.group { text-align: center; border-left: 2px solid #fff; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.words { color: #6d4c41; font-size: 0.9em; text-align: right; max-width: 8em; }
td.links { max-width: 10em; }
.status { font-weight: 600; padding: 0.1em 0.5em; border-radius: 0.6em; white-space: nowrap; }
.success { background: #e8f5e9; color: #1b5e20; } .failed { background: #ffebee; color: #b71c1c; }
.skipped { background: #fff8e1; color: #8d6e00; } .pending { background: #eceff1; color: #455a64; }
.check { background: #ffe0b2; color: #8a3a00; border: 1px solid #e65100; }
.note, .params, .notes { color: #666; font-size: 0.85em; } td .note { max-width: 24em; }
.params { white-space: nowrap; }
.summary { border: 1px solid #90caf9; background: #e3f2fd; padding: 0.6em 1em; margin: 1em 0; }
.rehearsal { border: 2px solid #ef6c00; background: #fff3e0; padding: 0.6em 1em; margin: 1em 0; }
.legend { border: 1px solid #ddd; background: #fafafa; padding: 0.5em 1em; font-size: 0.88em; max-width: 75em; }
.legend dt { font-weight: 600; float: left; clear: left; width: 10em; } .legend dd { margin: 0 0 0.3em 10.5em; }
.figure { max-width: 70em; }
"""


def _fmt_duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return ""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def _link(out: Path, target: str | None, text: str) -> str:
    if not target or not (out / target).exists():
        return ""
    return f'<a href="{html.escape(target)}">{html.escape(text)}</a>'


def _run_order(row: dict) -> tuple:
    """Selected runs by their index, then earlier batches' runs by sampling rate (9/10 ... 1/4)."""
    rate = (row.get("shown") or row.get("parameters") or {}).get("sampling_rate")
    rates = list(SAMPLING_RATES)
    return (row.get("index") is None, row.get("index") or 0,
            rates.index(rate) if rate in rates else len(rates), str(row.get("run_id")))


def _legend() -> str:
    items = {"oracle": METHOD_NOTES["oracle"], "validation": METHOD_NOTES["validation"],
             "conformal": METHOD_NOTES["conformal"],
             "training stage %": next(c.meaning for c in RUN_COLUMNS if c.key == "pct_training_stage"),
             "workload %": next(c.meaning for c in RUN_COLUMNS if c.key == "oracle_workload_pct"),
             "errors %": "% of the sure test predictions (the slices labelled automatically) that are wrong; "
                         "read it beside each workload: a low workload with many errors is no saving.",
             "check": f"the notebook ran to the end, but its model is too weak for its figures to say "
                      f"anything about its sampling rate (AUC under {AUC_FLOOR:g}, F1 under {F1_FLOOR:g}, "
                      "or no error-free oracle pair); the reason is under the badge."}
    return ("<div class='legend'><b>How to read the tables</b><dl>"
            + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in items.items())
            + "</dl></div>")


def _overview(rows: list[dict]) -> str:
    """The case's summary figure (workload and AUC by rate) as an HTML fragment, or ""."""
    ran = [r for r in rows if r["status"] == "success" and "sampling_rate" in r["metrics"]]
    if not ran or not any("auc" in r["metrics"] for r in ran):
        return ""
    import pandas as pd
    import plotly.io as pio

    from ..report.figures_triage import rate_overview

    keys = ("auc", "f1", "oracle_workload_pct", "practical_workload_pct", "conformal_workload_pct")
    df = pd.DataFrame([{"sampling_rate": str(r["metrics"]["sampling_rate"]), "check": "; ".join(r["checks"]),
                        **{k: r["metrics"][k] for k in keys if k in r["metrics"]}} for r in ran])
    df = df.astype({k: float for k in keys if k in df}, errors="ignore")
    fig = rate_overview(df)
    return "<div class='figure'>" + pio.to_html(fig, include_plotlyjs=False, full_html=False,
                                                  config={"displaylogo": False}) + "</div>"


def _header(columns: list[IndexColumn]) -> str:
    """Two header rows: a group (oracle, validation, conformal) over its workload and errors."""
    top = [f"<th rowspan='2'>{h}</th>" for h in ("#", "run", "status", "time")]
    sub = []
    for group, cols in itertools.groupby(columns, key=lambda c: c.group):
        cols = list(cols)
        if group:
            top.append(f"<th class='group' colspan='{len(cols)}'>{html.escape(group)}</th>")
        for c in cols:
            cell = f"title='{html.escape(c.meaning)}'>{html.escape(c.label)}</th>"
            (sub if group else top).append(f"<th {cell}" if group else f"<th rowspan='2' {cell}")
    top.append("<th rowspan='2'>reports</th>")
    return f"<thead><tr>{''.join(top)}</tr>" + (f"<tr>{''.join(sub)}</tr>" if sub else "") + "</thead>"


def _status_cell(row: dict) -> str:
    status = "check" if row["status"] == "success" and row["checks"] else row["status"]
    note = ""
    if row.get("error"):
        note = f"{row['error'].get('ename', 'Error')}: {row['error'].get('evalue', '')}"[:300]
    elif row.get("reason"):
        note = row["reason"]
    if row["checks"]:
        note = "model too weak to read: " + "; ".join(row["checks"])
    if (row.get("attempt") or 1) > 1:
        note += f" (after {row['attempt']} attempts: the kernel died)"
    if row.get("outdated"):
        note = (note + " " if note else "") + "(stale: code or parameters changed since)"
    return (f"<span class='status {html.escape(status)}'>{html.escape(status)}</span>"
            + (f"<div class='note'>{html.escape(note)}</div>" if note else ""))


def _table(out: Path, rows: list[dict], notes: list[str]) -> str:
    columns = [c for c in RUN_COLUMNS if any(c.key in r["metrics"] for r in rows)]
    lines = ["<table>", _header(columns), "<tbody>"]
    for row in rows:
        files = row.get("files") or {}
        params = ", ".join(f"{k}={v}" for k, v in (row.get("shown") or {}).items())
        cells = [f"<td class='num'>{'' if row.get('index') is None else row['index']}</td>",
                 f"<td>{html.escape(row['run_id'])}"
                 + (f"<div class='params'>{html.escape(params)}</div>" if params else "") + "</td>",
                 f"<td>{_status_cell(row)}</td>",
                 f"<td class='num'>{_fmt_duration(row.get('duration_s'))}</td>"]
        for column in columns:
            if column.key not in row["metrics"]:
                cells.append("<td></td>")
                continue
            text, note = cell_text(column, row["metrics"])
            mark = ""
            if note:
                if note not in notes:
                    notes.append(note)
                mark = f"<sup><a href='#note-{note}'>{notes.index(note) + 1}</a></sup>"
            cells.append(f"<td class='{'words' if note else 'num'}'>{html.escape(text)}{mark}</td>")
        links = " · ".join(x for x in (
            _link(out, files.get("results_html"), "results"), _link(out, files.get("html"), "full"),
            _link(out, files.get("ipynb"), "notebook"), _link(out, files.get("log"), "log"),
            _link(out, files.get("metrics"), "metrics.json")) if x)
        cells.append(f"<td class='links'>{links}</td>")
        lines.append(f"<tr data-run='{html.escape(row['notebook'])}/{html.escape(row['run_id'])}'>"
                     + "".join(cells) + "</tr>")
    return "\n".join(lines + ["</tbody></table>"])


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
        The index page's path. A successful run whose figures fail
        :func:`pe_utils.report.quality.quality_checks` shows as "check", with the reasons
        (``runs.json`` has them under ``checks``).
    """
    out = Path(out)
    rows = sorted(rows, key=_run_order)
    for row in rows:
        row["metrics"] = (read_json(out / row["files"]["metrics"]) if row.get("files") else None) or {}
        row["checks"] = quality_checks(row["metrics"]) if row["status"] == "success" else []
    counts: dict[str, int] = {}
    for row in rows:
        status = "check" if row["checks"] else row["status"]
        counts[status] = counts.get(status, 0) + 1
    sections: dict[str, list[dict]] = {}
    for row in rows:
        sections.setdefault(row["notebook"], []).append(row)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = title or f"Batch report: {out.name}"
    profiles = sorted({str((r.get("parameters") or {}).get("profile")) for r in rows if r.get("parameters")})
    body, notes, figures = [], [], False
    for notebook, part in sections.items():
        overview = _overview(part)
        figures = figures or bool(overview)
        body += [f"<h2 id='{html.escape(notebook)}'>{html.escape(notebook)}</h2>", overview,
                 _table(out, part, notes)]
    head = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style>"]
    if figures:  # plotly.js once, inline: the page works offline, as the reports do
        from plotly.offline import get_plotlyjs
        head.append(f"<script type='text/javascript'>{get_plotlyjs()}</script>")
    parts = head + ["</head><body>", f"<h1>{html.escape(title)}</h1>",
                    f"<p>{len(rows)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                    + (f"; profile {html.escape(', '.join(profiles))}" if profiles else "")
                    + f". Updated {now}.</p>"]
    caps = next((r["caps"] for r in rows if r.get("caps")), None)
    if caps:
        parts.append("<div class='rehearsal'><b>Rehearsal: not results.</b> The thesis plan with "
                     f"{len(caps)} settings capped (each run's page lists them): "
                     + html.escape("; ".join(caps)) + "</div>")
    data = sorted({f"{k} {v}" for r in rows for k, v in (r.get("data") or {}).items()})
    if data:
        parts.append("<p class='note'>Data read: " + html.escape("; ".join(data)) + "</p>")
    for row in rows:
        if row.get("summary") and row["status"] == "success":
            links = " · ".join(x for x in (_link(out, row["files"]["results_html"], "results"),
                                          _link(out, row["files"]["html"], "with code")) if x)
            parts.append(f"<div class='summary'><b>Summary of all runs</b> "
                         f"({html.escape(row['notebook'])}): {links}</div>")
    parts += [_legend(), *body]
    if notes:
        parts.append("<ol class='notes'>" + "".join(
            f"<li id='note-{n}'>{html.escape(FOOTNOTES[n])}</li>" for n in notes) + "</ol>")
    parts.append("<p class='note'>results: code hidden · full: with code · log: papermill's cell log · "
                 "each run's artefacts are in the folder next to its report.</p></body></html>")
    write_atomic(out / "index.html", "\n".join(p for p in parts if p))
    machine = [{k: v for k, v in row.items() if k != "metrics"} | {"key_figures": {
        c.key: row["metrics"][c.key] for c in RUN_COLUMNS if c.key in row["metrics"]}} for row in rows]
    write_atomic(out / "runs.json", json.dumps(machine, indent=1, default=str))
    return out / "index.html"
