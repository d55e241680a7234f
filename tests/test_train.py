"""Optimiser, schedules, epochs, history, checkpoints, exact resume and determinism (CPU)."""
from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from torch.utils.data import TensorDataset

from pe_utils.data.datasets import CacheDataset, make_loader
from pe_utils.data.transforms import train_transform
from pe_utils.evaluate.metrics import epoch_figures
from pe_utils.learn.checkpoint import load_checkpoint, rng_state, set_rng_state
from pe_utils.learn.epochs import evaluate, predict, train_one_epoch
from pe_utils.learn.loop import fit
from pe_utils.learn.losses import FocalLoss
from pe_utils.learn.models import build_classifier, set_backbone_trainable
from pe_utils.learn.setup import (StepDecayLR, amp_dtype, autocast, build_optimizer, build_scheduler,
                                  iterations_for, pick_device, seed_everything)
from pe_utils.learn.steps import StepOutput, batch_len, supervised_step

N_TRAIN, N_VAL, SIZE, BATCH = 12, 6, 32, 4
TIMING_KEYS = ("train_seconds", "val_seconds")


@contextlib.contextmanager
def one_thread():
    """Same thread count as the subprocess: CPU kernels may sum in another order otherwise."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class KillingDataset(CacheDataset):
    """Kills its own process (SIGKILL) when item ``at`` of epoch ``epoch`` is loaded."""

    def __init__(self, *args, kill_epoch: int = -1, kill_at: int = -1, **kwargs):
        super().__init__(*args, **kwargs)
        self.kill_epoch, self.kill_at, self.loaded = kill_epoch, kill_at, 0

    def __getitem__(self, i):
        if self.epoch == self.kill_epoch:
            self.loaded += 1
            if self.loaded > self.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().__getitem__(i)


def make_run(seed: int = 0, dataset_cls=CacheDataset, schedule: str = "epoch", **ds_kwargs):
    """A tiny but complete Case1-like run: augmentation, shuffling, dropout, SGD, step decay."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N_TRAIN + N_VAL, 40, 40), dtype=np.uint8)
    labels = (np.arange(N_TRAIN + N_VAL) % 3 == 0).astype(np.int64)
    seed_everything(seed)
    train_ds = dataset_cls(images, labels, np.arange(N_TRAIN), transform=train_transform(),
                           image_size=SIZE, seed=0, **ds_kwargs)
    val_ds = CacheDataset(images, labels, np.arange(N_TRAIN, N_TRAIN + N_VAL), image_size=SIZE)
    train_loader = make_loader(train_ds, BATCH, shuffle=True, seed=0)
    val_loader = make_loader(val_ds, BATCH, shuffle=False, seed=0)
    model = build_classifier("resnet18", in_channels=1, dropout=0.5)
    optimizer = build_optimizer(model, "sgd", lr=0.01, momentum=0.9)
    step = 1 if schedule == "epoch" else 2
    scheduler = build_scheduler(optimizer, step=step, gamma=0.5, schedule=schedule)
    return model, FocalLoss(gamma=2.0), optimizer, scheduler, train_loader, val_loader


def run_fit(ckpt_dir, epochs=3, seed=0, resume=False, on_epoch_end=None, schedule="epoch", checkpoint_every=0,
            **ds_kwargs):
    """``checkpoint_every=0``: a checkpoint after every epoch, so that a crash after epoch 1 resumes from it."""
    model, criterion, optimizer, scheduler, train_loader, val_loader = make_run(seed, schedule=schedule, **ds_kwargs)
    history = fit(model, criterion, optimizer, train_loader, val_loader, epochs, "cpu", scheduler=scheduler,
                  checkpoint_dir=ckpt_dir, resume=resume, config={"seed": 0, "size": (SIZE, SIZE)},
                  progress=False, on_epoch_end=on_epoch_end, figures=epoch_figures,
                  checkpoint_every=checkpoint_every)
    return model, history


def assert_same_weights(a: nn.Module, b: nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert different == []


def without_timing(history):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in history]


