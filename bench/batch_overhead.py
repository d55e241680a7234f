"""Benchmark: what each batch run costs outside its notebook's own work.

Reads a report folder the batch runner wrote (``reports/<profile>`` or ``--out``): per run,
its ``<run>.status.json`` (the marker: ``duration_s`` of papermill's execution, ``started``
and ``finished`` in seconds), its ``<run>.log`` (timestamped lines: the worker's start,
``Executing notebook with kernel``, ``Executing Cell N`` / ``Ending Cell N`` per cell, and
the final ``run ...: success in``) and its executed ``<run>.ipynb`` (papermill's per-cell
``duration``). Prints per run and in total:

- kernel start: worker start -> first cell (papermill, kernel launch);
- between cells: wall time not inside any cell (papermill's bookkeeping, output saving);
- export: last cell's end -> the run's last log line (failure banner, two HTML pages);
- import cell: the notebook's first code cell importing ``pe_utils`` (seconds);
- notebook size and HTML size (MB), plotly.js copies in the notebook.

    python bench/batch_overhead.py reports/smoke
    python bench/batch_overhead.py --startup      # a worker's imports, with and without rfc3987-syntax

``--startup`` times, in fresh interpreters, what every run's worker imports before its kernel
starts (papermill and nbconvert), the way the batch starts it
(:func:`pe_utils.batch.run.without_iri_grammars`) against plain imports, and prints the ratio.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (.*)$")
_CELL = re.compile(r"papermill INFO (Executing|Ending) Cell (\d+)-")


def log_times(log: Path) -> dict:
    """Timestamps of a run's log: first and last line, kernel start, each cell's start/end."""
    first = last = kernel = None
    cells: dict[int, list[float]] = {}
    for line in log.read_text(errors="replace").splitlines():
        m = _STAMP.match(line)
        if not m:
            continue
        t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        first = t if first is None else first
        last = t
        if "Executing notebook with kernel" in m.group(2):
            kernel = t
        c = _CELL.search(line)
        if c:
            cells.setdefault(int(c.group(2)), [t, t])[0 if c.group(1) == "Executing" else 1] = t
    return {"first": first, "last": last, "kernel": kernel, "cells": cells}


def import_cell_seconds(ipynb: Path) -> float | None:
    """papermill's duration of the first code cell that imports from pe_utils."""
    nb = json.loads(ipynb.read_text())
    for cell in nb.get("cells", []):
        src = "".join(cell.get("source", ""))
        if cell.get("cell_type") == "code" and "from pe_utils" in src:
            return (cell.get("metadata", {}).get("papermill") or {}).get("duration")
    return None


def run_figures(marker: Path) -> dict | None:
    """The figures of one run (see the module docstring); ``None`` without its log."""
    status = json.loads(marker.read_text())
    base = marker.parent.parent
    files = status.get("files", {})
    log = base / files.get("log", "")
    if not log.is_file():
        return None
    t = log_times(log)
    cells = sorted(t["cells"].items())
    in_cells = sum(end - start for _, (start, end) in cells)
    span = (cells[-1][1][1] - cells[0][1][0]) if cells else 0.0
    ipynb, page = base / files.get("ipynb", ""), base / files.get("html", "")
    text = ipynb.read_text(errors="replace") if ipynb.is_file() else ""
    return {
        "run": f"{status.get('notebook')}/{status.get('run_id')}",
        "status": status.get("status"),
        "total": (t["last"] - t["first"]) if t["first"] is not None else float("nan"),
        "kernel_start": (cells[0][1][0] - t["first"]) if cells else float("nan"),
        "between_cells": span - in_cells,
        "export": (t["last"] - cells[-1][1][1]) if cells else float("nan"),
        "import_cell": import_cell_seconds(ipynb) if ipynb.is_file() else None,
        "ipynb_mb": len(text.encode()) / 1e6,
        "html_mb": page.stat().st_size / 1e6 if page.is_file() else float("nan"),
        "plotlyjs_copies": text.count("plotly.js v"),
    }


WORKER_IMPORTS = "import papermill, nbconvert"
AS_THE_BATCH = "from pe_utils.batch.run import without_iri_grammars; without_iri_grammars(); "


def startup(repeats: int) -> int:
    """Median seconds of a worker's imports: plain, then as the batch starts them; their ratio."""
    def median(code: str) -> float:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    plain = median(f"import pe_utils.batch.run; {WORKER_IMPORTS}")
    batch = median(AS_THE_BATCH + WORKER_IMPORTS)
    print(f"worker imports, median of {repeats} fresh interpreters: plain {plain:.2f} s, "
          f"as the batch starts them {batch:.2f} s; ratio {batch / plain:.2f} "
          f"({plain - batch:.2f} s saved per run)")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("report", type=Path, nargs="?", help="the batch's report folder, e.g. reports/smoke")
    p.add_argument("--startup", action="store_true", help="time a worker's imports instead (see above)")
    p.add_argument("--repeats", type=int, default=5, help="fresh interpreters per variant for --startup")
    args = p.parse_args(argv)
    if args.startup:
        return startup(args.repeats)
    if args.report is None:
        p.error("give the report folder, or --startup")
    rows = [r for m in sorted(args.report.glob("*/*.status.json")) if (r := run_figures(m))]
    if not rows:
        print(f"no run with a log under {args.report}", file=sys.stderr)
        return 1
    cols = ("total", "kernel_start", "between_cells", "export", "import_cell", "ipynb_mb", "html_mb")
    print(f"{'run':42s} {'status':8s} " + " ".join(f"{c:>13s}" for c in cols) + "  plotly.js")
    for r in rows:
        vals = " ".join(f"{(r[c] if r[c] is not None else float('nan')):13.2f}" for c in cols)
        print(f"{r['run'][:42]:42s} {str(r['status']):8s} {vals}  {r['plotlyjs_copies']}")
    n = len(rows)
    mean = {c: sum(r[c] or 0.0 for r in rows) / n for c in cols}
    print(f"{'mean of ' + str(n) + ' runs':42s} {'':8s} " + " ".join(f"{mean[c]:13.2f}" for c in cols))
    print("seconds (wall) except the sizes (MB); outside cells per run: "
          f"{mean['kernel_start'] + mean['between_cells'] + mean['export']:.2f} s "
          f"of {mean['total']:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
