"""pe_utils.report's figure modules (style, images, figures_data, figures_training,
figures_triage), through the wing's exports as notebooks reach them: one figure-level test per
function (traces, titles, axes)."""
from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from PIL import Image

import pe_utils.report as report
from pe_utils.evaluate.triaging import triage_table


def _index():
    # 2 patients, one series each: 10 and 6 slices, positives in the middle
    rows = []
    for pid, series, n, pos in (("P0", "S0", 10, {4, 5, 6}), ("P1", "S1", 6, {2})):
        for k in range(n):
            rows.append(dict(patient_id=pid, StudyInstanceUID="st" + pid, SeriesInstanceUID=series,
                             slice_index=k, pe_present_on_image=int(k in pos)))
    return pd.DataFrame(rows)


def _decode(uri):
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def test_every_figure_is_exported_by_name_from_one_home():
    import pe_utils
    import importlib
    import pkgutil

    # every figure module of the wing, found rather than listed, so a new one cannot be forgotten
    names = [m.name for m in pkgutil.iter_modules(report.__path__)
             if m.name.startswith("figures_") or m.name in ("style", "images")]
    homes = tuple(importlib.import_module(f"pe_utils.report.{n}") for n in sorted(names))
    assert {"figures_data", "figures_training", "figures_triage", "style", "images"} <= set(names)
    for module in homes:
        for name in module.__all__:
            value = getattr(module, name)
            assert getattr(report, name) is value and getattr(pe_utils, name) is value
            assert sum(name in m.__all__ for m in homes) == 1, name


def test_setup_notebook_sets_renderer(monkeypatch):
    monkeypatch.setattr(pio.renderers, "default", "json")
    assert report.setup_notebook() is None
    assert pio.renderers.default == "plotly_mimetype"   # the figure's JSON only: no plotly.js per notebook
    report.setup_notebook(embed_plotlyjs=True)
    assert pio.renderers.default == "plotly_mimetype+notebook"


@pytest.mark.parametrize("shape", [(5, 4), (1, 5, 4), (3, 5, 4), (5, 4, 3)])
def test_to_uint8_image_layouts(shape):
    a = np.full(shape, 0.5, np.float32)
    out = report.to_uint8_image(a)
    assert out.dtype == np.uint8 and out.shape[:2] == (5, 4) and (out == 128).all()


def test_png_uri_round_trip_and_shrink():
    img = np.linspace(0, 1, 64 * 32, dtype=np.float32).reshape(64, 32)
    back = _decode(report.png_uri(img, max_side=16))
    assert back.shape == (16, 8)
    assert back.dtype == np.uint8


def test_image_gallery_and_tta_views():
    imgs = np.random.default_rng(0).uniform(size=(7, 8, 8)).astype(np.float32)
    fig = report.image_gallery(imgs, [f"p={i}" for i in range(7)], cols=3, title="uncertain")
    assert len(fig.data) == 7 and all(isinstance(t, go.Image) for t in fig.data)
    assert [a.text for a in fig.layout.annotations] == [f"p={i}" for i in range(7)]
    assert fig.layout.title.text == "uncertain"
    with pytest.raises(ValueError):
        report.image_gallery(imgs, ["a"])
    # nothing to show: a sentence, not a heading over an empty grid
    empty = report.image_gallery([], [], title="uncertain", empty="Nothing is uncertain.")
    assert len(empty.data) == 0 and [a.text for a in empty.layout.annotations] == ["Nothing is uncertain."]
    views = [np.zeros((1, 8, 8), np.float32) + v for v in (0, 0.25, 0.5, 0.75, 1)]
    names = ("original", "rotate10", "shift_v10px", "shift_h10px", "crop75")
    fig = report.tta_views_figure(views, names)
    assert len(fig.data) == 5 and [a.text for a in fig.layout.annotations] == list(names)


def _hu():
    # a ramp over the CT range: every window sees a gradient
    return np.linspace(-1100, 3100, 64 * 64, dtype=np.float32).reshape(64, 64)


def test_hu_histogram():
    pytest.importorskip("pe_utils.data.dicom")
    fig = report.hu_histogram([_hu(), _hu() + 100], names=["a", "b"], bins=50)
    assert [t.name for t in fig.data] == ["a", "b"]
    assert sum(fig.data[0].y) == 64 * 64  # clipped into range, nothing lost
    assert fig.layout.xaxis.title.text == "HU"
    assert len(fig.layout.shapes) == 3  # lung, mediastinum, PE windows
    single = report.hu_histogram(_hu(), windows=False)
    assert len(single.data) == 1 and len(single.layout.shapes) == 0


