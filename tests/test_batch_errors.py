"""The batch command on bad input and accidents: one clear line and an exit status, nothing lost.

What users met, each reproduced here: two batches over one report folder (a requeued job-array
task, a command started twice), a report folder that cannot be made, ``-p epochs abc``. The
runs are those of tests/data/plan.json; no kernel starts: the executor is replaced by one that
writes a success marker, since what is tested is what the batch decides, not papermill.
"""
from __future__ import annotations

import contextlib
import io
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import tiny_cache

from pe_utils.batch import cli as batch
from pe_utils.batch.params import check_parameters
from pe_utils.batch.plan import PlanError
from pe_utils.batch.state import acquire_lock, base_marker, lock_path, write_marker

DATA = Path(__file__).parent / "data"
PLAN = DATA / "plan.json"
#: holds an flock on argv[1] until its stdin closes (another batch executing that run)
HOLD = ("import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
        "print('locked', flush=True); sys.stdin.read()")


class FakeExecutor:
    """Stands for :class:`pe_utils.batch.run.Executor`: each run "succeeds" at once."""

    ran: list[str] = []
    held: dict[str, bool] = {}   # run -> whether its lock was held (and given) while it ran

    def __init__(self, out, workdir, cell_timeout, verbose, threads=None):
        self.out = out

    def run(self, run, device, lock=None):
        FakeExecutor.ran.append(run.name)
        probe = acquire_lock(lock_path(self.out, run), wait=False)   # as another batch would
        FakeExecutor.held[run.name] = probe is None and lock is not None
        if probe is not None:
            probe.close()
        marker = {**base_marker(run, self.out, device), "status": "success", "token": uuid.uuid4().hex,
                  "duration_s": 0.0}
        write_marker(self.out, run, marker)
        return marker

    def terminate(self):
        pass


@pytest.fixture
def reports(tmp_path, monkeypatch):
    """(out, the batch's arguments) with the fake executor; the runs quick, grid/rate-1_2 and
    grid/rate-1_4 (which needs quick)."""
    monkeypatch.setattr(batch, "Executor", FakeExecutor)
    FakeExecutor.ran, FakeExecutor.held = [], {}
    cache = tmp_path / "cache"
    tiny_cache(cache)
    out = tmp_path / "reports"
    return out, ["--plan", PLAN, "--out", out, "--cache", cache, "--profile", "smoke", "--cases", "quick,grid"]


