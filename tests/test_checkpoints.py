"""When ``fit`` writes its checkpoints: one resumable ``last.pt`` per ``checkpoint_every``
window and after the final epoch, ``best.pt`` as weights only; exact resume from whatever was
written last. Time is a fake clock, never a sleep."""
from __future__ import annotations

import math
import multiprocessing
import time

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from pe_utils.data.datasets import make_loader
from pe_utils.learn.checkpoint import BEST, LAST, Checkpoints, load_checkpoint
from pe_utils.learn.loop import fit
from pe_utils.learn.losses import FocalLoss
from pe_utils.learn.setup import build_optimizer, build_scheduler, seed_everything

EPOCHS, EPOCH_SECONDS = 6, 6.0
RESUMABLE = {"model", "optimizer", "scheduler", "scaler", "epoch", "config", "history", "best", "rng"}


class FakeClock:
    """``time.monotonic`` that moves only when told to."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(time, "monotonic", fake)
    return fake


def scripted_figures(scores):
    """Figures whose ``score`` is ``scores[epoch]`` (train and val alike): a known best epoch."""
    calls = []

    def figures(outputs, threshold):
        calls.append(1)
        return {"score": scores[(len(calls) - 1) // 2]}  # two calls per epoch: train, then val

    return figures


def tiny_fit(folder, epochs=EPOCHS, seed=0, resume=False, on_epoch_end=None, clock=None, **kwargs):
    """A tiny classifier with dropout and a step decay, over shuffled batches; each epoch's end
    moves ``clock`` on by ``EPOCH_SECONDS`` (after fit's checkpoint decision)."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 6, generator=g), (torch.arange(24) % 3 == 0).float()
    train = make_loader(TensorDataset(x[:16], y[:16]), 4, shuffle=True, seed=0)
    val = make_loader(TensorDataset(x[16:], y[16:]), 4, shuffle=False, seed=0)
    seed_everything(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 1), nn.Flatten(0))
    optimizer = build_optimizer(model, "sgd", lr=0.1, momentum=0.9)
    scheduler = build_scheduler(optimizer, step=2, gamma=0.5)
    states = []

    def end(record):
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        if on_epoch_end is not None:
            on_epoch_end(record)
        if clock is not None:
            clock.now += EPOCH_SECONDS

    history = fit(model, FocalLoss(), optimizer, train, val, epochs, "cpu", scheduler=scheduler,
                  checkpoint_dir=folder, resume=resume, config={"tiny": True}, progress=False,
                  on_epoch_end=end, **kwargs)
    return model, history, states


def epochs_on_disk(folder):
    """An ``on_epoch_end`` that records which epoch ``last.pt`` holds after each epoch."""
    seen = []

    def record(_):
        path = folder / LAST
        seen.append(int(load_checkpoint(path)["epoch"]) if path.is_file() else None)

    return seen, record


