"""Counter-based random numbers: per-sample uniforms keyed by ``(seed, epoch, index)``.

The batched augmentation (:mod:`pe_utils.data.augment`) draws every sample's parameters from
its key alone, never from a stateful generator: a sample's augmentation is then the same
whatever batch it lands in, in whatever order, on however many devices or workers. The hash
is SplitMix64 (Steele et al. 2014, the finaliser of Java's ``SplittableRandom``), the same
as :func:`pe_utils.data.datasets.sample_seed` (so ``sample_seed(*key)`` is the root of
stream 0), vectorised in numpy ``uint64`` arithmetic, which wraps modulo 2**64 by definition
(torch's int64 has no unsigned shift and overflow is not specified).
"""
from __future__ import annotations

import numpy as np
import torch

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(h: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on a ``uint64`` array (wraps modulo 2**64)."""
    h = (h ^ (h >> np.uint64(30))) * _M1
    h = (h ^ (h >> np.uint64(27))) * _M2
    return h ^ (h >> np.uint64(31))


def key_roots(keys: torch.Tensor | np.ndarray) -> np.ndarray:
    """The 64-bit root of each key, ``(B,)`` uint64: SplitMix64 over seed, epoch, index.

    Args:
        keys: ``(B, 3)`` integers ``[seed, epoch, index]`` (a tensor on any device or an
            array); a tensor on a GPU is copied to the host (one sync).

    Raises:
        ValueError: ``keys`` is not ``(B, 3)``.
    """
    k = keys.detach().cpu().numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    if k.ndim != 2 or k.shape[1] != 3:
        raise ValueError(f"keys must be (B, 3) [seed, epoch, index], got shape {k.shape}")
    k = k.astype(np.int64).view(np.uint64)  # two's complement, as sample_seed's & MASK64
    h = np.full(len(k), _GOLDEN, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(3):
            h = _mix((h ^ k[:, j]) + _GOLDEN)
    return h & np.uint64((1 << 63) - 1)


def key_uniforms(keys: torch.Tensor | np.ndarray, n: int, stream: int = 0) -> torch.Tensor:
    """``n`` independent uniforms in [0, 1) per key, ``(B, n)`` float32 on the CPU.

    Uniform ``j`` of stream ``s`` is the top 24 bits of SplitMix64 at counter
    ``root + (s * 1024 + j + 1) * golden``: different parameters, and the two views of a
    SimCLR pair (streams 0 and 1), come from unrelated numbers of the same key.

    Raises:
        ValueError: bad ``keys`` shape, ``n < 1``, ``stream`` outside [0, 2**20).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 <= stream < 2**20:
        raise ValueError(f"stream must be in [0, 2**20), got {stream}")
    root = key_roots(keys)
    counters = (np.uint64(stream) * np.uint64(1024) + np.arange(1, n + 1, dtype=np.uint64))
    with np.errstate(over="ignore"):
        bits = _mix(root[:, None] + counters[None, :] * _GOLDEN)       # (B, n)
    # 24 bits fit float32's mantissa exactly: the same number on every device
    return torch.from_numpy((bits >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24))

