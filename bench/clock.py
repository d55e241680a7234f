"""What every benchmark here times with: wall and process-CPU seconds of a block.

Shared by ``bench/train.py`` and ``bench/pretrain.py`` (run as scripts, so this folder is on
``sys.path``). On a shared CPU machine the CPU time (one thread, no workers) is the fair
measure: other users' load stretches wall time only. On CUDA the block is synchronised at
both ends, so queued kernels are counted.
"""
from __future__ import annotations

import time

import torch


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Clock:
    """``with Clock(device) as c: ...`` then ``c.wall`` and ``c.cpu`` are seconds."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self):
        sync(self.device)
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        sync(self.device)
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return False
