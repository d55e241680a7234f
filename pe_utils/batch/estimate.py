"""What a batch costs before it runs: images, FLOPs, GPU-hours, wall time and disk.

``python -m pe_utils batch --profile thesis --estimate [--throughput IMAGES_PER_S] [--devices 0,1,...]``
prints, per dependency stage, per notebook and in total, what the selected runs will compute
and write. The module is longer than 300 lines because it holds one idea whole (the cost model
of a batch); every figure is a projection:

- **Sizes** come from the profile and the dataset specs, never from files on disk: Dataset1
  (``specs/dataset1.json``, 15,556 images in the thesis profile; the phantom's patients x
  slices in the others), Dataset2 and its test set (the profile's ``data2``: 19,946 and 455).
  Case1 at rate p/q: ``round(n p/q)`` images in the training stage, 20 % of them validation,
  the rest of the dataset test. Case2: 20 % of the images (and of the positives) validate, a
  fraction of each class of the rest trains, then the re-sampling (positives x3, 2/3 of the
  negatives). SimCLR: full batches only (the loader drops the last one), two views an image.
- **Epochs and models** come from each run's own parameters (grid values, ``-p``) through the
  notebooks' config functions, so ``-p epochs 10`` or ``--rates 1/2`` change the estimate.
- **Passes:** a trained image costs 3 forward passes (forward + backward), an evaluated one 1.
  Cases 1 and 3 validate every epoch and score validation and test with TTA (5 views) at the
  end. Cases 2 and 4 validate every ``val_every``-th epoch and after the last, ``val_every``
  given as the run's parameter or else by the runs' own rule
  (:func:`pe_utils.experiments.case2.case2_val_every`); at the end they score validation once
  from the original view and the test set with TTA (its first view is the original one). Case3's
  step 1 trains a head on a frozen encoder: its encoder passes are forward-only, and they are
  training, not evaluation. The project's goal: evaluation <= 25 % of a run's passes.
- **Time:** ``throughput`` is training images/s of ResNet50 at 128 px on one GPU (what
  ``bench/train.py`` prints); a run with another network or size is scaled by the FLOPs ratio.
  A stage starts when the previous one has ended; within a stage the runs go to ``devices``
  GPUs longest first, one run per GPU at a time.
- **Disk:** one resumable checkpoint a training step (weights 4 bytes/parameter + optimizer
  state: SGD momentum 1x, Adam 2x), rewritten every ``checkpoint_every`` seconds of projected
  time and once at the end; kept: the final weights (``model.pt``; the pretrainings' ``simclr.pt``
  and snapshots), since the notebooks delete a finished run's checkpoint, and that checkpoint
  too for a run given ``keep_checkpoints``; while a run trains, its checkpoint is on disk beside
  them (one a device at a time). Caches are
  images x side x side uint8 bytes. Reports: measured on an earlier batch under ``reports/``
  when one is there, else assumed (see :func:`report_bytes`).
"""
from __future__ import annotations

import functools
import inspect
import math
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

#: training images/s of ResNet50 at 128 px, batch 256, through ``fit`` on one H200 (bench/train.py,
#: 2026-11-30): the notebooks train through ``fit`` (loader, AMP, validation), so this is the figure a
#: run sees; the bare loop's 10,522 images/s is a lower bound on the cost, not what a run gets
DEFAULT_THROUGHPUT = 3929.0
BARE_LOOP_THROUGHPUT = 10522.0
#: the network ``throughput`` is measured on: (arch, image size, input channels)
REFERENCE_MODEL = ("resnet50", 128, 1)
TRAIN_PASSES = 3              # forward + backward of one training image, in forward passes
EVAL_SHARE_GOAL = 0.25        # evaluation <= 25 % of any run's passes (the project's goal)
DISK_GOAL = 100e9             # bytes written by the thesis profile (the project's goal)
OPTIMIZER_STATE = {"sgd": 1, "adam": 2}   # optimizer state in parameter copies
#: per run, when no earlier batch can be measured: two HTML pages that each inline plotly.js
#: (about 4.6 MB) and the executed notebook with its figures as JSON (about 2 MB)
ASSUMED_REPORT_BYTES = 12e6
_GPUS = {"H100 (80 GB)": 80e9, "H200 (141 GB)": 141e9}


def _rhu(x: float) -> int:
    return int(math.floor(x + 0.5))   # half up, as pe_utils.data.splits rounds