def test_window_panel():
    pytest.importorskip("pe_utils.data.dicom")
    fig = report.window_panel(_hu())
    assert len(fig.data) == 6 and all(isinstance(t, go.Image) for t in fig.data)
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0].startswith("no window") and titles[1].startswith("lung")
    assert titles[4].startswith("RGB") and titles[5].startswith("gray")
    rgb = _decode(fig.data[4].source)
    assert rgb.shape == (64, 64, 3)
    gray = _decode(fig.data[5].source)
    assert gray.shape == (64, 64)


def test_positives_per_patient():
    fig = report.positives_per_patient(_index())
    assert [t.name for t in fig.data] == ["slices", "positive slices"]
    assert list(fig.data[0].y) == [10, 6] and list(fig.data[1].y) == [3, 1]
    assert fig.layout.xaxis.title.text == "patient"


def test_positives_by_slice_position():
    fig = report.positives_by_slice_position(_index(), bins=5)
    assert len(fig.data) == 2
    assert sum(fig.data[0].y) == 4  # all positives land in some bin
    assert fig.layout.xaxis.title.text == "relative slice position"


def test_split_strip():
    idx = _index().query("SeriesInstanceUID == 'S0'")
    split = ["train", "test", "val", "train", "test", "train", "test", "train", "train", "test"]
    fig = report.split_strip(idx, split)
    assert [t.name for t in fig.data] == ["train", "val", "test", "PE on slice"]
    assert list(fig.data[1].x) == [2]
    assert list(fig.data[3].x) == [4, 5, 6]


def _history(n=3):
    return [dict(epoch=e, train_loss=1 / e, val_loss=1.2 / e, train_accuracy=0.9, val_accuracy=0.88,
                 train_f1=0.5, val_f1=0.45, train_f1_batch_mean=0.3, val_f1_batch_mean=0.25, lr=0.01 / e)
            for e in range(1, n + 1)]


def test_learning_curves():
    fig = report.learning_curves(_history(), f1_bound=0.7143)
    assert len(fig.data) == 2 + 2 + 4 + 1 + 1
    assert fig.data[-1].name.startswith("per-batch F1 bound")
    assert list(fig.data[-1].y) == [0.7143, 0.7143]
    assert fig.layout.yaxis.title.text == "loss"
    assert fig.layout.xaxis.title.text == "epoch"
    partial = report.learning_curves([{"train_loss": 1.0}, {"train_loss": 0.5}])
    assert len(partial.data) == 1


def test_learning_curves_join_the_validated_epochs_only():
    # fit(val_every=3) over 7 epochs: val_* figures at epochs 3, 6 and 7 only
    history = [{k: v for k, v in r.items() if r["epoch"] in (3, 6, 7) or not k.startswith("val_")}
               for r in _history(7)]
    history[1]["train_accuracy"] = None            # a figure missing as None is skipped too
    fig = report.learning_curves(history)
    val_loss = next(t for t in fig.data if t.name == "val" and t.yaxis == "y")
    assert list(val_loss.x) == [3, 6, 7] and list(val_loss.y) == [history[i]["val_loss"] for i in (2, 5, 6)]
    train_acc = next(t for t in fig.data if t.name == "train" and t.yaxis == "y2")
    assert list(train_acc.x) == [1, 3, 4, 5, 6, 7]
    assert not any(np.isnan(np.asarray(t.y, dtype=float)).any() for t in fig.data)


def test_positives_per_batch_figure():
    fig = report.positives_per_batch_figure([0, 2, 1, 0, 2, 2])
    assert list(fig.data[0].x) == [0, 1, 2] and list(fig.data[0].y) == [2, 1, 3]
    assert "4 of 6" in fig.layout.title.text and "0.6667" in fig.layout.title.text


def test_confusion_matrix_figure_fig_6_5():
    m = dict(tn=1484, fp=3, fn=4, tp=65, accuracy=0.9955, f1=0.9489)
    fig = report.confusion_matrix_figure(m)
    text = fig.data[0].text
    assert text[0][0] == "TN<br>1484<br>99.80 %"
    assert text[1][0] == "FN<br>4<br>5.80 %"
    assert text[1][1] == "TP<br>65<br>94.20 %"
    assert "0.9955" in fig.layout.title.text


