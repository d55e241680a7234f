"""Focal loss against a naive loop of THESIS Eq. 4.1, BCE at gamma 0, class weights (Eq. 5.1)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as nnf

from pe_utils.learn.losses import FocalLoss, class_weights


def reference_focal(logits, targets, gamma, weights=None, alpha=None):
    """Eq. 4.1 one sample at a time: FL(p_t) = -(1 - p_t)^gamma log(p_t), times w_y (and alpha_t)."""
    total = 0.0
    for z, y in zip(logits.tolist(), targets.tolist(), strict=True):
        p = 1 / (1 + math.exp(-z))
        p_t = p if y == 1 else 1 - p
        loss = -((1 - p_t) ** gamma) * math.log(p_t)
        if alpha is not None:
            loss *= alpha if y == 1 else 1 - alpha
        if weights is not None:
            loss *= weights[int(y)]
        total += loss
    return total / len(logits)


LOGITS = torch.tensor([-3.0, -0.5, 0.0, 0.7, 2.5, -1.2], dtype=torch.float64)
TARGETS = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0, 0.0], dtype=torch.float64)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
def test_matches_reference_loop(gamma):
    got = FocalLoss(gamma=gamma)(LOGITS, TARGETS)
    assert float(got) == pytest.approx(reference_focal(LOGITS, TARGETS, gamma), rel=1e-6)


@pytest.mark.parametrize("weights", [(1.0, 1.0), (0.625, 2.5), (0.0, 3.0)])
def test_class_weights_apply_per_sample(weights):
    got = FocalLoss(gamma=2.0, class_weights=weights)(LOGITS, TARGETS)
    assert float(got) == pytest.approx(reference_focal(LOGITS, TARGETS, 2.0, weights), rel=1e-6)


def test_alpha_matches_reference():
    got = FocalLoss(gamma=2.0, alpha=0.25)(LOGITS, TARGETS)
    assert float(got) == pytest.approx(reference_focal(LOGITS, TARGETS, 2.0, alpha=0.25), rel=1e-6)


def test_gamma_zero_is_binary_cross_entropy():
    logits = torch.randn(4, generator=torch.Generator().manual_seed(0))
    targets = torch.tensor([0.0, 1.0, 1.0, 0.0])
    assert torch.allclose(FocalLoss(gamma=0.0)(logits, targets),
                          nnf.binary_cross_entropy_with_logits(logits, targets), atol=1e-7)


def test_focusing_down_weights_easy_examples():
    easy, hard = torch.tensor([4.0]), torch.tensor([-1.0])
    y = torch.tensor([1.0])
    ratio_bce = float(nnf.binary_cross_entropy_with_logits(easy, y) / nnf.binary_cross_entropy_with_logits(hard, y))
    ratio_focal = float(FocalLoss(2.0)(easy, y) / FocalLoss(2.0)(hard, y))
    assert ratio_focal < ratio_bce / 10


def test_reductions_and_integer_targets():
    loss = FocalLoss(gamma=2.0, class_weights=[1.0, 2.0], reduction="none")
    per_sample = loss(LOGITS, TARGETS.long())
    assert per_sample.shape == (6,)
    summed = FocalLoss(gamma=2.0, class_weights=[1.0, 2.0], reduction="sum")(LOGITS, TARGETS)
    mean = FocalLoss(gamma=2.0, class_weights=[1.0, 2.0])(LOGITS, TARGETS)
    assert torch.allclose(per_sample.sum(), summed) and torch.allclose(per_sample.mean(), mean)


def test_gradient_is_finite_for_confident_logits():
    logits = torch.tensor([30.0, -30.0, 30.0], requires_grad=True)
    loss = FocalLoss(2.0, class_weights=[0.6, 2.5])(logits, torch.tensor([0.0, 1.0, 1.0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_class_weights_follow_the_buffer_and_state_dict():
    loss = FocalLoss(class_weights=[0.5, 2.0])
    assert torch.equal(loss.state_dict()["class_weights"], torch.tensor([0.5, 2.0]))
    assert "class_weights" not in FocalLoss().state_dict()
    assert "gamma=2.0" in repr(loss)


@pytest.mark.parametrize("kwargs", [
    dict(gamma=-1.0), dict(alpha=1.5), dict(reduction="avg"),
    dict(class_weights=[1.0]), dict(class_weights=[-1.0, 1.0]), dict(class_weights=[1.0, float("nan")]),
])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        FocalLoss(**kwargs)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        FocalLoss()(torch.zeros(3), torch.zeros(3, 1))


def test_class_weights_equation_5_1_example():
    # 100 images, 20 positive: w_neg = 100 / (2 * 80), w_pos = 100 / (2 * 20)
    labels = np.r_[np.zeros(80), np.ones(20)]
    w = class_weights(labels)
    assert w.dtype == torch.float32 and w.shape == (2,)
    assert w.tolist() == pytest.approx([0.625, 2.5])
    # the weighted classes carry equal total weight
    assert 80 * w[0] == pytest.approx(20 * w[1])


def test_class_weights_of_thesis_dataset2_fraction():
    # Dataset2 after resampling: 44.58 % positive (5.1.1) -> w_pos = 1 / (2 * 0.4458)
    n_pos, n = 4458, 10000
    w = class_weights(torch.cat([torch.ones(n_pos), torch.zeros(n - n_pos)]))
    assert float(w[1]) == pytest.approx(1 / (2 * 0.4458), rel=1e-6)


@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1], [0, 2, 1], []])
def test_class_weights_need_both_binary_classes(labels):
    with pytest.raises(ValueError):
        class_weights(labels)
