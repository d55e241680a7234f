"""The batch plan: its runs, what each depends on, its identity, and whether it is up to date.

A plan file (``notebooks/plan.json``) lists notebooks in execution order::

    {"notebooks": [
      {"name": "01_case1_supervised", "case": "case1",
       "grid": {"sampling_rate": ["9/10", "4/5", "3/4", "2/3", "1/2", "1/3", "1/4"]},
       "run_id": "rate-{sampling_rate}"},
      {"name": "03b_finetune", "inputs": {"pretrain_dir": "03a_simclr_pretrain"}},
      {"name": "07_summary", "depends_on": "all", "summary": true}]}

``grid`` gives one run per combination of values; ``depends_on`` names earlier notebooks (or
``"all"``: every selected run listed before); ``inputs`` passes an upstream run's
``output_dir`` as a parameter (and depends on it); ``parameters`` are fixed values; ``path``
defaults to ``<name>.ipynb`` beside the plan. Upstream runs are matched on the grid variables
the two notebooks share, so a per-seed pretraining feeds the fine-tuning runs of its seed.

A run's identity (its ``key``) hashes its parameters (not its output paths), the notebook file,
pe_utils' sources and the cache's settings; its marker also records the token of each upstream
result it used, so rerunning an upstream run makes its dependants stale.
"""
from __future__ import annotations

import ast
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from .html import PLUMBING, read_json, write_atomic

PACKAGE_DIR = Path(__file__).resolve().parents[1]
DEFAULT_PLAN = PACKAGE_DIR.parent / "notebooks" / "plan.json"
#: the runner's own wing: it changes how runs are reported, not what the notebooks
#: compute, so editing it does not make a thesis-sized batch stale
RUNNER_WING = "batch"
#: command-line flags that narrow a grid variable
NARROWING_FLAGS = {"rates": "sampling_rate", "fractions": "train_fraction", "seeds": "seed"}
_ENTRY_KEYS = {"name", "path", "case", "grid", "depends_on", "inputs", "parameters", "run_id",
               "summary", "description"}


class PlanError(ValueError):
    """A plan, a notebook or a command line the runner refuses; the message says which."""


@dataclass
class Entry:
    """One notebook of the plan."""
    name: str
    path: Path
    case: str | None = None
    grid: dict[str, list] = field(default_factory=dict)
    depends_on: list[str] | str = field(default_factory=list)   # notebook names, or "all"
    inputs: dict[str, str] = field(default_factory=dict)         # parameter -> upstream notebook
    parameters: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    summary: bool = False
    declared: set[str] = field(default_factory=set)


@dataclass(eq=False)
class Run:
    """One execution: a notebook with one point of its grid."""
    entry: Entry
    run_id: str
    grid: dict[str, Any]
    selected: bool = True
    deps: list["Run"] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    shown: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    stage: int = 0
    index: int | None = None

    @property
    def name(self) -> str:
        return f"{self.entry.name}/{self.run_id}"

    def files(self) -> dict[str, str]:
        """The run's files, relative to the batch's report folder."""
        base = f"{self.entry.name}/{self.run_id}"
        return {"ipynb": f"{base}.ipynb", "html": f"{base}.html", "log": f"{base}.log",
                "results_html": f"{base}.results.html", "marker": f"{base}.status.json",
                "output_dir": base, "metrics": f"{base}/metrics.json"}


# ---------------------------------------------------------------------------------------------
# the plan

