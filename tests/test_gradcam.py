"""Grad-CAM context: hooks released on exit (also after an exception, which propagates),
maps (N, H, W) float32 in [0, 1] at the input's size, the planted signal found, the model's
state restored, the default layer on Case1 and Case3 classifiers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pe_utils.evaluate.gradcam import LogitTarget, default_target_layer, grad_cam
from pe_utils.learn.models import build_classifier, set_backbone_trainable
from pe_utils.learn.simclr import build_simclr, to_classifier


def _hooks(model: nn.Module) -> int:
    """Every module hook a Grad-CAM library could leave behind."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(getattr(m, "_backward_pre_hooks", {})) for m in model.modules())


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_classifier("resnet18", in_channels=1).eval()


class Planted(nn.Module):
    """A hand-built detector: logit = mean of relu(x - 0.5) after 4x4 pooling. Its Grad-CAM
    on ``backbone.layer4`` (a 1x1 conv of weight 1) is the pooled bright region itself."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.layer4 = nn.Conv2d(1, 1, 1)
        with torch.no_grad():
            self.backbone.layer4.weight.fill_(1.0)
            self.backbone.layer4.bias.fill_(-0.5)

    def forward(self, x):
        a = torch.relu(self.backbone.layer4(nn.functional.avg_pool2d(x, 4)))
        return a.mean((1, 2, 3))


def test_hooks_present_inside_and_gone_after_exit(model):
    assert _hooks(model) == 0
    with grad_cam(model) as cam:
        assert _hooks(model) > 0  # the test can see hooks, so it can see them leak
        cam(torch.rand(2, 1, 64, 64))
    assert _hooks(model) == 0


@pytest.mark.parametrize("error", [IndexError, RuntimeError, KeyboardInterrupt])
def test_exception_propagates_and_hooks_are_released(model, error):
    # IndexError: the one pytorch-grad-cam's own __exit__ swallows (returns True) in 1.5
    with pytest.raises(error, match="inside the block"):
        with grad_cam(model) as cam:
            cam(torch.rand(1, 1, 64, 64))
            raise error("inside the block")
    assert _hooks(model) == 0


def test_maps_shape_range_dtype_and_batching(model):
    torch.manual_seed(1)
    x = torch.rand(5, 1, 64, 64)
    with grad_cam(model) as cam:
        maps = cam(x)
        one_by_one = cam(x, batch_size=1)
        empty = cam(x[:0])
    assert maps.shape == (5, 64, 64) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    assert (maps.reshape(5, -1).max(1) > 0.99).all()  # min-max normalised per map
    np.testing.assert_allclose(maps, one_by_one, atol=1e-4)  # eval mode: batch-independent
    assert empty.shape == (0, 64, 64)


def test_uint8_cache_rows_are_scaled_like_the_loaders(model):
    rows = np.random.default_rng(0).integers(0, 256, (2, 1, 64, 64), dtype=np.uint8)
    with grad_cam(model) as cam:
        a = cam(rows)
        b = cam(torch.from_numpy(rows).float() / 255.0)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_map_peaks_on_the_planted_signal():
    x = torch.zeros(2, 1, 32, 32)
    x[0, :, 20:28, 4:12] = 1.0    # a bright block at the lower left
    x[1, :, 0:8, 24:32] = 1.0     # upper right
    with grad_cam(Planted()) as cam:
        maps = cam(x)
    for m, (rows, cols) in zip(maps, [(slice(20, 28), slice(4, 12)), (slice(0, 8), slice(24, 32))]):
        r, c = np.unravel_index(np.argmax(m), m.shape)
        assert rows.start <= r < rows.stop and cols.start <= c < cols.stop
        inside = np.zeros_like(m, bool)
        inside[rows, cols] = True
        assert m[inside].sum() / m.sum() > 0.5


def test_model_state_is_restored(model):
    model.train()
    set_backbone_trainable(model, False)  # fine-tuning step 1: a frozen encoder still gets maps
    before = [p.requires_grad for p in model.parameters()]
    try:
        with grad_cam(model) as cam:
            maps = cam(torch.rand(2, 1, 64, 64))
        assert maps.max() > 0.99
        assert model.training
        assert [p.requires_grad for p in model.parameters()] == before
        assert all(p.grad is None for p in model.parameters())
    finally:
        set_backbone_trainable(model, True)
        model.eval()


@pytest.mark.parametrize("keep", [0, 1])
def test_default_layer_is_the_last_block_of_layer4(model, keep):
    assert default_target_layer(model) is model.backbone.layer4[-1]
    clf = to_classifier(build_simclr("resnet18"), keep_head_layers=keep).eval()
    assert default_target_layer(clf) is clf.backbone.layer4[-1]
    with grad_cam(clf) as cam:
        assert cam(torch.rand(2, 1, 64, 64)).shape == (2, 64, 64)
    assert _hooks(clf) == 0


def test_projection_model_is_refused_and_released():
    simclr = build_simclr("resnet18").eval()  # (B, 128) projections, not one logit
    with pytest.raises(ValueError, match="one logit per image"):
        with grad_cam(simclr) as cam:
            cam(torch.rand(2, 1, 32, 32))
    assert _hooks(simclr) == 0


def test_a_one_pixel_layer_warns(model):
    with grad_cam(model) as cam, pytest.warns(UserWarning, match="1 x 1"):
        maps = cam(torch.rand(2, 1, 32, 32))  # resnet layer4 at 32 px: stride 32
    assert maps.max() == 0.0


def test_logit_target_on_a_zero_d_score():
    assert LogitTarget()(torch.tensor(2.5)).item() == 2.5
    assert LogitTarget()(torch.tensor([1.5])).item() == 1.5


def test_the_callable_refuses_to_run_after_exit(model):
    with grad_cam(model) as cam:
        pass
    with pytest.raises(RuntimeError, match="exited"):
        cam(torch.rand(1, 1, 64, 64))
    assert _hooks(model) == 0


def test_bad_input_shape_is_named(model):
    with grad_cam(model) as cam, pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        cam(torch.rand(1, 32, 32))


@pytest.mark.parametrize("k", [1, 2])
def test_a_2_5d_network_gets_one_map_a_slice(k):
    """context = k: 2k + 1 slices as channels in, one map at the input's size out (Case1's
    classifier and Case3's, from a 2.5D SimCLR encoder)."""
    torch.manual_seed(0)
    width = 2 * k + 1
    for net in (build_classifier("resnet18", in_channels=width),
                to_classifier(build_simclr("resnet18", in_channels=width, hidden=32, out_dim=16))):
        with grad_cam(net.eval()) as cam:
            maps = cam(torch.rand(3, width, 64, 64))
        assert maps.shape == (3, 64, 64) and maps.dtype == np.float32
        assert 0.0 <= maps.min() and maps.max() <= 1.0
        assert _hooks(net) == 0
