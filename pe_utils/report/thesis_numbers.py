"""The thesis's published Case1/Case3 numbers, for side-by-side comparison in the summary.

Only numbers printed in the text are here (Table 6.2, Figs 6.15 and 6.16 give their
values as tables); Figs 6.6, 6.13 (ROC curves, AUC) and 6.14 (F1 of Cases 1 and 3 by rate)
are pictures without numbers, so the summary shows our curves alone for them. The methods'
columns are named ``supervised`` and ``contrastive_<pretraining epochs>``
(``pe_utils.thesis_method`` turns them into the summary's method names).

Cases 2 and 4 (6.3): Table 6.3's ablation path with Table C.1's experiments 12-13, and
Table 6.4's means per training-set percentage, every printed digit as printed.
"""
from __future__ import annotations

import pandas as pd

from pe_utils.profiles import SAMPLING_RATES

#: the seven sampling rates, in the thesis's order (one home: ``profiles.SAMPLING_RATES``)
RATES = tuple(SAMPLING_RATES)

#: Table 6.2 (Case1, supervised): percentages of Dataset1, and the oracle threshold pair
TABLE_6_2 = pd.DataFrame(
    {
        "sampling_rate": RATES,
        # as printed (not derived from profiles): tests/test_profiles.py checks the two agree
        "test_name": ("Test90", "Test80", "Test75", "Test66", "Test50", "Test33", "Test25"),
        "pct_training_stage": (90, 80, 75, 66.66, 50, 33.34, 25),
        "pct_uncertain": (0.25, 1.52, 3.26, 11.11, 18.91, 19.61, 53.84),
        "workload_pct": (90.25, 81.52, 78.26, 77.77, 68.91, 52.95, 78.84),
        "thresholds": ("0.75/0.25", "0.85/0.15", "0.85/0.15", "0.95/0.05", "0.95/0.05",
                       "0.9/0.1", "0.95/0.05"),
    }
)

#: Fig 6.15: % of Dataset1 annotated by hand, per method (oracle thresholds)
FIG_6_15 = pd.DataFrame(
    {
        "sampling_rate": RATES,
        "supervised": (90.25, 81.52, 78.26, 77.77, 68.91, 52.95, 78.84),
        "contrastive_75": (90.37, 81.06, 77.04, 68.55, 57.19, 49.85, 57.01),
        "contrastive_150": (90.27, 80.83, 77.79, 68.91, 54.14, 55.51, 49.34),
    }
)

#: Fig 6.16: % of the test set's positives labelled correctly by sure predictions
FIG_6_16 = pd.DataFrame(
    {
        "sampling_rate": RATES,
        "supervised": (65.22, 50.76, 54.14, 0.41, 0.61, 1.93, 0.0),
        "contrastive_75": (78.26, 71.21, 59.87, 74.27, 41.77, 28.02, 8.84),
        "contrastive_150": (79.05, 81.06, 59.24, 65.15, 69.51, 20.77, 17.27),
    }
)