@functools.lru_cache(maxsize=None)
def forward_flops(arch: str, image_size: int, in_channels: int = 1) -> float:
    """FLOPs of one forward pass of the classifier on one image (``FlopCounterMode``, CPU, batch 1;
    a multiply-add counts 2). Cached per (arch, size, channels)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ..learn.models import build_classifier

    model = build_classifier(arch, in_channels=in_channels).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, in_channels, image_size, image_size))
    return float(counter.get_total_flops())


@functools.lru_cache(maxsize=None)
def parameter_count(arch: str, in_channels: int = 1, simclr: tuple[int | None, int] | None = None) -> int:
    """Parameters of the classifier, or of the SimCLR network when ``simclr`` = (hidden, out_dim)."""
    from ..learn.models import build_classifier
    from ..learn.simclr import build_simclr

    model = (build_simclr(arch, in_channels=in_channels, hidden=simclr[0], out_dim=simclr[1]) if simclr
             else build_classifier(arch, in_channels=in_channels))
    return sum(p.numel() for p in model.parameters())


@functools.lru_cache(maxsize=None)
def simclr_memory(arch: str, image_size: int, in_channels: int, batch: int, hidden: int | None,
                  out_dim: int) -> dict[str, float]:
    """GPU memory of one SimCLR step at ``batch`` images x 2 views under bf16 autocast (bytes).

    Basis: the tensors autograd saves for the backward pass, measured on CPU in float32 at 2 and
    4 views (their difference is the per-view cost), halved for bf16, times ``2 batch`` views;
    plus weights, gradients and SGD momentum in float32 and autocast's bf16 weight copies. Not
    counted: cuDNN workspaces, the allocator's fragmentation, the loss's (2B, 2B) similarities.
    """
    import torch

    from ..learn.simclr import build_simclr

    model = build_simclr(arch, in_channels=in_channels, hidden=hidden, out_dim=out_dim).train()

    def saved(views: int) -> int:
        storages: dict[int, int] = {}

        def pack(t):
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(torch.zeros(views, in_channels, image_size, image_size))
        return sum(storages.values())

    per_view = (saved(4) - saved(2)) / 2 / 2          # float32 -> bf16
    params = sum(p.numel() for p in model.parameters())
    return {"activations": per_view * 2 * batch, "states": params * (3 * 4 + 2), "per_view": per_view}


def checkpoint_every() -> float:
    """Seconds between checkpoints: ``fit``'s ``checkpoint_every`` default when it has one, else 300."""
    from ..learn.loop import fit

    default = inspect.signature(fit).parameters.get("checkpoint_every")
    value = getattr(default, "default", None)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else 300.0


def report_bytes(reports: Path | None) -> tuple[float, str]:
    """Bytes of one run's reports (notebook and two HTML pages) and where the figure comes from:
    the mean over the runs of the batches under ``reports`` (``<out>/<notebook>/<run>.status.json``
    beside them), else :data:`ASSUMED_REPORT_BYTES`."""
    sizes = []
    for marker in sorted(Path(reports).glob("*/*/*.status.json")) if reports and Path(reports).is_dir() else []:
        base = marker.with_name(marker.name.removesuffix(".status.json"))
        files = [base.with_suffix(s) for s in (".ipynb", ".html")] + [base.with_name(base.name + ".results.html")]
        if all(f.is_file() for f in files):
            sizes.append(sum(f.stat().st_size for f in files))
    if sizes:
        return sum(sizes) / len(sizes), f"measured: mean of {len(sizes)} runs under {reports}"
    return ASSUMED_REPORT_BYTES, ("assumed 12 MB a run (two HTML pages inlining plotly.js, 4.6 MB each, "
                                  "and the notebook); no earlier batch under reports/ to measure")


