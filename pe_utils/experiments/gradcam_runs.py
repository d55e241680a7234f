"""Where the finished runs' classifiers look (notebook 06), scored against the phantom's true clots.

The thesis shows Grad-CAM maps of Cases 2 and 4 only (6.3.1-6.3.2): Fig 6.20, Case2's
experiment 11 (Table 6.3; 100 % of the training set) on two slices with an embolus and two
without; Figs 6.21-6.22, Case2 against Case4 at 90 % and 10 % of the training set on the slices
with an embolus. Case1 against Case3 (9/10 and 1/4) is our addition. Here:

- :data:`COMPARISONS` names the three figures, :func:`find_runs` finds their finished runs (a
  profile without a fraction shows the nearest it ran, and says so) and names the missing ones
  with the command that makes them;
- :func:`load_run_model` rebuilds a run's classifier from its ``metrics.json`` and ``model.pt``;
- :func:`run_test_set` rebuilds the run's test set (Case1/3: :func:`pe_utils.case1_split` at the
  run's rate and seed; Case2/4: the separate test cache) with the clot masks at the network's
  input size (a pixel is clot when any cache pixel under it is: a small clot survives);
- :func:`localisation_study` computes Grad-CAM (:func:`pe_utils.grad_cam`) on *every*
  positive test slice and scores it (:func:`pe_utils.localisation_scores`), and keeps the maps
  of the slices the figure shows; :func:`gradcam_comparison` does it for one figure's runs.

This module is a little longer than 300 lines because it holds one idea, Grad-CAM of the
finished runs, from finding them to the figure's panels.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as nnf

from ..data import case1_split, load_cache
from ..evaluate.gradcam import grad_cam
from ..evaluate.localisation import localisation_scores
from ..io import read_json
from ..learn import build_classifier
from ..learn.models import make_head
from ..profiles import SAMPLING_RATES, resolve
from .representations import network_inputs, show_slices

#: the Grad-CAM figures, the thesis's then ours: {figure: {case: (notebook number, setting, values, method)}}
COMPARISONS: dict[str, dict[str, tuple[str, str, tuple, str]]] = {
    "6.20": {"case2": ("04", "train_fraction", (100.0,), "supervised")},
    "6.21-6.22": {"case2": ("04", "train_fraction", (90.0, 10.0), "supervised"),
                  "case4": ("05", "train_fraction", (90.0, 10.0), "contrastive")},
    "ours": {"case1": ("01", "sampling_rate", ("9/10", "1/4"), "supervised"),
             "case3": ("03", "sampling_rate", ("9/10", "1/4"), "contrastive")},
}
#: each figure's title (the grid's) and its name in sentences
FIGURE_TITLES = {"6.20": ("Fig 6.20", "Fig 6.20: Grad-CAM of Case2 (Table 6.3's experiment 11)"),
                 "6.21-6.22": ("Figs 6.21-6.22", "Figs 6.21-6.22: Grad-CAM of Case2 against Case4"),
                 "ours": ("Case1 against Case3", "Beyond the thesis: Grad-CAM of Case1 against Case3")}
#: what a figure's column titles say before the setting: Fig 6.20's model is Table 6.3's experiment 11
LABEL_NOTES = {"6.20": "experiment 11, "}
NOTEBOOK_CASE = {"01_case1_supervised": "case1", "03_case3_finetune": "case3"}


def _case(m: dict) -> str | None:
    return m.get("case") or NOTEBOOK_CASE.get(m.get("notebook"))


def _eligible(m: dict, case: str) -> bool:
    """A run of ``case`` at the profile's settings: Table 6.3's other experiments (the ablation's
    runs of notebook 04) are not experiment 11, the setting of every figure, and a 2.5D run
    (``context`` > 0, beyond the thesis) reads other inputs than one slice."""
    return _case(m) == case and str(m.get("experiment")) in ("None", "11") and not m.get("context")


def _same(a: Any, b: Any) -> bool:
    if isinstance(b, float):
        try:
            return math.isclose(float(a), b, abs_tol=0.01)
        except (TypeError, ValueError):
            return False
    return str(a) == str(b)


def _pct(values) -> str:
    return " and ".join(f"{float(v):g} %" for v in values)


def _setting_text(key: str, value: Any) -> str:
    return f"{value} ({SAMPLING_RATES.get(value, '')})" if key == "sampling_rate" else f"{value:g} % of the training set"


def _chosen(figure: str, found: list) -> tuple[dict[Any, list], str | None]:
    """The figure's settings as ``{value shown: [the thesis's values it stands for]}`` and the
    sentence saying what stands in for what (None: the thesis's own).

    Sampling rates are the thesis's. A training fraction the figure's cases did not all run is
    replaced by the nearest one they all ran (ties: the larger; none in common: any case's).
    """
    cases = COMPARISONS[figure]
    _, key, wanted, _ = next(iter(cases.values()))
    if key != "train_fraction":
        return {v: [v] for v in wanted}, None
    ran = [{float(m[key]) for _, m, _ in found if _eligible(m, c) and m.get(key) is not None} for c in cases]
    have = set.intersection(*ran) or set.union(*ran)
    chosen: dict[Any, list] = {}
    for w in wanted:
        exact = [h for h in have if _same(h, w)]
        value = w if exact or not have else min(have, key=lambda h: (abs(h - w), -h))
        chosen.setdefault(value, []).append(w)
    if list(chosen) == list(wanted):
        return chosen, None
    verb = "compared" if len(wanted) > 1 else "showed"
    only = " only" if len(chosen) < len(wanted) else ""
    return chosen, (f"{FIGURE_TITLES[figure][0]}: the thesis {verb} {_pct(wanted)}; this batch ran {_pct(chosen)}"
                    f"{only}: shown instead")


def find_runs(reports_dir: str | Path, profile: str | None = None, seed: int | None = None
              ) -> tuple[list[dict[str, Any]], list[str]]:
    """The finished runs of the figures of :data:`COMPARISONS` under ``reports_dir`` (with a ``model.pt``).

    Args:
        reports_dir: a batch's report folder or ``runs/``; searched recursively.
        profile: keep runs of this profile only (None: any).
        seed: keep runs of this seed (None: the smallest seed found); among equal runs the newest,
            a run of the profile's setting before an ablation run of experiment 11.

    Returns:
        ``(runs, missing)``: one dict per figure and point found (``figure``, ``label``, ``case``,
        ``setting``, ``value``, ``thesis_value``, ``substitution``: the sentence saying what stands
        in for the thesis's fractions or None, ``run_dir``, ``metrics``), in the figure's column
        order; and one sentence per substitution and per point missing, naming the command that
        makes it.
    """
    reports_dir = Path(reports_dir)
    found = []
    for path in sorted(reports_dir.rglob("metrics.json")) if reports_dir.is_dir() else []:
        m = read_json(path)
        if isinstance(m, dict) and (path.parent / "model.pt").is_file() and (profile is None or m.get("profile") == profile):
            found.append((path.stat().st_mtime, m, path.parent))
    runs, missing = [], []
    for figure, cases in COMPARISONS.items():
        chosen, substitution = _chosen(figure, found)
        missing += [substitution] if substitution else []
        for value, thesis in chosen.items():
            for case, (number, key, _, method) in cases.items():
                hits = [(t, m, d) for t, m, d in found if _eligible(m, case) and _same(m.get(key), value)
                        and (seed is None or m.get("seed") == seed)]
                label = f"{case.capitalize()} ({method}), {LABEL_NOTES.get(figure, '')}{_setting_text(key, value)}"
                label += f" (for the thesis's {_pct(thesis)})" if [value] != thesis else ""
                if not hits:
                    # a fraction outside the profile's grid would be refused by --fractions: the whole grid runs
                    flag = f" --rates {value}" if key == "sampling_rate" else ""
                    missing.append(f"{label}: no finished run under {reports_dir}; make it with "
                                   f"`python -m pe_utils batch --profile {profile or 'demo'} --cases {number}{flag}`")
                    continue
                # the profile's setting, the smallest seed, Case3's longest pretraining (150 epochs
                # before the 75-epoch snapshot), the newest
                _, m, d = min(hits, key=lambda h: (h[1].get("experiment") is not None, h[1].get("seed", 0),
                                                   -(h[1].get("pretrain_epochs") or 0), -h[0]))
                runs.append({"figure": figure, "label": label, "case": case, "setting": key, "value": value,
                             "thesis_value": thesis[0], "substitution": substitution, "run_dir": d, "metrics": m})
    return runs, missing


def load_run_model(run_dir: str | Path) -> torch.nn.Module:
    """A run's classifier from ``metrics.json`` (``arch``) and ``model.pt`` (weights_only), in eval mode.

    The structure is read off the weights: the input channels from ``conv1``, and a projection
    head's first layer kept in the backbone (Case3 with ``keep_head_layers=1``) from ``fc``.

    Raises:
        FileNotFoundError: no ``model.pt`` or ``metrics.json``; ValueError: weights that do not fit.
    """
    run_dir = Path(run_dir)
    m = read_json(run_dir / "metrics.json")
    if not isinstance(m, dict) or not (run_dir / "model.pt").is_file():
        raise FileNotFoundError(f"{run_dir}: needs metrics.json and model.pt (a finished run)")
    state = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)
    state = state.get("model", state) if isinstance(state.get("model"), dict) else state
    model = build_classifier(m["arch"], in_channels=int(state["backbone.conv1.weight"].shape[1]))
    if "backbone.fc.0.weight" in state:  # keep_head_layers=1: fc1 + ReLU in the ResNet's fc slot
        hidden, features = state["backbone.fc.0.weight"].shape
        model.backbone.fc = torch.nn.Sequential(torch.nn.Linear(features, hidden), torch.nn.ReLU())
        model.head, model.num_features = make_head(hidden), hidden
    model.load_state_dict(state)
    return model.eval()


def _masks_at(masks: np.ndarray | None, rows: np.ndarray, size: int, crop=None) -> np.ndarray | None:
    """Masks of cache rows at the network's input (cropped as the images, then resized): clot
    where any cache pixel under it is."""
    if masks is None:
        return None
    m = torch.as_tensor(np.ascontiguousarray(masks[rows]), dtype=torch.float32)[:, None]
    if crop is not None:
        from ..data.crop import apply_crop  # the images' box (pe_utils.data.crop)

        m = apply_crop(m, crop)
    if tuple(m.shape[-2:]) != (size, size):
        mode = "area" if size <= min(m.shape[-2:]) else "nearest"
        m = nnf.interpolate(m, size=(size, size), mode=mode)
    return (m[:, 0] > 0).numpy()


def run_test_set(run: dict, profile: str, cache_dir: str | Path | None = None,
                test_cache_dir: str | Path | None = None) -> dict[str, Any]:
    """The run's test set: cache rows, labels, masks (None without them) and the input size.

    Case1/Case3: ``cache_dir`` split at the run's rate and seed, as the run split it. Case2/Case4:
    every slice of the separate test cache (``test_cache_dir``, default the phantom's
    :func:`pe_utils.data.dataset2.prepare_dataset2`). The input size is the run's ``image_size``
    when recorded, else the profile's Case1 size (Case3 fine-tunes at Case1's).
    """
    from ..data.defaults import prepare_cache

    m = run["metrics"]
    defaults = resolve("case1" if run["case"] in ("case1", "case3") else "case2", profile)
    size, crop = int(m.get("image_size") or defaults["image_size"]), m.get("crop", defaults.get("crop"))
    if run["case"] in ("case1", "case3"):
        cache = load_cache(prepare_cache(profile, cache_dir, progress=False))
        rows = np.flatnonzero(case1_split(cache.index, m["sampling_rate"], seed=int(m["seed"])) == "test")
    else:
        from ..data.dataset2 import prepare_dataset2

        given = test_cache_dir or m.get("test_cache_dir")
        test_dir = given if given else prepare_dataset2(profile, progress=False)[1]
        cache = load_cache(test_dir)
        rows = np.arange(len(cache.index))
    labels = cache.index.pe_present_on_image.to_numpy()[rows]
    return {"cache": cache, "rows": rows, "labels": labels, "size": size, "crop": crop,
            "masks": _masks_at(getattr(cache, "masks", None), rows, size, crop)}


#: ResNet's blocks and their output stride (conv1 and the max pool halve, then layer2-4 each halve)
CAM_STRIDES = {"layer4": 32, "layer3": 16, "layer2": 8, "layer1": 4}


def cam_grid(size: int, cam_layer: str) -> int:
    """Cells per side of a Grad-CAM map on ``cam_layer`` of a ResNet fed ``size`` x ``size`` inputs:
    every stride-2 step rounds up, so the side is ceil(size / stride) (48 px: layer4 2 x 2, not 1 x 1)."""
    return -(-int(size) // CAM_STRIDES[cam_layer])


def localisation_study(run: dict, test: dict, show: np.ndarray, dilate_px: int = 2,
                       batch_size: int = 64, device="cpu", cam_layer: str = "layer4", score: bool = True
                       ) -> dict[str, Any]:
    """Grad-CAM of the run's model on every positive test slice (scored) and on ``show``.

    ``score`` False: the ``show`` slices only (a run another figure already scored).

    Returns:
        ``{"scores": localisation_scores(...) plus the run's identity and figures, or None
        without masks or ``score``, "maps": (len(show), H, W), "images": (len(show), H, W), "probs"}``.
    """
    model = load_run_model(run["run_dir"]).to(device)
    rows = test["rows"]
    positive = np.flatnonzero(test["labels"] == 1)
    scored = score and test["masks"] is not None
    wanted = np.unique(np.concatenate([positive, show]) if scored else np.asarray(show, int))
    x = network_inputs(test["cache"].images[rows[wanted]], test["size"], crop=test.get("crop"))
    if cam_layer not in CAM_STRIDES:
        raise ValueError(f"cam_layer must be one of {', '.join(CAM_STRIDES)} (layer4: the last block, the thesis's), "
                         f"got {cam_layer!r}")
    grid = cam_grid(test["size"], cam_layer)
    with grad_cam(model, getattr(model.backbone, cam_layer)[-1]) as cam:
        maps = cam(x, batch_size=batch_size)
    with torch.no_grad():
        probs = torch.sigmoid(model(x[np.searchsorted(wanted, show)].to(device))).cpu().numpy() if len(show) else np.zeros(0)
    at = {int(w): i for i, w in enumerate(wanted)}
    m = run["metrics"]
    scores = None
    if scored:
        scores = localisation_scores(maps[[at[int(p)] for p in positive]], test["masks"][positive], dilate_px, grid=grid)
        scores.update({"model": run["label"], "case": run["case"], run["setting"]: run["value"],
                       "seed": m.get("seed"), "run": str(run["run_dir"]), "auc": m.get("auc"),
                       "oracle_workload_pct": m.get("oracle_workload_pct"),
                       "practical_workload_pct": m.get("practical_workload_pct"),
                       "cam_layer": cam_layer, "cam_grid": f"{grid}x{grid}"})
    pick = [at[int(s)] for s in show]
    return {"scores": scores, "maps": maps[pick], "images": x[np.searchsorted(wanted, show), 0].numpy(),
            "probs": probs, "masks": None if test["masks"] is None else test["masks"][show]}


def _dataset1(folder: Path) -> bool:
    """A pretraining run on Dataset1 (Case3's), not Case4's on Dataset2."""
    m = read_json(folder / "metrics.json") if (folder / "metrics.json").is_file() else None
    return not isinstance(m, dict) or m.get("dataset") in (None, "dataset1")


def explain_inputs(profile: str, reports_dir: str | Path | None = None,
                   pretrain_dir: str | Path | None = None) -> tuple[Path, Path | None, str]:
    """Where notebook 06 reads: the report folder and the pretraining run, and a sentence.

    ``reports_dir`` None: ``reports/<profile>`` when it holds runs, else ``runs/`` (notebooks
    run by hand). ``pretrain_dir`` None: the newest folder holding ``simclr.pt`` under it.
    """
    from ..paths import project_root

    if reports_dir is None:
        candidates = [project_root() / "reports" / profile, project_root() / "runs"]
        reports_dir = next((c for c in candidates if c.is_dir() and any(c.rglob("metrics.json"))), candidates[0])
    reports_dir = Path(reports_dir)
    if pretrain_dir is None:
        found = sorted((p for p in reports_dir.rglob("simclr.pt") if _dataset1(p.parent)),
                       key=lambda p: p.stat().st_mtime) if reports_dir.is_dir() else []
        pretrain_dir = found[-1].parent if found else None
    where, pretrain_dir = pretrain_dir or reports_dir, Path(pretrain_dir) if pretrain_dir is not None else None
    pretrain_dir = pretrain_dir if pretrain_dir is not None and (pretrain_dir / "simclr.pt").is_file() else None
    note = (f"runs from {reports_dir}; pretraining run {pretrain_dir}" if pretrain_dir else
            f"runs from {reports_dir}; no pretraining run (no simclr.pt in {where}): run notebook 02_case3_pretrain "
            f"(`python -m pe_utils batch --profile {profile} --cases 02`) for part 1")
    return reports_dir, pretrain_dir, note


def gradcam_comparison(runs: list[dict], figure: str, profile: str, cache_dir=None, test_cache_dir=None,
                       dilate_px: int = 2, device="cpu", cam_layer: str = "layer4", scored: list[dict] = ()
                       ) -> tuple[dict[str, Any] | None, list[dict], str | None]:
    """Grad-CAM of one figure's runs (:data:`COMPARISONS`: "6.20", "6.21-6.22" or "ours").

    The figure's slices (two with an embolus, two without, from four patients where the test set
    has them: :func:`show_slices`) are the same for every model when their test sets share such
    slices (Cases 2/4 share one test set; Cases 1/3 the rows their splits both test), else each
    model shows its own. Every positive test slice of each model is scored, once: a run already
    in ``scored`` (another figure's rows) is drawn, not scored again.

    Returns:
        ``(panels, scores, note)``: the arguments of :func:`pe_utils.gradcam_grid`, title included
        (None when no run), the scores per model (empty without masks) and a note, a line each: what
        stands in for the thesis's settings, what was not scored (None when nothing is to be said).
    """
    members = [r for r in runs if r["figure"] == figure]
    if not members:
        return None, [], f"{FIGURE_TITLES[figure][0]}: no finished run (the missing runs are named above)"
    tests = [run_test_set(r, profile, cache_dir, test_cache_dir) for r in members]
    shared = set(tests[0]["rows"].tolist()).intersection(*[t["rows"].tolist() for t in tests[1:]])
    common = np.array(sorted(shared), dtype=int)
    index = tests[0]["cache"].index
    patient = (index.patient_id if "patient_id" in index else index.StudyInstanceUID).to_numpy()
    labels = index.pe_present_on_image.to_numpy()
    picked = common[show_slices(labels[common], groups=patient[common])] if len(common) else np.zeros(0, int)
    same = len(picked) == len(show_slices(tests[0]["labels"]))
    done = {s.get("run") for s in scored}
    out, shown = [], []
    for run, test in zip(members, tests):
        show = (np.searchsorted(test["rows"], picked) if same
                else show_slices(test["labels"], groups=patient[test["rows"]]))
        out.append(localisation_study(run, test, show, dilate_px, device=device, cam_layer=cam_layer,
                                      score=str(run["run_dir"]) not in done))
        shown.append(test["labels"][show])
    panels = {"images": [o["images"] for o in out], "maps": [o["maps"] for o in out],
              "masks": None if tests[0]["masks"] is None else [o["masks"] for o in out],
              "col_titles": [r["label"] for r in members], "title": FIGURE_TITLES[figure][1],
              "row_titles": [f"slice {i + 1}: " + ("embolus" if v == 1 else "no embolus") for i, v in enumerate(shown[0])],
              "captions": [[f"p = {p:.2f}" + ("" if m.max() > 0 else ", flat map") for p, m in zip(o["probs"], o["maps"])]
                           for o in out]}
    notes = [members[0]["substitution"]] if members[0].get("substitution") else []
    if tests[0]["masks"] is None:
        notes.append("the cache has no clot masks (real data, or a cache made before masks existed): the maps are "
                     "shown, not scored")
    if not same:
        notes.append("the models' test sets share no such slices: each shows its own")
    return panels, [o["scores"] for o in out if o["scores"]], "\n".join(notes) or None
