"""Data-parallel training across processes: the world a run trains in, its collectives, and ``--nproc``.

A run is distributed when torchrun's environment says so (``WORLD_SIZE`` > 1): ``bench run --nproc N``
relaunches itself under ``torch.distributed.run``; ``torchrun --nproc_per_node N -m bench run ...`` works
the same. nccl on CUDA, gloo on the CPU.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterator

import torch
import torch.distributed as dist

from bench.errors import ConfigError

#: Rank 0 may train a GAN while the others wait at a barrier: allow for it (minutes, overridable).
TIMEOUT_MIN = int(os.environ.get("BENCH_DIST_TIMEOUT_MIN", "720"))


@dataclass(frozen=True)
class World:
    """This process's place among the run's processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes checkpoints, records and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def from_environment() -> World:
    """The world torchrun describes in ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; one process without them."""
    try:
        return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError:
        raise ConfigError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them)") from None


def start(world: World, device: torch.device) -> torch.device:
    """Join the process group (nccl on CUDA, gloo on the CPU); return this rank's device."""
    if not world.distributed:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(minutes=TIMEOUT_MIN))
    return device


def stop(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


@contextlib.contextmanager
def main_first(world: World) -> Iterator[None]:
    """Rank 0 runs the block first (filling data and generator caches); the other ranks run it after, reading
    them. One process: just the block."""
    if not world.main:
        barrier(world)
    yield
    if world.main:
        barrier(world)


def all_sum(world: World, values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over the ranks (returned as is on one process)."""
    if world.distributed:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def gather(world: World, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not world.distributed:
        return [obj]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def shard(order: torch.Tensor, batch_size: int, world: World) -> list[torch.Tensor]:
    """This rank's batches of one epoch, as index tensors into the training split.

    One process: consecutive batches of ``batch_size`` over ``order`` (the last one smaller). ``N`` processes:
    rank ``r`` takes every ``N``-th image of the same ``order`` and splits its share into as many near-equal
    batches (at most ``batch_size``) as the largest share needs, so every rank takes the same number of steps
    and the ranks together see each image exactly once per epoch, as one process does.
    """
    n = len(order)
    if not world.distributed:
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if n < world.size:
        raise ConfigError(f"--nproc {world.size}: the training split has only {n} pairs, fewer than processes")
    largest = -(-n // world.size)
    steps = -(-largest // batch_size)
    if steps > n // world.size:
        raise ConfigError(f"--batch-size {batch_size} with --nproc {world.size}: some process would get an empty "
                          "batch; use a larger --batch-size")
    return list(torch.tensor_split(order[world.rank :: world.size], steps))


def launch(nproc: int, args: list[str]) -> int:
    """Run ``bench <args>`` in ``nproc`` processes under ``torch.distributed.run``; its exit status."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "bench", *args]
    return subprocess.call(command)


def strip_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` / ``name=VALUE``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out