def test_roc_figure():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    fig = report.roc_figure(y, p, youden=True)
    assert len(fig.data) == 3
    assert "AUC = 0.8889" in fig.data[0].name
    assert fig.data[2].name.startswith("Youden threshold")
    assert fig.layout.xaxis.title.text == "false positive rate"
    assert len(report.roc_figure(y, p).data) == 2


def test_probability_histogram():
    fig = report.probability_histogram([0.1, 0.9, 0.5], [0, 1, 1], upper=0.8, lower=0.2)
    assert [t.name for t in fig.data] == ["negative", "positive"]
    assert len(fig.layout.shapes) == 2


def test_triage_bars():
    table = triage_table(np.array([0.02, 0.1, 0.2, 0.5, 0.8, 0.85, 0.97, 0.3]), np.array([0, 0, 1, 0, 1, 1, 1, 0]))
    fig = report.triage_bars(table)
    assert [t.name for t in fig.data] == ["true predictions", "false predictions", "uncertain predictions"]
    assert list(fig.data[0].x) == ["0.75/0.25", "0.8/0.2", "0.85/0.15", "0.9/0.1", "0.95/0.05"]
    assert fig.layout.barmode == "stack"
    counts = report.triage_bars(table, percent=False)
    assert list(counts.data[2].y) == [2, 4, 5, 6, 6]


def test_workload_table():
    rows = [dict(test_name="Test90", pct_training_stage=90.0, pct_uncertain=0.25, workload_pct=90.25,
                 thresholds=(0.75, 0.25)),
            dict(test_name="Test33", pct_training_stage=33.34, pct_uncertain=19.61, workload_pct=52.95,
                 thresholds=(0.9, 0.1))]
    fig = report.workload_table(rows)
    t = fig.data[0]
    assert list(t.header.values) == ["test", "Test90", "Test33"]   # raw names read as words
    assert list(t.cells.values[0]) == ["training stage %", "uncertain %", "workload %", "thresholds (upper/lower)"]
    assert list(t.cells.values[2]) == ["33.34", "19.61", "52.95", "0.9/0.1"]
    assert list(t.cells.values[1])[0] == "90"   # at most 2 decimals, no trailing zeros
    assert t.columnwidth[0] > t.columnwidth[1]  # the names' column is not cut
    assert not fig.layout.annotations           # no legend: no threshold choices in the table
    flat = report.workload_table(pd.DataFrame(rows), transpose=False)
    assert len(flat.data[0].header.values) == 5


def test_workload_table_of_threshold_choices_has_words_and_a_legend():
    choices = pd.DataFrame(dict(method=["oracle", "validation", "conformal (alpha=0.05)"],
                                uses_test_labels=[True, False, False], upper=[0.9, np.nan, 1.0],
                                pct_positives_auto_correct=[79.4375, 0.0, 12.5]))
    t = report.workload_table(choices).data[0]
    assert list(t.cells.values[0]) == ["uses test labels", "upper threshold", "positives labelled correctly %"]
    assert [list(c) for c in t.cells.values[1:]] == [["yes", "0.9", "79.44"], ["no", "none", "0"],
                                                     ["no", "1", "12.5"]]
    legend = report.workload_table(choices).layout.annotations[0].text
    assert "<b>oracle</b>" in legend and "not the error rate" in legend


def test_rate_overview_marks_runs_to_check():
    df = pd.DataFrame(dict(sampling_rate=["9/10", "1/2", "1/4"], auc=[0.95, 0.70, 0.9], f1=[0.8, 0.01, 0.7],
                           oracle_workload_pct=[91.0, np.nan, 40.0], practical_workload_pct=[92.0, 100.0, 45.0],
                           check=["", "AUC 0.70 < 0.75; F1 0.01 < 0.30", ""]))
    fig = report.rate_overview(df)
    names = [t.name for t in fig.data]
    assert names == ["oracle (test labels)", "validation", "AUC", "F1"]
    oracle = fig.data[0]
    assert list(oracle.y) == [91.0, 100.0, 40.0]   # no pair: drawn at 100 %, said on hover
    assert "no pair: 100 %" in oracle.customdata[1] and "check: AUC 0.70" in oracle.customdata[1]
    assert list(fig.data[2].marker.symbol) == ["circle", "circle-open", "circle"]
    assert list(fig.layout.xaxis.categoryarray) == ["9/10", "1/2", "1/4"]   # run order
    assert {round(s.y0, 2) for s in fig.layout.shapes} == {report.AUC_FLOOR, report.F1_FLOOR}


