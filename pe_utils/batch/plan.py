"""The batch plan: the plan file, its notebooks, where it is found and which folder it runs in.

A plan file (``notebooks/plan.json``) lists notebooks in execution order::

    {"notebooks": [
      {"name": "01_case1_supervised", "case": "case1",
       "grid": {"sampling_rate": ["9/10", "4/5", "3/4", "2/3", "1/2", "1/3", "1/4"]},
       "run_id": "rate-{sampling_rate}"},
      {"name": "03b_finetune", "inputs": {"pretrain_dir": "03a_simclr_pretrain"}},
      {"name": "07_summary", "depends_on": "all", "summary": true}]}

``grid`` gives one run per combination of values (``profiles`` may replace a grid variable's
values, add parameters or ``skip`` the entry for one profile: ``{"demo": {"grid": {"seed": [0]}}}``);
``repeat_over_seeds`` marks a notebook the thesis ran once (its grid has no seed): ``--seeds``
gives it one run per seed, seed 0's being the plan's own run (same run id, same parameters);
``depends_on`` names earlier notebooks (or
``"all"``: every selected run listed before); ``inputs`` passes an upstream run's
``output_dir`` as a parameter (and depends on it); ``parameters`` are fixed values; ``path``
defaults to ``<name>.ipynb`` beside the plan. :func:`pe_utils.batch.expand.plan_runs` turns the
entries into :class:`Run` objects; :mod:`pe_utils.batch.state` says which are up to date.

The plan is data of the repository, not of the package: :func:`find_plan` looks for it in the
current folder, then beside the package of an editable install; an installed package needs
``--plan FILE``.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: where the course's plan lives inside a repository
PLAN_PATH = Path("notebooks") / "plan.json"
_ENTRY_KEYS = {"name", "path", "case", "grid", "depends_on", "inputs", "parameters", "run_id",
               "summary", "description", "profiles", "repeat_over_seeds"}
#: what an entry's ``profiles`` may set per profile: a grid (its variables' values replace the
#: entry's), fixed parameters (added), or ``skip`` (the profile's batch leaves the entry out
#: unless ``--cases`` names it)
_PROFILE_KEYS = {"grid", "parameters", "skip"}
#: profiles that run another profile's plan: the rehearsal runs the thesis's grids (its own
#: entry, where an entry has one, adds to them: the rehearsal's 75-epoch encoder is epoch 1)
PLAN_PROFILE = {"rehearse": "thesis"}


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
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)  # profile -> grid/parameters/skip
    skip: bool = False  # set by for_profile: this profile's batch leaves the entry out by default
    repeat_over_seeds: bool = False  # --seeds adds a seed axis (the thesis ran it once)
    added_seed: bool = False         # set by plan_runs: this batch's seed axis came from --seeds

    @property
    def reads_dataset2(self) -> bool:
        """Cases 2 and 4 read Dataset2's two caches (a ``test_cache_dir`` parameter, or notebook 02
        with ``dataset`` set to a Dataset2): the runner's Dataset1 cache is not theirs to get."""
        return "test_cache_dir" in self.declared or str(self.parameters.get("dataset", "")).startswith("dataset2")

    def for_profile(self, profile: str) -> "Entry":
        """The entry as ``profile`` runs it: the profile's grid values replace the entry's for
        the variables it names (other variables keep theirs), its parameters are added."""
        over = dict(self.profiles.get(PLAN_PROFILE.get(profile, profile), {}))
        if profile in PLAN_PROFILE:   # the profile's own entry refines the plan it runs
            own = self.profiles.get(profile, {})
            over.update({k: {**over.get(k, {}), **own[k]} if isinstance(own[k], dict) else own[k] for k in own})
        return replace(self, grid={**self.grid, **over.get("grid", {})},
                       parameters={**self.parameters, **over.get("parameters", {})},
                       skip=bool(over.get("skip", False)), declared=set(self.declared), added_seed=False)


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
    data: dict[str, str] = field(default_factory=dict)   # cache parameter -> the cache it names
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


def find_plan(cwd: str | Path | None = None) -> Path:
    """The course's plan when none is given: ``notebooks/plan.json`` in ``cwd`` (the repository
    root), else beside the package's folder (an editable install of the checkout).

    Args:
        cwd: the folder to look in first (default: the current directory).

    Raises:
        PlanError: neither exists (an installed package ships no notebooks): pass ``--plan``.
    """
    cwd = Path.cwd() if cwd is None else Path(cwd)
    candidates = [cwd / PLAN_PATH, PACKAGE_DIR.parent / PLAN_PATH]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise PlanError(f"no plan found (looked for {' and '.join(str(c) for c in candidates)}); run from "
                    "the repository root or pass --plan FILE, e.g. --plan <repository>/notebooks/plan.json")


def plan_root(plan: str | Path) -> Path:
    """The repository a plan belongs to, where the notebooks' kernels run.

    Returns:
        The nearest folder above the plan holding ``pyproject.toml``; without one, the plan's
        folder's parent (``<root>/notebooks/plan.json`` -> ``<root>``).
    """
    plan = Path(plan).resolve()
    for folder in plan.parents:
        if (folder / "pyproject.toml").exists():
            return folder
    return plan.parent.parent


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
        repeat = item.get("repeat_over_seeds", False)
        if not isinstance(repeat, bool) or (repeat and "seed" in grid):
            raise PlanError(f"{path}: {name}.repeat_over_seeds must be true or false, and only on an entry "
                            "whose grid has no seed (--seeds narrows a seed grid)")
        profiles = item.get("profiles", {})
        if not isinstance(profiles, dict):
            raise PlanError(f"{path}: {name}.profiles must be {{profile: {{grid, parameters, skip}}}}")
        for prof, over in profiles.items():
            if not isinstance(over, dict) or (bad := set(over) - _PROFILE_KEYS):
                raise PlanError(f"{path}: {name}.profiles.{prof} may hold only {sorted(_PROFILE_KEYS)}"
                                + (f", not {sorted(bad)}" if isinstance(over, dict) else ""))
            for var, values in over.get("grid", {}).items():
                if var not in grid:
                    raise PlanError(f"{path}: {name}.profiles.{prof}.grid sets {var!r}, which the entry's "
                                    "grid lacks (a profile narrows or replaces a grid variable's values)")
                if not isinstance(values, list) or not values:
                    raise PlanError(f"{path}: grid {name}.profiles.{prof}.{var} must be a non-empty list")
        entries.append(Entry(name=name, path=path.parent / item.get("path", f"{name}.ipynb"),
                             case=item.get("case"), grid=grid, depends_on=deps, inputs=inputs,
                             parameters=dict(item.get("parameters", {})), run_id=item.get("run_id"),
                             summary=bool(item.get("summary", False)), profiles=dict(profiles),
                             repeat_over_seeds=repeat))
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
