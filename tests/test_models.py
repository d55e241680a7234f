"""Classifier shapes, head, bias prior (Eq. 5.2), gradients, freezing, weight loading."""
from __future__ import annotations

import math
import socket
import urllib.request

import pytest
import torch
import torchvision
from torch import nn

from pe_utils.learn.models import (ARCHS, build_classifier, count_parameters, load_weights, make_head,
                                   set_backbone_trainable)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_classifier("resnet18", in_channels=1, dropout=0.5)


@pytest.mark.parametrize("in_channels", [1, 3, 5])
def test_output_and_feature_shapes(in_channels):
    m = build_classifier("resnet18", in_channels=in_channels).eval()
    x = torch.rand(2, in_channels, 32, 32)
    assert m.backbone.conv1.in_channels == in_channels
    assert m.backbone(x).shape == (2, 512)
    assert m(x).shape == (2,)


def test_resnet10_is_torchvisions_resnet_with_one_block_per_stage():
    m = build_classifier("resnet10", in_channels=1).eval()
    assert [len(getattr(m.backbone, f"layer{i}")) for i in range(1, 5)] == [1, 1, 1, 1]
    assert m.num_features == 512 and m(torch.rand(2, 1, 48, 48)).shape == (2,)
    # half of ResNet18's blocks: fewer parameters, the same stage names (Grad-CAM's layer4)
    assert count_parameters(m) < 0.5 * count_parameters(build_classifier("resnet18", in_channels=1))
    assert m.backbone.layer4[-1].conv2.out_channels == 512


def test_resnet50_feature_size():
    m = build_classifier("resnet50")
    assert m.num_features == 2048 and m.head[-1].in_features == 2048


def test_head_is_bn_dropout_linear(model):
    bn, drop, linear = model.head
    assert isinstance(bn, nn.BatchNorm1d) and isinstance(drop, nn.Dropout) and isinstance(linear, nn.Linear)
    assert drop.p == 0.5 and linear.out_features == 1
    assert isinstance(model.backbone.fc, nn.Identity)


@pytest.mark.parametrize("pi", [0.01, 0.3])
def test_bias_prior_equation_5_2(pi):
    m = build_classifier("resnet18", bias_prior=pi)
    assert float(m.head[-1].bias.detach()) == pytest.approx(-math.log((1 - pi) / pi), rel=1e-6)
    # with zero weights the model predicts pi
    with torch.no_grad():
        m.head[-1].weight.zero_()
        assert float(torch.sigmoid(m.eval()(torch.rand(2, 1, 32, 32)))[0]) == pytest.approx(pi, rel=1e-5)


def test_bias_prior_001_value():
    assert float(make_head(8, bias_prior=0.01)[-1].bias.detach()) == pytest.approx(-4.59512, abs=1e-5)


@pytest.mark.parametrize("kwargs", [dict(arch="vgg16"), dict(in_channels=0), dict(dropout=1.0),
                                    dict(bias_prior=0.0), dict(bias_prior=1.5)])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        build_classifier(**{"arch": "resnet18", **kwargs})


def test_gradients_reach_every_trainable_parameter(model):
    model.train()
    model(torch.rand(2, 1, 32, 32)).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_frozen_backbone_gets_no_gradient_and_keeps_bn_statistics(model):
    set_backbone_trainable(model, False)
    model.train()
    assert not model.backbone.training and model.head.training
    stats = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model(torch.rand(4, 1, 32, 32)).sum().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.head.parameters())
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in stats.items())
    assert count_parameters(model) == sum(p.numel() for p in model.head.parameters())
    set_backbone_trainable(model, True)
    model.train()
    assert model.backbone.training and all(p.requires_grad for p in model.parameters())


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Every way a torchvision weight download goes out fails, and the hub cache is empty.

    torchvision binds ``load_state_dict_from_url`` at import, so patching that name would
    miss a real download; the download itself (``torch.hub.download_url_to_file``), the URL
    openers and the socket are looked up at call time. An empty hub folder makes sure an
    earlier download cannot be served from the cache instead of failing here.
    """
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args[:1])
        raise AssertionError(f"network access attempted: {args[:1]}")

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "urlopen", refuse)  # torch.hub's own binding
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return calls


@pytest.mark.parametrize("arch", ARCHS)
def test_no_weights_are_downloaded(no_network, arch):
    build_classifier(arch)
    assert no_network == []  # also when a caller swallowed the AssertionError


def test_load_full_state_dict(model, tmp_path):
    path = tmp_path / "full.pt"
    torch.save(model.state_dict(), path)
    other = build_classifier("resnet18", bias_prior=0.01, weights=path)
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in model.state_dict().items())
    assert other.weights_report["kind"] == "full" and other.weights_report["missing"] == []


def test_load_checkpoint_dict(model, tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model.state_dict(), "epoch": 3}, path)
    other = build_classifier("resnet18", weights=path)
    assert torch.equal(other.head[-1].weight, model.head[-1].weight)


def test_load_backbone_only_with_rgb_conv1(tmp_path):
    torch.manual_seed(1)
    rgb = torchvision.models.resnet18(weights=None)  # 3-channel conv1 and an fc layer
    path = tmp_path / "backbone.pt"
    torch.save(rgb.state_dict(), path)
    with pytest.warns(UserWarning, match="unexpected keys.*fc.weight"):
        m = build_classifier("resnet18", in_channels=1, weights=path)
    report = m.weights_report
    assert report["kind"] == "backbone" and report["adapted"] == ["conv1.weight"]
    assert sorted(report["unexpected"]) == ["fc.bias", "fc.weight"] and report["missing"] == []
    assert torch.equal(m.backbone.conv1.weight, rgb.conv1.weight.sum(1, keepdim=True))
    assert torch.equal(m.backbone.layer4[1].conv2.weight, rgb.layer4[1].conv2.weight)


def test_load_reports_missing_keys(model, tmp_path):
    state = {k: v for k, v in model.backbone.state_dict().items() if not k.startswith("layer4")}
    path = tmp_path / "partial.pt"
    torch.save(state, path)
    with pytest.warns(UserWarning, match="missing keys"):
        report = load_weights(build_classifier("resnet18"), path)
    assert report["missing"] and all(k.startswith("layer4") for k in report["missing"])


def test_load_errors(tmp_path, model):
    with pytest.raises(FileNotFoundError):
        build_classifier("resnet18", weights=tmp_path / "nope.pt")
    torch.save({"foo": torch.zeros(1)}, tmp_path / "alien.pt")
    with pytest.raises(ValueError, match="no key in common"):
        build_classifier("resnet18", weights=tmp_path / "alien.pt")
    torch.save(model.state_dict(), tmp_path / "r18.pt")
    with pytest.raises(ValueError, match="shape mismatch"):
        build_classifier("resnet50", weights=tmp_path / "r18.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="not a state_dict"):
        build_classifier("resnet18", weights=tmp_path / "list.pt")