# ----------------------------------------------------------------------------- Cases 2 and 4 (6.3)
#: Table 6.3 (6.3.1, Case2's hyperparameter path, each run once) as printed, then experiments 12
#: and 13 of Table C.1 (Appendix C.2: the learning rate around experiment 11, whose row C.1
#: repeats unchanged). ``dataset`` is the printed cell: % positive images (number of images);
#: the toggles are the printed ticks. AUC, F1 and accuracy are on the test set (455 images),
#: F1 and accuracy "computed for the thresholds maximizing the AUC" (6.3.1): chosen on the
#: test ROC, an oracle. Experiment 11 is the configuration Chapter 5 keeps (Table 6.4's).
TABLE_6_3 = pd.DataFrame(
    [
        # exp, table, dataset, pct_positive, n_images, lr, batch, optimizer, aug, dropout, sampling, weights, bias, AUC, F1, acc
        (1, "6.3", "4.21% (15556 img)", 4.21, 15556, 0.01, 256, "SGD", True, False, False, False, False,
         0.67589, 0.55422, 0.59341),
        (2, "6.3", "16.09% (15555 img)", 16.09, 15555, 0.01, 256, "SGD", True, False, False, False, False,
         0.7544, 0.59638, 0.70549),
        (3, "6.3", "16.09% (15555 img)", 16.09, 15555, 0.01, 256, "SGD", True, True, False, False, False,
         0.79494, 0.67838, 0.71868),
        (4, "6.3", "16.09% (15555 img)", 16.09, 15555, 0.01, 256, "SGD", False, True, False, False, False,
         0.82152, 0.67156, 0.70549),
        (5, "6.3", "16.09% (15555 img)", 16.09, 15555, 0.1, 256, "SGD", True, True, False, False, False,
         0.81272, 0.67991, 0.71648),
        (6, "6.3", "16.09% (15555 img)", 16.09, 15555, 0.01, 64, "SGD", True, True, False, False, False,
         0.82963, 0.69468, 0.76044),
        (7, "6.3", "16.09% (15555 img)", 16.09, 15555, 0.01, 64, "SGD", True, True, False, True, True,
         0.82143, 0.72386, 0.77363),
        (8, "6.3", "16.09% (15555 img)", 16.09, 15555, 0.01, 64, "Adam", True, True, False, True, True,
         0.83491, 0.66194, 0.68571),
        (9, "6.3", "16.09% (15555 img)", 16.09, 15555, 0.01, 64, "Adam", True, True, True, True, True,
         0.89859, 0.75964, 0.82198),
        (10, "6.3", "16.09% (15555 img)", 16.09, 15555, 0.01, 256, "Adam", True, True, True, True, True,
         0.89795, 0.80644, 0.86813),
        (11, "6.3", "15.38% (19946 img)", 15.38, 19946, 0.01, 256, "Adam", True, True, True, True, True,
         0.92676, 0.81286, 0.85934),
        (12, "C.1", "15.38% (19946 img)", 15.38, 19946, 0.001, 256, "Adam", True, True, True, True, True,
         0.81086, 0.63658, 0.68132),
        (13, "C.1", "15.38% (19946 img)", 15.38, 19946, 0.1, 256, "Adam", True, True, True, True, True,
         0.92552, 0.76696, 0.82637),
    ],
    columns=["experiment", "table", "dataset", "pct_positive", "n_images", "lr", "batch_size", "optimizer",
             "augment", "dropout", "sampling", "class_weights", "bias", "auc", "f1", "accuracy"],
)

#: the training-set percentages of Table 6.4, in its order
TRAIN_FRACTIONS_6_4 = (100, 90, 80, 75, 66.66, 50, 33.34, 25, 20, 10, 5)

#: Table 6.4 (6.3.2): Case2 (supervised) and Case4 (contrastive) per training-set percentage,
#: means of 3 supervised runs and 2 contrastive ones (``n_runs``); thresholds as Table 6.3's
TABLE_6_4 = pd.DataFrame(
    {
        "train_fraction": TRAIN_FRACTIONS_6_4 * 2,
        "method": ("supervised",) * 11 + ("contrastive",) * 11,
        "n_runs": (3,) * 11 + (2,) * 11,
        "auc": (0.862, 0.823, 0.8613, 0.833, 0.855, 0.863, 0.879, 0.888, 0.902, 0.87, 0.817,
                0.824, 0.895, 0.815, 0.819, 0.918, 0.895, 0.88, 0.847, 0.876, 0.873, 0.779),
        "f1": (0.721, 0.707, 0.74, 0.695, 0.719, 0.764, 0.755, 0.738, 0.764, 0.753, 0.711,
               0.689, 0.76, 0.755, 0.718, 0.805, 0.785, 0.741, 0.702, 0.746, 0.742, 0.644),
        "accuracy": (0.819, 0.774, 0.829, 0.776, 0.791, 0.826, 0.824, 0.796, 0.822, 0.798, 0.769,
                     0.77, 0.819, 0.845, 0.755, 0.863, 0.853, 0.801, 0.782, 0.808, 0.783, 0.654),
    }
)
