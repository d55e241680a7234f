"""The supervised classifier: a torchvision ResNet backbone and a BN -> dropout -> linear head.

THESIS 4.1.4: ResNet50, batch normalisation and dropout before the final layer, one sigmoid
output (the model returns the logit; the sigmoid is in the loss and in ``predict``).
THESIS Eq. 5.2 (Case2): final bias initialised to ``-log((1 - pi) / pi)``.

Weights are random by default: nothing is ever downloaded. ``weights=`` loads a local
state_dict (a full classifier, one of our checkpoints, or a backbone alone, e.g. a SimCLR
encoder from Case3).
(Case3's SimCLR encoder + projection head will live here too.)
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
from torch import nn

#: architectures build_classifier accepts: torchvision's ResNets, and ``resnet10``, torchvision's
#: ``ResNet`` with one basic block per stage (ResNet18 halved in depth, the ResNet-10 of
#: MedicalNet and MONAI): the demo's CPU network. A bare training loop on 2 cores, batch 32:
#: 252 images/s at 48 px, 2.1x ResNet18's 118 at 48 px and 3.0x its 85 at 64 px (2026-12-02)
ARCHS = ("resnet10", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


class Classifier(nn.Module):
    """``backbone`` (images ``(B, C, H, W)`` -> features ``(B, F)``) then ``head``
    (features -> one logit). ``forward`` returns logits ``(B,)``.

    A frozen backbone (:func:`set_backbone_trainable` ``False``) also stays in eval mode,
    so its BatchNorm running statistics do not move (as Keras's ``trainable=False``).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, num_features: int, arch: str = "") -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.num_features = num_features
        self.arch = arch
        self.backbone_trainable = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)           # (B, F)
        return self.head(features).squeeze(-1)  # (B,)

    def train(self, mode: bool = True) -> "Classifier":
        super().train(mode)
        if mode and not self.backbone_trainable:
            self.backbone.eval()
        return self


def make_head(num_features: int, dropout: float = 0.5, bias_prior: float | None = None) -> nn.Sequential:
    """Classification head: ``BatchNorm1d(F) -> Dropout(dropout) -> Linear(F, 1)``.

    Args:
        num_features: F, the backbone's feature size.
        dropout: dropout probability in [0, 1) (0 disables it).
        bias_prior: pi of Eq. 5.2: the final bias starts at ``-log((1 - pi) / pi)``, so
            the initial predicted probability is about pi; ``None`` keeps PyTorch's init.

    Raises:
        ValueError: dropout outside [0, 1) or bias_prior outside (0, 1).
    """
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    linear = nn.Linear(num_features, 1)
    if bias_prior is not None:
        if not 0 < bias_prior < 1:
            raise ValueError(f"bias_prior is a probability in (0, 1), got {bias_prior}")
        with torch.no_grad():
            linear.bias.fill_(-math.log((1 - bias_prior) / bias_prior))
    return nn.Sequential(nn.BatchNorm1d(num_features), nn.Dropout(dropout), linear)


