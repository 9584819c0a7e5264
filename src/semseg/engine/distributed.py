"""torchrun/DDP detection. ``torchrun --nproc-per-node N -m semseg train ...`` sets RANK,
WORLD_SIZE and LOCAL_RANK; a plain run is a world of one."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from semseg.errors import ConfigError


def setup(device: str) -> tuple[int, int, torch.device]:
    """Initialise the process group if launched by torchrun; return (rank, world_size, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (dev.index is not None and dev.index >= count):
            raise ConfigError(f"train.device={device} but this machine has {count} CUDA device(s); use cpu or auto")
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return rank, world, dev


def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    if dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    """Close the process group torchrun's run opened."""
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast_buffers(model: torch.nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP syncs buffers at the start of each forward, so after the last training step every rank
    holds its own statistics; evaluation must use the ones the checkpoint (rank 0) saves.
    """
    if dist.is_initialized():
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)