def cli(*argv, stdout=None, stderr=None) -> tuple[int, str, str]:
    out, err = stdout or io.StringIO(), stderr or io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = batch.main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def held(path: Path):
    """Another process holding ``path``'s lock while the block runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        if proc.poll() is None:
            proc.stdin.close()
            proc.wait(timeout=10)


# --- two batches over one report folder ----------------------------------------------------------

def test_a_run_locked_by_another_batch_is_left_to_it_with_its_dependants(reports):
    out, args = reports
    with held(out / "quick/quick.lock"):
        rc, stdout, stderr = cli(*args)
    assert rc == 0 and FakeExecutor.ran == []          # nothing trained, nothing failed
    assert "0 failed, 0 skipped, 1 running elsewhere, 2 not run" in stdout
    assert f"running elsewhere: quick/quick: another process holds {out / 'quick/quick.lock'}" in stdout
    assert "not run: grid/rate-1_4: it needs quick/quick, running elsewhere" in stdout
    assert "run this command again once it is done, or with --wait" in stdout
    assert "quick/quick: running elsewhere (another process holds" in stderr
    assert list(out.glob("*/*.status.json")) == []       # no marker touched: the other batch owns them


def test_list_shows_a_run_running_elsewhere(reports):
    out, args = reports
    with held(out / "quick/quick.lock"):
        rc, stdout, _ = cli(*args, "--list")
    state = {line.split()[4]: line.split()[3] for line in stdout.splitlines()}
    assert rc == 0 and state == {"quick/quick": "running", "grid/rate-1_2": "waits", "grid/rate-1_4": "waits"}


def test_wait_waits_for_the_other_batch_then_treats_its_result_as_usual(reports):
    out, args = reports
    assert cli(*args)[0] == 0 and len(FakeExecutor.ran) == 3    # a first batch: all three succeed
    stdout, stderr, result = io.StringIO(), io.StringIO(), {}
    with held(out / "quick/quick.lock") as other:
        waiting = threading.Thread(target=lambda: result.update(rc=cli(*args, "--wait", stdout=stdout,
                                                                         stderr=stderr)[0]))
        waiting.start()
        deadline = time.monotonic() + 60
        while "waiting for it" not in stderr.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "quick/quick: running elsewhere; waiting for it (--wait)" in stderr.getvalue()
        time.sleep(0.3)
        assert waiting.is_alive()                                # still waiting while it is held
        other.stdin.close()                                      # the other batch ends
        waiting.join(timeout=60)
    assert result["rc"] == 0 and len(FakeExecutor.ran) == 3     # its result is up to date: not rerun
    assert "0 succeeded, 3 up to date, 0 failed, 0 skipped" in stdout.getvalue()


def test_a_lock_left_by_a_killed_process_does_not_block(reports):
    out, args = reports
    with held(out / "quick/quick.lock") as other:
        other.send_signal(signal.SIGKILL)
        other.wait(timeout=10)
        rc, stdout, _ = cli(*args)
    assert rc == 0 and sorted(FakeExecutor.ran) == ["grid/rate-1_2", "grid/rate-1_4", "quick/quick"]
    assert (out / "quick/quick.lock").exists()          # the file stays; only the lock went


def test_the_batch_holds_the_lock_of_the_run_it_executes(reports):
    """While the executor runs a run, its lock is taken (another batch would leave the run), and the
    open lock goes to the executor (which passes it to the worker); it is let go once the run ended."""
    out, args = reports
    assert cli(*args)[0] == 0
    assert FakeExecutor.held == {"quick/quick": True, "grid/rate-1_2": True, "grid/rate-1_4": True}
    lock = acquire_lock(out / "quick/quick.lock", wait=False)
    assert lock is not None
    lock.close()


# --- the report folder ---------------------------------------------------------------------------

@pytest.mark.parametrize("where, reason", [("/proc/x", "No such file or directory"),
                                           ("file/x", "Not a directory")])
def test_a_report_folder_that_cannot_be_made_is_one_line(reports, tmp_path, where, reason):
    _, args = reports
    (tmp_path / "file").write_text("not a folder")
    out = Path(where) if where.startswith("/") else tmp_path / where
    rc, stdout, stderr = cli(*args[:2], "--out", out, *args[4:])
    assert rc == 2 and FakeExecutor.ran == []
    assert stderr == f"error: cannot create the report folder {out}: {reason}\n"


# --- -p values against the profile --------------------------------------------------------------

@pytest.mark.parametrize("profile, name, value, expected", [
    ("thesis", "epochs", "abc", "expected an integer (the thesis profile's case1.epochs is 40)"),
    ("thesis", "epochs", "2.5", "expected an integer (the thesis profile's case1.epochs is 40)"),
    ("thesis", "augment", "1", "expected true or false (the thesis profile's case1.augment is True)"),
    ("thesis", "arch", "50", "expected a text (the thesis profile's case1.arch is 'resnet50')"),
    ("thesis", "lr", "fast", "expected a number (the thesis profile's case1.lr is 0.01)"),
    ("thesis", "snapshot_epochs", "75", "expected a JSON list, e.g. [1, 2] (the thesis profile's "
                                        "pretrain.snapshot_epochs is (75,))"),
    ("demo", "epochs_by_rate", "[4]", "expected a JSON object"),
])
def test_a_parameter_of_the_wrong_type_is_refused_before_any_run(tmp_path, profile, name, value, expected):
    out = tmp_path / "reports"
    rc, stdout, stderr = cli("--profile", profile, "--out", out, "-p", name, value)
    assert rc == 2 and stdout == "" and not out.exists()
    assert stderr.startswith(f"error: -p {name} {value}: {expected}") and stderr.count("\n") == 1


@pytest.mark.parametrize("name, value", [
    ("lr", "1"),                    # an int where a float is expected
    ("epochs", "none"),             # the profile's value
    ("snapshot_epochs", "[75, 150]"),
    ("crop", "[0.1, 0.1, 0.8, 0.8]"),   # None in the thesis profile: anything
    ("cache_dir", "/data/cache"),   # in no profile section: not checked here
    ("augment", "false"),
])
def test_a_parameter_of_the_profile_type_passes(name, value):
    check_parameters([(name, value)], "thesis", parse=batch._value)


def test_the_check_uses_the_profile_given(tmp_path):
    with pytest.raises(PlanError, match=r"the smoke profile's case1\.epochs is 1\)$"):
        check_parameters([("epochs", "x")], "smoke", parse=batch._value)
