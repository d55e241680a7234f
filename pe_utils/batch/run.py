"""Executing runs: a worker process per run (papermill, then the HTML reports), a scheduler.

Each run executes in a worker process of its own, so that its kernel gets its own environment
(``CUDA_VISIBLE_DEVICES`` for ``--devices``) and cwd; the worker writes the run's marker
atomically when it is done, so a killed batch loses only the runs in flight. A kernel that dies
or does not start is retried once; an error in a cell is the run's result.

Two batches over one report folder (a requeued job-array task, a command started twice) never
execute one run at once: a batch takes the run's lock (:func:`pe_utils.batch.state.acquire_lock`)
before deciding anything about it, and passes it to the worker. A run locked by another process
is left alone with its marker and its dependants ("running elsewhere", "not run"; no failure),
or with ``--wait`` waited for and then treated as usual (up to date if the other succeeded).

The module is longer than 300 lines because it holds one idea whole: executing a run, from its
lock to its marker, its reports and their banners.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from pathlib import Path
from typing import IO

from ..io import write_atomic
from .html import add_caps_banner, add_failure_banner, export_html
from .plan import PACKAGE_DIR, Run
from .state import (acquire_lock, base_marker, held_elsewhere, lock_path, read_marker, token_of,
                    up_to_date, write_marker)

RETRY_EXIT = 75          # worker's exit code when the kernel died or would not start
#: outcomes of runs a batch leaves to another process: the run itself, and the runs needing it
ELSEWHERE, NOT_RUN = "running elsewhere", "not run"
LOCK_POLL_S = 1.0        # seconds between two looks at a run another process holds (--wait)


def _describe(exc: BaseException, cell_timeout: float | None) -> tuple[dict, bool]:
    """(error for the marker, whether to retry): retry when the kernel died or did not start."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return {"ename": exc.ename, "evalue": exc.evalue, "cell": exc.exec_count}, False
    if isinstance(exc, CellTimeoutError):
        return {"ename": "CellTimeoutError", "evalue": f"a cell ran longer than {cell_timeout} s "
                "(--cell-timeout)"}, False
    dead = isinstance(exc, DeadKernelError) or (
        isinstance(exc, (RuntimeError, TimeoutError)) and "kernel" in str(exc).lower())
    return {"ename": type(exc).__name__, "evalue": str(exc)[:2000]}, dead


def raise_interrupt(signum, frame):
    """SIGTERM (a scheduler's cancel, ``kill``) ends a run like Ctrl-C: cleanly, kernel included."""
    raise KeyboardInterrupt


