"""Joining the process group ``torchrun`` sets up, for both models' data-parallel training."""

from __future__ import annotations

import datetime
import os
from typing import Tuple

import torch
import torch.distributed as dist


def world_from_env() -> Tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) without it."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def init(device, timeout_s: float = 300.0) -> Tuple[int, int]:
    """Join the process group torchrun set up (gloo for CPU tensors, NCCL for CUDA ones), with a
    timeout after which a process waiting on a dead peer fails instead of hanging."""
    backend = "nccl" if torch.device(device).type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return dist.get_rank(), dist.get_world_size()
