"""A run's state: its identity (key, code version), its marker on disk, whether it is up to date.

A run's identity (its ``key``) hashes its parameters (not its output paths), the notebook file,
pe_utils' sources and the cache's settings; its marker (``<notebook>/<run-id>.status.json``)
also records the token of each upstream result it used, so rerunning an upstream run makes its
dependants stale. Markers are written atomically: a killed batch never leaves half of one.

While a process executes a run it holds the run's lock, an ``flock`` on ``<notebook>/<run-id>.lock``
(:func:`acquire_lock`), so that two batches over one report folder never execute the same run at
once. The operating system lets go of the lock when the last process holding it ends, killed or
not: a crashed batch leaves an empty file behind, never a run locked for good.
"""
from __future__ import annotations

import fcntl
import json
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from ..io import read_json, sha256_file, sha256_text, write_atomic
from ..profiles import rehearsal_caps
from .plan import PACKAGE_DIR, Run

#: the runner's own wing: it changes how runs are reported, not what the notebooks
#: compute, so editing it does not make a thesis-sized batch stale
RUNNER_WING = "batch"


@lru_cache(maxsize=None)
def package_hash(root: Path = PACKAGE_DIR) -> str:
    """Hash of every ``*.py`` under ``root`` (path and content), the runner's wing excepted.

    Args:
        root: the package folder (pe_utils itself by default; a copy in tests).

    Returns:
        A hex sha256 that changes when a source outside ``root/batch`` is edited, added,
        removed or renamed.
    """
    sources = sorted(p for p in Path(root).rglob("*.py")
                     if p.relative_to(root).parts[0] != RUNNER_WING)
    return sha256_text("\n".join(f"{p.relative_to(root).as_posix()}\0{sha256_file(p)}"
                                 for p in sources))


def code_version(notebook: str | Path) -> str:
    """Hash of the notebook file and of the pe_utils sources it runs against (16 hex digits)."""
    return sha256_text(f"{sha256_file(notebook)}:{package_hash()}")[:16]


def data_fingerprint(cache_dir: Path | None) -> str | None:
    """Hash of the cache's ``settings.json`` (16 hex digits), None when there is none yet."""
    settings = cache_dir / "settings.json" if cache_dir else None
    if settings is None or not settings.exists():
        return None
    return sha256_file(settings)[:16]


def run_key(identity: dict[str, Any], notebook: str | Path, cache_dir: Path | None) -> str:
    """A run's key: its parameters (``identity``, without output paths), code and data hashed."""
    return sha256_text(json.dumps(
        {"parameters": identity, "code": code_version(notebook), "data": data_fingerprint(cache_dir)},
        sort_keys=True, default=str))[:16]


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
            "data": run.data, "caps": rehearsal_caps() if run.parameters.get("profile") == "rehearse" else None,
            "upstream": {d.name: token_of(out, d) for d in run.deps}, "files": run.files()}


def write_marker(out: Path, run: Run, marker: dict) -> None:
    """Write the run's marker atomically (a killed batch never leaves half a marker)."""
    write_atomic(out / run.files()["marker"], json.dumps(marker, indent=1, default=str))


def index_rows(out: Path, selected: list[Run]) -> list[dict]:
    """One row per run for :func:`pe_utils.batch.index_page.write_index`: the selected runs (their
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


def lock_path(out: Path, run: Run) -> Path:
    """The run's lock file, ``<notebook>/<run-id>.lock`` beside its marker."""
    return out / run.files()["marker"].replace(".status.json", ".lock")


def acquire_lock(path: Path, wait: bool = True) -> IO | None:
    """An exclusive ``flock`` on ``path`` (made, with its folder, when missing).

    The lock is held while the returned file is open, and by every child process it is passed
    to (``pass_fds``); the operating system drops it when the last of them ends, killed or not.

    Args:
        path: the lock file.
        wait: wait for a process that holds it; False: return None at once instead.

    Returns:
        The open lock file (close it to let go), or None when ``wait`` is False and another
        process holds the lock.

    Raises:
        OSError: the file system does not lock (some network file systems), or ``path`` cannot
            be made.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        fh.close()
        return None
    except BaseException:
        fh.close()
        raise
    return fh


def held_elsewhere(out: Path, run: Run) -> bool:
    """Whether another process holds the run's lock now, i.e. executes it (a look: no file is made)."""
    path = lock_path(out, run)
    if not path.exists():
        return False
    try:
        fh = acquire_lock(path, wait=False)
    except OSError:   # a file system without locks: nobody can be seen holding one
        return False
    if fh is None:
        return True
    fh.close()
    return False
