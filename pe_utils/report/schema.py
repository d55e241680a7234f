"""``metrics.json``: what every notebook run writes, documented key by key in one place.

The batch index and the summary notebook are built from these files only, so a key that is
not documented here is refused by :func:`write_metrics` (and a documented required key that
is missing too): the documentation cannot drift from what runs write.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ..io import read_json, write_json

#: Case1 (and later Case3) keys: name -> meaning. Percentages are 0-100.
CASE1_KEYS: dict[str, str] = {
    "notebook": "which notebook wrote the file",
    "profile": "parameter profile of the run (smoke, demo, thesis)",
    "sampling_rate": "Case1 sampling rate p/q, e.g. '1/3' (Table 6.1)",
    "test_name": "the thesis's name for the rate, e.g. 'Test33' (Table 6.1)",
    "seed": "seed of the split, initialisation, augmentation and shuffling",
    "arch": "backbone architecture",
    "epochs": "epochs trained (the last epoch's model is evaluated)",
    "n_dataset": "images in the whole dataset (Dataset1 in the thesis)",
    "n_train": "training images",
    "n_val": "validation images (held out from training; calibrate the practical thresholds)",
    "n_test": "test images: those the network annotates",
    "n_test_positive": "positive images in the test set",
    "pct_training_stage": "% of the dataset in the training stage (train + val): annotated by hand up front",
    "auc": "test AUC of the TTA-averaged probabilities",
    "f1": "test F1 at threshold 0.5 (TTA-averaged probabilities)",
    "accuracy": "test accuracy at threshold 0.5 (TTA-averaged probabilities)",
    "metrics_at_0_5": "binary_metrics at 0.5 on the TTA-averaged test probabilities (tn, fp, fn, tp, ...)",
    "youden_threshold": "threshold maximising TPR - FPR on the test ROC",
    "metrics_at_youden": "binary_metrics at the Youden threshold",
    "auc_no_tta": "test AUC of the original view alone (without TTA)",
    "oracle_thresholds": "[upper, lower]: widest thesis pair with zero errors among sure test predictions, chosen with the test labels as the thesis does; null when none",
    "oracle_pct_uncertain": "% of the dataset left uncertain at the oracle pair (Table 6.2's 'uncertain' row); null when no pair",
    "oracle_workload_pct": "% of the dataset annotated by hand at the oracle pair: training stage + uncertain (Table 6.2); null when no pair",
    "practical_thresholds": "[upper, lower] chosen without test labels: the widest thesis pair with zero errors among sure validation predictions; null when none",
    "practical_workload_pct": "% of the dataset annotated by hand at the practical pair (100 - no automation when null)",
    "practical_error_rate": "% of the sure test predictions that are wrong at the practical pair",
    "conformal_alpha": "error bound of the conformal choice (P(true label not in the prediction set) <= alpha)",
    "conformal_thresholds": "[upper, lower] from conformal calibration on the validation slices (crepes)",
    "conformal_workload_pct": "% of the dataset annotated by hand at the conformal pair",
    "conformal_error_rate": "% of the sure test predictions that are wrong at the conformal pair",
    "pct_positives_auto_correct": "% of test positives labelled correctly by a sure prediction at the oracle pair (Fig 6.16); at the practical pair when no oracle pair exists",
    "triage": "per thesis threshold pair: counts of true, false and uncertain test predictions and the workload (Figs 6.7/6.8)",
    "history": "per-epoch training figures (loss, accuracy, F1 both ways, AUC, lr)",
    "train_seconds": "wall-clock seconds spent in fit",
}
CASE1_REQUIRED = (
    "sampling_rate", "test_name", "auc", "f1", "accuracy", "pct_training_stage",
    "oracle_thresholds", "oracle_pct_uncertain", "oracle_workload_pct", "practical_thresholds",
    "practical_workload_pct", "practical_error_rate", "pct_positives_auto_correct",
)

#: keys of the preprocessing notebook's metrics.json
PREPROCESSING_KEYS: dict[str, str] = {
    "notebook": "which notebook wrote the file",
    "n_images": "images in the cache",
    "n_patients": "distinct (pseudonymised) patients",
    "n_series": "distinct series",
    "n_positive_images": "images with pe_present_on_image = 1",
    "pct_positive_images": "% of images with an embolus",
    "n_positive_patients": "patients with at least one positive image",
    "n_skipped": "files listed in skipped.csv",
    "image_size": "side of the cached images in pixels",
}

SCHEMAS: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "case1": (CASE1_KEYS, CASE1_REQUIRED),
    "preprocessing": (PREPROCESSING_KEYS, ()),
}

#: metrics.json keys the batch index shows as columns, in this order (when any run has them):
#: key -> column label. Every key is documented in a schema above (tests/test_schema.py).
INDEX_FIGURES: dict[str, str] = {
    "auc": "AUC",
    "f1": "F1",
    "accuracy": "accuracy",
    "oracle_workload_pct": "workload % (oracle)",
    "practical_workload_pct": "workload % (practical)",
    "conformal_workload_pct": "workload % (conformal)",
    "n_images": "images",
}


def write_metrics(output_dir: str | Path, metrics: Mapping[str, Any], schema: str) -> Path:
    """Write ``metrics`` as ``output_dir/metrics.json`` after checking it against ``schema``.

    Args:
        output_dir: the run's folder (created if needed).
        metrics: the figures; numpy values and DataFrames are converted, NaN becomes null.
        schema: ``"case1"`` or ``"preprocessing"`` (see :data:`SCHEMAS`).

    Returns:
        The path written.

    Raises:
        ValueError: an unknown schema, a key that the schema does not document, or a
            required key missing (the message names them).
    """
    if schema not in SCHEMAS:
        raise ValueError(f"unknown metrics.json schema {schema!r}; choose one of {sorted(SCHEMAS)}")
    keys, required = SCHEMAS[schema]
    unknown = sorted(set(metrics) - set(keys))
    missing = [k for k in required if k not in metrics]
    if unknown or missing:
        raise ValueError(f"metrics.json ({schema}): undocumented keys {unknown}, missing keys {missing}")
    return write_json(Path(output_dir) / "metrics.json", dict(metrics))


def read_metrics(root: str | Path, notebook: str | None = None) -> pd.DataFrame:
    """Every ``metrics.json`` under ``root`` as one DataFrame (one row per run).

    Args:
        root: a batch's report folder (``reports/<run>``) or any folder of runs.
        notebook: keep only files whose ``notebook`` key equals this.

    Returns:
        A DataFrame with the top-level keys as columns and ``path`` of each file.

    Raises:
        ValueError: a ``metrics.json`` that does not hold a JSON object.
    """
    rows = []
    for path in sorted(Path(root).rglob("metrics.json")):
        data = read_json(path)
        if data is None:  # written atomically, so this is not a half-written file: say so
            raise ValueError(f"{path}: not a JSON object")
        if notebook is None or data.get("notebook") == notebook:
            rows.append({**data, "path": str(path)})
    return pd.DataFrame(rows)
