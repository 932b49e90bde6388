"""The ``elastic`` generator: random real pairs under one random smooth deformation each."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from bench.api import EpochCallback, Generator, GeneratorMeta, hookimpl


class ElasticGenerator(Generator):
    """Holds the real training pairs; each sample is one of them, elastically deformed (image and mask alike)."""

    cacheable = False  # nothing is learnt: fitting only keeps the data, so the harness refits every run

    def __init__(self, size: tuple[int, int], alpha: float = 0.06, grid: int = 4) -> None:
        if alpha < 0 or grid < 2:
            raise ValueError(f"elastic: alpha must be >= 0 and grid >= 2, got alpha={alpha}, grid={grid}")
        self.size, self.alpha, self.grid = tuple(size), float(alpha), int(grid)
        self.data: torch.Tensor | None = None

    def fit(self, data: torch.Tensor, *, epochs: int, batch_size: int, rng: torch.Generator,
            on_epoch: EpochCallback | None = None) -> dict[str, float]:
        self.data = data.to(torch.uint8 if data.dtype == torch.uint8 else torch.float16)
        return {}

    def sample(self, n: int, *, rng: torch.Generator) -> torch.Tensor:
        if self.data is None:
            raise RuntimeError("elastic: fit() must see the real pairs before sample()")
        device = self.data.device
        idx = torch.randint(len(self.data), (n,), generator=rng, device=rng.device).to(device)
        x = self.data[idx].float()
        h, w = x.shape[-2:]
        coarse = torch.randn(n, 2, self.grid, self.grid, generator=rng, device=rng.device).to(device)
        flow = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True) * (2 * self.alpha)
        theta = torch.eye(2, 3, device=device).expand(n, 2, 3)
        grid = F.affine_grid(theta, [n, 4, h, w], align_corners=False) + flow.permute(0, 2, 3, 1)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        mask = torch.where(out[:, 3:] > 0, 1.0, -1.0)
        out = torch.cat((out[:, :3].clamp(-1, 1), mask), 1)
        if tuple(out.shape[-2:]) != tuple(self.size):
            out = F.interpolate(out, size=self.size, mode="bilinear", align_corners=False)
            out[:, 3:] = torch.where(out[:, 3:] > 0, 1.0, -1.0)
        return out

    def to(self, device: torch.device) -> "ElasticGenerator":
        if self.data is not None:
            self.data = self.data.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def describe(self) -> str:
        return (f"elastic deformation of real pairs at {self.size[0]}x{self.size[1]}: displacement {self.alpha} "
                f"of the side, {self.grid}x{self.grid} control points, bicubic field")


def build_elastic(size: tuple[int, int], alpha: float = 0.06, grid: int = 4, width: float = 1.0,
                  lr: float = 0.0, seed: int = 0) -> ElasticGenerator:
    """The harness passes ``width``, ``lr`` and ``seed`` to every generator; nothing here learns, so they are unused."""
    return ElasticGenerator(size, alpha=alpha, grid=grid)


@hookimpl
def bench_register_generators(register):
    register(
        "elastic", build_elastic,
        description="classical augmentation baseline: random real pairs, elastically deformed (not a GAN)",
        meta=GeneratorMeta(size="192x256", options={"alpha": 0.06, "grid": 4}),
        reference="Simard, Steinkraus & Platt 2003, elastic distortions",
    )
