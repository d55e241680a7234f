"""Grad-CAM of a slice classifier (THESIS 6.3.1-6.3.2, Figs 6.20-6.22), with hooks that never leak.

``with grad_cam(model) as cam: maps = cam(images)`` gives one map per image, (N, H, W)
float32 in [0, 1] at the images' resolution, computed by pytorch-grad-cam's ``GradCAM``
(Selvaraju et al. 2017) on the backbone's last convolutional block (ResNet ``layer4``) by
default, for :class:`pe_utils.learn.models.Classifier` and the classifiers
:func:`pe_utils.learn.simclr.to_classifier` makes alike.

Target: the models return one logit per slice, ``(B,)``; pytorch-grad-cam's
``ClassifierOutputTarget(0)`` indexes ``output[:, 0]`` and fails on the 0-d score of one
sample (an ``IndexError``, which its own ``__exit__`` swallows in 1.5). :class:`LogitTarget`
takes the logit itself: the evidence for "embolus", before the sigmoid, as Grad-CAM uses the
score before the softmax. The sigmoid's gradient would only rescale each map by
``p (1 - p)``, which the map's min-max normalisation removes, until it underflows for a
confident model.

Hooks: pytorch-grad-cam registers forward hooks on the target layer (and tensor hooks on its
outputs). :func:`grad_cam` releases them in a ``finally`` and does not use the library's
context manager, whose ``__exit__`` returns True (swallowing the exception) for an
``IndexError``: an exception raised in the block always propagates. The model's training
mode, its parameters' ``requires_grad`` and ``.grad`` are as before on exit.

Resolution: ``layer4`` has stride 32, so a 128 px slice gives a 4 x 4 map (64 px: 2 x 2),
upsampled bilinearly (OpenCV) to the input size: coarse by construction, as in the thesis.

The thesis drew it for Cases 2 and 4 only (Fig 6.20: Case2's experiment 11; Figs 6.21-6.22:
Case2 against Case4 at 90 % and 10 % of the training set); notebook 06 reproduces those and adds
Case1 against Case3 (:mod:`pe_utils.experiments.gradcam_runs`).
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

__all__ = ["grad_cam", "default_target_layer", "LogitTarget"]


class LogitTarget:
    """The score Grad-CAM differentiates: the model's logit for one slice (0-d or (1,))."""

    def __call__(self, model_output):
        return model_output.reshape(-1)[0] if model_output.ndim else model_output


def default_target_layer(model):
    """The backbone's last convolutional block: ``model.backbone.layer4[-1]`` for our ResNet
    classifiers (and any model with a ``layer4``), else the model's last ``Conv2d``.

    Raises:
        ValueError: the model holds no convolution.
    """
    from torch import nn

    for owner in (getattr(model, "backbone", None), model):
        layer4 = getattr(owner, "layer4", None)
        if isinstance(layer4, nn.Module):
            return layer4[-1] if isinstance(layer4, nn.Sequential) and len(layer4) else layer4
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no Conv2d layer for Grad-CAM; "
                         "pass target_layer=")
    return convs[-1]


def _as_float_batch(images):
    """A float32 (N, C, H, W) tensor: uint8 cache rows are scaled by 1/255 as the loaders do."""
    import torch

    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if x.ndim != 4:
        raise ValueError(f"grad_cam expects images (N, C, H, W), got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    if not x.is_floating_point():
        raise ValueError(f"grad_cam expects float or uint8 images, got {x.dtype}")
    return x.float()


@contextmanager
def grad_cam(model, target_layer=None) -> Iterator[Callable[..., np.ndarray]]:
    """Grad-CAM maps of ``model`` on ``target_layer``, inside a ``with`` block.

    Args:
        model: a classifier returning one logit per image (``(B,)`` or ``(B, 1)``), on any
            device (the images are moved there).
        target_layer: the module whose activations are weighted; None:
            :func:`default_target_layer` (ResNet ``layer4``'s last block).

    Yields:
        ``cam(images, batch_size=32)``: images ``(N, C, H, W)`` (float in the model's input
        scale, or uint8 cache rows, scaled by 1/255) -> ``np.ndarray`` (N, H, W) float32 in
        [0, 1]; each map min-max normalised (an all-zero map: no positive evidence
        anywhere). The model is run in eval mode.

    Raises:
        ValueError: images not 4-D, a model without convolutions, or an output that is not
            one logit per image. Exceptions raised in the block propagate, hooks released.
    """
    import torch
    from pytorch_grad_cam import GradCAM

    layer = default_target_layer(model) if target_layer is None else target_layer
    was_training = model.training
    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    state = [(p, p.requires_grad, p.grad) for p in params]
    engine, open_ = None, [True]
    try:
        engine = GradCAM(model=model, target_layers=[layer])  # registers the hooks; model.eval()
        for p in params:  # gradients flow to the layer's output through the input, not weights
            p.requires_grad_(False)

        def cam(images, batch_size: int = 32) -> np.ndarray:
            if not open_[0]:
                raise RuntimeError("grad_cam: the with block has exited and its hooks are "
                                   "released; compute maps inside the block")
            x = _as_float_batch(images)
            out = []
            if len(x):
                with torch.no_grad():
                    shape = tuple(model(x[:1].to(device)).shape)
                engine.activations_and_grads.clear()
                if shape not in ((1,), (1, 1)):
                    raise ValueError(f"grad_cam needs one logit per image, the model "
                                     f"returns shape {shape} for one image")
            with torch.enable_grad():
                for start in range(0, len(x), int(batch_size)):
                    chunk = x[start:start + int(batch_size)].to(device).clone().requires_grad_(True)
                    out.append(engine(input_tensor=chunk, targets=[LogitTarget()] * len(chunk)))
                    acts = engine.activations_and_grads.activations
                    if start == 0 and acts and tuple(acts[0].shape[-2:]) == (1, 1):
                        warnings.warn(f"the target layer is 1 x 1 at {tuple(x.shape[-2:])} px: "
                                      "every map is flat (all zero); use larger images or "
                                      "an earlier layer", stacklevel=3)
                    engine.activations_and_grads.clear()
            if not out:
                return np.zeros((0,) + tuple(x.shape[-2:]), np.float32)
            return np.clip(np.concatenate(out).astype(np.float32, copy=False), 0.0, 1.0)

        yield cam
    finally:
        open_[0] = False
        if engine is not None:
            engine.activations_and_grads.release()
        for p, requires_grad, grad in state:
            p.requires_grad_(requires_grad)
            p.grad = grad
        model.train(was_training)
