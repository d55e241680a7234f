"""Tables as a reader sees them: every cell shown, every missing value said in words.

pandas shows a missing figure as ``NaN``, ``None`` or ``<NA>`` and cuts a wide or long table
with ``...``; a report page shows neither. :func:`display_table` turns a DataFrame into a
:class:`Table`, whose every cell is text: numbers to a few decimals, counts whole, a missing
value as the words it stands for (``"not validated"``, ``"no threshold: the validation slices
hold one class"``), every row and column drawn. :func:`history_table` is the training history
of :func:`pe_utils.fit` as a reader needs it: the figures by epoch, a long run thinned to
every n-th epoch and said so (the learning curves show every epoch).

The words of a missing cell come from the caller (``missing=``), or from the table itself:
a function whose table has rows without figures puts their words in
``frame.attrs["missing"]`` (:func:`pe_utils.threshold_metrics_table`), keyed by row or column.
"""
from __future__ import annotations

import html
import math
import numbers
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

__all__ = ["Table", "display_table", "HISTORY_LABELS", "history_table", "beside_case1"]

#: the words of a missing value when nobody said what it means
MISSING = "not recorded"

#: the history's columns a reader needs, in this order, with their names on the page
HISTORY_LABELS: dict[str, str] = {
    "step": "step",
    "epoch": "epoch",
    "lr": "learning rate",
    "train_loss": "training loss",
    "train_twin_top1": "twin top-1 accuracy",
    "train_f1": "training F1",
    "val_loss": "validation loss",
    "val_auc": "validation AUC",
    "val_f1": "validation F1",
    "train_seconds": "training seconds",
}


class Table:
    """A table ready to show: every cell already text, drawn whole (no ``...``), with an
    optional note under it.

    Attributes:
        cells: the DataFrame of strings that is drawn (tests read it).
        note: the sentence under the table, or None.
        index: whether the row labels are drawn.
    """

    def __init__(self, cells: pd.DataFrame, note: str | None = None, index: bool = True):
        self.cells = cells
        self.note = note
        self.index = index

    def _repr_html_(self) -> str:
        # to_html draws every row and column; pandas' notebook repr would cut at 60 x 20
        table = self.cells.to_html(max_rows=None, max_cols=None, escape=True, index=self.index)
        note = f'<p style="font-size: 90%">{html.escape(self.note)}</p>' if self.note else ""
        return table + note

    def __repr__(self) -> str:
        text = self.cells.to_string(max_rows=None, max_cols=None, index=self.index)
        return text + (f"\n{self.note}" if self.note else "")


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):   # a list or an array is a value, not a missing one
        return False


def _number(value: float, decimals: int) -> str:
    if value != 0 and abs(value) < 0.5 * 10 ** -decimals:
        return f"{value:.1e}"   # a small learning rate stays readable, not "0.000"
    return f"{value:.{decimals}f}"


def _cell(value: Any, decimals: int, words: str) -> str:
    """One value as text: ``words`` when missing, counts whole, other numbers to ``decimals``."""
    if isinstance(value, (list, tuple)):
        return "/".join(_cell(v, decimals, words) for v in value) if value else words
    if _missing(value):
        return words
    if isinstance(value, (bool, str)):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):d}"
    if isinstance(value, numbers.Real):
        return _number(float(value), decimals) if math.isfinite(float(value)) else str(float(value))
    return str(value)


def display_table(frame: pd.DataFrame, *, missing: str | Mapping[Any, str] | None = None, decimals: int = 3,
                  note: str | None = None, labels: Mapping[Any, str] | Callable[[Any], str] | None = None,
                  index: bool = True) -> Table:
    """``frame`` as a reader sees it: every cell text, no ``NaN``/``None``/``<NA>``, no ``...``.

    Args:
        frame: any DataFrame (a Series is shown as one column).
        missing: the words of a missing cell: one string for every cell, or a mapping from a
            row or column label to its words (a row's words win over its column's); cells it
            does not cover read ``frame.attrs["missing"]``'s words, else :data:`MISSING`.
        decimals: digits after the point of non-integer numbers (integers, and float columns
            of whole numbers only, stay whole).
        note: a sentence drawn under the table (what the words of a missing cell mean).
        labels: new names of columns, a mapping (e.g. :data:`HISTORY_LABELS`; others keep
            theirs) or a function (e.g. :func:`pe_utils.field_label`).
        index: whether the row labels are drawn.

    Returns:
        A :class:`Table`: shown whole as a cell's value or with ``display``.
    """
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    by_label: dict[Any, str] = dict(frame.attrs.get("missing") or {})
    default = MISSING
    if isinstance(missing, str):
        default, by_label = missing, {}
    elif missing is not None:
        by_label.update(missing)

    def words(row: Any, column: Any) -> str:
        for key in (row, column):
            try:
                if key in by_label:
                    return by_label[key]
            except TypeError:   # an unhashable label
                pass
        return default

    # a float column of whole numbers (counts that met a missing value) reads as counts
    whole = [pd.api.types.is_float_dtype(frame.iloc[:, j]) and bool((frame.iloc[:, j].dropna() % 1 == 0).all())
             for j in range(frame.shape[1])]
    cells = pd.DataFrame(
        [[_cell(int(v) if w and not _missing(v) else v, decimals, words(row, column))
          for column, v, w in zip(frame.columns, values, whole)]
         for row, values in zip(frame.index, frame.itertuples(index=False, name=None))],
        index=frame.index, columns=frame.columns, dtype=object)
    cells.index.name, cells.columns.name = frame.index.name, frame.columns.name
    if labels:
        cells = cells.rename(columns=labels)
    return Table(cells, note, index=index)


