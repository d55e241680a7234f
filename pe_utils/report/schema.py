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
    "context": "neighbouring slices of the same series fed beside each slice as channels, on each side (0: the slice alone, the thesis; beyond the thesis: 2.5D)",
    "neighbour_rule": "beyond the thesis: how the network's probability and the labels of the nearest annotated slices below and above are combined (pe_utils.evaluate.neighbours: 'mean' averages the probability with their mean label)",
    "neighbour_oracle_thresholds": "[upper, lower]: the widest error-free thesis pair on the combined probabilities, chosen with test labels; null when none",
    "neighbour_oracle_workload_pct": "% of the dataset annotated by hand at that oracle pair (training stage + uncertain); null when none",
    "neighbour_practical_thresholds": "[upper, lower] chosen on the validation slices' combined probabilities (each without its own label); null when none",
    "neighbour_practical_workload_pct": "% of the dataset annotated by hand at that validation pair",
    "neighbour_practical_error_rate": "% of the sure test predictions that are wrong at that validation pair",
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
    "case": "which case the pretraining serves: 'case3' (Dataset1) or 'case4' (Dataset2, 5.2)",
    "dataset": "the unlabelled images pretrained on: 'dataset1' (Case3) or 'dataset2' (Case4)",
    "arch": "encoder architecture",
    "image_size": "side of the views fed to the encoder, pixels",
    "context": "neighbouring slices of the same series stacked beside each slice as channels, on each side (0: the slice alone, the thesis; beyond the thesis: 2.5D, the input Case3 then fine-tunes on)",
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

#: notebook 06 (what the networks learned and where they look; THESIS 6.2.3, 6.3.1-6.3.2)
EXPLAIN_KEYS: dict[str, str] = {
    "notebook": "which notebook wrote the file: '06_explain'",
    "profile": "parameter profile of the run (smoke, demo, thesis)",
    "seed": "seed of the views, the new phantom patients, the 2-D maps and the probe",
    "pretrain_dir": "the pretraining run whose checkpoints were measured (null: none found)",
    "n_views": "contrastive views of each of the four slices (20 in the thesis)",
    "slices": "the four slices: letter, source ('pretraining set', 'new phantom patient': generated with another dataset seed, never pretrained on; 'unseen cache'), label, slice_index",
    "representations": "one row per (checkpoint, layer): checkpoint ('before pretraining' = random initialisation with the run's seed, 'after N epochs'), epochs, layer (encoder, head1, head2), dim, silhouette (of the four slices' views, cosine, full-dimensional), knn_accuracy (leave-one-out 5-NN recovery of a view's source slice, cosine), chance (1/4), probe_auc (logistic regression on frozen features of the probe split's training slices, test AUC; null when a split holds one class), n_train, n_test",
    "probe_rate": "Case1 sampling rate whose split the linear probe trains on (its training slices) and tests on (its test slices)",
    "localisation": "one row per model: model, case, sampling_rate or train_fraction, seed, run (its folder), energy_mean (mean share of the Grad-CAM energy inside the dilated clot mask, over every positive test slice), energy_chance (the dilated mask's share of the image: a uniform map's score), pointing_rate (share of those slices whose map maximum is inside the dilated mask), grid (the map's cells per side before upsampling), energy_perfect and pointing_perfect (the scores of a perfect map at that grid: 1 on the cells a clot touches, upsampled as Grad-CAM's are; the ceiling of energy_mean and pointing_rate), n, n_empty, dilate_px, cam_layer (layer4, the last block, the thesis's; or layer3, layer2, layer1), cam_grid (the grid as text, '6x6'), auc, oracle_workload_pct, practical_workload_pct (the run's own)",
    "localisation_note": "why some or all models were not scored (no clot masks in the cache: real data; no finished runs); null when all were",
    "missing_runs": "the comparison runs not found, each with the command that makes it, and the runs shown instead of a thesis fraction the batch did not run (in words)",
    "dilate_px": "radius of the mask dilation of the localisation scores, pixels at the network's input size",
    "seconds": "wall-clock seconds of the notebook's measurements",
}
SCHEMAS["explain"] = (EXPLAIN_KEYS, ("representations", "localisation"))

