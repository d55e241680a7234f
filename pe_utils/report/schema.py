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
    "youden_threshold": "threshold maximising TPR - FPR on the validation ROC (chosen without test labels); null when the validation slices hold one class",
    "metrics_at_youden": "binary_metrics on the test slices at youden_threshold (chosen on validation); null without one",
    "oracle_youden_threshold": "threshold maximising TPR - FPR on the test ROC itself: an oracle (chosen with the test labels)",
    "metrics_at_oracle_youden": "binary_metrics on the test slices at oracle_youden_threshold: an oracle, optimistic",
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
    "oracle_pct_positives_auto_correct": "% of test positives labelled correctly by a sure prediction at the oracle pair (Fig 6.16); null when no pair is error-free",
    "practical_pct_positives_auto_correct": "% of test positives labelled correctly by a sure prediction at the practical pair (0 when none: nothing is automated)",
    "baseline_f1": "test F1 of the rule that looks at no image: each test slice takes the label of the nearest annotated (train + val) slice of its series (ties: the earlier slice)",
    "baseline_accuracy": "test accuracy of that nearest-annotated-slice rule",
    "baseline_error_rate": "% of the test slices that rule labels wrongly (it automates every test slice)",
    "baseline_workload_pct": "% of the dataset annotated by hand with that rule: the training stage alone (no slice goes to an expert)",
    "triage": "per thesis threshold pair: counts of true, false and uncertain test predictions and the workload (Figs 6.7/6.8)",
    "history": "per-epoch training figures (loss, accuracy, F1 both ways, AUC, lr)",
    "train_seconds": "wall-clock seconds spent in fit",
}
CASE1_REQUIRED = (
    "sampling_rate", "test_name", "auc", "f1", "accuracy", "pct_training_stage",
    "oracle_thresholds", "oracle_pct_uncertain", "oracle_workload_pct", "practical_thresholds",
    "practical_workload_pct", "practical_error_rate", "oracle_pct_positives_auto_correct",
    "practical_pct_positives_auto_correct", "baseline_f1", "baseline_accuracy", "baseline_error_rate",
    "baseline_workload_pct",
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
    "baseline_f1": "F1 (no-image baseline)",
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


#: Case3's fine-tuning (notebook 03): every Case1 key (the same experiment around another model)
#: plus where the pretrained encoder came from and how the two steps ran (THESIS 4.3)
CASE3_KEYS: dict[str, str] = {
    **CASE1_KEYS,
    "case": "which case the run belongs to: 'case3' (a pretrained SimCLR encoder, fine-tuned in two steps)",
    "pretrain_epochs": "epochs of contrastive pretraining of the encoder that was fine-tuned (75 or 150 in the thesis)",
    "pretrained_from": "the pretrained network's file (simclr.pt or a snapshot simclr_epochNNN.pt of notebook 02)",
    "keep_head_layers": "projection-head layers kept in the classifier: 0 (all dropped) or 1 (the first, as SimCLRv2)",
    "step1_epochs": "epochs of step 1 (encoder frozen, new head trained)",
    "step1_lr": "initial learning rate of step 1 (step decay)",
    "step2_epochs": "epochs of step 2 (the whole network trained)",
    "step2_lr": "initial learning rate of step 2 (step decay)",
}
CASE3_REQUIRED = CASE1_REQUIRED + ("case", "pretrain_epochs", "pretrained_from")

#: Case3's contrastive pretraining (notebook 02, ``python -m pe_utils pretrain``)
PRETRAIN_KEYS: dict[str, str] = {
    "notebook": "which notebook (or 'pretrain_cli', the command line) wrote the file",
    "profile": "parameter profile of the run (smoke, demo, thesis)",
    "case": "which case the pretraining serves: 'case3'",
    "arch": "encoder architecture",
    "image_size": "side of the views fed to the encoder, pixels",
    "batch_size": "images per step (global: 2 x this many views; split across processes under torchrun)",
    "epochs": "epochs of pretraining done",
    "lr": "constant learning rate of SGD",
    "temperature": "NT-Xent temperature",
    "seed": "seed of the initialisation, order and views",
    "n_images": "unlabelled images pretrained on (the whole dataset, no split)",
    "loss_first": "mean NT-Xent loss of the first epoch",
    "loss_last": "mean NT-Xent loss of the last epoch",
    "twin_top1_last": "last epoch's share of first views whose nearest other view is their twin",
    "checkpoint": "the pretrained network's file (simclr.pt)",
    "snapshots": "file names of the snapshots kept at earlier epochs (e.g. the thesis's 75 epochs)",
    "history": "per-epoch figures (train_loss, train_twin_top1, lr, seconds)",
    "train_seconds": "wall-clock seconds spent pretraining",
}
SCHEMAS["case3"] = (CASE3_KEYS, CASE3_REQUIRED)
SCHEMAS["pretrain"] = (PRETRAIN_KEYS, ())
