"""The threshold explorer: move the two triage thresholds and watch counts, workload and gallery.

:class:`ThresholdExplorer` is an ipywidgets panel (live in JupyterLab): two linked sliders
(``lower < upper`` always holds: moving one past the other pushes it), buttons for the thesis's
pairs, a line of counts (true / false / uncertain, workload), and a gallery of the slices nearest
the two thresholds (those that just changed class first), each framed in its class's colour.

:func:`threshold_explorer` picks what to show. A live widget needs a frontend; an executed
notebook exported to HTML (papermill, nbconvert) has none and would show a dead widget. So:

* ``interactive=True``: the :class:`ThresholdExplorer`; its display bundle also carries the
  static figure (:func:`pe_utils.report.figures_triage.threshold_figure`) as ``text/html``.
  JupyterLab prefers the widget view; nbconvert drops a widget view whose state was not
  saved in the notebook and shows the figure instead.
* ``interactive=False``: a plotly figure with a slider over the threshold pairs (stacked bars
  of true/false/uncertain beside the probability histogram and the two thresholds, workload
  in the title), which works in a static HTML page.
* ``interactive=None``: the explorer when a notebook frontend sends the code (JupyterLab tags
  its execute requests with the cell id; papermill/nbclient send none), the figure otherwise.
"""
from __future__ import annotations

import html
from typing import Sequence

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from pe_utils.evaluate.triaging import annotation_workload, triage, triage_counts
from pe_utils.profiles import THESIS_THRESHOLD_PAIRS
from pe_utils.report.figures_triage import threshold_figure
from pe_utils.report.images import png_bytes
from pe_utils.report.style import COLORS

__all__ = ["ThresholdExplorer", "threshold_explorer"]

# triage's classes (1 sure positive, 0 sure negative, -1 uncertain): gallery captions and frames
_CLASS_NAMES = {1: "sure +", 0: "sure -", -1: "uncertain"}
_CLASS_COLOURS = {1: COLORS["positive"], 0: COLORS["negative"], -1: COLORS["uncertain"]}