#: Cases 2 and 4 (notebooks 04, 05; contract of the team's CONTRACTS.md): a general classifier on a
#: fraction of Dataset2, evaluated on its separate test set (THESIS 5.1, 5.2, Tables 6.3, 6.4)
CASE2_KEYS: dict[str, str] = {
    "notebook": "which notebook wrote the file (04_case2_supervised or 05_case4_contrastive)",
    "profile": "parameter profile of the run (smoke, demo, thesis)",
    "case": "'case2' (supervised from random weights) or 'case4' (SimCLR encoder pretrained on Dataset2, fine-tuned in one step)",
    "dataset": "training data: 'dataset2' (15.38 %, Table 6.4, exp. 11), 'dataset2_1609' (Table 6.3's 16.09 % subset, exp. 2-10) or 'dataset1' (4.21 %, exp. 1)",
    "train_fraction": "percent of the training set kept (Table 6.4: 100, 90, 80, 75, 66.66, 50, 33.34, 25, 20, 10, 5); validation and test unchanged",
    "seed": "seed of the patient split, the fraction subset, the re-sampling, initialisation, order and augmentation (the same for Case2 and Case4: paired runs)",
    "experiment": "Table 6.3 (1-11) or Table C.1 (12-13) experiment whose toggles the run used; null for the profile's setting",
    "auc": "image-level test AUC, each slice scored once from its original view (no test-time augmentation, as the thesis: 5.1.1, 5.2)",
    "f1": "image-level test F1 at `threshold` (chosen on validation), original view",
    "accuracy": "image-level test accuracy at `threshold` (chosen on validation), original view",
    "threshold": "decision threshold: maximises Youden's J (TPR - FPR) on the validation ROC of the original view; no test label chooses it; the TTA figures are read at it too",
    "threshold_source": "where `threshold` comes from: 'validation_youden'",
    "exam_auc_max": "exam-level test AUC: each exam scored by its highest slice probability (original view) against its label (any positive slice); null when the test exams hold one class",
    "exam_auc_topk": "exam-level test AUC with each exam scored by the mean of its `exam_topk` highest slice probabilities (original view); null as above",
    "arch": "backbone architecture",
    "epochs": "epochs trained (the last epoch's model is evaluated)",
    "lr": "initial learning rate (step decay)",
    "lr_step": "decay period in epochs (schedule 'epoch') or in epochs of the reference fraction's training set (schedule 'iteration', converted to batches)",
    "batch_size": "images per batch",
    "optimizer": "'sgd' (momentum 0.9) or 'adam'",
    "augment": "Case1's augmentation on the training images (rotation, shift, zoom)",
    "dropout": "dropout rate before the last layer (0: none)",
    "sampling": "'resample' (every positive 3 times, 2/3 of the negatives, after the fraction is drawn; 5.1.1) or 'none'",
    "class_weights": "whether the focal loss weighs the classes by Eq. 5.1",
    "class_weight_values": "[w_neg, w_pos] of Eq. 5.1 on the rows an epoch trains on; null without class weights",
    "bias_prior": "pi of the final-layer bias -log((1 - pi) / pi) (Eq. 5.2), or null (bias 0)",
    "schedule": "'epoch' (decay counted in epochs: depends on the training-set size) or 'iteration' (Appendix A)",
    "steps_per_epoch": "batches per training epoch",
    "image_size": "network input side in pixels",
    "n_train": "training images of the fraction, before re-sampling",
    "n_train_resampled": "training images an epoch sees, after re-sampling (positives repeated)",
    "pct_positive_train": "% positive among the images an epoch sees (44.58 % in the thesis after re-sampling)",
    "n_val": "validation images (other patients than training)",
    "n_test": "test images (patients in neither training nor validation)",
    "n_test_positive": "positive test images",
    "n_test_exams": "test exams (StudyInstanceUIDs) of the exam-level AUC",
    "exam_topk": "k of the top-k mean exam score",
    "metrics_at_threshold": "binary_metrics on the test slices (original view) at `threshold` (tn, fp, fn, tp, ...)",
    "oracle_threshold": "threshold maximising Youden's J on the test ROC itself (original view), as the thesis chose it: an oracle",
    "metrics_at_oracle": "binary_metrics on the test slices (original view) at the oracle threshold: optimistic",
    "auc_val": "validation AUC of the original view (validation is scored without TTA)",
    "auc_tta": "beyond the thesis: image-level test AUC of the TTA-averaged probabilities (the 5 views of 4.1.1, the original first: pe_utils.data.augment.tta_views); null without TTA",
    "f1_tta": "test F1 of the TTA-averaged probabilities at `threshold` (chosen on the validation's original view)",
    "accuracy_tta": "test accuracy of the TTA-averaged probabilities at `threshold`",
    "metrics_at_threshold_tta": "binary_metrics of the TTA-averaged test probabilities at `threshold`",
    "oracle_threshold_tta": "threshold maximising Youden's J on the test ROC of the TTA-averaged probabilities: an oracle",
    "metrics_at_oracle_tta": "binary_metrics of the TTA-averaged test probabilities at oracle_threshold_tta: optimistic",
    "exam_auc_max_tta": "exam_auc_max from the TTA-averaged slice probabilities; null as exam_auc_max",
    "exam_auc_topk_tta": "exam_auc_topk from the TTA-averaged slice probabilities; null as exam_auc_topk",
    "val_epochs": "epochs after which fit validated (every `val_every`-th and the last: pe_utils.case2_val_every's rule unless the notebook's val_every is given)",
    "history": "per-epoch training figures (loss, accuracy, F1 both ways, AUC, lr); val_* figures on validated epochs only (val_epochs)",
    "curve_summary": "{final_train_loss, final_val_auc, best_val_auc, best_val_auc_epoch} of the learning curves",
    "train_seconds": "wall-clock seconds spent in fit",
    "pretrain_epochs": "Case4: epochs of contrastive pretraining of the encoder",
    "pretrained_from": "Case4: the pretrained network's file (simclr.pt of notebook 02 run on Dataset2)",
}
CASE2_REQUIRED = ("notebook", "profile", "case", "dataset", "train_fraction", "seed", "experiment", "auc", "f1",
                  "accuracy", "threshold", "threshold_source", "exam_auc_max", "exam_auc_topk")
SCHEMAS["case2"] = (CASE2_KEYS, CASE2_REQUIRED)