def load_plan(path: str | Path) -> list[Entry]:
    """Read a plan file: ``{"notebooks": [{"name", "grid", "depends_on", "inputs", ...}]}``.

    Notebook paths are relative to the plan's folder (default ``<name>.ipynb``); an entry may
    depend only on entries listed before it, so the list order is an execution order.

    Raises:
        PlanError: unreadable file, unknown key, unknown or later dependency, bad grid.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PlanError(f"cannot read plan {path}: {exc}") from exc
    items = data.get("notebooks") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise PlanError(f"{path}: expected {{'notebooks': [...]}}")
    entries: list[Entry] = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        if not name:
            raise PlanError(f"{path}: every entry needs a 'name'")
        if unknown := set(item) - _ENTRY_KEYS:
            raise PlanError(f"{path}: entry {name!r} has unknown keys {sorted(unknown)}")
        earlier = {e.name for e in entries}
        if name in earlier:
            raise PlanError(f"{path}: notebook {name!r} listed twice")
        deps = item.get("depends_on", [])
        deps = [deps] if isinstance(deps, str) and deps != "all" else deps
        inputs = dict(item.get("inputs", {}))
        for dep in ([] if deps == "all" else list(deps)) + list(inputs.values()):
            if dep not in earlier:
                raise PlanError(f"{path}: {name!r} depends on {dep!r}, which is not listed before it")
        grid = dict(item.get("grid", {}))
        for var, values in grid.items():
            if not isinstance(values, list) or not values:
                raise PlanError(f"{path}: grid {name}.{var} must be a non-empty list")
        entries.append(Entry(name=name, path=path.parent / item.get("path", f"{name}.ipynb"),
                             case=item.get("case"), grid=grid, depends_on=deps, inputs=inputs,
                             parameters=dict(item.get("parameters", {})), run_id=item.get("run_id"),
                             summary=bool(item.get("summary", False))))
    return entries


def notebook_parameters(path: str | Path) -> set[str]:
    """Names assigned in the notebook's single cell tagged ``parameters``.

    Raises:
        PlanError: the notebook is missing, has no or several ``parameters`` cells, or its
            parameters cell has no ``profile``.
    """
    import nbformat

    path = Path(path)
    if not path.exists():
        raise PlanError(f"notebook {path} does not exist (remove it from the plan or write it)")
    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise PlanError(f"notebook {path} needs exactly one code cell tagged 'parameters' (has {len(cells)})")
    try:
        names = {t.id for node in ast.parse(cells[0].source).body
                 if isinstance(node, (ast.Assign, ast.AnnAssign))
                 for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                 if isinstance(t, ast.Name)}
    except SyntaxError:   # IPython syntax in the cell: fall back to "name = " lines
        names = set(re.findall(r"^([A-Za-z_]\w*)\s*[:=]", cells[0].source, flags=re.M))
    if "profile" not in names:
        raise PlanError(f"notebook {path}: its parameters cell has no 'profile' parameter")
    return names


@lru_cache(maxsize=None)
def _package_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if path.relative_to(PACKAGE_DIR).parts[0] != RUNNER_WING:
            digest.update(str(path.relative_to(PACKAGE_DIR)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def code_version(notebook: str | Path) -> str:
    """Hash of the notebook file and of the pe_utils sources it runs against."""
    nb_hash = hashlib.sha256(Path(notebook).read_bytes()).hexdigest()
    return hashlib.sha256(f"{nb_hash}:{_package_hash()}".encode()).hexdigest()[:16]


def _norm(value: Any) -> Any:
    """Comparable form of a grid value: "1/2", "0.5" and "Test50" all compare equal."""
    from ..profiles import SAMPLING_RATES

    text = str(value).strip()
    text = {n.lower(): rate for rate, n in SAMPLING_RATES.items()}.get(text.lower(), text)
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return text


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(value).replace("/", "_"))


def _rel(path: Path, workdir: Path) -> str:
    """``path`` relative to the kernels' cwd when inside it (reports stay movable), else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(workdir))
    except ValueError:
        return str(path)


def _data_fingerprint(cache_dir: Path | None) -> str | None:
    settings = cache_dir / "settings.json" if cache_dir else None
    if settings is None or not settings.exists():
        return None
    return hashlib.sha256(settings.read_bytes()).hexdigest()[:16]


