"""Notebook 06's plumbing: finding runs, rebuilding their models, masks at the input size, slices, figures."""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import torch


def _run(folder, model, **metrics):
    folder.mkdir(parents=True)
    torch.save(model.state_dict(), folder / "model.pt")
    (folder / "metrics.json").write_text(json.dumps({"arch": "resnet18", "profile": "smoke", **metrics}))
    return folder


@pytest.fixture(scope="module")
def tiny():
    from pe_utils.learn import build_classifier

    torch.manual_seed(0)
    return build_classifier("resnet18", in_channels=1).eval()


def test_find_runs_picks_the_smallest_seed_then_the_newest_and_names_what_is_missing(tmp_path, tiny):
    from pe_utils.experiments.explain_runs import find_runs

    c1 = "01_case1_supervised"
    _run(tmp_path / c1 / "a", tiny, notebook=c1, sampling_rate="9/10", seed=1)
    old = _run(tmp_path / c1 / "b", tiny, notebook=c1, sampling_rate="9/10", seed=0)
    new = _run(tmp_path / c1 / "c", tiny, notebook=c1, sampling_rate="9/10", seed=0)
    os.utime(old / "metrics.json", (time.time() - 100, time.time() - 100))
    (tmp_path / c1 / "d").mkdir()  # no model.pt: unfinished, ignored
    (tmp_path / c1 / "d" / "metrics.json").write_text(json.dumps({"notebook": c1, "sampling_rate": "1/4", "seed": 0}))
    _run(tmp_path / "other" / "e", tiny, notebook=c1, sampling_rate="1/4", seed=0, profile="demo")  # another profile
    runs, missing = find_runs(tmp_path, "smoke")
    assert [(r["case"], r["value"], r["run_dir"]) for r in runs] == [("case1", "9/10", new)]
    assert any("Case1 (supervised), 1/4" in m and "--cases 01 --rates 1/4" in m for m in missing)
    assert any("Case4 (contrastive), 10 %" in m and m.endswith("--cases 05`") for m in missing)
    assert len(missing) == 7


def test_find_runs_compares_case2_and_case4_at_the_profiles_extremes_when_90_and_10_did_not_run(tmp_path, tiny):
    from pe_utils.experiments.explain_runs import find_runs

    for case, fractions in (("case2", (100, 50, 25)), ("case4", (100, 25))):
        for f in fractions:
            _run(tmp_path / case / str(f), tiny, case=case, train_fraction=f, seed=0)
    runs, missing = find_runs(tmp_path, "smoke")
    assert sorted((r["case"], r["value"]) for r in runs) == [("case2", 25.0), ("case2", 100.0),
                                                              ("case4", 25.0), ("case4", 100.0)]
    assert any("compared at 100 % and 25 %" in m for m in missing)


def test_load_run_model_rebuilds_case1_and_a_case3_that_kept_the_head_layer(tmp_path, tiny):
    from pe_utils.experiments.explain_runs import load_run_model
    from pe_utils.learn import build_simclr, to_classifier

    x = torch.rand(3, 1, 32, 32)
    folder = _run(tmp_path / "case1", tiny, sampling_rate="1/2", seed=0)
    with torch.no_grad():
        assert torch.allclose(load_run_model(folder)(x), tiny(x), atol=1e-5)
    torch.manual_seed(1)
    kept = to_classifier(build_simclr("resnet18", hidden=64, out_dim=16), keep_head_layers=1).eval()
    folder = _run(tmp_path / "case3", kept, sampling_rate="1/2", seed=0, case="case3")
    with torch.no_grad():
        assert torch.allclose(load_run_model(folder)(x), kept(x), atol=1e-5)
    with pytest.raises(FileNotFoundError, match="model.pt"):
        load_run_model(tmp_path / "nothing")


def test_masks_at_the_input_size_keep_a_one_pixel_clot():
    from pe_utils.experiments.explain_runs import _masks_at

    masks = np.zeros((2, 128, 128), np.uint8)
    masks[0, 70, 33] = 1
    small = _masks_at(masks, np.array([0, 1]), 64)
    assert small.shape == (2, 64, 64) and small.dtype == bool
    assert small[0, 35, 16] and small[0].sum() == 1 and not small[1].any()
    assert _masks_at(None, np.array([0]), 64) is None


def test_show_slices_two_of_each_class_or_what_there_is():
    from pe_utils.experiments.explain import show_slices

    labels = np.array([0, 1, 0, 0, 1, 1, 0])
    picked = show_slices(labels)
    assert labels[picked].tolist() == [1, 1, 0, 0] and len(set(picked.tolist())) == 4
    few = np.array([0, 0, 1])
    assert few[show_slices(few)].tolist() == [1, 0, 0]