def build_classifier(arch: str = "resnet50", in_channels: int = 1, dropout: float = 0.5,
                     bias_prior: float | None = None, weights: str | Path | None = None) -> Classifier:
    """ResNet classifier of THESIS 4.1.4 (randomly initialised unless ``weights`` is given).

    Args:
        arch: one of :data:`ARCHS` (resnet50 in the thesis; resnet18 for small runs).
        in_channels: 1 (gray cache: ``conv1`` is replaced by a 1-channel one), 3 (RGB
            windows cache), or any other positive number: a 2.5D input of a slice and its
            neighbours as channels (:func:`pe_utils.data.context.context_rows`).
        dropout: dropout before the final layer.
        bias_prior: pi of Eq. 5.2 (0.01 in Case2), or ``None``.
        weights: optional path to a local state_dict (see :func:`load_weights`); loaded
            after the bias initialisation, so a full classifier's bias wins.

    Returns:
        :class:`Classifier` with ``.backbone`` (features ``(B, F)``, F = 512 for
        resnet10/18/34, 2048 for resnet50+) and ``.head``; ``forward`` gives logits ``(B,)``.

    Raises:
        ValueError: unknown arch, in_channels below 1, bad dropout / bias_prior, or
            weights that do not fit (see :func:`load_weights`).
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    if not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
    import torchvision  # lazily: importing pe_utils' names must not cost torchvision's ~1.5 s

    if arch == "resnet10":
        from torchvision.models.resnet import BasicBlock, ResNet

        backbone = ResNet(BasicBlock, [1, 1, 1, 1])
    else:
        backbone = getattr(torchvision.models, arch)(weights=None)
    if in_channels != 3:
        old = backbone.conv1
        backbone.conv1 = nn.Conv2d(in_channels, old.out_channels, kernel_size=old.kernel_size,
                                   stride=old.stride, padding=old.padding, bias=False)
        nn.init.kaiming_normal_(backbone.conv1.weight, mode="fan_out", nonlinearity="relu")
    num_features = backbone.fc.in_features
    backbone.fc = nn.Identity()  # resnet's forward already pools and flattens: (B, F)
    model = Classifier(backbone, make_head(num_features, dropout, bias_prior), num_features, arch)
    if weights is not None:
        load_weights(model, weights)
    return model


def _adapt_conv1(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """conv1 weights for another number of input channels: 3 -> 1 sums over the channels
    (a gray image fed to the RGB filters as three equal channels), 1 -> 3 spreads evenly."""
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    return weight.repeat(1, in_channels, 1, 1) / in_channels


def load_weights(model: Classifier, weights: str | Path) -> dict:
    """Load a local state_dict into ``model`` (``torch.load(weights_only=True)``).

    Accepted: a full classifier state_dict (keys ``backbone.*``, ``head.*``); one of our
    checkpoints (a dict with a ``"model"`` entry); a backbone alone (torchvision ResNet
    keys such as ``conv1.weight``, ``layer1.0...``; a ``fc.*`` entry is ignored). A
    ``conv1`` with 3 input channels is summed to fit a 1-channel model (and vice versa).

    Returns:
        ``{"path", "kind" ("full"|"backbone"), "missing", "unexpected", "adapted"}``, also
        kept as ``model.weights_report``. Missing or unexpected keys raise a warning that
        lists them (the head's keys are expected to be missing for a backbone alone).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a state_dict, no key in common with the model, or a shape mismatch.
    """
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state_dict (a dict of tensors)")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # DDP-saved models
    full = any(k.startswith(("backbone.", "head.")) for k in state)
    target: nn.Module = model if full else model.backbone
    own = target.state_dict()
    adapted = []
    conv1 = "backbone.conv1.weight" if full else "conv1.weight"
    if conv1 in state and conv1 in own and state[conv1].shape[1] != own[conv1].shape[1]:
        state[conv1] = _adapt_conv1(state[conv1], own[conv1].shape[1])
        adapted.append(conv1)
    common = [k for k in state if k in own]
    if not common:
        raise ValueError(f"{path}: no key in common with a {model.arch} classifier "
                         f"({'full' if full else 'backbone'} keys expected); first keys: {list(state)[:5]}")
    bad = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
           for k in common if state[k].shape != own[k].shape]
    if bad:
        raise ValueError(f"{path}: shape mismatch (another arch?): " + "; ".join(bad[:5]))
    result = target.load_state_dict(state, strict=False)
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    report = {"path": str(path), "kind": "full" if full else "backbone",
              "missing": missing, "unexpected": unexpected, "adapted": adapted}
    if missing or unexpected:
        warnings.warn(f"{path}: loaded as a {report['kind']} state_dict with "
                      f"{len(missing)} missing keys {missing[:10]} and "
                      f"{len(unexpected)} unexpected keys {unexpected[:10]}", stacklevel=2)
    model.weights_report = report
    return report


def set_backbone_trainable(model: nn.Module, trainable: bool) -> None:
    """Freeze (``False``) or unfreeze the backbone: ``requires_grad`` of its parameters,
    and a frozen backbone stays in eval mode (BatchNorm statistics fixed) in a
    :class:`Classifier`. Build the optimizer after calling this (it takes trainable
    parameters only)."""
    for p in model.backbone.parameters():
        p.requires_grad_(trainable)
    model.backbone_trainable = bool(trainable)
    if not trainable:
        model.backbone.eval()
    elif model.training:
        model.backbone.train()


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