def without_timing(history):
    return [{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in history]


# ----------------------------------------------------------------------------- the policy alone
def test_checkpoints_are_due_once_per_window_and_at_the_end(tmp_path):
    fake = FakeClock()
    ckpts = Checkpoints(tmp_path, every=10, clock=fake)
    due = []
    for t in (3, 9, 10, 14, 19, 21, 25):
        fake.now = t
        due.append(ckpts.due(final=False))
        if due[-1]:
            ckpts.write({"epoch": t})
    assert due == [False, False, True, False, False, True, False]  # 10 s after the start, then after 10
    assert ckpts.due(final=True)
    assert Checkpoints(tmp_path, every=None, clock=fake).due(final=False) is False
    assert Checkpoints(tmp_path, every=0, clock=fake).due(final=False) is True
    assert Checkpoints(None, every=0, clock=fake).due(final=True) is False  # no folder: never
    for bad in (-1, math.nan):
        with pytest.raises(ValueError, match="checkpoint_every"):
            Checkpoints(tmp_path, every=bad)


@pytest.mark.parametrize("every, expected", [
    (10, [None, None, 3, 3, 5, 6]),   # epochs end at 0, 6, 12, ... s: a write once 10 s have passed
    (0, [1, 2, 3, 4, 5, 6]),          # every epoch
    (None, [None] * 5 + [6]),         # the end only
])
def test_fit_writes_last_pt_once_per_window_and_after_the_final_epoch(tmp_path, clock, every, expected):
    seen, record = epochs_on_disk(tmp_path)
    tiny_fit(tmp_path, on_epoch_end=record, clock=clock, checkpoint_every=every)
    assert seen == expected


def test_fit_default_window_writes_a_short_run_once(tmp_path, clock):
    seen, record = epochs_on_disk(tmp_path)
    tiny_fit(tmp_path, on_epoch_end=record, clock=clock)  # 6 epochs of 6 s: under the default 300 s
    assert seen == [None] * 5 + [6]


def test_a_run_leaves_one_resumable_checkpoint_and_the_best_weights_only(tmp_path, clock):
    scores = [0.2, 0.9, 0.5, 0.7, 0.1, 0.3]  # the best epoch is 2, written with last.pt at the end
    model, history, states = tiny_fit(tmp_path, clock=clock, checkpoint_every=None, best_metric="val_score",
                                      figures=scripted_figures(scores))
    assert sorted(p.name for p in tmp_path.iterdir()) == [BEST, LAST]
    last, best = load_checkpoint(tmp_path / LAST), load_checkpoint(tmp_path / BEST)
    assert set(last) == RESUMABLE and last["epoch"] == EPOCHS
    assert set(best) == {"model", "epoch", "config", "best"}
    assert best["epoch"] == 2 and best["best"] == {"metric": "val_score", "value": 0.9, "epoch": 2}
    assert last["best"] == best["best"] and best["config"] == {"tiny": True}
    assert all(torch.equal(v, states[1][k]) for k, v in best["model"].items())   # epoch 2's weights
    assert not all(torch.equal(v, states[-1][k]) for k, v in best["model"].items())
    assert [r["val_score"] for r in history] == scores


def test_best_pt_never_lags_behind_last_pt(tmp_path, clock):
    # the best epoch (3) falls inside a window: its weights wait in memory for the next write
    scores = [0.1, 0.2, 0.9, 0.3, 0.4, 0.5]
    seen = []

    def record(_):
        seen.append(load_checkpoint(tmp_path / BEST)["epoch"] if (tmp_path / BEST).is_file() else None)

    tiny_fit(tmp_path, on_epoch_end=record, clock=clock, checkpoint_every=10, best_metric="val_score",
             figures=scripted_figures(scores))
    assert seen == [None, None, 3, 3, 3, 3]  # written with last.pt after epoch 3, not again


# ----------------------------------------------------------------------------- exact resume
class Crash(RuntimeError):
    pass


def test_resume_from_the_last_window_matches_the_straight_run(tmp_path, clock):
    model, history, _ = tiny_fit(tmp_path / "straight", clock=clock, checkpoint_every=10)

    def crash_after_four(record):
        if record["epoch"] == 4:
            raise Crash

    clock.now = 0.0
    with pytest.raises(Crash):
        tiny_fit(tmp_path / "resumed", on_epoch_end=crash_after_four, clock=clock, checkpoint_every=10)
    assert load_checkpoint(tmp_path / "resumed" / LAST)["epoch"] == 3  # epoch 4 is lost, trained again
    # another seed: every weight and random state must come from the checkpoint
    resumed, resumed_history, _ = tiny_fit(tmp_path / "resumed", seed=99, resume=True, clock=clock,
                                           checkpoint_every=10)
    assert [r["epoch"] for r in resumed_history] == list(range(1, EPOCHS + 1))
    assert without_timing(resumed_history) == without_timing(history)
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in model.state_dict().items())


def test_negative_checkpoint_every_raises_before_training(tmp_path):
    with pytest.raises(ValueError, match="checkpoint_every"):
        tiny_fit(tmp_path, checkpoint_every=-5)
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------- torchrun
def _rank_decisions(rank, store, folder, queue):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        fake = FakeClock()
        ckpts = Checkpoints(folder / f"rank{rank}", every=10, clock=fake)
        decisions = []
        for now in ((20.0, 0.0), (5.0, 5.0), (0.0, 11.0)):  # each rank's own clock
            fake.now = now[rank]
            decisions.append(ckpts.due(final=False))
        queue.put((rank, decisions))
    finally:
        dist.destroy_process_group()


def test_under_torch_distributed_every_process_writes_after_the_same_epochs(tmp_path):
    """Two gloo processes whose clocks disagree: a write due on either is due on both, so a
    resumed torchrun restarts every process from the same epoch."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_rank_decisions, args=(r, tmp_path / "store", tmp_path, queue)) for r in (0, 1)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert results[0] == results[1] == [True, False, True]



def test_best_pt_considers_validated_epochs_only(tmp_path, clock):
    # epoch 3 scores best but is not validated (val_every=2): the best is epoch 4 of 2, 4, 6
    scores = [0.1, 0.5, 0.99, 0.7, 0.9, 0.2]
    epoch = []

    def figures(outputs, threshold):
        if len(outputs) == 4:          # training: 16 items in batches of 4; validation: 2 batches
            epoch.append(1)
        return {"score": scores[len(epoch) - 1]}

    _, history, states = tiny_fit(tmp_path, clock=clock, checkpoint_every=None, best_metric="val_score",
                                  figures=figures, val_every=2)
    assert [r["epoch"] for r in history if "val_score" in r] == [2, 4, 6]
    best = load_checkpoint(tmp_path / BEST)
    assert best["best"] == {"metric": "val_score", "value": 0.7, "epoch": 4}
    assert all(torch.equal(v, states[3][k]) for k, v in best["model"].items())   # epoch 4's weights
