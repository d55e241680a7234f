"""NT-Xent, SimCLR's contrastive loss (THESIS 4.2), with negatives gathered across processes.

- :class:`NTXentLoss`: normalised temperature-scaled cross entropy over the 2N views of N
  images; cosine similarity, temperature 0.1 (THESIS 4.2).
- :func:`all_gather_with_grad`: the all-gather used under DDP (torchrun). Its backward sums
  the incoming gradient over the processes (``all_reduce(SUM)``) and returns this process's
  slice, so a DDP step over K processes of N images each equals one process over the K*N
  images (``tests/test_ntxent.py`` checks the gradients against a single process).
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


class _GatherWithGrad(torch.autograd.Function):
    """All-gather whose gradient reaches every process's own input.

    forward: ``(N, D)`` on each of K processes -> ``(K*N, D)``, identical everywhere.
    backward: process k's gathered output is used by k's loss only, so the gradient of the
    sum of all processes' losses with respect to process r's rows is the sum over k of the
    gradients each process holds for those rows: all_reduce(SUM), then keep rows of rank r.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.rank, ctx.rows = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)                       # (K*N, D)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.contiguous()                             # (K*N, D)
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]  # (N, D)


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` ``(N, D)`` from every process of the default group into
    ``(K*N, D)`` (rank order), keeping the gradient path back to every process's ``x``.

    Every process must pass the same N (e.g. ``DistributedSampler`` with ``drop_last=True``).
    """
    return _GatherWithGrad.apply(x)


def _distributed() -> tuple[int, int]:
    """(rank, world size) of the default process group, or (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class NTXentLoss(nn.Module):
    """Normalised temperature-scaled cross entropy (Chen et al. 2020, "A Simple Framework
    for Contrastive Learning of Visual Representations", ICML, arXiv:2002.05709, Eq. 1).

    For the 2N views (two per image) with projections ``z``, cosine similarity
    ``s_ij = z_i . z_j / (|z_i| |z_j|)`` and view i's twin j(i)::

        l_i = -log( exp(s_ij(i) / t) / sum_{k != i} exp(s_ik / t) )

    the loss is the mean of ``l_i`` over the 2N anchors: each view's positive is its twin,
    the other 2N - 2 views are its negatives, its self-similarity is left out.

    Distributed (``gather_distributed=True`` inside an initialised process group of world
    size K > 1): each process's anchors are its own 2N views; the negatives are the 2KN
    views of every process (:func:`all_gather_with_grad`), so with DDP's gradient average
    one step equals a single process over the concatenated K*N images. Every process needs
    the same N. Without a process group (or K = 1) it is the plain loss.

    Args:
        temperature: t > 0 (0.1 in THESIS 4.2, as in SimCLR's large-batch runs).
        gather_distributed: gather the negatives from every process (see above).

    Shapes: ``z_a``, ``z_b`` ``(N, D)``: the projections of the first and second view of
    the same N images, row i of both from image i. Returns a scalar.

    Raises:
        ValueError: temperature <= 0; ``z_a``/``z_b`` not 2-D, of different shapes, or N < 1.
    """

    def __init__(self, temperature: float = 0.1, gather_distributed: bool = False) -> None:
        super().__init__()
        if not temperature > 0:  # also refuses NaN
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.gather_distributed = bool(gather_distributed)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, gather_distributed={self.gather_distributed}"

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        if z_a.dim() != 2 or z_a.shape != z_b.shape or z_a.shape[0] < 1:
            raise ValueError(f"z_a and z_b must both be (N, D) with N >= 1, got "
                             f"{tuple(z_a.shape)} and {tuple(z_b.shape)}")
        # float32 even under autocast: s / 0.1 spans -10..10 and half precision's ~1e-3 error
        # on s becomes ~1e-2 on every logit; the (2N, 2KN) matmul is cheap next to the encoder
        with torch.autocast(z_a.device.type, enabled=False):
            if z_a.dtype in (torch.float16, torch.bfloat16):
                z_a, z_b = z_a.float(), z_b.float()
            return self._loss(z_a, z_b)

    def _loss(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        n = z_a.shape[0]
        z_a = F.normalize(z_a, dim=1)                         # (N, D), unit rows
        z_b = F.normalize(z_b, dim=1)                         # (N, D)

        rank, world = _distributed() if self.gather_distributed else (0, 1)
        if world > 1:
            keys_a = all_gather_with_grad(z_a)               # (K*N, D), rank order
            keys_b = all_gather_with_grad(z_b)               # (K*N, D)
        else:
            keys_a, keys_b = z_a, z_b
        total = keys_a.shape[0]                               # K*N images in all
        keys = torch.cat([keys_a, keys_b], dim=0)             # (2KN, D): all a-views, then b-views
        anchors = torch.cat([z_a, z_b], dim=0)                # (2N, D): this process's views

        # global index of each local anchor: a-view i -> rank*N + i, b-view i -> K*N + rank*N + i
        local = torch.arange(n, device=z_a.device) + rank * n         # (N,)
        self_index = torch.cat([local, local + total])                # (2N,)
        twin_index = torch.cat([local + total, local])                # (2N,): the positive

        sim = anchors @ keys.T / self.temperature                     # sim: (2N, 2KN)
        rows = torch.arange(2 * n, device=z_a.device)
        self_mask = torch.zeros_like(sim, dtype=torch.bool)
        self_mask[rows, self_index] = True                            # (2N, 2KN)
        sim = sim.masked_fill(self_mask, float("-inf"))               # exp(-inf) = 0: not a negative
        return F.cross_entropy(sim, twin_index)                       # mean over the 2N anchors