class ThresholdExplorer:
    """Two linked sliders over the triage thresholds, with live counts, workload and gallery.

    Args:
        probs: (N,) mean TTA probabilities of the test images.
        labels: (N,) their labels, or None (then only sure positive/negative/uncertain counts).
        images: (N, H, W) or (N, C, H, W) images aligned with ``probs`` (uint8 or float in
            [0, 1]; a memory map is fine), or None for no gallery.
        n_dataset: images in the whole dataset; with it the workload % is shown
            (training stage + uncertain, Table 6.2).
        n_training_stage: images annotated up front (train + val).
        pairs: preset ``(upper, lower)`` pairs offered as buttons; the first is the start value.
        max_gallery: images shown at most: those whose class changed at the last move first,
            then the rest by distance to the nearer threshold (what a move changes next).
        step: slider resolution; also the gap kept between the two thresholds.
        thumb: side in pixels of the gallery thumbnails.

    Attributes:
        upper, lower: the ``FloatSlider`` widgets. counts: the ``HTML`` line of counts.
        gallery_title: the ``HTML`` line over the gallery (an empty-state sentence when nothing
        is uncertain). gallery: a ``GridBox`` of (image, caption) boxes. widget: the ``VBox``.
    """

    def __init__(self, probs, labels=None, images=None, n_dataset: int | None = None,
                 n_training_stage: int = 0, pairs: Sequence[Sequence[float]] = THESIS_THRESHOLD_PAIRS,
                 max_gallery: int = 12, step: float = 0.01, thumb: int = 96):
        self.probs = np.asarray(probs, dtype=np.float64).reshape(-1)
        self.labels = None if labels is None else np.asarray(labels).reshape(-1).astype(np.int8)
        if self.labels is not None and self.labels.shape != self.probs.shape:
            raise ValueError("probs and labels differ in length")
        if images is not None and len(images) != len(self.probs):
            raise ValueError("images must be aligned with probs")
        if not 0 < step < 0.5:
            raise ValueError("step must be in (0, 0.5)")
        self.images = images
        self.n_dataset = n_dataset
        self.n_training_stage = int(n_training_stage)
        self.pairs = [tuple(map(float, p)) for p in pairs]
        self.max_gallery = int(max_gallery)
        self.step = float(step)
        self.thumb = int(thumb)
        self._png: dict[int, bytes] = {}
        self._busy = False
        self._classes: np.ndarray | None = None  # each slice's class before the last move
        self._changed = np.zeros(self.probs.shape, dtype=bool)

        upper, lower = self.pairs[0] if self.pairs else (0.75, 0.25)
        slider = dict(min=0.0, max=1.0, step=step, readout_format=".2f", continuous_update=False,
                      style={"description_width": "110px"}, layout=W.Layout(width="420px"))
        self.upper = W.FloatSlider(value=upper, description="upper (sure +)", **slider)
        self.lower = W.FloatSlider(value=lower, description="lower (sure -)", **slider)
        self.presets = W.ToggleButtons(options=[(f"{u:g}/{lo:g}", (u, lo)) for u, lo in self.pairs],
                                       value=None, description="thesis pairs",
                                       # "auto": each button as wide as its label (80px cut "0.75/0.25")
                                       style={"button_width": "auto"})
        self.counts = W.HTML()
        self.gallery_title = W.HTML()
        self.gallery = W.GridBox(layout=W.Layout(
            grid_template_columns=f"repeat(auto-fill, {thumb + 20}px)", grid_gap="4px"))
        self.upper.observe(lambda _: self._push(self.upper, self.lower, +1), names="value")
        self.lower.observe(lambda _: self._push(self.lower, self.upper, -1), names="value")
        self.presets.observe(self._on_preset, names="value")
        parts = [W.HTML("<b>Two-threshold triage</b>: above <i>upper</i> sure positive, below "
                        "<i>lower</i> sure negative, between them checked by an expert."),
                 self.presets, self.upper, self.lower, self.counts]
        if images is not None:
            parts += [self.gallery_title, self.gallery]
        self.widget = W.VBox(parts)
        self._update()

    def _push(self, moved: W.FloatSlider, other: W.FloatSlider, sign: int) -> None:
        """Keep ``lower < upper``: ``moved`` stays a step off its far end (upper >= step, lower
        <= 1 - step) and pushes ``other`` a step past it when they meet."""
        if self._busy:
            return
        self._busy = True
        try:
            far = self.step if sign > 0 else 1.0 - self.step
            if sign * (moved.value - far) < 0:
                moved.value = far
            if sign * (other.value - moved.value) >= 0:
                other.value = round(min(1.0, max(0.0, moved.value - sign * self.step)), 10)
        finally:
            self._busy = False
        self._update()

    def _on_preset(self, change) -> None:
        if change["new"] is None or self._busy:
            return
        self.set_thresholds(*change["new"])

    def set_thresholds(self, upper: float, lower: float) -> None:
        """Move both sliders at once (one update)."""
        triage(self.probs[:0], upper, lower)  # validates 0 <= lower < upper <= 1
        self._busy = True
        try:
            self.upper.value, self.lower.value = 1.0, 0.0  # never crossing on the way
            self.upper.value, self.lower.value = upper, lower
        finally:
            self._busy = False
        self._update()

    # -- state
    def summary(self) -> dict:
        """``triage_counts`` at the current thresholds, with ``workload_pct`` (given ``n_dataset``)
        and ``n_gallery``."""
        s = triage_counts(self.probs, self.labels, self.upper.value, self.lower.value)
        if self.n_dataset is not None:
            s["workload_pct"] = annotation_workload(self.n_dataset, self.n_training_stage, s["n_uncertain"])
        s["n_gallery"] = len(self.gallery.children)
        return s

    def uncertain_indices(self) -> np.ndarray:
        """Indices of the uncertain images, most uncertain (closest to 0.5) first."""
        idx = np.flatnonzero(triage(self.probs, self.upper.value, self.lower.value) == -1)
        return idx[np.argsort(np.abs(self.probs[idx] - 0.5), kind="stable")]

    def gallery_indices(self) -> np.ndarray:
        """The gallery's images: those whose class changed at the last move, then the others by
        distance to the nearer threshold (the next to change), ``max_gallery`` at most."""
        distance = np.minimum(np.abs(self.probs - self.upper.value), np.abs(self.probs - self.lower.value))
        distance = np.round(distance, 9)  # equal distances tie (0.30 - 0.25 == 0.80 - 0.75), in index order
        order = np.lexsort((distance, ~self._changed))  # last key first: changed ones lead
        return order[: self.max_gallery]

    def _thumb(self, i: int) -> bytes:
        if i not in self._png:
            self._png[i] = png_bytes(np.asarray(self.images[i]), max_side=self.thumb)
        return self._png[i]

    def _update(self) -> None:
        s = triage_counts(self.probs, self.labels, self.upper.value, self.lower.value)
        classes = triage(self.probs, self.upper.value, self.lower.value)
        if self._classes is not None:
            self._changed = classes != self._classes
        previous, self._classes = self._classes, classes
        # highlight the preset the sliders sit on, if any (so clicking it again works)
        match = next((q for q in self.pairs if np.isclose(q[0], s["upper"]) and np.isclose(q[1], s["lower"])),
                     None)
        if self.presets.value != match:
            self._busy = True
            try:
                self.presets.value = match
            finally:
                self._busy = False
        if self.labels is not None:
            text = (f"<span style='color:{COLORS['true']}'>true {s['n_true']}</span> &middot; "
                    f"<span style='color:{COLORS['false']}'>false {s['n_false']}</span> "
                    f"(FP {s['n_false_pos']}, FN {s['n_false_neg']}) &middot; ")
        else:
            text = f"sure positive {s['n_sure_pos']} &middot; sure negative {s['n_sure_neg']} &middot; "
        text += (f"<span style='color:#b8860b'>uncertain {s['n_uncertain']}</span> "
                 f"({s['pct_uncertain']:.2f} % of {s['n']} test images)")
        if self.n_dataset is not None:
            w = annotation_workload(self.n_dataset, self.n_training_stage, s["n_uncertain"])
            text += f" &middot; <b>workload {w:.2f} %</b> of the dataset annotated by hand"
        self.counts.value = text
        if self.images is None:
            return
        shown = self.gallery_indices()
        n_changed = int(self._changed[shown].sum())
        title = (f"Nothing is uncertain at {s['upper']:g}/{s['lower']:g}: every test slice is labelled "
                 "automatically. " if s["n_uncertain"] == 0 else "")
        title += (f"<b>The {len(shown)} slices nearest the thresholds</b>"
                  + (f", the {n_changed} that just changed class first" if n_changed else "")
                  + "; frame colour: sure positive, sure negative or uncertain.")
        self.gallery_title.value = title if len(shown) else "No test slice to show."
        boxes = []
        for i in map(int, shown):
            cap = f"#{i} p={self.probs[i]:.3f}" + (f" y={int(self.labels[i])}" if self.labels is not None else "")
            cap += f" {_CLASS_NAMES[int(classes[i])]}" + (
                f" (was {_CLASS_NAMES[int(previous[i])]})" if self._changed[i] else "")
            border = f"{4 if self._changed[i] else 2}px solid {_CLASS_COLOURS[int(classes[i])]}"
            boxes.append(W.VBox([W.Image(value=self._thumb(i), format="png",
                                         layout=W.Layout(width=f"{self.thumb}px")),
                                 W.HTML(f"<small>{html.escape(cap)}</small>")],
                                layout=W.Layout(border=border, padding="2px")))
        self.gallery.children = boxes

    def figure(self) -> go.Figure:
        """The static fallback (:func:`threshold_figure`) for the same data and pairs."""
        return threshold_figure(self.probs, self.labels, n_dataset=self.n_dataset,
                                n_training_stage=self.n_training_stage, pairs=self.pairs)

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {}
        try:
            bundle["text/html"] = _static_html(self.figure())
        except Exception:  # a fallback must never stop the live widget from showing
            pass
        bundle.update(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        return bundle


def _static_html(fig: go.Figure) -> str:
    """The figure as an HTML fragment relying on the page's plotly.js, as notebook figures do.

    plotly.js comes once per notebook from the ``notebook`` renderer's start-up output
    (:func:`pe_utils.report.style.setup_notebook`); it is activated here if no figure has been shown
    yet, exactly as ``pio.show`` would. ``fig._repr_mimebundle_`` is not used: it re-embeds
    plotly.js (4.8 MB) on every call.
    """
    import plotly.io as pio
    from plotly.io._base_renderers import MimetypeRenderer

    activate = getattr(pio.renderers, "_activate_pending_renderers", None)  # private, guarded
    if activate is not None:
        activate(cls=MimetypeRenderer)
    return pio.to_html(fig, include_plotlyjs=False, full_html=False)


def _live_frontend() -> bool:
    """Whether this code runs in a kernel driven by a notebook frontend (a heuristic).

    JupyterLab and Notebook 7 tag each ``execute_request`` with the cell's id in the message
    metadata (``cellId``, with ``deletedCells`` and ``recordTiming``); nbclient, hence papermill
    and nbconvert, send empty metadata. Outside a kernel: False.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    kernel = getattr(ip, "kernel", None) if ip is not None else None
    if kernel is None:
        return False
    try:
        parent = kernel.get_parent("shell")
    except Exception:
        parent = getattr(kernel, "_parent", None) or getattr(ip, "parent_header", None)
    metadata = (parent or {}).get("metadata") or {}
    return any(k in metadata for k in ("cellId", "deletedCells", "recordTiming"))


def threshold_explorer(probs, labels=None, images=None, n_dataset: int | None = None,
                       n_training_stage: int = 0, pairs: Sequence[Sequence[float]] = THESIS_THRESHOLD_PAIRS,
                       interactive: bool | None = None, max_gallery: int = 12):
    """The live :class:`ThresholdExplorer`, or the static :func:`threshold_figure` (see module doc).

    Args:
        interactive: True: the explorer (with the figure as its HTML fallback); False: the
            figure; None: the explorer when a notebook frontend drives the kernel (JupyterLab),
            the figure otherwise (papermill, nbconvert, plain Python).
        The rest: as :class:`ThresholdExplorer`.

    Returns:
        ``ThresholdExplorer`` (display it, or its ``.widget``) or ``go.Figure``.
    """
    if interactive is None:
        interactive = _live_frontend()
    if interactive:
        return ThresholdExplorer(probs, labels, images=images, n_dataset=n_dataset,
                                 n_training_stage=n_training_stage, pairs=pairs, max_gallery=max_gallery)
    return threshold_figure(probs, labels, n_dataset=n_dataset, n_training_stage=n_training_stage, pairs=pairs)
