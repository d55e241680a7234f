"""What the batch runner prints: the run list, the dry run, the end-of-batch summary, warnings.

Kept apart from the command line's parsing so each reads on its own; every function here only
reads the plan and the markers, none executes anything.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..io import read_json
from ..report.quality import quality_checks
from .plan import Run
from .run import ELSEWHERE, NOT_RUN, echo
from .state import held_elsewhere, lock_path, read_marker, stale_reason, token_of


def describe_slots(slots: list[str | None]) -> str:
    """``--dry-run``'s words for the run slots: how many runs at once, and where."""
    per = {device: slots.count(device) for device in slots}
    at_once = "one run at a time" if len(slots) == 1 else f"{len(slots)} runs at a time"
    if list(per) == [None]:
        return at_once + ("" if len(slots) == 1 else ", sharing the CPU's cores (or the environment's GPUs)")
    counts = set(per.values())
    each = "one run" if counts == {1} else f"{counts.pop()} runs" if len(counts) == 1 else "runs"
    return f"{at_once}: {each} at a time on each of {', '.join(str(d) for d in per)}"


def show(batch: list[Run], out: Path, *, force: bool, dry_run: bool, slots: list[str | None],
         data: str) -> int:
    """Print ``--list`` (one line per run: index, stage, state, name, parameters) or ``--dry-run``
    (what would run and why, with every parameter).

    Args:
        batch: the runs of this command; out: the report folder.
        force: ``--force`` (every run would execute).
        dry_run: print the dry run instead of the list.
        slots: the device slots (``[None]``: one run at a time, the environment's devices).
        data: one line saying which data the runs would read (dry run only).

    Returns:
        0.
    """
    will: dict[str, bool] = {}
    why: dict[str, str] = {}
    away: set[str] = set()   # runs another process executes now, and the runs needing them
    for run in batch:
        upstream = next((d.name for d in run.deps if will.get(d.name)), None)
        reason = "--force" if force else stale_reason(out, run) or (
            f"{upstream} will run first" if upstream else None)
        will[run.name], why[run.name] = reason is not None, reason or ""
        if held_elsewhere(out, run) or any(d.name in away or held_elsewhere(out, d) for d in run.deps):
            away.add(run.name)
            will[run.name] = False
    if dry_run:
        devices = describe_slots(slots)
        print(f"data: {data}\nreports: {out}\ndevices: {devices}")
    for run in batch:
        blocked = [d for d in run.deps if d.index is None and token_of(out, d) is None]
        state = "run" if will[run.name] else "done"
        state = "blocked" if blocked and will[run.name] else state
        state = ("running" if held_elsewhere(out, run) else "waits") if run.name in away else state
        if not dry_run:
            shown = " ".join(f"{k}={v}" for k, v in run.shown.items())
            print(f"{run.index:4d}  stage {run.stage}  {state:<7}  {run.name}  {shown}".rstrip())
        else:
            what = {"run": f"would run ({why[run.name]})", "done": "up to date, skipped",
                    "blocked": f"would be skipped: {blocked[0].name if blocked else ''} has not "
                               "succeeded",
                    "running": "running elsewhere now, left alone", "waits": "needs a run that is "
                               "running elsewhere now, left alone"}[state]
            print(f"[{run.index}] {what}: "
                  f"{run.entry.path.name} -> {run.files()['ipynb']}")
            for k, v in run.parameters.items():
                print(f"      {k} = {v!r}")
    if dry_run:
        print(f"{sum(will.values())} of {len(batch)} runs would execute")
    return 0


def summary(batch: list[Run], outcome: dict[str, str], out: Path) -> int:
    """Print the counts of each outcome, each failure's reason, and each run that ran but whose
    model needs a check (:func:`pe_utils.report.quality.quality_checks`: it is no success to read).

    Args:
        batch: the runs; outcome: ``{run name: status}`` from :func:`pe_utils.batch.run.execute`.
        out: the report folder.

    Returns:
        The command's exit status: 1 when a run failed or was skipped, else 0 (runs left to
        another process that executes them are no failure).
    """
    counts = {s: sum(1 for v in outcome.values() if v == s)
              for s in ("success", "up to date", "failed", "skipped", ELSEWHERE, NOT_RUN)}
    print(f"batch: {len(batch)} runs: {counts['success']} succeeded, {counts['up to date']} up to date, "
          f"{counts['failed']} failed, {counts['skipped']} skipped"
          + (f", {counts[ELSEWHERE]} running elsewhere, {counts[NOT_RUN]} not run (they need those)"
             if counts[ELSEWHERE] or counts[NOT_RUN] else ""))
    for run in batch:
        if outcome.get(run.name) in ("failed", "skipped"):
            marker = read_marker(out, run) or {}
            err = marker.get("error") or {}
            why = f"{err.get('ename')}: {str(err.get('evalue'))[:200]}" if err else marker.get("reason", "")
            log = f"  (log: {out / run.files()['log']})" if outcome[run.name] == "failed" else ""
            print(f"  {outcome[run.name]}: {run.name}: {why}{log}")
        elif outcome.get(run.name) == ELSEWHERE:
            print(f"  {ELSEWHERE}: {run.name}: another process holds {lock_path(out, run)}")
        elif outcome.get(run.name) == NOT_RUN:
            needs = [d.name for d in run.deps if outcome.get(d.name) in (ELSEWHERE, NOT_RUN)
                     or d.name not in outcome and held_elsewhere(out, d)] or ["an upstream run"]
            print(f"  {NOT_RUN}: {run.name}: it needs {', '.join(needs)}, running elsewhere")
        elif outcome.get(run.name) in ("success", "up to date"):
            checks = quality_checks(read_json(out / run.files()["metrics"]) or {})
            if checks:
                print(f"  check: {run.name}: ran, but the model is too weak to read: {'; '.join(checks)}")
    if counts[ELSEWHERE] or counts[NOT_RUN]:
        print("  another batch executes some runs: run this command again once it is done, "
              "or with --wait to wait for it")
    print(f"index: {out / 'index.html'}")
    return 1 if counts["failed"] or counts["skipped"] else 0


def warn_kernel() -> None:
    """Warn when the ``python3`` kernel would run another interpreter than this one."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        argv0 = KernelSpecManager().get_kernel_spec("python3").argv[0]
    except Exception as exc:   # no kernelspec at all: papermill will say so per run
        echo(f"warning: no python3 Jupyter kernel ({exc}); run `python -m ipykernel install --sys-prefix`")
        return
    if os.path.basename(argv0) not in {"python", "python3"} and \
            os.path.realpath(argv0) != os.path.realpath(sys.executable):
        echo(f"warning: the python3 kernel runs {argv0}, not {sys.executable}; "
              "run `python -m ipykernel install --sys-prefix --name python3`")
