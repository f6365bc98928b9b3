"""Sharding and gathering across the processes of a launched evaluation.

A single process needs no ``accelerate launch``: :class:`SingleProcess` shards nothing and
gathers what it has. Under ``accelerate launch`` / ``torchrun`` (``WORLD_SIZE`` > 1)
:class:`AcceleratePeers` splits the work through ``accelerate``'s process state.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["AcceleratePeers", "SingleProcess", "peers", "world_size"]


class SingleProcess:
    num_processes = 1
    process_index = 0
    is_main_process = True
    device = None

    def shard(self, items: list) -> list:
        return list(items)

    def gather(self, rows: list) -> list:
        return list(rows)


class AcceleratePeers:
    """Shards and gathers through ``accelerate``'s process state (launched runs only)."""

    def __init__(self, device: str) -> None:
        import torch
        from accelerate import PartialState

        # gloo on CPUs: accelerate only forms a CPU process group when asked to use the CPU
        use_cpu = (
            str(device) == "cpu"
            or not torch.cuda.is_available()
            or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
        )
        self.state = PartialState(cpu=use_cpu)
        self.num_processes = self.state.num_processes
        self.process_index = self.state.process_index
        self.is_main_process = self.state.is_main_process
        self.device = self.state.device

    def shard(self, items: list) -> list:
        with self.state.split_between_processes(list(items)) as mine:
            return list(mine)

    def gather(self, rows: list) -> list:
        from accelerate.utils import gather_object

        return list(gather_object(list(rows)))


def world_size() -> int:
    """``WORLD_SIZE`` as the launcher set it (1 when unset); ValueError, naming the variable, for
    anything but a positive integer (a typo must not quietly become a single-process run)."""
    raw = os.environ.get("WORLD_SIZE", "1").strip() or "1"
    try:
        world = int(raw)
    except ValueError:
        world = 0
    if world < 1:
        raise ValueError(f"the environment variable WORLD_SIZE must be a positive integer (the "
                         f"number of launched processes), got {raw!r}; unset it for one process")
    return world


def peers(device: str) -> Any:
    """Several processes when launched by ``accelerate launch``/``torchrun`` (WORLD_SIZE > 1)."""
    return AcceleratePeers(device) if world_size() > 1 else SingleProcess()