def test_rate_curve_with_thesis_and_repeats():
    from pe_utils.report.thesis_numbers import TABLE_6_2

    ours = pd.DataFrame(dict(sampling_rate=["1/3", "1/3", "9/10"], workload_pct=[50.0, 54.0, 91.0]))
    fig = report.rate_curve(ours, "workload_pct", thesis=TABLE_6_2, title="workload")
    assert [t.name for t in fig.data] == ["ours", "thesis"]
    assert list(fig.data[0].x) == ["9/10", "1/3"]  # in the thesis's rate order
    assert list(fig.data[0].y) == [91.0, 52.0]
    assert fig.data[0].error_y.array[1] == pytest.approx(np.std([50, 54], ddof=1))
    assert len(fig.data[1].x) == 7
    assert fig.layout.xaxis.title.text == "sampling rate"


def test_workload_comparison():
    df = pd.DataFrame(dict(sampling_rate=["9/10", "1/3"], ours_oracle=[90.5, 55.0], thesis=[90.25, 52.95],
                           test_name=["Test90", "Test33"]))
    fig = report.workload_comparison(df)
    assert [t.name for t in fig.data] == ["ours_oracle", "thesis"]  # numeric columns only
    assert fig.layout.barmode == "group"
    assert fig.data[1].marker.color == report.COLORS["thesis"]


def test_contrastive_curves_loss_and_twin_accuracy_on_two_panels():
    history = [dict(epoch=e, train_loss=5.0 - e, train_twin_top1=0.1 * e, lr=0.01) for e in (1, 2, 3)]
    fig = report.contrastive_curves(history, batch_size=8, snapshot_epochs=(2, 75))
    loss, top1, chance = fig.data
    assert (loss.name, list(loss.y), loss.xaxis) == ("NT-Xent loss", [4.0, 3.0, 2.0], "x")
    assert (top1.name, top1.xaxis) == ("twin top-1", "x2") and list(top1.y) == pytest.approx([0.1, 0.2, 0.3])
    assert chance.xaxis == "x2" and list(chance.y) == pytest.approx([1 / 15, 1 / 15])  # a view's 2N - 1 others
    assert [s.x0 for s in fig.layout.shapes] == [2, 2]   # epoch 75 was never reached: no line
    assert tuple(fig.layout.yaxis2.range) == (0, 1.02)
    assert len(report.contrastive_curves([dict(train_loss=1.0)]).data) == 1  # no twin top-1: its panel stays empty
    with pytest.raises(ValueError, match="batch_size"):
        report.contrastive_curves(history, batch_size=0)


def test_method_curves_ours_with_error_bars_beside_the_dashed_thesis():
    long = pd.DataFrame({
        "sampling_rate": ["1/4", "1/4", "1/3", "1/4", "1/3", "1/4", "1/4", "1/3"],
        "method": ["contrastive (150 epochs)"] * 2 + ["supervised"] * 2 + ["no-image baseline"] * 2
                  + ["contrastive (150 epochs)", "contrastive (2 epochs)"],
        "source": ["ours"] * 4 + ["baseline"] * 2 + ["thesis", "ours"],
        "value": [48.0, 50.0, np.nan, 80.0, 0.4, 0.3, 49.34, np.nan],
    })
    fig = report.method_curves(long, x_order=["1/3", "1/4"], y_title="workload %")
    names = [t.name for t in fig.data]
    assert names == ["contrastive (150 epochs) (ours)", "supervised (ours)", "no-image baseline",
                     "contrastive (150 epochs) (thesis)"]   # a method with no value at all draws nothing
    ours150, sup, base, thesis = fig.data
    assert list(ours150.y) == [49.0] and ours150.error_y.visible and ours150.error_y.array[0] == pytest.approx(
        np.std([48, 50], ddof=1))
    assert list(sup.x) == ["1/4"] and not sup.error_y.visible          # the NaN seed is left out
    assert thesis.line.dash == "dash" and thesis.line.color == ours150.line.color
    assert base.line.dash == "dot" and base.line.color == report.COLORS["thesis"]
    assert list(fig.layout.xaxis.categoryarray) == ["1/3", "1/4"]
