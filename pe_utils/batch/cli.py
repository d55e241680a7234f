"""The batch runner: execute the course with papermill, one run per notebook and parameter set.

``python -m pe_utils batch --profile demo --out reports/demo`` reads ``notebooks/plan.json``
(the notebooks in dependency order, the parameter grid of each, what each depends on; found in
the current folder or beside an editable install's package, else give ``--plan FILE``), runs
every run whose result is missing or stale, and writes for each run::

    <out>/<notebook>/<run-id>.ipynb          the executed notebook (partial when it failed)
    <out>/<notebook>/<run-id>.html           offline HTML report, with code
    <out>/<notebook>/<run-id>.results.html   the same without code cells' inputs
    <out>/<notebook>/<run-id>.log            papermill's cell-by-cell log and the cells' output
    <out>/<notebook>/<run-id>.status.json    marker: status, parameters, code version, timing
    <out>/<notebook>/<run-id>/               the run's ``output_dir``: metrics.json, artefacts
    <out>/index.html, <out>/runs.json        every run with its state and key figures

Notebooks run with the plan's repository root as cwd (the folder above it holding
``pyproject.toml``), in the ``python3`` kernel, each in a worker
process of its own (so ``--devices`` can give each kernel its own CUDA_VISIBLE_DEVICES).

Resuming: a run whose marker says ``success`` with the same parameters, the same code version
(hash of the notebook file and of pe_utils' sources, this runner's own modules excepted) and
the same upstream results is skipped; ``--force`` reruns. Markers are written atomically once a
run has finished, so killing a batch loses only the runs in flight. A failed run keeps its
partial notebook and HTML (with the error at the top); runs that depend on it are marked
``skipped``; the command exits 1 and lists the failures. A kernel that dies or does not start is
retried once.

Several nodes (SLURM): stages group the runs so that each run's upstream runs are in earlier
stages; one job array per stage, each task running one run by its index::

    #!/bin/bash
    # pe_batch.sbatch: one run on one GPU. Usage: sbatch --array=0-N pe_batch.sbatch STAGE ARGS...
    #SBATCH --gres=gpu:1
    #SBATCH --cpus-per-task=8
    #SBATCH --time=08:00:00
    stage=$1; shift
    srun .venv/bin/python -m pe_utils batch "$@" --stage "$stage" --only "$SLURM_ARRAY_TASK_ID"

    # submit.sh: one array per stage, each after the previous one, then the index
    ARGS="--profile thesis --cache /scratch/pe-cache --out reports/thesis"
    prev=""; stage=0
    while n=$(.venv/bin/python -m pe_utils batch $ARGS --stage $stage --count) && [ "$n" -gt 0 ]; do
      prev=$(sbatch --parsable ${prev:+--dependency=afterany:$prev} --array=0-$((n - 1)) \\
             pe_batch.sbatch $stage $ARGS)
      stage=$((stage + 1))
    done
    sbatch ${prev:+--dependency=afterany:$prev} \\
           --wrap ".venv/bin/python -m pe_utils batch $ARGS --index-only"

Prepare the cache before submitting (``--cache``), so that array tasks do not preprocess.

This module is the command line; :mod:`pe_utils.batch.plan` reads the plan,
:mod:`pe_utils.batch.expand` expands it into runs, :mod:`pe_utils.batch.state` decides what is
up to date, :mod:`pe_utils.batch.prepare` makes the data, :mod:`pe_utils.batch.run` executes
runs, :mod:`pe_utils.batch.console` prints, and :mod:`pe_utils.batch.html` writes the offline
HTML and the index.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from .console import show, summary, warn_kernel
from .expand import NARROWING_FLAGS, plan_runs
from .params import check_parameters
from .index_page import write_index
from .plan import PlanError, Run, find_plan, load_plan, plan_root
from .data import DataError, describe_data
from .prepare import prepare, unprepared
from .run import Executor, execute, raise_interrupt, without_iri_grammars
from .state import index_rows

__all__ = ["main", "build_parser"]


def _value(text: str) -> Any:
    """A ``-p`` value: None, a bool, an int, a float, a JSON list or object, else the string."""
    if text.strip()[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except ValueError:
            pass
    low = text.strip().lower()
    if low in {"none", "null"}:
        return None
    if low in {"true", "false"}:
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _devices(spec: str | None) -> list[str | None]:
    if not spec:
        return [None]        # one run at a time, with the environment's devices
    if spec == "auto":
        import torch

        return [str(i) for i in range(torch.cuda.device_count())] or [None]
    return [d.strip() for d in spec.split(",") if d.strip()]


def slots(devices: list[str | None], per_device: int) -> list[str | None]:
    """The batch's run slots: each device ``per_device`` times, devices interleaved (so that the
    first runs spread over the GPUs); ``[None]``, the CPU or the environment's devices, likewise."""
    if per_device < 1:
        raise PlanError(f"--runs-per-device {per_device}: give 1 or more")
    return [device for _ in range(per_device) for device in devices]


