"""The synthetic bank: generated pairs held on the device, drawn in large batches, each used once.

Sampling a generator a batch at a time inside every training step costs a launch-bound forward pass per
step. The bank instead asks each generator for many pairs at once and keeps them (uint8, the real split's
layout) in a ring on the device; steps index it like the real split. A generator is asked for exactly the
pairs its steps consume in the epoch, so every synthetic pair is seen once and every epoch sees fresh ones:
what the segmenter trains on is distributed as before (fresh samples every step), only drawn earlier. The
ring's capacity is bounded by a memory budget; when it holds fewer pairs than an epoch needs it is refilled
as it empties.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from bench.plugin.build import check_samples
from bench.plugin.components import Generator

CHUNK = 256
"""Pairs asked of a generator at once when the bank is refilled, at most."""
CHUNK_PIXELS = 2**22
"""And at most this many output pixels per call (85 pairs at 192x256): every call has one shape for the whole run
(the last call of a refill is not smaller: its surplus is discarded), so cuDNN tunes its kernels once, on a
problem small enough to tune quickly, instead of once more for each new remainder."""

CPU_BUDGET_MB = 1024
CUDA_BUDGET_MB = 4096
CUDA_FREE_FRACTION = 0.25


def bytes_per_pair(size: tuple[int, int]) -> int:
    """Memory of one banked pair: 3 RGB bytes and 1 mask byte per pixel."""
    return 4 * size[0] * size[1]


def default_budget_mb(device: torch.device) -> int:
    """The bank's memory budget when ``--bank-mb`` is not given: a quarter of the free GPU memory up to
    4 GiB on CUDA, 1 GiB elsewhere."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(min(CUDA_BUDGET_MB, CUDA_FREE_FRACTION * free / 2**20))
    return CPU_BUDGET_MB