def history_table(history: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                  max_rows: int = 20, decimals: int = 3) -> Table:
    """The training history of :func:`pe_utils.fit` (or a pretraining) as a table by epoch.

    An epoch without validation (``fit``'s ``val_every``) reads "not validated" in its
    ``val_*`` cells, an AUC over one class "no AUC: the validation slices hold one class". A history longer than ``max_rows`` shows every n-th epoch and the last,
    and says so under the table.

    Args:
        history: one dict per epoch (``epoch``, ``lr``, ``train_*``, ``val_*``, ...).
        columns: the keys to show; None: those of :data:`HISTORY_LABELS` the history has.
        max_rows: the most epochs drawn.
        decimals: digits after the point.

    Returns:
        A :class:`Table` with readable column names (:data:`HISTORY_LABELS`).

    Raises:
        ValueError: ``max_rows`` under 2, or a requested column absent from every epoch.
    """
    if max_rows < 2:
        raise ValueError(f"max_rows must be at least 2 (the first and the last epoch), got {max_rows}")
    records = [dict(r) for r in history]
    frame = pd.DataFrame(records)
    if columns is None:
        columns = [c for c in HISTORY_LABELS if c in frame.columns]
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise ValueError(f"no epoch of the history has {absent}; it has {list(frame.columns)}")
    frame = frame[list(columns)].astype(object)
    for j, column in enumerate(frame.columns):
        for i, record in enumerate(records):
            if _missing(frame.iat[i, j]):
                frame.iat[i, j] = _history_gap(str(column), record)
    note = None
    if len(frame) > max_rows:
        every = math.ceil((len(frame) - 1) / (max_rows - 1))
        keep = sorted(set(range(0, len(frame), every)) | {len(frame) - 1})
        note = f"One epoch in {every} of {len(frame)}, and the last; the learning curves show every epoch."
        frame = frame.iloc[keep]
    # the epoch column numbers the rows
    return display_table(frame, decimals=decimals, note=note, labels=HISTORY_LABELS, index=False)


def _history_gap(column: str, record: Mapping[str, Any]) -> str:
    """The words of a history cell without a figure."""
    validated = any(k.startswith("val_") for k in record)
    if column.startswith("val_") and not validated:
        return "not validated"   # fit's val_every: this epoch was not validated
    if column.endswith("_auc"):  # binary_metrics: no ROC curve over one class
        return "no AUC: the validation slices hold one class" if column.startswith("val_") else "no AUC: one class"
    return MISSING


#: the figures notebook 03 sets beside Case1's at the same rate
BESIDE_CASE1 = ("seed", "epochs", "auc", "f1", "oracle_workload_pct", "practical_workload_pct", "conformal_workload_pct")


def beside_case1(record: Mapping[str, Any], reports_dir, rate: str) -> "Table | str":
    """A Case3 run's figures beside Case1's newest run at the same rate and input (notebook 03):
    single-slice beside single-slice, 2.5D beside 2.5D of the same k, of the Case3 run's seed
    where Case1 ran it; or a sentence naming the command that makes that run.

    Args:
        record: the Case3 run's ``metrics.json`` record (its ``context``: absent or 0, one slice);
        reports_dir: where Case1's runs are; rate: the sampling rate (``"1/3"``).
    """
    from .quality import worded
    from .schema import read_metrics

    k = int(record.get("context") or 0)
    runs = read_metrics(reports_dir, notebook="01_case1_supervised")
    if len(runs):
        context = pd.to_numeric(runs["context"], errors="coerce").fillna(0) if "context" in runs else 0
        runs = runs[(runs["sampling_rate"] == rate) & (context == k)]   # the same input as the Case3 run
    if not len(runs):
        if k:
            return (f"No Case1 2.5D run (context={k}) at {rate} yet: run notebook 01 at sampling_rate={rate!r}, "
                    f"context={k} (or the batch's --cases case1_context) to compare.")
        return (f"No Case1 run at {rate} yet: run notebook 01 at sampling_rate={rate!r} (or the batch's "
                "--cases 01) to compare.")
    if "seed" in runs and (same := runs[pd.to_numeric(runs["seed"], errors="coerce") == record.get("seed")]).shape[0]:
        runs = same   # the same seed: the same split of the rate
    both = pd.DataFrame([dict(runs.iloc[-1]), dict(record)], index=["Case1", "Case3"])
    return display_table(worded(both, list(BESIDE_CASE1)))
