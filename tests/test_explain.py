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
    from pe_utils.experiments.gradcam_runs import find_runs

    c1 = "01_case1_supervised"
    _run(tmp_path / c1 / "a", tiny, notebook=c1, sampling_rate="9/10", seed=1)
    old = _run(tmp_path / c1 / "b", tiny, notebook=c1, sampling_rate="9/10", seed=0)
    new = _run(tmp_path / c1 / "c", tiny, notebook=c1, sampling_rate="9/10", seed=0)
    os.utime(old / "metrics.json", (time.time() - 100, time.time() - 100))
    (tmp_path / c1 / "d").mkdir()  # no model.pt: unfinished, ignored
    (tmp_path / c1 / "d" / "metrics.json").write_text(json.dumps({"notebook": c1, "sampling_rate": "1/4", "seed": 0}))
    _run(tmp_path / "other" / "e", tiny, notebook=c1, sampling_rate="1/4", seed=0, profile="demo")  # another profile
    runs, missing = find_runs(tmp_path, "smoke")
    assert [(r["figure"], r["case"], r["value"], r["run_dir"]) for r in runs] == [("ours", "case1", "9/10", new)]
    assert any("Case1 (supervised), 1/4" in m and "--cases 01 --rates 1/4" in m for m in missing)
    assert any(m.startswith("Case2 (supervised), experiment 11, 100 %") and m.endswith("--cases 04`") for m in missing)
    assert any("Case4 (contrastive), 10 %" in m and m.endswith("--cases 05`") for m in missing)
    # ours: 3 points; Fig 6.20: 1; Figs 6.21-6.22: 4 (nothing ran, so nothing stands in: no substitution sentence)
    assert len(missing) == 8 and not any("shown instead" in m for m in missing)


def _fractions(folder, model, ran: dict, **extra):
    """Fake finished runs of notebooks 04/05: ``ran`` = {case: fractions}, folders named as the batch's run ids."""
    for case, fractions in ran.items():
        for f in fractions:
            _run(folder / case / f"fraction-{f:g}-seed0", model, case=case, train_fraction=float(f), seed=0,
                 experiment=None, **extra)


def test_find_runs_takes_the_thesis_fractions_when_they_ran(tmp_path, tiny):
    from pe_utils.experiments.gradcam_runs import find_runs

    _fractions(tmp_path, tiny, {"case2": (100, 90, 25, 10), "case4": (100, 90, 25, 10)})
    # the ablation's runs of notebook 04: another experiment never stands for the profile's; experiment 11 at
    # 100 % is the same setting but the Table 6.4 grid's run comes first, even when older
    _run(tmp_path / "ablation" / "experiment-3-seed0", tiny, case="case2", train_fraction=90.0, seed=0, experiment=3)
    _run(tmp_path / "ablation" / "experiment-11-seed0", tiny, case="case2", train_fraction=100.0, seed=0, experiment=11)
    runs, missing = find_runs(tmp_path, "smoke")
    thesis = [(r["figure"], r["case"], r["value"], r["run_dir"].name) for r in runs if r["figure"] != "ours"]
    assert thesis == [("6.20", "case2", 100.0, "fraction-100-seed0"),
                      ("6.21-6.22", "case2", 90.0, "fraction-90-seed0"), ("6.21-6.22", "case4", 90.0, "fraction-90-seed0"),
                      ("6.21-6.22", "case2", 10.0, "fraction-10-seed0"), ("6.21-6.22", "case4", 10.0, "fraction-10-seed0")]
    assert all(r["substitution"] is None and "thesis" not in r["label"] for r in runs)
    assert not any("shown instead" in m for m in missing) and all(m.startswith(("Case1", "Case3")) for m in missing)