def same_history(a, b):
    """Equal, NaN == NaN."""
    a, b = without_timing(a), without_timing(b)
    if len(a) != len(b) or any(r.keys() != s.keys() for r, s in zip(a, b, strict=True)):
        return False
    return all((r[k] == s[k]) or (isinstance(r[k], float) and math.isnan(r[k]) and math.isnan(s[k]))
               for r, s in zip(a, b, strict=True) for k in r)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted 3-epoch run every resume is compared with."""
    with one_thread():
        d = tmp_path_factory.mktemp("straight")
        model, history = run_fit(d)
    return model, history, d


# --------------------------------------------------------------------------- set-up
def test_seed_everything_fixes_every_generator():
    import random

    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    seed_everything(5)
    a = draw()
    seed_everything(5)
    assert draw() == a


def test_pick_device():
    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu") == torch.device("cpu")


def test_build_optimizer_sgd_adam_and_trainable_only():
    model = build_classifier("resnet18")
    sgd = build_optimizer(model, "SGD", lr=0.01)
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.9
    assert isinstance(build_optimizer(model, "adam", lr=0.001), torch.optim.Adam)
    set_backbone_trainable(model, False)
    head_only = build_optimizer(model, "sgd", lr=0.01)
    assert sum(p.numel() for p in head_only.param_groups[0]["params"]) == \
        sum(p.numel() for p in model.head.parameters())
    for bad in (dict(name="rmsprop", lr=0.1), dict(name="sgd", lr=0.0), dict(name="sgd", lr=0.1, momentum=-1)):
        with pytest.raises(ValueError):
            build_optimizer(model, **bad)


def lr_after(scheduler, optimizer, steps):
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
    return optimizer.param_groups[0]["lr"]


@pytest.mark.parametrize("schedule", ["epoch", "iteration"])
def test_scheduler_step_decay(schedule):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.01)
    sched = build_scheduler(opt, step=3, gamma=0.5, schedule=schedule)
    assert isinstance(sched, StepDecayLR) and sched.interval == schedule
    assert [lr_after(sched, opt, 1) for _ in range(7)] == pytest.approx(
        [0.01, 0.01, 0.005, 0.005, 0.005, 0.0025, 0.0025])


@pytest.mark.parametrize("bad", [dict(step=0), dict(step=1.5), dict(gamma=0.0), dict(gamma=1.5),
                                 dict(schedule="batch"), dict(steps_per_epoch=0)])
def test_scheduler_bad_arguments(bad):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.01)
    with pytest.raises(ValueError):
        build_scheduler(opt, **{"step": 2, "gamma": 0.5, **bad})


def test_iterations_for_appendix_a_conversion():
    # 10 epochs of 25 % of 8000 images at batch 256: 8 batches per epoch -> 80 iterations
    assert iterations_for(10, 2000, 256) == 80
    assert iterations_for(10, 2000, 256, drop_last=True) == 70


def test_iteration_schedule_steps_per_batch_epoch_schedule_per_epoch(tmp_path):
    """Epoch vs iteration semantics inside fit: 12 images / batch 4 = 3 iterations per epoch."""
    with one_thread():
        _, hist_it = run_fit(None, epochs=2, schedule="iteration")  # step 2 iterations
        _, hist_ep = run_fit(None, epochs=2, schedule="epoch")      # step 1 epoch
    # iteration schedule: lr halves after iterations 2, 4 and 6 (3 per epoch), mid-epoch too
    assert [r["lr"] for r in hist_it] == pytest.approx([0.01, 0.005])
    assert [r["train_lr_end"] for r in hist_it] == pytest.approx([0.005, 0.00125])
    # epoch schedule: constant within an epoch, halved between epochs
    assert [r["lr"] for r in hist_ep] == pytest.approx([0.01, 0.005])
    assert [r["train_lr_end"] for r in hist_ep] == pytest.approx([0.01, 0.005])


def test_train_one_epoch_leaves_epoch_scheduler_to_the_caller():
    model, criterion, optimizer, scheduler, train_loader, _ = make_run()
    with one_thread():
        out = train_one_epoch(model, criterion, optimizer, train_loader, "cpu", scheduler=scheduler,
                              figures=epoch_figures)
    assert optimizer.param_groups[0]["lr"] == 0.01 and out["n"] == N_TRAIN
    assert math.isfinite(out["loss"]) and 0 <= out["accuracy"] <= 1


# --------------------------------------------------------------------------- figures
def test_history_keys_and_checkpoint_files(straight):
    _, history, d = straight
    assert [r["epoch"] for r in history] == [1, 2, 3]
    figures = ("loss", "accuracy", "precision", "recall", "f1", "f1_batch_mean", "f1_batch_bound", "auc",
               "tn", "fp", "fn", "tp", "n")
    for r in history:
        for part in ("train", "val"):
            for k in figures:
                assert f"{part}_{k}" in r, f"{part}_{k}"
        assert r["train_n"] == N_TRAIN and r["val_n"] == N_VAL
        assert r["train_tn"] + r["train_fp"] + r["train_fn"] + r["train_tp"] == N_TRAIN
        assert r["train_f1_batch_mean"] <= r["train_f1_batch_bound"] + 1e-12
        assert all(k in r for k in ("lr", "train_lr_end", *TIMING_KEYS))
    assert [r["lr"] for r in history] == pytest.approx([0.01, 0.005, 0.0025])
    assert (d / "last.pt").is_file() and (d / "best.pt").is_file()
    assert not list(d.glob("*.tmp"))


def test_checkpoint_loads_with_weights_only(straight):
    model, history, d = straight
    ckpt = torch.load(d / "last.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "epoch", "config", "history", "rng"} <= set(ckpt)
    assert ckpt["epoch"] == 3 and ckpt["config"] == {"seed": 0, "size": [SIZE, SIZE]}
    assert same_history(ckpt["history"], history)
    assert ckpt["scheduler"]["interval"] == "epoch"
    assert {"torch", "numpy", "python", "cuda", "loaders"} <= set(ckpt["rng"])
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in ckpt["model"].items())
    best = load_checkpoint(d / "best.pt")
    valid = [r["val_auc"] for r in history if not math.isnan(r["val_auc"])]
    assert best["best"]["metric"] == "val_auc" and best["best"]["value"] == max(valid)
    assert set(best) == {"model", "epoch", "config", "best"}  # weights, not a second resumable checkpoint
    assert best["epoch"] == best["best"]["epoch"] == ckpt["best"]["epoch"]


def test_rng_state_round_trip(tmp_path):
    import random

    loader = make_loader(CacheDataset(np.zeros((4, 4, 4), np.uint8), np.zeros(4), None), 2, True, seed=3)
    state = rng_state([loader])
    torch.save(state, tmp_path / "rng.pt")
    state = torch.load(tmp_path / "rng.pt", weights_only=True)

    def draw():
        return (random.random(), float(np.random.randn()), float(torch.rand(1)),
                int(torch.randint(9, (1,), generator=loader.generator)))

    a = draw()
    set_rng_state(state, [loader])
    assert draw() == a


def test_evaluate_and_predict(straight):
    model, _, _ = straight
    _, criterion, _, _, _, val_loader = make_run()
    out = evaluate(model, criterion, val_loader, "cpu")
    probs = predict(model, val_loader, "cpu")
    assert not model.training
    assert probs.shape == (N_VAL,) and probs.dtype == np.float32 and ((probs >= 0) & (probs <= 1)).all()
    assert np.allclose(out["probs"], probs) and out["labels"].tolist() == [1, 0, 0, 1, 0, 0]
    # predict accepts image-only batches
    assert np.allclose(predict(model, [x for x, _ in val_loader], "cpu"), probs)


def test_auc_is_nan_with_one_class(straight):
    model, _, _ = straight
    images = np.zeros((4, 8, 8), np.uint8)
    loader = make_loader(CacheDataset(images, np.zeros(4), None), 2, shuffle=False, seed=0)
    out = evaluate(model, FocalLoss(), loader, "cpu", figures=epoch_figures)
    assert math.isnan(out["auc"]) and out["f1_batch_bound"] == 0.0


def test_batches_of_one_are_skipped_with_a_warning():
    model, criterion, optimizer, _, _, _ = make_run()
    images = np.random.default_rng(0).integers(0, 256, (5, 32, 32), dtype=np.uint8)
    loader = make_loader(CacheDataset(images, np.array([0, 1, 0, 1, 0]), None), 4, shuffle=False, seed=0)
    with pytest.warns(UserWarning, match="skipped 1"):
        out = train_one_epoch(model, criterion, optimizer, loader, "cpu")
    assert out["n"] == 4 and out["skipped"] == 1


def test_fit_argument_errors():
    model, criterion, optimizer, _, train_loader, val_loader = make_run()
    with pytest.raises(ValueError):
        fit(model, criterion, optimizer, train_loader, val_loader, 1, "cpu", resume=True, progress=False)
    with pytest.raises(ValueError):
        fit(model, criterion, optimizer, train_loader, val_loader, 1, "cpu", best_metric="f1", progress=False)


def test_best_metric_the_figures_do_not_give_raises_before_any_checkpoint(tmp_path):
    model, criterion, optimizer, _, train_loader, val_loader = make_run()
    with one_thread(), pytest.raises(ValueError, match="val_auc"):
        fit(model, criterion, optimizer, train_loader, val_loader, 1, "cpu", best_metric="val_auc",
            checkpoint_dir=tmp_path, progress=False)  # figures=None: loss and n only
    assert not (tmp_path / "last.pt").exists()


# --------------------------------------------------------------------------- determinism and resume
def test_two_fits_with_the_same_seed_are_identical(straight, tmp_path):
    model, history, _ = straight
    with one_thread():
        again, history_again = run_fit(tmp_path)
    assert_same_weights(model, again)
    assert same_history(history, history_again)


def test_another_seed_gives_other_weights(straight):
    model, _, _ = straight
    with one_thread():
        other, _ = run_fit(None, epochs=1, seed=1)
    assert not torch.equal(model.head[-1].weight, other.head[-1].weight)


class Crash(RuntimeError):
    pass


def test_resume_after_an_exception_matches_the_straight_run(straight, tmp_path):
    model, history, _ = straight

    def crash_after_first(record):
        if record["epoch"] == 1:
            raise Crash

    with one_thread():
        with pytest.raises(Crash):
            run_fit(tmp_path, on_epoch_end=crash_after_first)
        assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1
        # another seed: every weight and random state must come from the checkpoint
        resumed, resumed_history = run_fit(tmp_path, seed=99, resume=True)
    assert_same_weights(model, resumed)
    assert same_history(history, resumed_history)


def test_resume_when_finished_trains_nothing(straight):
    model, history, d = straight
    with one_thread(), pytest.warns(UserWarning, match="nothing to train"):
        again, hist = run_fit(d, epochs=3, seed=42, resume=True)
    assert_same_weights(model, again)
    assert same_history(history, hist)


CHILD = """
import sys, torch
torch.set_num_threads(1)
sys.path.insert(0, {tests!r})
import test_train as t
t.run_fit({ckpt!r}, dataset_cls=t.KillingDataset, kill_epoch=1, kill_at=5)
print("not killed")
"""


def test_resume_after_sigkill_mid_epoch_matches_the_straight_run(straight, tmp_path):
    model, history, _ = straight
    code = CHILD.format(tests=str(Path(__file__).parent), ckpt=str(tmp_path))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert "not killed" not in proc.stdout
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1  # killed inside epoch 2
    with one_thread():
        resumed, resumed_history = run_fit(tmp_path, seed=7, resume=True)
    assert_same_weights(model, resumed)
    assert same_history(history, resumed_history)


def test_resume_extends_a_finished_run(straight, tmp_path):
    import shutil

    _, history, d = straight
    shutil.copy(d / "last.pt", tmp_path / "last.pt")
    with one_thread():
        _, longer = run_fit(tmp_path, epochs=4, resume=True)  # config differs in epochs only
    assert [r["epoch"] for r in longer] == [1, 2, 3, 4]
    assert same_history(longer[:3], history)


def test_resume_with_another_config_starts_afresh(straight, tmp_path):
    import shutil

    model, _, d = straight
    shutil.copy(d / "last.pt", tmp_path / "last.pt")
    m, criterion, optimizer, scheduler, train_loader, val_loader = make_run()
    with one_thread(), pytest.warns(UserWarning, match="another config.*lr"):
        history = fit(m, criterion, optimizer, train_loader, val_loader, 1, "cpu", scheduler=scheduler,
                      checkpoint_dir=tmp_path, resume=True, progress=False,
                      config={"seed": 0, "size": (SIZE, SIZE), "lr": 0.1})
    assert len(history) == 1 and load_checkpoint(tmp_path / "last.pt")["config"]["lr"] == 0.1


def test_fp16_autocast_path_saves_and_restores_the_grad_scaler(tmp_path):
    """The CUDA fp16 path (autocast + GradScaler) exercised on CPU (slow there: one epoch)."""
    with one_thread():
        model, criterion, optimizer, scheduler, train_loader, val_loader = make_run()
        history = fit(model, criterion, optimizer, train_loader, val_loader, 1, "cpu", scheduler=scheduler,
                      checkpoint_dir=tmp_path, progress=False, amp="fp16", figures=epoch_figures)
        assert load_checkpoint(tmp_path / "last.pt")["scaler"]["scale"] > 0
        assert math.isfinite(history[-1]["train_loss"])
        model, criterion, optimizer, scheduler, train_loader, val_loader = make_run()
        with pytest.warns(UserWarning, match="nothing to train"):  # resume loads the scaler's state
            resumed = fit(model, criterion, optimizer, train_loader, val_loader, 1, "cpu", scheduler=scheduler,
                          checkpoint_dir=tmp_path, resume=True, progress=False, amp="fp16",
                          figures=epoch_figures)
    assert same_history(resumed, history)


# --------------------------------------------------------------------------- precision and steps
@pytest.mark.parametrize("amp, expected", [("auto", None), (True, None), (False, None), (None, None),
                                           ("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_amp_dtype_on_cpu(amp, expected):
    assert amp_dtype("cpu", amp) is expected


def test_amp_dtype_rejects_an_unknown_setting():
    with pytest.raises(ValueError, match="amp must be"):
        amp_dtype("cpu", "fp8")


def test_autocast_enters_the_dtype_or_nothing():
    a = torch.ones(2, 2)
    with autocast("cpu", torch.bfloat16):
        assert (a @ a).dtype == torch.bfloat16
    with autocast("cpu", None):
        assert (a @ a).dtype == torch.float32


def test_supervised_step_output():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 1), nn.Flatten(0))  # logits (B,)
    x, y = torch.randn(3, 1, 2, 2), torch.tensor([0, 1, 1])
    out = supervised_step(model, (x, y), FocalLoss(), torch.device("cpu"), None)
    assert isinstance(out, StepOutput) and out.n == 3 and out.loss.requires_grad
    assert set(out.outputs) == {"probs", "labels"}
    assert torch.allclose(out.outputs["probs"], torch.sigmoid(model(x)))
    assert out.outputs["labels"].tolist() == [0.0, 1.0, 1.0] and not out.outputs["probs"].requires_grad
    assert supervised_step(model, (x, y), None, torch.device("cpu"), None).loss is None
    with pytest.raises(ValueError, match="needs"):
        supervised_step(model, x, FocalLoss(), torch.device("cpu"), None)


def test_batch_len():
    x = torch.zeros(5, 2)
    assert batch_len(x) == batch_len((x, torch.zeros(5))) == batch_len([(x, x)]) == batch_len({"a": x}) == 5
    with pytest.raises(TypeError):
        batch_len(("not", "tensors"))


def test_without_figures_an_epoch_gives_loss_and_n_only():
    model, criterion, optimizer, _, train_loader, val_loader = make_run()
    with one_thread():
        out = train_one_epoch(model, criterion, optimizer, train_loader, "cpu")
        val = evaluate(model, criterion, val_loader, "cpu")
    assert set(out) == {"loss", "n", "lr_end", "skipped"} and out["n"] == N_TRAIN
    assert set(val) == {"loss", "n", "probs", "labels"} and val["probs"].shape == (N_VAL,)


# --------------------------------------------------------------------------- the loop is not binary-only
class TinyAutoencoder(nn.Module):
    """Two layers and dropout (so that resume must restore the RNG)."""

    def __init__(self):
        super().__init__()
        self.encoder, self.drop, self.decoder = nn.Linear(8, 3), nn.Dropout(0.3), nn.Linear(3, 8)

    def forward(self, x):
        return self.decoder(self.drop(torch.relu(self.encoder(x))))


def autoencoder_step(model, batch, criterion, device, dtype):
    """``(view1, view2)`` batches without labels: reconstruct view2 from view1 (MSE)."""
    view1, view2 = (v.to(device) for v in batch)                # (B, 8) each
    with autocast(device, dtype):
        recon = model(view1)
    error = ((recon.float() - view2) ** 2).mean(dim=1)           # (B,)
    loss = criterion(recon.float(), view2) if criterion is not None else None
    return StepOutput(loss=loss, n=view1.shape[0], outputs={"error": error.detach()})


def toy_fit(ckpt_dir, epochs=3, seed=0, resume=False, on_epoch_end=None, **kwargs):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, 8, generator=g)
    view1, view2 = x + 0.1 * torch.randn(20, 8, generator=g), x + 0.1 * torch.randn(20, 8, generator=g)
    train_loader = make_loader(TensorDataset(view1[:14], view2[:14]), 4, shuffle=True, seed=0)
    val_loader = make_loader(TensorDataset(view1[14:], view2[14:]), 4, shuffle=False, seed=0)
    seed_everything(seed)
    model = TinyAutoencoder()
    optimizer = build_optimizer(model, "adam", lr=0.01)
    scheduler = build_scheduler(optimizer, step=2, gamma=0.5)
    kwargs.setdefault("checkpoint_every", 0)  # every epoch: the crash tests resume from epoch 1
    history = fit(model, nn.MSELoss(), optimizer, train_loader, val_loader, epochs, "cpu", scheduler=scheduler,
                  checkpoint_dir=ckpt_dir, resume=resume, config={"toy": True}, progress=False,
                  on_epoch_end=on_epoch_end, step=autoencoder_step, **kwargs)
    return model, history, val_loader


def test_fit_with_a_custom_step_checkpoints_and_resumes(tmp_path):
    model, history, _ = toy_fit(tmp_path / "straight")
    assert set(history[0]) == {"epoch", "lr", "train_loss", "train_n", "train_lr_end", "train_skipped",
                               "val_loss", "val_n", *TIMING_KEYS}
    assert [r["train_n"] for r in history] == [14] * 3 and history[-1]["train_loss"] < history[0]["train_loss"]
    best = load_checkpoint(tmp_path / "straight" / "best.pt")["best"]
    # no AUC among the figures: best.pt follows the validation loss, lower is better
    assert best["metric"] == "val_loss" and best["value"] == min(r["val_loss"] for r in history)

    def crash_after_first(record):
        if record["epoch"] == 1:
            raise Crash

    with pytest.raises(Crash):
        toy_fit(tmp_path / "resumed", on_epoch_end=crash_after_first)
    resumed, resumed_history, _ = toy_fit(tmp_path / "resumed", seed=99, resume=True)
    assert_same_weights(model, resumed)
    assert same_history(history, resumed_history)


def test_custom_figures_and_a_higher_is_better_best_metric(tmp_path):
    def figures(outputs, threshold):
        return {"neg_mse": -float(np.concatenate([o["error"] for o in outputs]).mean())}

    model, history, val_loader = toy_fit(tmp_path, figures=figures, best_metric="val_neg_mse")
    assert all({"train_neg_mse", "val_neg_mse"} <= set(r) for r in history)
    best = load_checkpoint(tmp_path / "best.pt")["best"]
    assert best["value"] == max(r["val_neg_mse"] for r in history)
    out = evaluate(model, nn.MSELoss(), val_loader, "cpu", step=autoencoder_step, figures=figures)
    assert out["error"].shape == (6,) and out["neg_mse"] == pytest.approx(-out["error"].mean())


# --------------------------------------------------------------------------- the device path
def device_fit(ckpt_dir, seed=0, resume=False, on_epoch_end=None, compile=False, epochs=3):
    """A small classifier over CacheSlices + DeviceLoader (resize and AffineAugment batched)."""
    from pe_utils.data.augment import AffineAugment
    from pe_utils.data.slices import CacheSlices, DeviceLoader

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(N_TRAIN + N_VAL, 40, 40), dtype=np.uint8)
    labels = (np.arange(N_TRAIN + N_VAL) % 3 == 0).astype(np.int64)
    seed_everything(seed)
    train = DeviceLoader(make_loader(CacheSlices(images, labels, np.arange(N_TRAIN), seed=0), BATCH,
                                     shuffle=True, seed=0), "cpu", augment=AffineAugment(), image_size=SIZE)
    val = DeviceLoader(make_loader(CacheSlices(images, labels, np.arange(N_TRAIN, N_TRAIN + N_VAL)), BATCH,
                                   shuffle=False, seed=0), "cpu", image_size=SIZE)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Dropout(0.5), nn.Linear(4, 1), nn.Flatten(0))
    optimizer = build_optimizer(model, "sgd", lr=0.05, momentum=0.9)
    history = fit(model, FocalLoss(gamma=2.0), optimizer, train, val, epochs, "cpu", checkpoint_dir=ckpt_dir,
                  resume=resume, progress=False, on_epoch_end=on_epoch_end, figures=epoch_figures,
                  compile=compile, checkpoint_every=0)
    return model, history


def test_fit_over_the_device_loader_resumes_exactly(tmp_path):
    with one_thread():
        model, history = device_fit(tmp_path / "straight")
        assert [r["train_n"] for r in history] == [N_TRAIN] * 3 and history[0]["val_n"] == N_VAL

        def crash_after_first(record):
            if record["epoch"] == 1:
                raise Crash

        with pytest.raises(Crash):
            device_fit(tmp_path / "resumed", on_epoch_end=crash_after_first)
        resumed, resumed_history = device_fit(tmp_path / "resumed", seed=99, resume=True)
    assert_same_weights(model, resumed)
    assert same_history(history, resumed_history)


def test_fit_compile_option_runs_and_checkpoints_plain_weights(tmp_path):
    # on CPU only that it runs (the eager backend: no C++ toolchain needed) and changes no
    # number; whether compilation pays is measured on a GPU by bench/train.py --compile
    with one_thread():
        model, history = device_fit(None, epochs=1)
        compiled, compiled_history = device_fit(tmp_path, epochs=1, compile={"backend": "eager"})
    assert_same_weights(model, compiled)
    assert same_history(history, compiled_history)
    assert not any(k.startswith("_orig_mod") for k in load_checkpoint(tmp_path / "last.pt")["model"])
    with pytest.raises(ValueError, match="compile"):
        device_fit(None, epochs=1, compile=3)


# --------------------------------------------------------------------------- validation cadence
def test_val_every_validates_every_nth_epoch_and_the_last(tmp_path):
    model, history, _ = toy_fit(tmp_path / "straight", epochs=7, val_every=3)
    validated = [r["epoch"] for r in history if any(k.startswith("val_") for k in r)]
    assert [r["epoch"] for r in history] == list(range(1, 8)) and validated == [3, 6, 7]
    for r in history:
        assert ({"val_loss", "val_n", "val_seconds"} <= set(r)) == (r["epoch"] in (3, 6, 7))
    # best.pt comes from a validated epoch only
    best = load_checkpoint(tmp_path / "straight" / "best.pt")["best"]
    assert best["epoch"] in (3, 6, 7)
    assert best["value"] == min(r["val_loss"] for r in history if "val_loss" in r)


def test_resume_across_an_epoch_without_validation_is_exact(tmp_path):
    model, history, _ = toy_fit(tmp_path / "straight", epochs=7, val_every=3)

    def crash_after_four(record):      # epoch 4 is not validated; last.pt holds it
        if record["epoch"] == 4:
            raise Crash

    with pytest.raises(Crash):
        toy_fit(tmp_path / "resumed", epochs=7, val_every=3, on_epoch_end=crash_after_four)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["epoch"] == 4
    resumed, resumed_history, _ = toy_fit(tmp_path / "resumed", epochs=7, val_every=3, seed=99, resume=True)
    assert_same_weights(model, resumed)
    assert same_history(history, resumed_history)
    assert load_checkpoint(tmp_path / "resumed" / "best.pt")["best"] == \
        load_checkpoint(tmp_path / "straight" / "best.pt")["best"]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_val_every_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="val_every"):
        toy_fit(None, epochs=1, val_every=bad)