def test_probe_slices_one_seen_three_new_phantom_patients(smoke_cache):
    from pe_utils.data import load_cache
    from pe_utils.experiments.explain import probe_slices

    cache = load_cache(smoke_cache)
    rows, table = probe_slices(cache, seed=0)
    assert rows.shape == (4, 64, 64) and rows.dtype == np.uint8
    assert table.source.tolist() == ["pretraining set"] + ["new phantom patient"] * 3
    assert table.label.iloc[0] == "embolus"
    assert (rows[0] == cache.images).all(axis=(1, 2)).any()  # the seen slice is a cache row
    for new in rows[1:]:  # the new ones are no cache row
        assert not (new == cache.images).all(axis=(1, 2)).any()
    again, _ = probe_slices(cache, seed=0)
    assert (again == rows).all()


def test_probe_slices_without_a_phantom_say_all_four_were_seen(smoke_cache, tmp_path):
    import shutil

    from pe_utils.data import load_cache
    from pe_utils.experiments.explain import probe_slices

    copy = tmp_path / "cache"
    shutil.copytree(smoke_cache, copy)
    settings = json.loads((copy / "settings.json").read_text())
    settings["rsna_root"] = str(tmp_path / "gone")  # real data: no phantom to make new patients from
    (copy / "settings.json").write_text(json.dumps(settings))
    _, table = probe_slices(load_cache(copy))
    assert table.source.tolist() == ["pretraining set"] + ["pretraining set (no unseen data given)"] * 3


def test_figures_build_with_one_trace_per_slice_and_a_grid_cell_per_model():
    import pandas as pd

    from pe_utils.report.figures_explain import embedding_figure, embedding_scores_figure, gradcam_grid

    rng = np.random.default_rng(0)
    coords = pd.DataFrame({"checkpoint": "after 2 epochs", "layer": np.repeat(["encoder", "head2"], 16),
                           "method": "tsne", "x": rng.random(32), "y": rng.random(32),
                           "group": np.tile(np.repeat(np.arange(4), 4), 2)})
    scores = pd.DataFrame({"checkpoint": "after 2 epochs", "layer": ["encoder", "head2"], "silhouette": [0.5, 0.1],
                           "knn_accuracy": [1.0, 0.5], "chance": 0.25, "probe_auc": [0.8, None]})
    fig = embedding_figure(coords, scores, "after 2 epochs")
    assert len(fig.data) == 8 and "encoder output · t-SNE · after 2 epochs" in fig.layout.annotations[0].text
    assert len(embedding_scores_figure(scores).data) == 3
    images = [rng.random((2, 16, 16)) for _ in range(3)]
    masks = [np.zeros((2, 16, 16), bool) for _ in range(3)]
    masks[0][0, 4:6, 4:6] = True
    grid = gradcam_grid(images, images, masks, ["embolus", "no embolus"], ["m1", "m2", "m3"])
    kinds = [t.type for t in grid.data]
    assert kinds.count("image") == 6 and kinds.count("heatmap") == 6 and kinds.count("contour") == 1


def test_cam_grid_is_the_size_of_the_layers_output():
    import torch

    from pe_utils.experiments.explain_runs import CAM_STRIDES, cam_grid
    from pe_utils.learn.models import build_classifier

    model = build_classifier("resnet10", in_channels=1).eval()
    seen = {}
    hooks = [getattr(model.backbone, layer).register_forward_hook(
        lambda module, args, out, layer=layer: seen.__setitem__(layer, tuple(out.shape[-2:]))) for layer in CAM_STRIDES]
    try:
        for side in (32, 48, 50, 64, 128):
            with torch.no_grad():
                model(torch.zeros(1, 1, side, side))
            assert seen == {layer: (cam_grid(side, layer),) * 2 for layer in CAM_STRIDES}, side
    finally:
        for hook in hooks:
            hook.remove()
    # every stride-2 step rounds up: the demo's 48 px give layer4 a 2 x 2 map, not 48 // 32 = 1
    assert (cam_grid(48, "layer4"), cam_grid(48, "layer2"), cam_grid(128, "layer4")) == (2, 6, 4)


def test_localisation_summary_words_what_cases_2_and_4_lack(tmp_path):
    import json

    from pe_utils.report.figures_explain import localisation_summary

    rows = [dict(model="Case1 (supervised), 9/10", energy_mean=0.2, energy_chance=0.02, energy_perfect=0.4,
                 pointing_rate=0.5, pointing_perfect=0.6, cam_grid="6x6", n=4, auc=0.9, oracle_workload_pct=80.0,
                 practical_workload_pct=85.0),
            dict(model="Case2 (supervised), 100 %", energy_mean=0.1, energy_chance=0.02, pointing_rate=None,
                 n=4, auc=0.8)]
    run = tmp_path / "06_explain" / "06_explain"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps(dict(notebook="06_explain", localisation=rows)))
    table = localisation_summary(tmp_path)
    html = table.to_html().lower()
    assert "nan" not in html and "none" not in html
    assert table["workload % (oracle)"].tolist() == [80.0, "no triage (Cases 2/4)"]
    assert table["pointing rate"].tolist() == [0.5, "not measured"]
    assert table["ceiling (perfect map)"].tolist() == [0.4, "not measured"] and table["Grad-CAM grid"].iloc[0] == "6x6"