@dataclass
class Sizes:
    """Images (and positives) of the profile's datasets, and the side and channels of their caches."""
    dataset1: tuple[int, int]
    dataset2: tuple[int, int]
    dataset2_1609: tuple[int, int]
    case2_test: int
    side1: int
    side2: int
    channels1: int
    channels2: int

    @classmethod
    def of(cls, profile: str) -> "Sizes":
        """Sizes from the specs (thesis) or from the profile's phantom (the others)."""
        from ..data.dataset2 import SUBSET_1609, dataset2_specs
        from ..data.manifest import load_spec
        from ..profiles import resolve

        data, data2 = resolve("data", profile), resolve("data2", profile)
        spec1 = load_spec("dataset1")
        n1 = spec1["n_images"] if profile == "thesis" else data["patients"] * data["slices_per_patient"]
        train2, test2 = dataset2_specs(profile)
        n1609 = _rhu(train2["n_images"] * SUBSET_1609["n_images"] / 19946)
        return cls(dataset1=(n1, _rhu(n1 * spec1["positive_fraction"])),
                   dataset2=(train2["n_images"], train2["n_positive"]),
                   dataset2_1609=(n1609, _rhu(n1609 * SUBSET_1609["positive_fraction"])),
                   case2_test=test2["n_images"], side1=data["size"], side2=data2["size"],
                   channels1=1 if data["channels"] == "gray" else 3, channels2=1 if data2["channels"] == "gray" else 3)


def case1_counts(n: int, rate: str) -> tuple[int, int, int]:
    """``(train, validation, test)`` images of a Case1 split of ``n`` images at ``rate``."""
    from ..data.splits import CASE1_VAL_FRACTION, parse_rate

    stage = _rhu(n * Fraction(parse_rate(rate)))
    val = _rhu(CASE1_VAL_FRACTION * stage)
    return stage - val, val, n - stage


def case2_counts(n: int, n_positive: int, fraction: float, sampling: str = "resample") -> tuple[int, int]:
    """``(training images an epoch, validation images)`` of Case2 on ``n`` images at ``fraction`` (0-1]."""
    from ..data.splits import CASE2_VAL_FRACTION

    val, val_pos = _rhu(CASE2_VAL_FRACTION * n), _rhu(CASE2_VAL_FRACTION * n_positive)
    pos, neg = n_positive - val_pos, n - val - (n_positive - val_pos)
    pos, neg = max(1, _rhu(fraction * pos)), max(1, _rhu(fraction * neg))
    return (3 * pos + _rhu(2 / 3 * neg) if sampling == "resample" else pos + neg), val


@dataclass
class Estimate:
    """What :func:`estimate` projects: one row per run (``runs``), the totals, the disk, the memory."""
    runs: pd.DataFrame
    stages: pd.DataFrame
    notebooks: pd.DataFrame
    total: dict[str, float]
    disk: dict[str, float]
    throughput: float
    devices: int
    memory: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def _given(params: dict, *sections: str, profile: str, also: tuple[str, ...] = ()) -> dict[str, Any]:
    """The run's parameters that the profile's ``sections`` hold (what the notebook passes on)."""
    from ..profiles import resolve

    keys = set(also).union(*(resolve(s, profile) for s in sections))
    return {k: v for k, v in params.items() if k in keys and v is not None}


def _pretrain_cfg(run, profile: str) -> dict:
    """The settings of the pretraining run ``run`` reads (its upstream run of notebook 02), else the profile's."""
    from ..experiments.pretrain import pretrain_config

    up = next((d for d in run.deps if d.entry.path.stem == "02_case3_pretrain"), None)
    return pretrain_config(profile, **_given(up.parameters if up else {}, "pretrain", profile=profile))