def cpu_threads(slot_list: list[str | None]) -> int | None:
    """Torch threads for each run when several share the CPU (the cores divided among them);
    None when one run has the CPU, or when the runs are on GPUs."""
    shared = slot_list.count(None)
    if shared < 2:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // shared)


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m pe_utils batch`` argument parser."""
    from ..profiles import PROFILES

    p = argparse.ArgumentParser(prog="python -m pe_utils batch", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="demo", choices=sorted(PROFILES), help="parameter profile (demo)")
    p.add_argument("--rehearse", action="store_true",
                   help="the thesis plan through the real-data path with capped data and epochs "
                        "(--profile rehearse): the check to run before the long batch")
    p.add_argument("--out", help="report folder (default reports/<profile> in the repository)")
    p.add_argument("--plan", help="plan file (default: notebooks/plan.json in the current folder, "
                                  "else in the checkout of an editable install)")
    sel = p.add_argument_group("what to run")
    sel.add_argument("--cases", help="comma-separated notebook names, number prefixes or case keys")
    sel.add_argument("--rates", help="narrow sampling_rate grids, e.g. 1/2,1/4 or Test50")
    sel.add_argument("--fractions", help="narrow train_fraction grids")
    sel.add_argument("--seeds", help="narrow seed grids; Case1 and Case3, which the thesis ran once, run each "
                     "seed given (seed 0 is the plan's own run; each fine-tuning reads its seed's encoder)")
    sel.add_argument("--stage", type=int, help="only runs of this dependency stage (0 = no upstream)")
    sel.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="parameter for every run that declares it (wins over the profile)")
    data = p.add_argument_group("data (default: the profile's phantom; see pe_utils.batch.data)")
    data.add_argument("--rsna-root", help="RSNA-layout folder (train.csv + train/...): the batch builds the "
                                          "manifests of Dataset1, Dataset2 and their test set and a cache of each")
    data.add_argument("--cache-out", help="where --rsna-root's manifests and caches go "
                                          "(default data/rsna-<folder>-<profile>)")
    data.add_argument("--manifest", help="your own Dataset1 manifest (with --rsna-root; default: built from its spec)")
    data.add_argument("--cache", help="Dataset1's preprocessed cache (Cases 1 and 3)")
    data.add_argument("--dataset2-cache", help="Dataset2's preprocessed cache (Cases 2 and 4)")
    data.add_argument("--test-cache", help="the Case2/Case4 test set's cache (patients in neither dataset)")
    act = p.add_argument_group("actions (default: run the batch)")
    act.add_argument("--list", action="store_true", help="print the runs with their index and state")
    act.add_argument("--count", action="store_true", help="print how many runs are selected")
    act.add_argument("--estimate", action="store_true",
                     help="print what the selected runs will cost (images, FLOPs, GPU-hours, wall time on "
                          "--devices, disk) and stop; see pe_utils.batch.estimate")
    act.add_argument("--throughput", type=float, metavar="IMAGES_PER_S",
                     help="for --estimate: training images/s of ResNet50 at 128 px on one of your GPUs "
                          "(bench/train.py prints it; default 3929, fit on one H200)")
    act.add_argument("--dry-run", action="store_true", help="print what would run, with its parameters")
    act.add_argument("--only", type=int, metavar="INDEX", help="execute one run (e.g. a job-array task)")
    act.add_argument("--index-only", action="store_true", help="rebuild index.html from the markers")
    act.add_argument("--prepare-only", action="store_true",
                     help="make the data the selected runs read (manifests, caches, phantoms) and stop: "
                          "a CPU job before any GPU job")
    run = p.add_argument_group("execution")
    run.add_argument("--force", action="store_true", help="rerun runs that are up to date")
    run.add_argument("--wait", action="store_true", help="wait for runs that another batch over the same "
                     "--out is executing (default: leave them to it)")
    run.add_argument("--devices", help="GPU ids, one run at a time on each (0,1,2,3), or 'auto'")
    run.add_argument("--runs-per-device", type=int, default=1, metavar="N",
                     help="runs at once on each device, or on the CPU when no --devices (default 1); "
                          "on the CPU each run gets its share of the cores as torch threads")
    run.add_argument("--cell-timeout", type=float, help="seconds one cell may run (default: no limit)")
    run.add_argument("--workdir", help="kernels' cwd (default: the repository holding the plan)")
    run.add_argument("-v", "--verbose", action="store_true", help="echo every run's log to the console")
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m pe_utils batch ...``; returns 0 when every run succeeded or was up to date."""
    args = build_parser().parse_args(argv)
    if args.rehearse:
        args.profile = "rehearse"
    without_iri_grammars()   # the plan reads notebooks with nbformat: 2 s less a command
    try:
        check_parameters(args.parameter, args.profile, parse=_value)   # -p epochs abc: refused now
        plan = Path(args.plan) if args.plan else find_plan()
        workdir = Path(args.workdir).resolve() if args.workdir else plan_root(plan)
        out = Path(args.out).resolve() if args.out else workdir / "reports" / args.profile
        desc = describe_data(args, args.profile, workdir)
        narrow = {var: _split(getattr(args, flag)) for flag, var in NARROWING_FLAGS.items()}

        def make_plan() -> tuple[list[Run], list[Run]]:
            return plan_runs(load_plan(plan), out=out, workdir=workdir, profile=args.profile, data=desc,
                             extra={k: _value(v) for k, v in args.parameter},
                             cases=_split(args.cases), narrow=narrow, stage=args.stage)

        selected, batch = make_plan()
        desc.check_complete(selected)
        run_slots = slots(_devices(args.devices), args.runs_per_device)
        if args.only is not None and not 0 <= args.only < len(batch):
            raise PlanError(f"--only {args.only}: the selection has runs 0..{len(batch) - 1}")
        if args.only is not None and (missing := unprepared(desc, [batch[args.only]])):
            raise DataError(f"--only {args.only}: its data is not prepared ({'; '.join(missing)}); run the same "
                            "command with --prepare-only first (a CPU job), so that no GPU job makes data")
    except PlanError as exc:   # DataError too
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.count:
        print(len(batch))
        return 0
    if args.estimate:
        from .estimate import show_estimate   # lazily: it builds the networks to count their FLOPs
        return show_estimate(batch, args.profile, args.throughput, len(_devices(args.devices)),
                             reports=workdir / "reports")
    if args.list or args.dry_run:
        return show(batch, out, force=args.force, dry_run=args.dry_run,
                    slots=run_slots, data=desc.describe())
    if args.index_only:
        print(write_index(out, index_rows(out, selected)))
        return 0
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:   # /proc/x, a path under a file, no permission
        print(f"error: cannot create the report folder {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        previous = signal.signal(signal.SIGTERM, raise_interrupt)
    except ValueError:   # not the main thread: leave signals alone
        previous = None
    warn_kernel()
    if args.only is not None:
        batch = [batch[args.only]]
    executor = Executor(out, workdir, args.cell_timeout, args.verbose, threads=cpu_threads(run_slots))
    try:
        try:   # nothing can run without its data: make it (or check the user's) before any run
            prepare(desc, selected if args.prepare_only else batch)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:
            print(f"error: preparing the data failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        if args.prepare_only:
            print(f"data ready: {desc.describe()}")
            return 0
        print(f"data: {desc.describe()}")
        selected, batch = make_plan()   # the keys hash the caches' settings, now written
        if args.only is not None:
            batch = [batch[args.only]]
        outcome = execute(batch, out, executor, run_slots, force=args.force, wait=args.wait,
                          on_finish=lambda: write_index(out, index_rows(out, selected)))
    except KeyboardInterrupt:
        print("interrupted: finished runs are kept; run the same command again to resume", file=sys.stderr)
        return 130
    finally:
        write_index(out, index_rows(out, selected))
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return summary(batch, outcome, out)


if __name__ == "__main__":
    sys.exit(main())
