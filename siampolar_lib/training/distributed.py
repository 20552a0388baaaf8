"""Multi-process training under `torchrun`: this process's rank and device, the DDP wrapper, the step sampler.

Step s of rank r reads dataset items s*B*W + r*B ... + B-1 (B pairs per process, W processes), so W ranks at
batch B read exactly the items one process reads at batch W*B, and a resumed run reads what an uninterrupted
one does. A plain `python -m siampolar_lib.commands.train` is rank 0 of a world of 1: nothing here changes it.
"""
from __future__ import annotations

import os
from typing import Iterator

import torch
from torch import nn

from siampolar_lib.device import pick_device


def dist_info() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment; (0, 1, 0) for a plain run."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed(device: str = "auto") -> tuple[int, int, torch.device]:
    """(rank, world_size, device) of this process; under torchrun it joins the process group, one GPU a rank.

    device: as for `pick_device` ("auto", "cpu", "cuda", "mps"); the group uses NCCL on CUDA, else gloo.
    """
    rank, world, local_rank = dist_info()
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and device in ("auto", "cuda") else "gloo"
        torch.distributed.init_process_group(backend=backend)
    chosen = pick_device(device)
    if chosen.type == "cuda" and world > 1:
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
    return rank, world, chosen


def wrap_ddp(model: nn.Module, world: int, device: torch.device) -> nn.Module:
    """The model itself for one process, else its DistributedDataParallel wrapper.

    DDP records the trainable parameters when it is built: wrap again after (un)freezing any of them.
    """
    if world == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def barrier(world: int) -> None:
    """Wait for every rank (a no-op for one process)."""
    if world > 1:
        torch.distributed.barrier()


class StepSampler(torch.utils.data.Sampler):
    """Item indices of steps start..total-1 for one rank: step s, rank r -> s*B*W + r*B + [0, B)."""

    def __init__(self, start: int, total: int, batch: int, rank: int = 0, world: int = 1):
        self.start, self.total, self.batch, self.rank, self.world = start, total, batch, rank, world

    def __iter__(self) -> Iterator[int]:
        for s in range(self.start, self.total):
            base = (s * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)

    def __len__(self) -> int:
        return max(0, self.total - self.start) * self.batch