def to_pairs(x: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Generator output ``(n, 4, h, w)`` in [-1, 1] as the segmenter sees it, at ``size``: RGB in [0, 1] and a
    binary mask (the mask channel thresholded at 0, resized masks at 0.5)."""
    rgb = ((x[:, :3].float() + 1.0) * 0.5).clamp(0.0, 1.0)
    mask = (x[:, 3:].float() > 0).float()
    if tuple(rgb.shape[-2:]) != tuple(size):
        rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False, antialias=True)
        mask = (F.interpolate(mask, size=size, mode="bilinear", align_corners=False) > 0.5).float()
    return rgb, mask


@dataclass
class _Ring:
    images: torch.Tensor
    masks: torch.Tensor
    head: int = 0
    fresh: int = 0
    remaining: int = 0
    draw: int = 1
    """Pairs per call of the generator: one shape for the ring's life."""

    @property
    def capacity(self) -> int:
        return len(self.images)


class SyntheticBank:
    """One ring of generated pairs per generator; :meth:`start_epoch` says how many each epoch consumes."""

    def __init__(self, generators: list[Generator], size: tuple[int, int], device: torch.device,
                 rng: torch.Generator, budget_mb: float, chunk: int = CHUNK) -> None:
        self.generators, self.size, self.device, self.rng = generators, size, device, rng
        self.budget_mb, self.chunk = budget_mb, chunk
        self.rings: list[_Ring | None] = [None] * len(generators)
        self.generated = 0
        self.discarded = 0
        self.refills = 0

    def capacity_for(self, need: int, largest_take: int) -> int:
        """Pairs one generator's ring holds: an epoch's need, bounded by its share of the budget."""
        share = int(self.budget_mb * 2**20) // max(len(self.generators), 1) // bytes_per_pair(self.size)
        if share < largest_take:
            raise ValueError(f"--bank-mb {self.budget_mb}: holds {share} generated pairs of "
                             f"{self.size[0]}x{self.size[1]} per generator, fewer than one batch "
                             f"({largest_take}); give at least "
                             f"{-(-largest_take * len(self.generators) * bytes_per_pair(self.size) // 2**20)}")
        return min(need, share)

    def draw_size(self, g: int, capacity: int) -> int:
        """Pairs per call of generator ``g``: at most :data:`CHUNK`, :data:`CHUNK_PIXELS` of its output and the
        ring's capacity."""
        h, w = getattr(self.generators[g], "size", self.size)
        return max(1, min(self.chunk, CHUNK_PIXELS // (h * w), capacity))

    def start_epoch(self, needs: list[int], largest_take: int) -> None:
        """The next epoch takes ``needs[g]`` pairs from generator ``g``, at most ``largest_take`` per step.

        Leftovers cannot exist (a ring is only ever filled with what the epoch still needs); a ring is
        (re)allocated when the need outgrows it.
        """
        for g, need in enumerate(needs):
            if need == 0:
                continue
            capacity = self.capacity_for(need, largest_take)
            ring = self.rings[g]
            if ring is None or ring.capacity < capacity:
                h, w = self.size
                ring = _Ring(torch.empty(capacity, 3, h, w, dtype=torch.uint8, device=self.device),
                             torch.empty(capacity, 1, h, w, dtype=torch.uint8, device=self.device))
                self.rings[g] = ring
                ring.draw = self.draw_size(g, capacity)
            ring.head, ring.fresh, ring.remaining = 0, 0, need

    def take(self, g: int, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(images, masks, index)``: the ring of generator ``g`` and the positions of ``n`` unused pairs."""
        ring = self.rings[g]
        if ring is None or n > ring.fresh + ring.remaining:
            raise RuntimeError(f"synthetic bank: generator {g} asked for {n} pairs beyond the epoch's need")
        if ring.fresh < n:
            self._refill(g, ring, min(ring.capacity - ring.fresh, ring.remaining))
        index = (torch.arange(n, device=self.device) + ring.head) % ring.capacity
        ring.head = (ring.head + n) % ring.capacity
        ring.fresh -= n
        return ring.images, ring.masks, index

    def _refill(self, g: int, ring: _Ring, k: int) -> None:
        """Write ``k`` new pairs into the ring's consumed positions, in calls of ``ring.draw`` pairs (the last
        call's surplus is discarded, so that every call has the same shape)."""
        start = (ring.head + ring.fresh) % ring.capacity
        done = 0
        with torch.no_grad():
            while done < k:
                n = min(ring.draw, k - done)
                gen = self.generators[g]
                drawn = check_samples(gen.sample(ring.draw, rng=self.rng), getattr(gen, "name", type(gen).__name__),
                                      ring.draw)
                rgb, mask = to_pairs(drawn[:n], self.size)
                self.discarded += ring.draw - n
                pos = (torch.arange(n, device=self.device) + start + done) % ring.capacity
                ring.images.index_copy_(0, pos, (rgb * 255.0).round_().to(torch.uint8))
                ring.masks.index_copy_(0, pos, mask.to(torch.uint8))
                done += n
        ring.fresh += k
        ring.remaining -= k
        self.generated += k
        self.refills += 1

    def info(self) -> dict[str, Any]:
        """What the record keeps: the ring sizes, their memory, the budget, and how much was generated."""
        capacities = [r.capacity if r is not None else 0 for r in self.rings]
        return {"capacity": capacities, "mb": round(sum(capacities) * bytes_per_pair(self.size) / 2**20, 1),
                "budget_mb": self.budget_mb, "chunk": self.chunk,
                "draw": [r.draw if r is not None else 0 for r in self.rings], "refills": self.refills,
                "generated": self.generated, "discarded": self.discarded}


def epoch_needs(source: str, batch_sizes: list[int], n_generators: int) -> list[int]:
    """Pairs each generator gives in an epoch of ``batch_sizes``: step ``s`` draws from generator
    ``s % n_generators``, the whole batch (synthetic) or its second half (mixed)."""
    needs = [0] * n_generators
    if source == "real" or n_generators == 0:
        return needs
    for step, n in enumerate(batch_sizes):
        needs[step % n_generators] += n if source == "synthetic" else n // 2
    return needs