@pytest.mark.parametrize("ran, shown, sentence", [
    # the demo and smoke plans: 100 % and 25 % stand for 90 % and 10 %
    ({"case2": (100, 25), "case4": (100, 25)}, (100.0, 25.0), "this batch ran 100 % and 25 %: shown instead"),
    # fractions only Case2 ran do not count: both methods at each column
    ({"case2": (100, 80, 50, 25), "case4": (100, 50, 25)}, (100.0, 25.0), "this batch ran 100 % and 25 %: shown instead"),
    # one thesis fraction ran, the other is replaced by its nearest
    ({"case2": (90, 20, 5), "case4": (90, 20, 5)}, (90.0, 5.0), "this batch ran 90 % and 5 %: shown instead"),
    # both nearest to the same fraction: shown once
    ({"case2": (100,), "case4": (100,)}, (100.0,), "this batch ran 100 % only: shown instead"),
])
def test_find_runs_shows_the_nearest_fractions_and_says_so(tmp_path, tiny, ran, shown, sentence):
    from pe_utils.experiments.gradcam_runs import find_runs

    _fractions(tmp_path, tiny, ran)
    runs, missing = find_runs(tmp_path, "smoke")
    figure = [r for r in runs if r["figure"] == "6.21-6.22"]
    assert [r["value"] for r in figure] == [v for v in shown for _ in ("case2", "case4")]
    assert [r["case"] for r in figure] == ["case2", "case4"] * len(shown)
    said = f"Figs 6.21-6.22: the thesis compared 90 % and 10 %; {sentence}"
    assert said in missing and all(r["substitution"] == said for r in figure)
    for r in figure:  # each column says which thesis fraction it stands for
        assert ("for the thesis's" in r["label"]) == (r["value"] not in (90.0, 10.0)), r["label"]
    assert figure[0]["label"].startswith(f"Case2 (supervised), {shown[0]:g} % of the training set")
    # Fig 6.20 (Case2 alone) likewise: 100 %, or the nearest Case2 ran
    assert [r["value"] for r in runs if r["figure"] == "6.20"] == [100.0 if 100 in ran["case2"] else 90.0]
    said = "Fig 6.20: the thesis showed 100 %; this batch ran 90 %: shown instead"
    assert (said in missing) == (100 not in ran["case2"])


def test_load_run_model_rebuilds_case1_and_a_case3_that_kept_the_head_layer(tmp_path, tiny):
    from pe_utils.experiments.gradcam_runs import load_run_model
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
    from pe_utils.experiments.gradcam_runs import _masks_at

    masks = np.zeros((2, 128, 128), np.uint8)
    masks[0, 70, 33] = 1
    small = _masks_at(masks, np.array([0, 1]), 64)
    assert small.shape == (2, 64, 64) and small.dtype == bool
    assert small[0, 35, 16] and small[0].sum() == 1 and not small[1].any()
    assert _masks_at(None, np.array([0]), 64) is None


def test_show_slices_two_of_each_class_or_what_there_is():
    from pe_utils.experiments.representations import show_slices

    labels = np.array([0, 1, 0, 0, 1, 1, 0])
    picked = show_slices(labels)
    assert labels[picked].tolist() == [1, 1, 0, 0] and len(set(picked.tolist())) == 4
    few = np.array([0, 0, 1])
    assert few[show_slices(few)].tolist() == [1, 0, 0]


def test_show_slices_from_four_patients_when_the_test_set_has_them():
    from pe_utils.experiments.representations import show_slices

    labels = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0])
    groups = np.array(list("aaaabbbccdde"))
    picked = show_slices(labels, groups=groups)
    assert labels[picked].tolist() == [1, 1, 0, 0]
    assert len(set(groups[picked])) == 4  # without groups: two of the four from patient a
    assert picked[0] == 2  # the middle of patient a's slices with an embolus
    assert len(set(groups[show_slices(labels)])) == 3
    one = np.array(list("aaaaaaaaaaaa"))  # one patient: the slices spread along it, as without groups
    assert show_slices(labels, groups=one).tolist() == show_slices(labels).tolist()


