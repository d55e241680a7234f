"""Case3 with the 2.5D input: pretraining views over a slice and its neighbours, the encoder's
channels, the checkpoint's context, a fine-tuning context checked against the encoder's, the
summary's method and the plan's entries."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from pe_utils.data.augment import SimCLRViews
from pe_utils.experiments.case3 import case3_config, case3_model, case3_record, join_histories
from pe_utils.experiments.pretrain import (PRETRAINED, load_pretrained, pretrain_config, pretrain_loader,
                                           pretrain_record, pretrain_setup, run_pretraining)
from pe_utils.learn import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
RATES = ["9/10", "4/5", "3/4", "2/3", "1/2", "1/3", "1/4"]


def _cache(lengths=(("a", 7), ("b", 5)), side=16, seed=0):
    """Series interleaved in the rows, slice_index with gaps; each slice one grey level that names
    it: ``100 * series + 10 * position + 5`` (series 0, 1, ...; position along the series)."""
    rng = np.random.default_rng(seed)
    rows = [{"SeriesInstanceUID": s, "slice_index": 3 * p + int(rng.integers(0, 3)), "s": i, "p": p}
            for i, (s, n) in enumerate(lengths) for p in range(n)]
    index = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    level = (100 * index.s + 10 * index.p + 5).to_numpy(np.uint8)
    images = np.broadcast_to(level[:, None, None], (len(index), side, side)).copy()
    return SimpleNamespace(images=images, index=index[["SeriesInstanceUID", "slice_index"]])


def _cfg(context=1, **over):
    return pretrain_config("smoke", **{"arch": "resnet18", "image_size": 16, "batch_size": 4, "epochs": 1,
                                       "context": context, **over})


# ----------------------------------------------------------------------------- the views
def test_pretraining_views_of_a_context_input_never_cross_a_series():
    # views that leave every pixel as it is: each channel's grey level says which slice it came from
    cfg = _cfg(view_crop_scale=(1.0, 1.0), view_crop_ratio=(1.0, 1.0), view_jitter_probability=0.0,
               view_blur_probability=0.0)
    cache = _cache()
    loader = pretrain_loader(cache, cfg)
    seen = set()
    for view1, view2 in loader:
        assert view1.shape == (4, 3, 16, 16) and torch.equal(view1, view2)
        level = torch.round(view1[:, :, 0, 0] * 255).long().numpy()          # (B, 3)
        assert (view1 * 255 - torch.from_numpy(level)[:, :, None, None]).abs().max() < 1e-3   # one level a channel
        series, position = level // 100, level % 100 // 10
        assert (series == series[:, 1:2]).all()                              # never another series
        length = np.where(series[:, 1] == 0, 7, 5)
        expected = np.clip(position[:, 1:2] + np.array([-1, 0, 1]), 0, length[:, None] - 1)
        assert np.array_equal(position, expected)                            # neighbours; the edge repeated
        seen |= set(map(tuple, level[:, 1:2].tolist()))
    assert len(seen) == 12   # three batches of four: every slice once


def test_a_context_needs_the_cache_index_and_dataset2_pretrains_single_slices():
    with pytest.raises(ValueError, match="index"):
        pretrain_loader(SimpleNamespace(images=_cache().images), _cfg())
    with pytest.raises(ValueError, match="context=1"):
        pretrain_config("smoke", "dataset2", context=1)
    with pytest.raises(ValueError, match="whole number"):
        pretrain_config("smoke", context=-1)
    assert "context" not in pretrain_config("smoke") and "context" not in pretrain_config("smoke", context=0)


def _keys(n, seed=3):
    return torch.stack([torch.full((n,), seed), torch.zeros(n, dtype=torch.long), torch.arange(n)], dim=1)


def test_a_view_moves_every_channel_together():
    views = SimCLRViews(jitter_probability=1.0, blur_probability=0.5)
    x = torch.rand(6, 1, 20, 20, generator=torch.Generator().manual_seed(0))
    keys = _keys(6)
    one, stacked = views.view(x, keys), views.view(x.repeat(1, 3, 1, 1), keys)
    # a slice stacked with copies of itself: three identical channels, each its single-slice view
    assert torch.allclose(stacked, one.expand_as(stacked), atol=1e-6)
    # distinct channels: permuting them permutes the view's (one crop, one intensity map, one blur)
    distinct = torch.rand(6, 3, 20, 20, generator=torch.Generator().manual_seed(1))
    perm = [2, 0, 1]
    assert torch.allclose(views.view(distinct[:, perm], keys), views.view(distinct, keys)[:, perm], atol=1e-6)


def test_the_intensity_jitter_mixes_no_channel_into_another():
    # the crop is the whole slice and nothing blurs: what is left is the brightness/contrast jitter
    views = SimCLRViews(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), contrast=0.4, brightness=0.4,
                        jitter_probability=1.0, blur_probability=0.0)
    slice_ = torch.rand(6, 1, 20, 20, generator=torch.Generator().manual_seed(2))
    x = torch.cat([slice_, slice_.flip(-1), slice_.transpose(-1, -2)], dim=1)
    v = views.view(x, _keys(6))
    assert not torch.allclose(v, x, atol=1e-3)                               # the jitter did something
    # each channel's pixel maps through the same function of that pixel alone: what another
    # channel holds at the same place (as a colour conversion would read it) never enters
    assert torch.allclose(v[:, 1], v[:, 0].flip(-1), atol=1e-6)
    assert torch.allclose(v[:, 2], v[:, 0].transpose(-1, -2), atol=1e-6)


# ----------------------------------------------------------------------------- the encoder
@pytest.mark.parametrize("k, per_slice", [(0, 1), (1, 1), (2, 1), (1, 3)])
def test_the_encoder_reads_2k_plus_1_slices(k, per_slice):
    model, _, _ = pretrain_setup(_cfg(context=k), in_channels=per_slice)
    assert model.backbone.conv1.in_channels == (2 * k + 1) * per_slice


def _pretrain(out, cfg, cache):
    torch.manual_seed(cfg["seed"])
    loader = pretrain_loader(cache, cfg)
    model, criterion, optimizer = pretrain_setup(cfg, in_channels=loader.dataset.slice_channels)
    return run_pretraining(model, criterion, optimizer, loader, cfg, out, "cpu", progress=False)


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    """Two one-epoch pretrainings of the tiny cache: ``{0: folder, 1: folder}`` by context."""
    out = {}
    for k in (0, 1):
        out[k] = tmp_path_factory.mktemp(f"context{k}")
        _pretrain(out[k], _cfg(context=k), _cache())
    return out


def test_simclr_pt_records_its_context(encoders, tmp_path):
    ckpt = load_checkpoint(encoders[1] / PRETRAINED)
    assert ckpt["config"]["context"] == 1 and ckpt["config"]["in_channels"] == 3
    model, _ = load_pretrained(encoders[1])
    assert model.backbone.conv1.in_channels == 3
    single = load_checkpoint(encoders[0] / PRETRAINED)["config"]
    assert "context" not in single and single["in_channels"] == 1   # a single-slice run's config as before
    from pe_utils.report.schema import write_metrics

    record = pretrain_record(ckpt["config"], ckpt["history"], encoders[1] / PRETRAINED, profile="smoke",
                             n_images=12, train_seconds=1.0)
    assert record["context"] == 1
    write_metrics(tmp_path, record, "pretrain")


def test_fine_tuning_takes_the_encoders_context_and_refuses_another(encoders):
    cfg, _, _ = case3_config("smoke", "1/3")                  # context None: the encoder's
    model, pretrained = case3_model(encoders[1], cfg)
    assert cfg["context"] == 1 and pretrained["context"] == 1
    assert model.backbone.conv1.in_channels == 3
    cfg, _, _ = case3_config("smoke", "1/3", context=1)
    case3_model(encoders[1], cfg)
    assert cfg["context"] == 1
    cfg, _, _ = case3_config("smoke", "1/3", context=0)       # a single-slice encoder: no key, as Case1
    case3_model(encoders[0], cfg)
    assert "context" not in cfg
    for given, encoder in ((0, 1), (2, 1), (1, 0)):
        cfg, _, _ = case3_config("smoke", "1/3", context=given)
        with pytest.raises(ValueError, match=rf"context={given} differs .* context={encoder} ") as refused:
            case3_model(encoders[encoder], cfg)
        assert "\n" not in str(refused.value)
    with pytest.raises(ValueError, match="whole number"):
        case3_config("smoke", "1/3", context=1.5)


def test_the_record_carries_the_context(smoke_cache, encoders, tmp_path):
    from pe_utils.evaluate import compare_threshold_choices, triage_table
    from pe_utils.experiments.case1 import case1_data
    from pe_utils.experiments.case1_results import case1_test_metrics
    from pe_utils.report.schema import write_metrics

    cfg, _, _ = case3_config("smoke", "1/3")
    _, pretrained = case3_model(encoders[1], cfg)
    data = case1_data(smoke_cache, "1/3", cfg)
    assert data.context == 1 and data.in_channels == 3
    x, _ = next(iter(data.loaders["test"]))
    assert x.shape[1] == 3
    y_test, y_val = data.labels[data.ids["test"]], data.labels[data.ids["val"]]
    probs, val_probs = np.linspace(0.01, 0.99, len(y_test)), np.linspace(0.01, 0.99, len(y_val))
    choices = compare_threshold_choices(probs, y_test, data.n_dataset, data.n_training_stage, val_probs=val_probs,
                                        val_labels=y_val, alpha=0.05)
    table = triage_table(probs, y_test, n_dataset=data.n_dataset, n_training_stage=data.n_training_stage)
    record = case3_record(data, cfg=cfg, pretrained=pretrained, profile="smoke",
                          test_metrics=case1_test_metrics(y_test, probs, probs[:, None]), choices=choices,
                          table=table, history=join_histories([{"epoch": 1}], [{"epoch": 1}]),
                          train_seconds=1.0, conformal_alpha=0.05)
    assert record["context"] == 1 and record["case"] == "case3"
    write_metrics(tmp_path, record, "case3")
    assert json.loads((tmp_path / "metrics.json").read_text())["context"] == 1


# ----------------------------------------------------------------------------- the summary
def _row(notebook, seed=0, **extra):
    return dict(notebook=notebook, sampling_rate="1/3", seed=seed, practical_workload_pct=50.0 + seed,
                practical_error_rate=0.0, baseline_error_rate=1.0, **extra)


def test_the_2_5d_contrastive_runs_are_a_method_beside_case1s():
    from pe_utils.experiments.case1_neighbours import triage_by_rate
    from pe_utils.experiments.summary import method_runs

    case3 = "03_case3_finetune"
    runs = method_runs(pd.DataFrame([
        _row(case3, pretrain_epochs=3, context=1), _row(case3, 1, pretrain_epochs=3, context=1),
        _row("01_case1_supervised", context=1), _row(case3, pretrain_epochs=3, context=0),
        _row("01_case1_supervised", context=0)]))
    assert list(dict.fromkeys(runs.method)) == ["supervised", "contrastive (3 epochs)", "supervised 2.5D (k=1)",
                                                "contrastive 2.5D (k=1)"]
    table = triage_by_rate(runs).set_index("method")
    assert table.loc["contrastive 2.5D (k=1)", "workload %, image only"] == "50.50 \u00b1 0.71"
    # two 2.5D encoders of different lengths are two methods, not one mean
    two = method_runs(pd.DataFrame([_row(case3, pretrain_epochs=75, context=1),
                                    _row(case3, pretrain_epochs=150, context=1)]))
    assert list(two.method) == ["contrastive 2.5D (k=1, 75 epochs)", "contrastive 2.5D (k=1, 150 epochs)"]


@pytest.mark.parametrize("key", ["context", "seed"])
def test_case3_is_set_beside_case1s_run_of_its_input_and_seed(tmp_path, key):
    from pe_utils.report.tables import BESIDE_CASE1, beside_case1

    figures = dict.fromkeys(BESIDE_CASE1, 0.5)
    for value in (0, 1):   # two Case1 runs at 1/3: one slice and 2.5D, or seeds 0 and 1
        folder = tmp_path / f"case1-{key}{value}"
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps(
            {**figures, "notebook": "01_case1_supervised", "sampling_rate": "1/3", key: value, "epochs": 10 + value}))
    for value in (0, 1):
        shown = beside_case1({**figures, key: value, "epochs": 7}, tmp_path, "1/3")
        assert list(shown.cells["epochs"]) == [str(10 + value), "7"]   # Case1's run with the same input, seed
    if key == "context":
        assert "context=2" in beside_case1({**figures, "context": 2, "epochs": 7}, tmp_path, "1/3")


# ----------------------------------------------------------------------------- the plan
def test_the_plan_pretrains_and_fine_tunes_the_2_5d_encoder(tmp_path):
    from pe_utils.batch.expand import plan_runs
    from pe_utils.batch.plan import find_plan, load_plan

    plan = load_plan(find_plan(REPO))

    def runs(profile, **kw):
        return [r for r in plan_runs(plan, out=tmp_path / "out", workdir=tmp_path, profile=profile, **kw)[1]
                if r.entry.case == "case3_context"]

    def rates(found):
        return [r.grid["sampling_rate"] for r in found if r.entry.name == "03_case3_finetune_context"]

    thesis = runs("thesis")
    assert rates(thesis) == RATES
    pretrain = [r for r in thesis if r.entry.name == "02_case3_pretrain_context"]
    assert len(pretrain) == 1 and pretrain[0].entry.path.name == "02_case3_pretrain.ipynb"
    for run in thesis:
        assert run.parameters["context"] == 1
        if run.entry.name == "03_case3_finetune_context":
            assert run.entry.path.name == "03_case3_finetune.ipynb"
            assert pretrain[0] in run.deps and run.stage > pretrain[0].stage
            assert run.parameters["pretrain_dir"].endswith("02_case3_pretrain_context/02_case3_pretrain_context")
    assert rates(runs("demo")) == ["1/3", "1/4"] and len(runs("demo")) == 3
    assert runs("smoke") == []                                               # skipped unless named
    assert len(runs("smoke", cases=["case3_context"])) == 1 + 7
    for entry in json.loads((REPO / "notebooks" / "plan.json").read_text())["notebooks"]:
        if entry["case"] == "case3_context":
            assert entry["description"].startswith("Beyond the thesis:"), entry["name"]
            assert entry["description"].endswith("--cases case3_context selects it"), entry["name"]