def run_work(run, profile: str, sizes: Sizes) -> dict[str, Any]:
    """One run's work: model, ``fits`` (each: trained, frozen and evaluated images, parameters,
    optimizer), evaluation after training, final weights kept, and a note; no GPU work: no fits."""
    from ..experiments.case1 import case1_config
    from ..experiments.case2 import TOGGLES, case2_config, case2_val_every, fraction_of
    from ..experiments.case3 import case3_config
    from ..profiles import resolve

    kind, p = run.entry.path.stem, run.parameters
    work: dict[str, Any] = {"arch": None, "image_size": None, "channels": sizes.channels1, "fits": [],
                            "evaluated": 0, "note": "", "reads": {"dataset1"}}
    if kind == "01_case1_supervised":
        cfg, rate, _ = case1_config(profile, p["sampling_rate"], **_given(p, "case1", profile=profile))
        train, val, test = case1_counts(sizes.dataset1[0], rate)
        work.update(arch=cfg["arch"], image_size=cfg["image_size"], epochs=cfg["epochs"],
                    fits=[(cfg["epochs"] * train, 0, cfg["epochs"] * val, None, cfg["optimizer"])],
                    evaluated=5 * (val + test))
    elif kind == "03_case3_finetune":
        cfg, rate, _ = case3_config(profile, p["sampling_rate"], **_given(p, "case3", profile=profile, also=("seed",)))
        pre = _pretrain_cfg(run, profile)
        train, val, test = case1_counts(sizes.dataset1[0], rate)
        s1, s2 = cfg["step1_epochs"], cfg["step2_epochs"]
        work.update(arch=pre["arch"], image_size=cfg["image_size"], epochs=s1 + s2, evaluated=5 * (val + test),
                    fits=[(0, s1 * train, s1 * val, None, "frozen"), (s2 * train, 0, s2 * val, None, "sgd")])
    elif kind == "02_case3_pretrain":
        cfg = resolve("pretrain", profile, **_given(p, "pretrain", profile=profile))
        n = getattr(sizes, str(p.get("dataset", "dataset1")))[0]
        per_epoch = 2 * (n // cfg["batch_size"]) * cfg["batch_size"]     # full batches, two views
        snaps = [e for e in cfg.get("snapshot_epochs") or () if e < cfg["epochs"]]
        work["reads"] = {"dataset2" if str(p.get("dataset", "dataset1")).startswith("dataset2") else "dataset1"}
        work.update(arch=cfg["arch"], image_size=cfg["image_size"], epochs=cfg["epochs"], simclr=cfg,
                    channels=sizes.channels2 if str(p.get("dataset", "")).startswith("dataset2") else sizes.channels1,
                    fits=[(cfg["epochs"] * per_epoch, 0, 0, (cfg["hidden"], cfg["out_dim"]), "sgd")],
                    snapshots=len(snaps))
    elif kind in ("04_case2_supervised", "05_case4_contrastive"):
        cfg = case2_config(profile, p.get("experiment"), p.get("train_fraction", 100),
                           **{k: p[k] for k in (*TOGGLES, "seed", "schedule", "epochs") if p.get(k) is not None})
        n, n_pos = getattr(sizes, cfg["dataset"])
        per_epoch, val = case2_counts(n, n_pos, fraction_of(p.get("train_fraction", 100)), cfg["sampling"])
        arch = _pretrain_cfg(run, profile)["arch"] if kind.startswith("05") else cfg["arch"]
        # the runs' own cadence: the notebook's val_every, else the same rule (case2_resume)
        val_every = int(p.get("val_every") or case2_val_every(per_epoch, val))
        validations = math.ceil(cfg["epochs"] / val_every)     # every val_every-th epoch and the last
        work["reads"] = {"dataset1" if cfg["dataset"] == "dataset1" else "dataset2", "case2_test"}
        work.update(arch=arch, image_size=cfg["image_size"], epochs=cfg["epochs"], val_every=val_every,
                    evaluated=val + 5 * sizes.case2_test,   # validation: original view; test: 5 TTA views
                    channels=sizes.channels1 if cfg["dataset"] == "dataset1" else sizes.channels2,
                    fits=[(cfg["epochs"] * per_epoch, 0, validations * val, None, cfg["optimizer"])])
    elif kind == "06_explain":
        cfg, pre = resolve("explain", profile, **_given(p, "explain", profile=profile)), _pretrain_cfg(run, profile)
        train, _, test = case1_counts(sizes.dataset1[0], cfg["probe_rate"])
        states = 2 + len([e for e in pre.get("snapshot_epochs") or () if e < pre["epochs"]])
        work.update(arch=pre["arch"], image_size=pre["image_size"],
                    evaluated=states * (train + test + 4 * cfg["n_views"]),
                    note="forward passes only (linear probe, embeddings); Grad-CAM's few slices not counted")
    elif kind not in ("00_preprocessing", "07_summary"):
        work.update(note="not estimated: a notebook this estimate does not know", reads=set())
    if kind == "07_summary":
        work["reads"] = set()
    k = p.get("context")   # 2.5D: the slice and its k neighbours on each side as channels
    if k is None and kind == "03_case3_finetune":   # None: the encoder's, as notebook 03 reads it
        up = next((d for d in run.deps if d.entry.path.stem == "02_case3_pretrain"), None)
        k = up.parameters.get("context") if up else None
    k = int(k or 0)
    if k and kind in ("01_case1_supervised", "02_case3_pretrain", "03_case3_finetune"):
        work["channels"] *= 2 * k + 1
    return work


def _wall(seconds: list[float], devices: int) -> float:
    """Makespan of independent runs on ``devices`` GPUs, longest first to the least loaded one."""
    loads = [0.0] * max(1, devices)
    for s in sorted(seconds, reverse=True):
        loads[loads.index(min(loads))] += s
    return max(loads)


def estimate(runs: list, profile: str, throughput: float = DEFAULT_THROUGHPUT, devices: int = 1, *,
             every: float | None = None, report_size: float = ASSUMED_REPORT_BYTES,
             sizes: Sizes | None = None, memory: bool = True) -> Estimate:
    """Project the cost of ``runs`` (from :func:`pe_utils.batch.expand.plan_runs`) under ``profile``.

    Args:
        runs: the batch's runs, with their ``parameters``, ``deps`` and ``stage``.
        profile: the profile they run with.
        throughput: training images/s of ResNet50 at 128 px on one GPU.
        devices: GPUs the stages are spread over.
        every: seconds between checkpoints (default :func:`checkpoint_every`).
        report_size: bytes of one run's reports (see :func:`report_bytes`).
        sizes: dataset sizes (default :meth:`Sizes.of` the profile).
        memory: estimate the SimCLR step's memory when a pretraining run is selected.

    Returns:
        :class:`Estimate`; ``runs`` has one row per run with ``images_trained``, ``images_frozen``
        (forward-only training passes), ``images_evaluated``, ``eval_share``, ``flops``,
        ``gpu_seconds``, ``checkpoint_written``, ``checkpoint_kept``, ``weights_kept``, ``reports``.

    Raises:
        ValueError: a non-positive throughput or device count.
    """
    if throughput <= 0 or devices < 1:
        raise ValueError(f"throughput and devices must be positive, got {throughput} and {devices}")
    sizes, every = sizes or Sizes.of(profile), every or checkpoint_every()
    ref = forward_flops(*REFERENCE_MODEL)
    rows, notes, mem, reads = [], [], None, set()
    for run in runs:
        w = run_work(run, profile, sizes)
        reads |= w["reads"]
        model = (w["arch"], w["image_size"], w["channels"])
        flops = forward_flops(*model) if w["arch"] else 0.0
        ratio = flops / ref
        trained = sum(f[0] for f in w["fits"])
        frozen = sum(f[1] for f in w["fits"])
        evaluated = w["evaluated"] + sum(f[2] for f in w["fits"])
        passes = TRAIN_PASSES * trained + frozen + evaluated
        written = kept = weights = 0.0
        for f_trained, f_frozen, f_eval, simclr, optimizer in w["fits"]:
            n_params = parameter_count(w["arch"], w["channels"], simclr)
            ckpt = 4 * n_params * (1 + OPTIMIZER_STATE.get(optimizer, 0))
            fit_seconds = (TRAIN_PASSES * f_trained + f_frozen + f_eval) * ratio / (TRAIN_PASSES * throughput)
            written += ckpt * (math.floor(fit_seconds / every) + 1)
            kept += ckpt if run.parameters.get("keep_checkpoints") else 0.0
            weights = 4 * n_params * (1 + w.get("snapshots", 0))
        scaled = (f"{w['arch']} at {w['image_size']} px, {w['channels']} channel(s): throughput scaled by "
                  f"the FLOPs ratio to ResNet50 at 128 px, {ratio:.3f}")
        if w["arch"] and model != REFERENCE_MODEL and scaled not in notes:
            notes.append(scaled)
        if w["note"]:
            notes.append(f"{run.name}: {w['note']}")
        if memory and mem is None and "simclr" in w:
            c = w["simclr"]
            mem = {"arch": c["arch"], "image_size": c["image_size"], "batch": c["batch_size"],
                   **simclr_memory(c["arch"], c["image_size"], w["channels"], c["batch_size"], c["hidden"], c["out_dim"])}
        rows.append({"stage": run.stage, "notebook": run.entry.name, "run": run.run_id, "arch": w["arch"],
                     "point": ", ".join(f"{k} {v}" for k, v in run.grid.items() if k != "seed") or run.run_id,
                     "image_size": w["image_size"], "epochs": w.get("epochs"), "val_every": w.get("val_every", 1),
                     "images_trained": trained,
                     "images_frozen": frozen, "images_evaluated": evaluated,
                     "eval_share": evaluated / passes if passes else 0.0, "flops": passes * flops,
                     "gpu_seconds": passes * ratio / (TRAIN_PASSES * throughput), "trains": trained + frozen > 0,
                     "checkpoint_written": written + weights, "checkpoint_kept": kept + weights,
                     "weights_kept": weights, "reports": report_size})
    table = pd.DataFrame(rows)
    sums = ["images_trained", "images_frozen", "images_evaluated", "flops", "gpu_seconds",
            "checkpoint_written", "checkpoint_kept", "reports"]

    def group(by: str) -> pd.DataFrame:
        g = table.groupby(by, sort=False)
        out = g[sums].sum()
        out.insert(0, "runs", g.size())
        out["wall_seconds"] = g["gpu_seconds"].apply(lambda s: _wall(list(s), devices))
        return out

    stages, notebooks = group("stage"), group("notebook")
    # each cache is made once for the batch (``prepare``) and read by every run that needs it
    caches = {"dataset1": sizes.dataset1[0] * sizes.side1 ** 2 * sizes.channels1,
              "dataset2": sizes.dataset2[0] * sizes.side2 ** 2 * sizes.channels2,
              "case2_test": sizes.case2_test * sizes.side2 ** 2 * sizes.channels2}
    caches = float(sum(caches[name] for name in reads))
    disk = {"checkpoints_written": table["checkpoint_written"].sum(), "checkpoints_kept": table["checkpoint_kept"].sum(),
            "caches": caches, "reports": table["reports"].sum(), "checkpoint_every": every}
    disk["written"] = disk["checkpoints_written"] + caches + disk["reports"]
    disk["kept"] = disk["checkpoints_kept"] + caches + disk["reports"]
    total = {"runs": len(table), **{k: float(table[k].sum()) for k in sums},
             "wall_seconds": float(stages["wall_seconds"].sum())}
    return Estimate(table, stages, notebooks, total, disk, throughput, devices, mem, notes)


def _passes(t) -> Any:
    return TRAIN_PASSES * t["images_trained"] + t["images_frozen"] + t["images_evaluated"]


def _table(frame: pd.DataFrame) -> str:
    """The columns a reader compares, in readable units."""
    passes = _passes(frame)
    out = pd.DataFrame({
        "runs": frame["runs"],
        "trained (M img)": frame["images_trained"] / 1e6,
        "frozen fwd (M)": frame["images_frozen"] / 1e6,
        "evaluated (M)": frame["images_evaluated"] / 1e6,
        "eval %": (100 * frame["images_evaluated"] / passes.where(passes > 0)).fillna(0),
        "PFLOPs": frame["flops"] / 1e15,
        "GPU-h": frame["gpu_seconds"] / 3600,
        "wall h": frame["wall_seconds"] / 3600,
        "ckpt written GB": frame["checkpoint_written"] / 1e9})
    return out.to_string(float_format=lambda x: f"{x:,.2f}")


def format_estimate(est: Estimate, profile: str, report_note: str = "") -> str:
    """The estimate as the text ``--estimate`` prints: per stage, per notebook, total, the runs whose
    evaluation share is over the goal, the disk, the SimCLR step's memory and the assumptions."""
    gb, t, d = 1e9, est.total, est.disk
    basis = ("fit's figure on one H200 (bench/train.py, ResNet50, 128 px, batch 256; the bare loop gave "
             f"{BARE_LOOP_THROUGHPUT:,.0f})" if est.throughput == DEFAULT_THROUGHPUT else "given with --throughput")
    lines = [f"Estimate for the {profile} profile: {t['runs']} runs in {len(est.stages)} stage(s) on {est.devices} "
             f"GPU(s), at {est.throughput:,.0f} training images/s of ResNet50 at 128 px ({basis}).", "",
             "Per stage (a stage starts when the previous one has ended):", _table(est.stages), "",
             "Per notebook:", _table(est.notebooks), ""]
    passes = _passes(t)
    lines += [f"Total: {t['runs']} runs; {t['images_trained'] / 1e6:,.2f} M images trained, "
              f"{t['images_frozen'] / 1e6:,.2f} M forward-only training passes (frozen encoder), "
              f"{t['images_evaluated'] / 1e6:,.2f} M images evaluated ({100 * t['images_evaluated'] / max(passes, 1):.1f} % "
              f"of the passes); {t['flops'] / 1e12:,.0f} TFLOPs ({t['flops'] / 1e15:,.1f} PFLOPs).",
              f"  GPU time: {t['gpu_seconds'] / 3600:,.2f} GPU-hours ({t['gpu_seconds'] / 60:,.0f} GPU-minutes); "
              f"wall time on {est.devices} GPU(s): {t['wall_seconds'] / 3600:,.2f} h ({t['wall_seconds'] / 60:,.0f} min).",
              ""]
    over = est.runs[est.runs["trains"] & (est.runs["eval_share"] > EVAL_SHARE_GOAL)]
    lines.append(f"Runs whose evaluation is over {EVAL_SHARE_GOAL:.0%} of their passes (the goal; not enforced): "
                 f"{len(over)} of {int(est.runs['trains'].sum())} training runs")
    for notebook, rows in over.groupby("notebook", sort=False):   # the seeds of a grid point share a line
        points = rows.groupby("point", sort=False)["eval_share"].agg(["max", "size"])
        lines.append(f"  {notebook}: " + "; ".join(f"{r.Index} {r.max:.0%}" + (f" ({r.size} runs)" if r.size > 1 else "")
                                                   for r in points.itertuples()))
    goal = "within" if d["written"] <= DISK_GOAL else "OVER"
    lines += ["", f"Disk (one resumable checkpoint a training step, rewritten every {d['checkpoint_every']:.0f} s "
              "of projected time and at the end):",
              f"  checkpoints and final weights: {d['checkpoints_written'] / gb:,.1f} GB written, "
              f"{d['checkpoints_kept'] / gb:,.1f} GB kept",
              f"  caches (uint8 images): {d['caches'] / gb:,.2f} GB",
              f"  reports: {d['reports'] / gb:,.2f} GB ({report_note or 'see report_bytes'})",
              f"  written: {d['written'] / gb:,.1f} GB ({goal} the {DISK_GOAL / gb:.0f} GB goal); "
              f"kept: {d['kept'] / gb:,.1f} GB"]
    if est.memory:
        m = est.memory
        need = m["activations"] + m["states"]
        fits = ", ".join(f"{name}: {'fits' if need < cap else 'does not fit'}" for name, cap in _GPUS.items())
        lines += ["", f"SimCLR step memory, {m['arch']} at {m['image_size']} px, batch {m['batch']} x 2 views, "
                  f"bf16 autocast: about {need / gb:,.1f} GB ({m['activations'] / gb:,.1f} GB of saved activations, "
                  f"{m['per_view'] / 1e6:,.1f} MB a view, + {m['states'] / gb:,.2f} GB of weights, gradients and "
                  f"momentum) on one GPU; {fits}. Basis: the tensors autograd saves, measured on CPU in float32 and "
                  "halved for bf16; workspaces and fragmentation not counted."]
    lines += ["", "Assumptions: sizes from the profile and the dataset specs, not from disk; a trained image costs "
              f"{TRAIN_PASSES} forward passes; Cases 1/3 validate every epoch and score validation and test with "
              "5 TTA views; Cases 2/4 validate every val_every-th epoch and the last (case2_val_every's rule "
              "unless the run gives val_every), then score validation from the original view and the test set "
              "with 5 TTA views; "
              "one run per GPU at a time; preprocessing (CPU) not counted; the throughput holds at every batch "
              "size (it was measured at 256: smaller batches, Case1's 32 and Case3's 64, run slower per image on a "
              "large GPU, so their hours are a lower bound)."]
    lines += [f"  {n}" for n in est.notes]
    return "\n".join(lines)


def show_estimate(runs: list, profile: str, throughput: float | None = None, devices: int = 1,
                  reports: Path | None = None, file: TextIO | None = None) -> int:
    """Print :func:`format_estimate` of ``runs`` (``--estimate``); returns the command's exit status:
    0, or 2 (with a message) for a non-positive throughput."""
    if throughput is not None and throughput <= 0:
        print(f"error: --throughput is training images per second, a positive number; got {throughput}",
              file=sys.stderr)
        return 2
    size, note = report_bytes(reports)
    est = estimate(runs, profile, throughput or DEFAULT_THROUGHPUT, devices, report_size=size)
    print(format_estimate(est, profile, note), file=file or sys.stdout)
    return 0
