"""SimCLR's network (THESIS 4.2) and its conversion into a Case1 classifier (THESIS 4.3).

- :class:`ProjectionHead`: two fully connected layers with a ReLU between (THESIS 4.2).
- :class:`SimCLRModel`: Case1's ResNet backbone (the thesis's *encoder*, built by
  :func:`pe_utils.learn.models.build_classifier`, so it is exactly the supervised model's
  backbone) followed by the projection head; ``features`` gives every layer for t-SNE.
- :func:`to_classifier`: drop the projection head (all of it, or all but its first layer as
  SimCLRv2 does) and add Case1's classification head, for the two-step fine-tuning
  (step 1: :func:`pe_utils.learn.models.set_backbone_trainable` ``False``; step 2: ``True``).

The attribute names follow :class:`pe_utils.learn.models.Classifier` (``backbone``, ``head``)
so the same helpers (freezing, ``load_weights`` of ``model.backbone.state_dict()``) work on both.
"""
from __future__ import annotations

import copy
from collections import OrderedDict

import torch
from torch import nn

from .models import Classifier, build_classifier, make_head

#: the layers :meth:`SimCLRModel.features` can return
LAYERS = ("encoder", "head1", "head2")


class ProjectionHead(nn.Sequential):
    """``fc1: Linear(F, H) -> relu -> fc2: Linear(H, out)`` (THESIS 4.2: two fully connected
    layers with a ReLU between; no BatchNorm, as the thesis describes it).

    Args:
        in_features: F, the encoder's feature size (2048 for resnet50, 512 for resnet18).
        hidden: H; ``None`` means F. *Our choice*, following SimCLR (Chen et al. 2020,
            arXiv:2002.05709, appendix B.9: 2048 -> 2048 -> 128 on ResNet50); the thesis
            does not give the sizes.
        out_features: the projection size z (128, *our choice* from SimCLR as above).

    Shapes: ``(B, F)`` -> ``(B, out_features)``.

    Raises:
        ValueError: a size < 1.
    """

    def __init__(self, in_features: int, hidden: int | None = None, out_features: int = 128) -> None:
        hidden = in_features if hidden is None else hidden
        if min(in_features, hidden, out_features) < 1:
            raise ValueError(f"sizes must be >= 1, got in_features={in_features}, hidden={hidden}, "
                             f"out_features={out_features}")
        super().__init__(OrderedDict(fc1=nn.Linear(in_features, hidden), relu=nn.ReLU(inplace=False),
                                     fc2=nn.Linear(hidden, out_features)))
        self.in_features, self.hidden, self.out_features = in_features, hidden, out_features


class SimCLRModel(nn.Module):
    """Encoder ``backbone`` (images ``(B, C, H, W)`` -> ``(B, F)``) then the projection
    ``head`` (-> ``(B, out)``). ``forward`` returns the projection z that NT-Xent compares.
    """

    def __init__(self, backbone: nn.Module, head: ProjectionHead, num_features: int, arch: str = "") -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.num_features = num_features
        self.arch = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))  # (B, F) -> (B, out)

    def features(self, x: torch.Tensor, layer: str = "encoder") -> torch.Tensor:
        """The representation at ``layer`` (THESIS 6.3.1's t-SNE per layer).

        Args:
            x: images ``(B, C, H, W)``.
            layer: ``"encoder"`` (the backbone's pooled output ``(B, F)``), ``"head1"`` (the
                head's first layer after its ReLU ``(B, H)``: the output of what
                ``to_classifier(keep_head_layers=1)`` keeps, as SimCLRv2 keeps the hidden
                layer with its non-linearity) or ``"head2"`` (the projection z ``(B, out)``).

        Raises:
            ValueError: unknown layer.
        """
        if layer not in LAYERS:
            raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
        h = self.backbone(x)                              # (B, F)
        if layer == "encoder":
            return h
        h = self.head.relu(self.head.fc1(h))              # (B, H)
        return h if layer == "head1" else self.head.fc2(h)  # (B, out)


def build_simclr(arch: str = "resnet50", in_channels: int = 1, hidden: int | None = None,
                 out_dim: int = 128) -> SimCLRModel:
    """SimCLR network of THESIS 4.2, randomly initialised (nothing is downloaded).

    Args:
        arch: a torchvision ResNet name (:data:`pe_utils.learn.models.ARCHS`; resnet50 in
            the thesis).
        in_channels: 1 (gray cache) or 3 (RGB windows), as in Case1.
        hidden, out_dim: the projection head's sizes (:class:`ProjectionHead`).

    Returns:
        :class:`SimCLRModel`; its backbone is built by ``build_classifier`` (Case1's).

    Raises:
        ValueError: unknown arch, bad in_channels or head sizes.
    """
    classifier = build_classifier(arch, in_channels=in_channels)
    head = ProjectionHead(classifier.num_features, hidden, out_dim)
    return SimCLRModel(classifier.backbone, head, classifier.num_features, arch)


def to_classifier(simclr_model: SimCLRModel, keep_head_layers: int = 0, dropout: float = 0.5,
                  bias_prior: float | None = None) -> Classifier:
    """A Case1 classifier from a pretrained SimCLR network (THESIS 4.3): the projection head
    is discarded and Case1's head (:func:`pe_utils.learn.models.make_head`) is added.

    The weights are copied (the SimCLR model is left as it is). With ``keep_head_layers=1``
    the head's first layer and its ReLU are kept (SimCLRv2, Chen et al. 2020,
    arXiv:2006.10029; THESIS 4.3 discusses it): they go into the ResNet's ``fc`` slot, so
    they belong to the ``backbone`` (frozen in fine-tuning step 1 with the encoder) and
    ``backbone.layer4`` is still the last convolutional layer for Grad-CAM.

    Args:
        simclr_model: a :class:`SimCLRModel` (e.g. after pretraining).
        keep_head_layers: 0 (drop the whole projection head) or 1.
        dropout, bias_prior: the new head's, as in :func:`pe_utils.learn.models.make_head`.

    Returns:
        :class:`pe_utils.learn.models.Classifier`: logits ``(B,)``; ``num_features`` is F
        (keep 0) or the head's hidden size H (keep 1).

    Raises:
        ValueError: keep_head_layers not 0 or 1; a backbone without an ``fc`` slot
            (keep 1); bad dropout / bias_prior.
    """
    if keep_head_layers not in (0, 1):
        raise ValueError(f"keep_head_layers must be 0 or 1, got {keep_head_layers}")
    backbone = copy.deepcopy(simclr_model.backbone)
    num_features = simclr_model.num_features
    if keep_head_layers == 1:
        if not isinstance(getattr(backbone, "fc", None), nn.Identity):
            raise ValueError("keep_head_layers=1 needs a ResNet backbone whose fc is nn.Identity")
        head = simclr_model.head
        backbone.fc = nn.Sequential(copy.deepcopy(head.fc1), nn.ReLU())  # (B, F) -> (B, H)
        num_features = head.hidden
    return Classifier(backbone, make_head(num_features, dropout, bias_prior), num_features,
                      simclr_model.arch)