def without_iri_grammars() -> None:
    """Start papermill and nbconvert without rfc3987-syntax's grammars.

    nbformat validates notebooks with jsonschema, whose format checkers import rfc3987-syntax
    when it is installed (JupyterLab's event schemas bring it), and that import compiles its IRI
    grammars: about 2 s of every run's worker (``bench/batch_overhead.py --startup``), for an
    ``iri`` format that the notebook schema never uses. Marking the module absent before
    jsonschema loads makes jsonschema skip that one checker; nothing else changes.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)


def worker_main(spec_json: str) -> int:
    """Run one notebook (in a process of its own) and export its reports; write its marker."""
    import logging

    without_iri_grammars()
    import papermill

    spec = json.loads(spec_json)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, force=True,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, raise_interrupt)
    out, marker = Path(spec["out"]), spec["marker"]
    files = marker["files"]
    log = logging.getLogger("pe_utils.batch.cli")
    log.info("run %s, attempt %d, device %s", spec["name"], spec["attempt"], marker["device"])
    log.info("parameters: %s", json.dumps(marker["parameters"]))
    (out / files["output_dir"]).mkdir(parents=True, exist_ok=True)
    (out / files["metrics"]).unlink(missing_ok=True)   # a failed rerun must not show old figures
    started, error, retry = time.time(), None, False
    marker["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        papermill.execute_notebook(spec["notebook"], str(out / files["ipynb"]),
                                   parameters=marker["parameters"], kernel_name="python3",
                                   cwd=spec["workdir"], log_output=True, progress_bar=False,
                                   start_timeout=spec["start_timeout"],
                                   execution_timeout=spec["cell_timeout"])
    except Exception as exc:   # any failure is the run's result, reported below
        error, retry = _describe(exc, spec["cell_timeout"])
        log.error("run failed: %s: %s", error["ename"], error["evalue"])
    duration = time.time() - started
    if marker.get("caps"):
        add_caps_banner(out / files["ipynb"], marker["caps"])
    if error:
        add_failure_banner(out / files["ipynb"], error, Path(files["log"]).name)
    html_error = None
    for variant, results_only in (("html", False), ("results_html", True)):
        try:
            export_html(out / files["ipynb"], out / files[variant], results_only=results_only,
                        title=spec["name"], source_dir=Path(spec["notebook"]).parent)
        except Exception as exc:   # the run's result stands without its page
            html_error = f"{type(exc).__name__}: {exc}"
            log.error("HTML export failed: %s", html_error)
    marker.update(status="failed" if error else "success", error=error, html_error=html_error,
                  token=spec["token"], attempt=spec["attempt"], duration_s=round(duration, 2),
                  finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    write_atomic(out / files["marker"], json.dumps(marker, indent=1, default=str))
    log.info("run %s: %s in %.1f s", spec["name"], marker["status"], duration)
    return 0 if not error else RETRY_EXIT if retry else 1


def worker_env(device: str | None, threads: int | None) -> dict[str, str]:
    """The environment of one run's worker and kernel: its GPU (``CUDA_VISIBLE_DEVICES``), its
    torch threads when runs share the CPU (``OMP_NUM_THREADS``, unless the user set it), and this
    ``pe_utils`` first on the path."""
    env = dict(os.environ)
    if device is not None:
        env["CUDA_VISIBLE_DEVICES"] = device
    if device is None and threads is not None and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    # the kernel imports the very pe_utils whose sources were hashed into the run's key
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_DIR.parent), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Executor:
    """Runs workers (one subprocess per run), tees their output to the run's log."""

    def __init__(self, out: Path, workdir: Path, cell_timeout: float | None, verbose: bool,
                 start_timeout: float = 120, threads: int | None = None):
        self.out, self.workdir, self.verbose, self.threads = out, workdir, verbose, threads
        self.cell_timeout, self.start_timeout = cell_timeout, start_timeout
        self.procs: dict[int, subprocess.Popen] = {}
        self.lock = threading.Lock()

    def run(self, run: Run, device: str | None, lock: IO | None = None) -> dict:
        """Execute ``run`` (retrying once when the kernel died); return its final marker. ``lock``,
        the run's open lock file, goes to the worker: the lock lasts while either process lives."""
        log_path = self.out / run.files()["log"]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        marker: dict = {}
        for attempt in (1, 2):
            token = uuid.uuid4().hex
            spec = {"name": run.name, "notebook": str(run.entry.path.resolve()), "out": str(self.out),
                    "workdir": str(self.workdir), "attempt": attempt, "token": token,
                    "cell_timeout": self.cell_timeout, "start_timeout": self.start_timeout,
                    "marker": base_marker(run, self.out, device)}
            rc = self._spawn(spec, device, log_path, "w" if attempt == 1 else "a", lock)
            marker = read_marker(self.out, run) or {}
            if marker.get("token") != token:   # the worker died before writing its marker
                why = f"interrupted (signal {-rc})" if rc < 0 else f"worker exited with code {rc}"
                marker = {**spec["marker"], "status": "failed", "token": token, "attempt": attempt,
                          "error": {"ename": "WorkerError", "evalue": why}}
                write_marker(self.out, run, marker)
            if rc in (0, 1) or rc < 0:   # done, failed in a cell, or interrupted by a signal
                break
            with open(log_path, "a") as fh:
                fh.write(f"\n*** the kernel died or did not start (exit {rc}); "
                         f"{'retrying' if attempt == 1 else 'giving up'} ***\n\n")
        return marker

    def _spawn(self, spec: dict, device: str | None, log_path: Path, mode: str, lock: IO | None) -> int:
        env = worker_env(device, self.threads)
        cmd = [sys.executable, "-c", "import sys; from pe_utils.batch.run import worker_main; "
               "sys.exit(worker_main(sys.argv[1]))", json.dumps(spec, default=str)]
        with open(log_path, mode, encoding="utf-8") as fh:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env=env, cwd=self.workdir, bufsize=1, errors="replace",
                                    pass_fds=(lock.fileno(),) if lock else ())
            with self.lock:
                self.procs[proc.pid] = proc
            try:
                for line in proc.stdout:
                    fh.write(line)
                    fh.flush()
                    if self.verbose:
                        echo(f"[{spec['name']}] {line.rstrip()}")
                return proc.wait()
            finally:
                with self.lock:
                    self.procs.pop(proc.pid, None)

    def terminate(self) -> None:
        """Stop the workers this executor started (their kernels follow them)."""
        with self.lock:
            procs = list(self.procs.values())
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def echo(text: str) -> None:
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)


