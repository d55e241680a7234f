"""SimCLR network: layer shapes, head sizes, gradients, the conversion to a Case1 classifier
(weights copied, first head layer kept) and the frozen-encoder fine-tuning step."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from pe_utils.learn import FocalLoss, build_optimizer, train_one_epoch
from pe_utils.learn.models import Classifier, build_classifier, set_backbone_trainable
from pe_utils.learn.ntxent import NTXentLoss
from pe_utils.learn.simclr import LAYERS, ProjectionHead, SimCLRModel, build_simclr, to_classifier


@pytest.fixture
def simclr():
    torch.manual_seed(0)
    return build_simclr("resnet18", in_channels=1, hidden=64, out_dim=16)


def _images(b=4, c=1, seed=1):
    return torch.rand(b, c, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_projection_head_is_two_linear_layers_with_relu_between():
    head = ProjectionHead(2048)
    fc1, relu, fc2 = head
    assert isinstance(fc1, nn.Linear) and isinstance(relu, nn.ReLU) and isinstance(fc2, nn.Linear)
    assert (fc1.in_features, fc1.out_features, fc2.out_features) == (2048, 2048, 128)  # SimCLR's sizes
    assert head(torch.rand(2, 2048)).shape == (2, 128)
    assert ProjectionHead(8, hidden=5, out_features=3)(torch.rand(2, 8)).shape == (2, 3)


@pytest.mark.parametrize("kwargs", [dict(in_features=0), dict(in_features=4, hidden=0),
                                    dict(in_features=4, out_features=0)])
def test_projection_head_bad_sizes_raise(kwargs):
    with pytest.raises(ValueError, match="sizes"):
        ProjectionHead(**kwargs)


def test_resnet50_defaults():
    m = build_simclr()
    assert isinstance(m, SimCLRModel) and m.arch == "resnet50" and m.num_features == 2048
    assert m.backbone.conv1.in_channels == 1
    assert (m.head.fc1.in_features, m.head.hidden, m.head.out_features) == (2048, 2048, 128)


def test_encoder_is_case1_backbone():
    torch.manual_seed(5)
    simclr_backbone = build_simclr("resnet18", in_channels=3).backbone
    torch.manual_seed(5)
    case1_backbone = build_classifier("resnet18", in_channels=3).backbone
    a, b = simclr_backbone.state_dict(), case1_backbone.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("in_channels", [1, 3])
def test_every_layer_shape(in_channels):
    m = build_simclr("resnet18", in_channels=in_channels, hidden=64, out_dim=16).eval()
    x = _images(3, in_channels)
    assert m(x).shape == (3, 16)
    shapes = {layer: tuple(m.features(x, layer).shape) for layer in LAYERS}
    assert shapes == {"encoder": (3, 512), "head1": (3, 64), "head2": (3, 16)}
    with torch.no_grad():
        assert torch.equal(m.features(x, "head2"), m(x))
        assert (m.features(x, "head1") >= 0).all()  # after the ReLU
        assert torch.equal(m.features(x, "head1"), torch.relu(m.head.fc1(m.features(x, "encoder"))))


def test_unknown_layer_raises(simclr):
    with pytest.raises(ValueError, match="layer"):
        simclr.features(_images(), "fc3")


def test_gradients_reach_every_parameter(simclr):
    simclr.train()
    z_a, z_b = simclr(_images(seed=1)), simclr(_images(seed=2))
    NTXentLoss()(z_a, z_b).backward()
    missing = [name for name, p in simclr.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing


@pytest.mark.parametrize("keep", [0, 1])
def test_to_classifier_copies_the_encoder(simclr, keep):
    with torch.no_grad():  # make the weights differ from a fresh model's
        for p in simclr.parameters():
            p.add_(0.01)
    clf = to_classifier(simclr, keep_head_layers=keep, dropout=0.3)
    assert isinstance(clf, Classifier) and clf.arch == "resnet18"
    own, source = clf.backbone.state_dict(), simclr.backbone.state_dict()
    for key, value in source.items():
        assert torch.equal(own[key], value), key
        assert own[key].data_ptr() != value.data_ptr()  # a copy, not shared
    if keep == 0:
        assert isinstance(clf.backbone.fc, nn.Identity) and clf.num_features == 512
        assert set(own) == set(source)
    else:
        assert torch.equal(clf.backbone.fc[0].weight, simclr.head.fc1.weight)
        assert torch.equal(clf.backbone.fc[0].bias, simclr.head.fc1.bias)
        assert isinstance(clf.backbone.fc[1], nn.ReLU) and clf.num_features == 64
        clf.eval(), simclr.eval()
        x = _images()
        with torch.no_grad():
            assert torch.allclose(clf.backbone(x), simclr.features(x, "head1"))
    assert clf.head[-1].in_features == clf.num_features and clf.head[1].p == 0.3
    assert clf.eval()(_images()).shape == (4,)
    assert not any(name.startswith("head.fc2") for name, _ in clf.named_parameters())


def test_to_classifier_bias_prior_and_bad_keep(simclr):
    clf = to_classifier(simclr, bias_prior=0.01)
    assert float(clf.head[-1].bias.detach()) == pytest.approx(-4.59512, abs=1e-5)
    with pytest.raises(ValueError, match="keep_head_layers"):
        to_classifier(simclr, keep_head_layers=2)


def _tiny_loader():
    x = torch.rand(8, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    y = torch.tensor([0, 1, 0, 1, 1, 0, 0, 1])
    return [(x[:4], y[:4]), (x[4:], y[4:])]


def _backbone_state(model):
    return {k: v.clone() for k, v in model.backbone.state_dict().items()}


@pytest.mark.parametrize("keep", [0, 1])
def test_step1_frozen_encoder_moves_neither_weights_nor_bn_statistics(simclr, keep):
    """Fine-tuning step 1 in the Case1 training loop. ``set_backbone_trainable(False)``
    sets requires_grad False and ``Classifier.train`` keeps the frozen backbone in eval
    mode, so its BatchNorm uses and keeps its (pretrained) running statistics; the new
    head's BatchNorm1d trains and updates its own."""
    clf = to_classifier(simclr, keep_head_layers=keep)
    set_backbone_trainable(clf, False)
    optimizer = build_optimizer(clf, "sgd", lr=0.1)
    trainable = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert trainable == {id(p) for p in clf.head.parameters()}
    before, head_before = _backbone_state(clf), {k: v.clone() for k, v in clf.head.state_dict().items()}
    out = train_one_epoch(clf, FocalLoss(), optimizer, _tiny_loader(), "cpu", amp=False)
    assert out["n"] == 8
    assert clf.training and not clf.backbone.training  # eval mode survives model.train()
    after = clf.backbone.state_dict()
    assert [k for k in before if not torch.equal(before[k], after[k])] == []
    head_after = clf.head.state_dict()
    assert not torch.equal(head_before["2.weight"], head_after["2.weight"])  # the head learns
    assert not torch.equal(head_before["0.running_mean"], head_after["0.running_mean"])


def test_step2_unfrozen_encoder_moves_weights_and_bn_statistics(simclr):
    """The contrast to step 1 (so that test can fail): after unfreezing, one epoch changes
    the encoder's weights and its BatchNorm running statistics."""
    clf = to_classifier(simclr)
    set_backbone_trainable(clf, False)
    set_backbone_trainable(clf, True)
    optimizer = build_optimizer(clf, "sgd", lr=0.1)
    before = _backbone_state(clf)
    train_one_epoch(clf, FocalLoss(), optimizer, _tiny_loader(), "cpu", amp=False)
    after = clf.backbone.state_dict()
    assert not torch.equal(before["conv1.weight"], after["conv1.weight"])
    assert not torch.equal(before["bn1.running_mean"], after["bn1.running_mean"])
    assert int(after["bn1.num_batches_tracked"]) == int(before["bn1.num_batches_tracked"]) + 2
