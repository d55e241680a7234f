"""From a plan to runs: expand each notebook's grid, select, wire dependencies, fill parameters.

Upstream runs are matched on the grid variables the two notebooks share, so a per-seed
pretraining feeds the fine-tuning runs of its seed. Each run gets its parameters (the profile,
the runner's paths, the plan's fixed values, ``-p`` values, its grid point, its inputs), its
dependency ``stage`` and its key (:func:`pe_utils.batch.state.run_key`).
"""
from __future__ import annotations

import itertools
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..paths import resolve_cache_dir
from .data import DATA_PARAMETERS, DataDescription, DataError
from .plan import Entry, PlanError, Run, notebook_parameters
from .state import data_fingerprint, run_key

#: command-line flags that narrow a grid variable
NARROWING_FLAGS = {"rates": "sampling_rate", "fractions": "train_fraction", "seeds": "seed"}
#: parameters every run gets from the runner; not worth a column on the index
PLUMBING = ("profile", "cache_dir", "output_dir", "reports_dir", "rsna_root")


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


def _matches(entry: Entry, token: str) -> bool:
    return token in (entry.name, entry.case, entry.path.stem) or entry.name.startswith(f"{token}_")


def _check_selection(entries: list[Entry], chosen: list[Entry], cases: list[str] | None,
                     extra: dict[str, Any], narrow: dict[str, list[str]]) -> None:
    """Refuse selectors and parameters that match nothing (a typo must not run everything)."""
    for token in cases or []:
        if not any(_matches(e, token) for e in entries):
            raise PlanError(f"--cases {token!r} matches no notebook of the plan "
                            f"({', '.join(e.name for e in entries)})")
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
        gridded = [e for e in chosen if var in e.grid and not (var == "seed" and e.added_seed)]
        have = {_norm(v) for e in gridded for v in e.grid[var]}
        added = [e.name for e in chosen if var == "seed" and e.added_seed]
        if not have and not added:
            raise PlanError(f"no selected notebook has a grid over {var!r}")
        if gridded and (missing := [v for v in values if _norm(v) not in have]):
            more = (f"; --seeds adds seeds only to the notebooks the thesis ran once ({', '.join(added)}): "
                    "select those with --cases" if added else "")
            raise PlanError(f"{var} {missing} is not in the plan's grid of "
                            f"{', '.join(e.name for e in gridded)}{more}")


def _add_seed_axes(entries: list[Entry], seeds: list[str] | None) -> None:
    """``--seeds`` on the notebooks the thesis ran once (``repeat_over_seeds``): one run per seed.

    Seed 0's run is the plan's own (its run id and parameters unchanged, so an earlier batch's
    result still counts); another seed's run id ends in ``-seed<n>``. A fine-tuning whose
    pretraining gets the same axis reads the encoder of its own seed.
    """
    if not seeds:
        return
    try:
        values = sorted({int(str(s).strip()) for s in seeds})
    except ValueError:
        raise PlanError(f"--seeds {','.join(map(str, seeds))}: seeds are whole numbers") from None
    for entry in entries:
        if entry.repeat_over_seeds and "seed" not in entry.grid:
            entry.grid = {**entry.grid, "seed": values}
            entry.added_seed = True


def _grid_parameters(entry: Entry, grid: dict[str, Any]) -> dict[str, Any]:
    """The grid point as parameters: an added seed axis passes no seed for seed 0, whose run is
    the plan's own (every profile's seed for these notebooks is 0: tests/test_batch_seeds.py)."""
    return {k: v for k, v in grid.items() if not (k == "seed" and entry.added_seed and v == 0)}


