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
    from pe_utils.report import figures_data, figures_training, figures_triage, images, style

    homes = (style, images, figures_data, figures_training, figures_triage)
    for module in homes:
        for name in module.__all__:
            value = getattr(module, name)
            assert getattr(report, name) is value and getattr(pe_utils, name) is value
            assert sum(name in m.__all__ for m in homes) == 1, name


def test_setup_notebook_sets_renderer(monkeypatch):
    monkeypatch.setattr(pio.renderers, "default", "json")
    assert report.setup_notebook() is None
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
    assert list(t.header.values) == ["test_name", "Test90", "Test33"]
    assert list(t.cells.values[2]) == ["33.34", "19.61", "52.95", "0.9/0.1"]
    flat = report.workload_table(pd.DataFrame(rows), transpose=False)
    assert len(flat.data[0].header.values) == 5


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
