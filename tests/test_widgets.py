"""pe_utils.report.widgets: drive the explorer's sliders and check what it shows; the static
fallback (``figures_triage.threshold_figure``)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from pe_utils.profiles import THESIS_THRESHOLD_PAIRS
from pe_utils.report.figures_triage import threshold_figure
from pe_utils.report.widgets import ThresholdExplorer, threshold_explorer

# hand-checkable data: 8 images
PROBS = np.array([0.02, 0.10, 0.20, 0.50, 0.80, 0.85, 0.97, 0.30])
LABELS = np.array([0, 0, 1, 0, 1, 1, 1, 0])
IMAGES = (np.arange(8 * 6 * 6).reshape(8, 6, 6) % 256).astype(np.uint8)


def _explorer(**kw):
    kw.setdefault("images", IMAGES)
    return ThresholdExplorer(PROBS, LABELS, n_dataset=20, n_training_stage=12, **kw)


def _captions(e):
    return [box.children[1].value for box in e.gallery.children]


def test_starts_at_first_pair_with_hand_counts():
    e = _explorer()
    s = e.summary()
    assert (s["upper"], s["lower"]) == THESIS_THRESHOLD_PAIRS[0]
    # 0.75/0.25: true 5, false 1 (0.20 labelled 1), uncertain 2 (0.50, 0.30)
    assert (s["n_true"], s["n_false"], s["n_uncertain"]) == (5, 1, 2)
    assert s["workload_pct"] == pytest.approx(100 * (12 + 2) / 20)
    assert "true 5" in e.counts.value and "uncertain 2" in e.counts.value
    assert "70.00 %" in e.counts.value
    assert s["n_gallery"] == 8  # every slice (max_gallery 12), nearest a threshold first
    # distances to 0.75/0.25: 0.20, 0.80, 0.30 are 0.05 off (ties in index order), then 0.85 (0.10)
    assert _captions(e)[:4] == ["<small>#2 p=0.200 y=1 sure -</small>", "<small>#4 p=0.800 y=1 sure +</small>",
                                "<small>#7 p=0.300 y=0 uncertain</small>", "<small>#5 p=0.850 y=1 sure +</small>"]
    assert "nearest the thresholds" in e.gallery_title.value and "changed" not in e.gallery_title.value


def test_moving_sliders_updates_counts_summary_and_gallery():
    e = _explorer(max_gallery=4)
    before_html, before_gallery = e.counts.value, _captions(e)
    e.upper.value = 0.9   # 0.80 and 0.85 leave "sure +": shown first, framed thicker
    assert _captions(e)[:2] == ["<small>#5 p=0.850 y=1 uncertain (was sure +)</small>",
                                "<small>#4 p=0.800 y=1 uncertain (was sure +)</small>"]
    assert "the 2 that just changed class first" in e.gallery_title.value
    assert e.gallery.children[0].layout.border.startswith("4px")
    e.lower.value = 0.1   # 0.10 (on the bound: uncertain) and 0.20 leave "sure -"
    s = e.summary()
    # 0.9/0.1: sure pos 0.97, sure neg 0.02 (0.10 on the bound is uncertain) -> true 2, uncertain 6
    assert (s["n_true"], s["n_false"], s["n_uncertain"]) == (2, 0, 6)
    assert s["workload_pct"] == pytest.approx(90.0)
    assert e.counts.value != before_html and "uncertain 6" in e.counts.value
    assert _captions(e)[:2] == ["<small>#1 p=0.100 y=0 uncertain (was sure -)</small>",
                                "<small>#2 p=0.200 y=1 uncertain (was sure -)</small>"]
    assert _captions(e) != before_gallery and len(e.gallery.children) == 4
    assert e.presets.value == (0.9, 0.1)  # the sliders sit on a thesis pair


def test_gallery_follows_the_sliders_even_when_no_class_changes():
    e = _explorer(max_gallery=2)
    before = _captions(e)
    e.upper.value = 0.77  # 0.80 stays sure +, now the nearest slice
    assert e.summary()["n_uncertain"] == 2 and "changed" not in e.gallery_title.value
    assert _captions(e) != before and _captions(e)[0] == "<small>#4 p=0.800 y=1 sure +</small>"


def test_empty_state_says_nothing_is_uncertain():
    e = _explorer()
    e.set_thresholds(0.35, 0.32)  # no probability in [0.32, 0.35]
    assert e.summary()["n_uncertain"] == 0
    assert e.gallery_title.value.startswith("Nothing is uncertain at 0.35/0.32")


def test_gallery_respects_max_gallery():
    e = _explorer(max_gallery=3)
    e.set_thresholds(0.95, 0.05)
    assert e.summary()["n_uncertain"] == 6
    assert len(e.gallery.children) == 3


def test_preset_buttons_fit_their_labels():
    # a fixed 80px cut "0.75/0.25" in JupyterLab (tests/test_browser.py checks the drawn buttons)
    assert _explorer().presets.style.button_width == "auto"


def test_sliders_push_each_other():
    e = _explorer()
    e.lower.value = 0.9  # past upper (0.75): upper is pushed above it
    assert e.upper.value > e.lower.value == 0.9
    e.upper.value = 0.3  # past lower: lower is pushed below it
    assert e.lower.value < e.upper.value == 0.3
    e.upper.value = 0.0  # upper cannot reach 0: lower must stay below it
    assert 0.0 <= e.lower.value < e.upper.value


def test_presets_set_both_sliders():
    e = _explorer()
    e.presets.value = (0.85, 0.15)
    assert (e.upper.value, e.lower.value) == (0.85, 0.15)
    assert e.summary()["n_uncertain"] == 5


def test_without_labels_or_images():
    e = ThresholdExplorer(PROBS)
    s = e.summary()
    assert (s["n_sure_pos"], s["n_sure_neg"], s["n_uncertain"]) == (3, 3, 2)
    assert "n_true" not in s and "workload_pct" not in s
    assert "sure positive 3" in e.counts.value
    assert e.gallery not in e.widget.children


@pytest.mark.parametrize("kw", [dict(labels=[0, 1]), dict(images=IMAGES[:3]), dict(step=0.7)])
def test_rejects_misaligned_inputs(kw):
    args = dict(labels=LABELS, images=None) | kw
    with pytest.raises(ValueError):
        ThresholdExplorer(PROBS, **args)


def test_set_thresholds_validates():
    with pytest.raises(ValueError):
        _explorer().set_thresholds(0.2, 0.8)


def test_static_figure_has_one_step_per_pair():
    fig = threshold_figure(PROBS, LABELS, n_dataset=20, n_training_stage=12)
    assert isinstance(fig, go.Figure)
    steps = fig.layout.sliders[0].steps
    assert len(steps) == len(THESIS_THRESHOLD_PAIRS)
    assert [s.label for s in steps] == ["0.75/0.25", "0.8/0.2", "0.85/0.15", "0.9/0.1", "0.95/0.05"]
    assert [t.name for t in fig.data[:3]] == ["true", "false", "uncertain"]
    assert list(fig.data[0].y) == [5]  # first pair shown
    # the 0.9/0.1 step restyles bars to true 2, false 0, uncertain 6 and puts the workload in the title
    restyle, relayout = steps[3].args[0], steps[3].args[1]
    assert restyle["y"] == [[2], [0], [6]]
    assert "workload 90.00 %" in relayout["title.text"]
    assert [sh["x0"] for sh in relayout["shapes"]] == [0.9, 0.1]


def test_static_figure_log_axis_has_readable_ticks():
    probs = np.r_[np.full(130, 0.01), np.full(7, 0.6), [0.99]]
    fig = threshold_figure(probs, np.r_[np.zeros(130), np.ones(8)].astype(int))
    axis = fig.layout.yaxis2
    assert axis.type == "log"
    # 1 2 5 10 20 50 100: no minor labels ("5 4 3 2 10 9 8") and nothing past 1.4 x the tallest bar
    assert list(axis.tickvals) == [1, 2, 5, 10, 20, 50, 100] and list(axis.ticktext)[-1] == "100"


def test_threshold_explorer_dispatch():
    assert isinstance(threshold_explorer(PROBS, LABELS, interactive=False), go.Figure)
    assert isinstance(threshold_explorer(PROBS, LABELS, interactive=True), ThresholdExplorer)
    # outside a kernel (pytest), auto-detection gives the static figure
    assert isinstance(threshold_explorer(PROBS, LABELS), go.Figure)


def test_display_bundle_carries_widget_and_static_fallback(monkeypatch):
    monkeypatch.setattr(pio.renderers, "default", "plotly_mimetype+notebook")
    bundle = _explorer()._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "text/html" in bundle  # what nbconvert shows when no widget state was saved


@pytest.mark.parametrize("metadata, live", [({}, False), ({"cellId": "c1", "deletedCells": []}, True)])
def test_auto_detects_jupyterlab_from_execute_request_metadata(monkeypatch, metadata, live):
    import IPython

    class Kernel:
        def get_parent(self, channel="shell"):
            return {"header": {}, "metadata": metadata}

    class Shell:
        kernel = Kernel()

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    shown = threshold_explorer(PROBS, LABELS)  # papermill sends no metadata: the static figure
    assert isinstance(shown, ThresholdExplorer if live else go.Figure)
