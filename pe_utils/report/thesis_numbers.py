"""The thesis's published Case1/Case3 numbers, for side-by-side comparison in the summary.

Only numbers printed in the text are here (Table 6.2, Figs 6.15 and 6.16 give their
values as tables); Figs 6.6, 6.13 (ROC curves, AUC) and 6.14 (F1 of Cases 1 and 3 by rate)
are pictures without numbers, so the summary shows our curves alone for them. The methods'
columns are named ``supervised`` and ``contrastive_<pretraining epochs>``
(``pe_utils.thesis_method`` turns them into the summary's method names).
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