def _take_lock(out: Path, run: Run, warned: list) -> IO | bool:
    """The run's open lock file; False: another process holds it; True: no locks here (said once)."""
    try:
        lock = acquire_lock(lock_path(out, run), wait=False)
    except OSError as exc:
        if exc.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise
        if not warned:
            warned.append(exc)
            echo(f"warning: cannot lock runs in {out} ({exc}): two batches over it would not see each other")
        return True
    return False if lock is None else lock


def execute(batch: list[Run], out: Path, executor: Executor, slots: list[str | None], *,
            force: bool = False, wait: bool = False, on_finish=None) -> dict[str, str]:
    """Run ``batch`` in dependency order, ``len(slots)`` at a time, each on its slot's device and
    under its lock; ``wait``: wait for runs another process executes instead of leaving them.

    Returns:
        ``{run name: "success" | "failed" | "skipped" | "up to date" | "running elsewhere" |
        "not run"}`` (the last for a run that needs one running elsewhere).
    """
    from tqdm import tqdm

    outcome: dict[str, str] = {}
    in_batch = {r.name for r in batch}
    pending, running, free = list(batch), {}, list(slots)
    told: set[str] = set()      # runs held elsewhere that --wait said it waits for
    warned: list = []
    bar = tqdm(total=len(batch), unit="run", desc="batch", disable=None, file=sys.stderr)

    def finish(run: Run, status: str, note: str = "") -> None:
        outcome[run.name] = status
        bar.update(1)
        echo(f"[{run.index}] {run.name}: {status}{note}")
        if on_finish:
            on_finish()

    with ThreadPoolExecutor(max_workers=len(slots)) as pool:
        try:
            while pending or running:
                held = []   # what this pass found running elsewhere and waits for
                for run in list(pending):
                    inner = [d for d in run.deps if d.name in in_batch]
                    if any(d.name not in outcome for d in inner):
                        continue
                    away = [d.name for d in inner if outcome[d.name] in (ELSEWHERE, NOT_RUN)]
                    away += [d.name for d in run.deps if d.name not in in_batch and held_elsewhere(out, d)]
                    lock = _take_lock(out, run, warned) if not away else None
                    if (away or lock is False) and wait:
                        held += away or [run.name]
                        continue
                    if away or lock is False:
                        pending.remove(run)
                        if away:
                            finish(run, NOT_RUN, f" (it needs {', '.join(away)}, running elsewhere)")
                        else:
                            finish(run, ELSEWHERE, f" (another process holds {lock_path(out, run)})")
                        continue
                    lock = None if lock is True else lock
                    bad = [d.name for d in inner if outcome[d.name] in ("failed", "skipped")]
                    bad += [d.name for d in run.deps if d.name not in in_batch and token_of(out, d) is None]
                    if bad:
                        pending.remove(run)
                        reason = f"dependency {', '.join(bad)} did not succeed"
                        write_marker(out, run, {**base_marker(run, out, None), "status": "skipped",
                                                 "reason": reason, "token": uuid.uuid4().hex})
                        finish(run, "skipped", f" ({reason})")
                    elif not force and up_to_date(out, run):
                        pending.remove(run)
                        finish(run, "up to date")
                    elif free:
                        pending.remove(run)
                        device = free.pop(0)
                        running[pool.submit(executor.run, run, device, lock)] = (run, device, lock)
                        continue   # the lock stays held until the run ends
                    if lock:
                        lock.close()
                for name in sorted(set(held) - told):
                    echo(f"{name}: running elsewhere; waiting for it (--wait)")
                told |= set(held)
                if not running:
                    if pending and held:
                        time.sleep(LOCK_POLL_S)
                        continue
                    if pending:
                        raise RuntimeError(f"batch stuck before {pending[0].name}")  # plan order bug
                    break
                done, _ = wait_futures(running, timeout=LOCK_POLL_S if held else None,
                                       return_when=FIRST_COMPLETED)
                for future in done:
                    run, device, lock = running.pop(future)
                    if lock:
                        lock.close()
                    free.append(device)
                    marker = future.result()
                    err = marker.get("error") or {}
                    note = f" in {marker.get('duration_s', 0):.0f} s" if marker["status"] == "success" \
                        else f": {err.get('ename')}: {str(err.get('evalue'))[:200]}"
                    finish(run, marker["status"], note)
        except BaseException:
            executor.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            bar.close()
            for _, _, lock in running.values():   # a batch run in-process must not keep locks
                if lock:
                    lock.close()
    return outcome
