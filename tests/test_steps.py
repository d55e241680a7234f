"""The training steps as functions: the contrastive step plugs into the same ``fit`` as Case1's."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pe_utils.learn.loop import fit
from pe_utils.learn.ntxent import NTXentLoss
from pe_utils.learn.simclr import build_simclr
from pe_utils.learn.steps import contrastive_step

CPU = torch.device("cpu")


def _mean_twin_top1(outputs, threshold):
    return {"twin_top1": float(np.concatenate([o["twin_top1"] for o in outputs]).mean())}


def test_contrastive_step_refuses_labels_and_mismatched_views():
    model = nn.Flatten()
    v = torch.rand(4, 1, 8, 8)
    with pytest.raises(ValueError, match="no labels"):
        contrastive_step(model, (v, v, torch.zeros(4)), NTXentLoss(), CPU, None)
    with pytest.raises(ValueError, match="differ in shape"):
        contrastive_step(model, (v, v[:3]), NTXentLoss(), CPU, None)


def test_twin_top1_is_one_for_identical_views_and_low_for_unrelated_ones():
    torch.manual_seed(0)
    model = nn.Flatten()                                   # projections: the pixels themselves
    v1 = torch.rand(16, 1, 8, 8)
    same = contrastive_step(model, (v1, v1.clone()), NTXentLoss(), CPU, None)
    assert same.n == 16 and same.outputs["twin_top1"].shape == (16,)
    assert same.outputs["twin_top1"].mean() == 1.0
    other = contrastive_step(model, (v1, torch.rand(16, 1, 8, 8)), NTXentLoss(), CPU, None)
    assert other.outputs["twin_top1"].mean() < 0.5
    assert other.loss > same.loss                          # twins far apart cost more


def test_fit_pretrains_a_simclr_encoder_and_the_loss_falls(tmp_path):
    torch.manual_seed(0)
    images = torch.rand(16, 1, 32, 32)
    # two fixed "views": the image with a little independent noise each
    pairs = [(images[i:i + 8] + 0.05 * torch.randn(8, 1, 32, 32),
              images[i:i + 8] + 0.05 * torch.randn(8, 1, 32, 32)) for i in (0, 8)]
    model = build_simclr("resnet18", in_channels=1, out_dim=32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = fit(model, NTXentLoss(temperature=0.1), optimizer, pairs, None, 6, CPU,
                  step=contrastive_step, figures=_mean_twin_top1, checkpoint_dir=tmp_path,
                  progress=False)
    losses = [h["train_loss"] for h in history]
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0]                          # the pretext task is being learned
    assert history[-1]["train_n"] == 16 and "train_twin_top1" in history[-1]
    assert (tmp_path / "last.pt").is_file()
