"""The contracts plugins implement: generators (image+mask GANs) and schedule phases."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

import torch

SOURCES = ("real", "synthetic", "mixed")


@dataclass(frozen=True)
class Phase:
    """One phase of a schedule: where batches come from and for how many epochs."""

    name: str
    source: str
    epochs: int

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"phase source must be one of {SOURCES}, got {self.source!r}")


EpochCallback = Callable[[int, dict[str, float]], None]


class Generator(ABC):
    """A generative model of 4-channel pairs: RGB and mask, each in [-1, 1], at ``size``.

    ``fit`` trains on real pairs already on the device; ``sample`` returns new pairs on the same
    device without a host round trip. The harness binarises the mask channel (``> 0``).
    """

    size: tuple[int, int]
    cacheable: bool = True
    """False for generators that only hold the real data (nothing learnt): the harness fits them every run."""

    @abstractmethod
    def fit(
        self,
        data: torch.Tensor,
        *,
        epochs: int,
        batch_size: int,
        rng: torch.Generator,
        on_epoch: EpochCallback | None = None,
    ) -> dict[str, float]:
        """Train on ``data`` ``(N, 4, H, W)``; return the last epoch's mean losses."""

    @abstractmethod
    def sample(self, n: int, *, rng: torch.Generator) -> torch.Tensor:
        """``n`` new pairs ``(n, 4, H, W)`` in [-1, 1] on the model's device."""

    @abstractmethod
    def to(self, device: torch.device) -> "Generator":
        """Move every network to ``device``."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Tensors only (checkpoints load with ``weights_only=True``)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def describe(self) -> str:
        """A human-readable summary of the networks (layers, parameter counts); override to say more."""
        doc = (type(self).__doc__ or "").strip().splitlines()
        summary = f"{type(self).__name__} generating {self.size[0]}x{self.size[1]}x4 pairs"
        return summary + (f": {doc[0]}" if doc else "")


def move_optimizer_state(optimizers: list[torch.optim.Optimizer], device: torch.device) -> None:
    """Move the tensors of optimisers' state (Adam moments) to ``device``, as ``Module.to`` does for weights."""
    for opt in optimizers:
        for state in opt.state.values():
            for key, value in state.items():
                if torch.is_tensor(value):
                    state[key] = value.to(device)