def plan_runs(entries: list[Entry], *, out: Path, workdir: Path, profile: str,
              cache_dir: Path | None = None, rsna_root: Path | None = None,
              extra: dict[str, Any] | None = None, cases: list[str] | None = None,
              narrow: dict[str, list[str]] | None = None,
              stage: int | None = None) -> tuple[list[Run], list[Run]]:
    """Expand the plan into runs, select them, wire dependencies, fill parameters and keys.

    Returns:
        ``(selected, batch)``: every selected run (all stages) and the runs this command works
        on (``selected`` narrowed to ``stage``), the latter numbered by ``index`` in order.

    Raises:
        PlanError: a selector or parameter that matches nothing, a refused notebook, an input
            that does not resolve to exactly one upstream run.
    """
    extra, narrow = dict(extra or {}), {k: v for k, v in (narrow or {}).items() if v}
    if cases:
        for token in cases:
            if not any(token in (e.name, e.case, e.path.stem) or e.name.startswith(f"{token}_")
                       for e in entries):
                raise PlanError(f"--cases {token!r} matches no notebook of the plan "
                                f"({', '.join(e.name for e in entries)})")
    chosen = [e for e in entries if not cases or any(
        t in (e.name, e.case, e.path.stem) or e.name.startswith(f"{t}_") for t in cases)]
    for entry in chosen:
        entry.declared = notebook_parameters(entry.path)
        undeclared = sorted((set(entry.grid) | set(entry.inputs) | set(entry.parameters))
                            - entry.declared)
        if undeclared:
            raise PlanError(f"notebook {entry.path}: the plan sets {undeclared}, "
                            "which its parameters cell lacks")
    if "profile" in extra:
        raise PlanError("give the profile with --profile, not -p profile")
    for name in extra:
        if not any(name in e.declared for e in chosen):
            raise PlanError(f"-p {name}: no selected notebook has a parameter {name!r}")
        if not any(name in e.declared and name not in e.grid for e in chosen):
            flag = next((f"--{f}" for f, var in NARROWING_FLAGS.items() if var == name), "the plan's grid")
            raise PlanError(f"-p {name}: {name} is a grid variable here; choose its values with {flag}")
    for var, values in narrow.items():
        have = {_norm(v) for e in chosen for v in e.grid.get(var, [])}
        if not have:
            raise PlanError(f"no selected notebook has a grid over {var!r}")
        if missing := [v for v in values if _norm(v) not in have]:
            raise PlanError(f"{var} {missing} is not in the plan's grid")

    runs: list[Run] = []
    by_entry: dict[str, list[Run]] = {}
    for entry in entries:
        keys = list(entry.grid)
        for combo in itertools.product(*entry.grid.values()):
            grid = dict(zip(keys, combo))
            if entry.run_id:
                run_id = _slug(entry.run_id.format(**{k: _slug(v) for k, v in grid.items()}))
            else:
                run_id = "-".join(f"{k}={_slug(v)}" for k, v in grid.items()) or entry.name
            selected = entry in chosen and all(
                var not in grid or _norm(grid[var]) in {_norm(v) for v in values}
                for var, values in narrow.items())
            run = Run(entry, run_id, grid, selected)
            runs.append(run)
            by_entry.setdefault(entry.name, []).append(run)
        if len({r.run_id for r in by_entry.get(entry.name, [])}) != len(by_entry.get(entry.name, [])):
            raise PlanError(f"{entry.name}: run_id template {entry.run_id!r} gives the same id twice")

    selected = [r for r in runs if r.selected]
    for pos, run in enumerate(runs):
        if not run.selected:
            continue
        entry = run.entry

        def upstream(name: str) -> list[Run]:
            shared = set(by_entry[name][0].grid) & set(run.grid)
            return [u for u in by_entry[name] if all(u.grid[k] == run.grid[k] for k in shared)]

        if entry.depends_on == "all":
            run.deps = [u for u in runs[:pos] if u.selected and u.entry is not entry]
        else:
            run.deps = [u for name in entry.depends_on for u in upstream(name)]
        params: dict[str, Any] = {"profile": profile}
        plumbing = {"cache_dir": cache_dir, "rsna_root": rsna_root,
                    "output_dir": out / run.files()["output_dir"], "reports_dir": out}
        params.update({k: _rel(v, workdir) for k, v in plumbing.items()
                       if v is not None and k in entry.declared})
        params.update(entry.parameters)
        params.update({k: v for k, v in extra.items() if k in entry.declared and k not in entry.grid})
        params.update(run.grid)
        for param, name in entry.inputs.items():
            ups = upstream(name)
            if len(ups) != 1:
                raise PlanError(f"{run.name}: input {param!r} matches {len(ups)} runs of {name!r}, not one")
            params[param] = _rel(out / ups[0].files()["output_dir"], workdir)
            run.deps += [u for u in ups if u not in run.deps]
        run.parameters = params
        run.shown = {k: v for k, v in params.items() if k not in PLUMBING and k not in entry.inputs}
        run.stage = 1 + max((d.stage for d in run.deps if d.selected), default=-1)
        # where the run writes and reads its upstream's results is not what it computes: leave
        # those paths out so that a moved report folder is still up to date (upstream results
        # enter through their tokens, see up_to_date)
        identity = {k: v for k, v in params.items()
                    if k not in ("output_dir", "reports_dir") and k not in entry.inputs}
        run.key = hashlib.sha256(json.dumps(
            {"parameters": identity, "code": code_version(entry.path),
             "data": _data_fingerprint(cache_dir)},
            sort_keys=True, default=str).encode()).hexdigest()[:16]
    batch = [r for r in selected if stage is None or r.stage == stage]
    for i, run in enumerate(batch):
        run.index = i
    return selected, batch


