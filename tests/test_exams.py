"""pe_utils.evaluate.exams: exam scores (max, mean of the top k) and the exam-level AUC, on hand-made exams."""
from __future__ import annotations

import numpy as np
import pytest

from pe_utils.evaluate.exams import exam_labels, exam_level_auc, exam_scores

# three exams: A (4 slices, one positive), B (2 slices, negative), C (3 slices, negative)
PROBS = [0.1, 0.9, 0.3, 0.5, 0.6, 0.2, 0.7, 0.1, 0.1]
LABELS = [0, 1, 0, 0, 0, 0, 0, 0, 0]
EXAMS = ["A", "A", "A", "A", "B", "B", "C", "C", "C"]


def test_max_takes_each_exams_most_suspicious_slice():
    s = exam_scores(PROBS, EXAMS, how="max")
    assert s.to_dict() == {"A": 0.9, "B": 0.6, "C": 0.7}
    assert s.name == "exam_score_max"


def test_topk_averages_the_k_highest_and_all_of_a_short_exam():
    s = exam_scores(PROBS, EXAMS, how="topk", k=3)
    assert s["A"] == pytest.approx((0.9 + 0.5 + 0.3) / 3)      # 0.1 is the 4th: left out
    assert s["B"] == pytest.approx((0.6 + 0.2) / 2)            # 2 slices < k: both
    assert s["C"] == pytest.approx((0.7 + 0.1 + 0.1) / 3)
    assert exam_scores(PROBS, EXAMS, how="topk", k=1).equals(exam_scores(PROBS, EXAMS, how="max").rename("exam_score_topk"))


def test_an_exam_is_positive_when_any_slice_is():
    assert exam_labels(LABELS, EXAMS).to_dict() == {"A": 1, "B": 0, "C": 0}


def test_exam_auc_against_hand_ranking_and_sklearn():
    from sklearn.metrics import roc_auc_score

    # max: A 0.9 above B 0.6 and C 0.7 -> AUC 1; top-3: A 0.567, B 0.4, C 0.3 -> 1
    assert exam_level_auc(PROBS, LABELS, EXAMS, how="max") == (1.0, 3)
    # a positive exam D whose best slice (0.65) ranks above B only: 1 of 2 negatives -> 0.75 overall
    probs, labels, exams = PROBS + [0.65, 0.05], LABELS + [1, 0], EXAMS + ["D", "D"]
    auc, n = exam_level_auc(probs, labels, exams, how="max")
    assert n == 4 and auc == pytest.approx(0.75)
    assert auc == pytest.approx(roc_auc_score([1, 0, 0, 1], [0.9, 0.6, 0.7, 0.65]))
    # top-2: A 0.7, B 0.4, C 0.4, D 0.35: A above both negatives, D below both -> 2 of 4 pairs
    auc2, _ = exam_level_auc(probs, labels, exams, how="topk", k=2)
    assert auc2 == pytest.approx(roc_auc_score([1, 0, 0, 1], [0.7, 0.4, 0.4, 0.35]))
    assert auc2 == pytest.approx(0.5)


def test_one_class_gives_none_not_nan():
    auc, n = exam_level_auc([0.2, 0.4, 0.9], [0, 0, 0], ["A", "B", "B"])
    assert auc is None and n == 2
    assert exam_level_auc([], [], []) == (None, 0)


def test_the_order_of_slices_does_not_matter():
    rng = np.random.default_rng(0)
    order = rng.permutation(len(PROBS))
    shuffled = exam_scores(np.asarray(PROBS)[order], np.asarray(EXAMS)[order], how="topk", k=2)
    assert shuffled.equals(exam_scores(PROBS, EXAMS, how="topk", k=2))


@pytest.mark.parametrize("kwargs, message", [
    (dict(how="mean"), "how must be"),
    (dict(how="topk", k=0), "k must be"),
    (dict(how="topk", k=1.5), "k must be"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        exam_scores(PROBS, EXAMS, **kwargs)


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="one id per slice"):
        exam_scores([0.1, 0.2], ["A"])
    with pytest.raises(ValueError, match="NaN"):
        exam_scores([0.1, float("nan")], ["A", "A"])
    with pytest.raises(ValueError, match="exam id is missing"):
        exam_scores([0.1, 0.2], ["A", None])
    with pytest.raises(ValueError, match="0 or 1"):
        exam_level_auc([0.1, 0.2], [0, 2], ["A", "B"])