def test_thesis_figures_draw_case2_and_case4_on_the_same_four_slices(tmp_path, smoke_cache):
    import pandas as pd

    from pe_utils.experiments.representations import explain_record
    from pe_utils.experiments.gradcam_runs import find_runs, gradcam_comparison
    from pe_utils.learn import build_classifier
    from pe_utils.report.figures_explain import gradcam_grid

    torch.manual_seed(0)
    tiny = build_classifier("resnet10", in_channels=1).eval()
    _fractions(tmp_path, tiny, {"case2": (100, 25), "case4": (100, 25)}, arch="resnet10", image_size=32)
    runs, missing = find_runs(tmp_path, "smoke")
    common = dict(profile="smoke", test_cache_dir=smoke_cache, cam_layer="layer2")
    fig20, scored, note = gradcam_comparison(runs, "6.20", **common)
    assert note is None and fig20["title"].startswith("Fig 6.20")
    assert fig20["col_titles"] == ["Case2 (supervised), experiment 11, 100 % of the training set"]
    assert fig20["row_titles"] == ["slice 1: embolus", "slice 2: embolus", "slice 3: no embolus", "slice 4: no embolus"]
    assert [s["train_fraction"] for s in scored] == [100.0] and scored[0]["n"] > 0
    panels, scores, note = gradcam_comparison(runs, "6.21-6.22", **common, scored=scored)
    assert note == "Figs 6.21-6.22: the thesis compared 90 % and 10 %; this batch ran 100 % and 25 %: shown instead"
    assert panels["col_titles"] == [f"Case{c} ({m}), {f} % of the training set (for the thesis's {t} %)"
                                    for f, t in ((100, 90), (25, 10)) for c, m in ((2, "supervised"), (4, "contrastive"))]
    assert len(panels["maps"]) == 4 and panels["row_titles"] == fig20["row_titles"]
    for images, maps, masks in zip(panels["images"], panels["maps"], panels["masks"]):
        assert maps.shape == images.shape == masks.shape == (4, 32, 32)
        assert maps.dtype == np.float32 and 0 <= maps.min() and maps.max() <= 1
        assert np.array_equal(images, fig20["images"][0])  # the same four slices as Fig 6.20, for every model
        assert masks[:2].any(axis=(1, 2)).all() and not masks[2:].any()  # the clots of the two positive slices
    # Case2 at 100 % was scored under Fig 6.20: scored once
    assert sorted((s["case"], s["train_fraction"]) for s in scores) == [("case2", 25.0), ("case4", 25.0), ("case4", 100.0)]
    grid = gradcam_grid(**panels)
    assert "Figs 6.21-6.22" in grid.layout.title.text and [t.type for t in grid.data].count("heatmap") == 16
    record = explain_record(profile="smoke", seed=0, pretrain_dir=None, n_views=2, slices=pd.DataFrame(),
                            representations_table=pd.DataFrame(), probe_rate="1/2", localisation=scored + scores,
                            notes=[note, "Case1 against Case3: no finished run"], missing=missing, dilate_px=2,
                            seconds=1.0)
    assert record["missing_runs"][0] == note  # the substitution is recorded once, among the runs not found
    assert record["localisation_note"] == "Case1 against Case3: no finished run"
    head = gradcam_grid(**fig20).layout.annotations[0].text  # the method, then the setting, on two lines
    assert head.startswith("<b>Case2 (supervised)<br>experiment 11, 100 % of the training set</b>")


def test_probe_slices_one_seen_three_new_phantom_patients(smoke_cache):
    from pe_utils.data import load_cache
    from pe_utils.experiments.representations import probe_slices

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
    from pe_utils.experiments.representations import probe_slices

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

    from pe_utils.experiments.gradcam_runs import CAM_STRIDES, cam_grid
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

    rows = [dict(model="Case2 (supervised), experiment 11, 100 % of the training set (Fig 6.20)", energy_mean=0.2, energy_chance=0.02, energy_perfect=0.4,
                 pointing_rate=0.5, pointing_perfect=0.6, cam_grid="6x6", n=4, auc=0.9, oracle_workload_pct=80.0,
                 practical_workload_pct=85.0),
            dict(model="Case2 (supervised), 100 %", energy_mean=0.1, energy_chance=0.02, pointing_rate=None,
                 n=4, auc=0.8)]
    run = tmp_path / "06_explain" / "06_explain"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps(dict(notebook="06_explain", localisation=rows)))
    table = localisation_summary(tmp_path)
    html = table._repr_html_().lower()
    assert "nan" not in html and "none" not in html and "..." not in html   # drawn whole
    cells = table.cells
    assert cells["model"].iloc[0] == rows[0]["model"]
    assert cells["workload % (oracle)"].tolist() == ["80.000", "no triage (Cases 2/4)"]
    assert cells["pointing rate"].tolist() == ["0.500", "not measured"]
    assert cells["ceiling (perfect map)"].tolist() == ["0.400", "not measured"] and cells["Grad-CAM grid"].iloc[0] == "6x6"