# ---------------------------------------------------------------------------------------------
# markers

def read_marker(out: Path, run: Run) -> dict | None:
    """The run's marker (``<notebook>/<run-id>.status.json``), or None before its first end."""
    return read_json(out / run.files()["marker"])


def token_of(out: Path, run: Run) -> str | None:
    """The token of the run's successful result (new at each success), else None."""
    marker = read_marker(out, run)
    return marker.get("token") if marker and marker.get("status") == "success" else None


def stale_reason(out: Path, run: Run) -> str | None:
    """Why ``run`` must execute again, or None when its result is up to date.

    Up to date: it succeeded with its current key (parameters, code, data) and on the upstream
    results there now.
    """
    marker = read_marker(out, run)
    if not marker:
        return "not run yet"
    if marker.get("status") != "success":
        return f"{marker.get('status')} last time"
    if marker.get("key") != run.key:
        code_changed = marker.get("code_version") != code_version(run.entry.path)
        return "the notebook or pe_utils changed" if code_changed else "its parameters or data changed"
    for dep in run.deps:
        if (marker.get("upstream") or {}).get(dep.name) != token_of(out, dep):
            return f"{dep.name} has a newer result"
    return None


def up_to_date(out: Path, run: Run) -> bool:
    """Whether ``run`` need not execute again (see :func:`stale_reason`)."""
    return stale_reason(out, run) is None


def base_marker(run: Run, out: Path, device: str | None) -> dict:
    """What a run's marker says before its outcome: identity, parameters, upstream tokens, files."""
    return {"notebook": run.entry.name, "run_id": run.run_id, "key": run.key,
            "code_version": code_version(run.entry.path), "parameters": run.parameters,
            "shown": run.shown, "grid": run.grid, "summary": run.entry.summary, "device": device,
            "upstream": {d.name: token_of(out, d) for d in run.deps}, "files": run.files()}


def write_marker(out: Path, run: Run, marker: dict) -> None:
    """Write the run's marker atomically (a killed batch never leaves half a marker)."""
    write_atomic(out / run.files()["marker"], json.dumps(marker, indent=1, default=str))


def index_rows(out: Path, selected: list[Run]) -> list[dict]:
    """One row per run for :func:`pe_utils.batch.html.write_index`: the selected runs (their
    marker, or ``pending``), then runs of earlier batches found in ``out``."""
    rows, seen = [], set()
    for run in selected:
        marker = read_marker(out, run)
        seen.add(run.name)
        row = dict(marker) if marker else {"notebook": run.entry.name, "run_id": run.run_id,
                                           "status": "pending", "shown": run.shown, "files": run.files(),
                                           "summary": run.entry.summary}
        row["index"] = run.index
        row["outdated"] = bool(marker) and marker.get("key") != run.key
        rows.append(row)
    for path in sorted(out.glob("*/*.status.json")):   # runs of earlier batches in this folder
        marker = read_json(path)
        if marker and f"{marker.get('notebook')}/{marker.get('run_id')}" not in seen:
            rows.append({**marker, "index": None})
    return rows