def plan_runs(entries: list[Entry], *, out: Path, workdir: Path, profile: str,
              data: DataDescription | None = None, extra: dict[str, Any] | None = None, cases: list[str] | None = None,
              narrow: dict[str, list[str]] | None = None,
              stage: int | None = None) -> tuple[list[Run], list[Run]]:
    """Expand the plan into runs, select them, wire dependencies, fill parameters and keys.

    Args:
        entries: the plan (:func:`pe_utils.batch.plan.load_plan`).
        out: the report folder; workdir: the kernels' cwd (paths inside it are passed relative).
        profile: the profile every run gets.
        data: where each dataset's cache is (:func:`pe_utils.batch.data.describe_data`); each
            run's cache parameters name the cache of the dataset it reads. Default: the
            profile's phantom.
        extra: ``-p`` values; cases: ``--cases`` tokens; narrow: grid variable -> kept values.
        stage: keep only runs of this dependency stage in the batch.

    Returns:
        ``(selected, batch)``: every selected run (all stages) and the runs this command works
        on (``selected`` narrowed to ``stage``), the latter numbered by ``index`` in order.

    Raises:
        PlanError: a selector or parameter that matches nothing, a refused notebook, an input
            that does not resolve to exactly one upstream run.
    """
    extra, narrow = dict(extra or {}), {k: v for k, v in (narrow or {}).items() if v}
    if taken := sorted(set(extra) & set(DATA_PARAMETERS)):
        raise DataError(f"-p {taken[0]}: the batch gives each run the cache of the dataset it reads; name "
                        "the data with --rsna-root DIR, or --cache (Dataset1), --dataset2-cache and --test-cache")
    if data is None:
        data = DataDescription("phantom", profile, {"dataset1": resolve_cache_dir(profile)[0]})
    # the profile's grids (plan entries' "profiles"); --rates/--fractions/--seeds narrow after
    entries = [e.for_profile(profile) for e in entries]
    _add_seed_axes(entries, narrow.get("seed"))
    # an entry the profile skips runs only when --cases names it (its name or case, not a prefix)
    chosen = [e for e in entries if (not cases and not e.skip)
              or any(t in (e.name, e.case) if e.skip else _matches(e, t) for t in cases or [])]
    _check_selection(entries, chosen, cases, extra, narrow)

    runs: list[Run] = []
    by_entry: dict[str, list[Run]] = {}
    for entry in entries:
        keys = list(entry.grid)
        for combo in itertools.product(*entry.grid.values()):
            grid = dict(zip(keys, combo))
            own = {k: v for k, v in grid.items() if not (k == "seed" and entry.added_seed)}
            if entry.run_id:
                run_id = _slug(entry.run_id.format(**{k: _slug(v) for k, v in own.items()}))
            else:
                run_id = "-".join(f"{k}={_slug(v)}" for k, v in own.items()) or entry.name
            if entry.added_seed and grid["seed"] != 0:   # seed 0 keeps the plan's run id
                run_id = f"seed{grid['seed']}" if run_id == entry.name else f"{run_id}-seed{grid['seed']}"
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
            # a run without an added seed axis (notebook 06) reads the plan's own run, seed 0
            own = 0 if by_entry[name][0].entry.added_seed and "seed" not in run.grid else None
            return [u for u in by_entry[name] if all(u.grid[k] == run.grid[k] for k in shared)
                    and (own is None or u.grid["seed"] == own)]

        if entry.depends_on == "all":
            run.deps = [u for u in runs[:pos] if u.selected and u.entry is not entry]
        else:
            # a notebook the batch selected counts by its selected runs (a batch narrowed with
            # --rates, --fractions or --seeds does not wait for the runs it left out); one it left
            # out entirely (--cases explain) by all its runs, made by earlier batches
            run.deps = []
            for name in entry.depends_on:
                ups = upstream(name)
                run.deps += [u for u in ups if u.selected] or ups
        params: dict[str, Any] = {"profile": profile}
        plumbing = {"output_dir": out / run.files()["output_dir"], "reports_dir": out}
        params.update({k: _rel(v, workdir) for k, v in plumbing.items() if k in entry.declared})
        params.update(entry.parameters)
        params.update({k: v for k, v in extra.items() if k in entry.declared and k not in entry.grid})
        params.update(_grid_parameters(entry, run.grid))
        caches = data.run_parameters(entry, params)
        params.update({k: _rel(v, workdir) for k, v in caches.items()})
        run.data = {k: str(v) for k, v in caches.items()}
        for param, name in entry.inputs.items():
            ups = upstream(name)
            if len(ups) != 1:
                raise PlanError(f"{run.name}: input {param!r} matches {len(ups)} runs of {name!r}, not one")
            params[param] = _rel(out / ups[0].files()["output_dir"], workdir)
            run.deps += [u for u in ups if u not in run.deps]
        run.parameters = params
        run.shown = {k: v for k, v in {**params, **run.grid}.items() if k not in PLUMBING and k not in entry.inputs}
        run.stage = 1 + max((d.stage for d in run.deps if d.selected), default=-1)
        # where the run writes and reads its upstream's results is not what it computes: leave
        # those paths out so that a moved report folder is still up to date (upstream results
        # enter through their tokens, see pe_utils.batch.state.stale_reason)
        identity = {k: v for k, v in params.items()
                    if k not in ("output_dir", "reports_dir") and k not in entry.inputs}
        key_caches = data.key_caches(entry, params)
        # the first cache's settings as before; any other cache's (the test set) beside the parameters
        identity.update({f"data_{i}": data_fingerprint(c) for i, c in enumerate(key_caches[1:], 1)})
        run.key = run_key(identity, entry.path, key_caches[0] if key_caches else None)
    batch = [r for r in selected if stage is None or r.stage == stage]
    for i, run in enumerate(batch):
        run.index = i
    return selected, batch
