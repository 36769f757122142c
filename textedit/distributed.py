"""Key statistics over several processes (``torchrun``): shard the corpus, add the sums.

Second moments add, so a corpus split into ``world_size`` contiguous shards gives

    S_l = Σ_ranks S_l^(rank),   n_l = Σ_ranks n_l^(rank)

with one ``all_reduce`` per layer (float64 sums, int64 counts). Every rank ends with the
full statistics; rank 0 alone writes the cache (atomically), then all ranks meet at a
barrier, so no rank returns before the cache exists.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init_from_env` starts the process group from them (gloo for the CPU, nccl for CUDA).
Without them everything here is a no-op and statistics are computed in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import TexteditError


@dataclass(frozen=True)
class Shard:
    """This process's place in the group: ``rank`` of ``world_size``."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def bounds(self, n: int) -> tuple[int, int]:
        """``[begin, end)`` of this rank's contiguous share of ``n`` items (sizes differ by ≤ 1)."""
        return self.rank * n // self.world_size, (self.rank + 1) * n // self.world_size

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the group in place; nccl needs it on this rank's GPU, gloo on the CPU."""
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else tensor.device
        moved = tensor.to(device)
        dist.all_reduce(moved, op=dist.ReduceOp.SUM)
        if moved is not tensor:
            tensor.copy_(moved.to(tensor.device))
        return tensor

    def barrier(self) -> None:
        dist.barrier()


def current_shard() -> Shard | None:
    """The running group as a :class:`Shard`, or ``None`` outside ``torch.distributed``."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    return Shard(dist.get_rank(), dist.get_world_size())


def init_from_env(device: str = "cpu") -> Shard | None:
    """Start the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1), else ``None``.

    Backend: nccl when ``device`` is CUDA (each rank takes GPU ``LOCAL_RANK``), gloo otherwise.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    if not dist.is_available():
        raise TexteditError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if not dist.is_initialized():
        missing = [name for name in ("RANK", "MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
        if missing:
            raise TexteditError(f"WORLD_SIZE > 1 but {', '.join(missing)} is not set: launch with torchrun")
        cuda = device.startswith("cuda")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
    return current_shard()


def shutdown() -> None:
    """Leave the process group (if one was started)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
