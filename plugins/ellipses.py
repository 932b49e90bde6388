"""The ``ellipses`` control generator: a shape prior with nothing learnt.

Each sample is a random ellipse mask on a skin-coloured, vignetted, softly shaded background, the ellipse
filled with a darker pigment. It never sees the training images. Trained in place of a GAN in the two-phase
schedule, it shows how much of a GAN's gain a lesion-shaped blob on skin already gives: a GAN earns credit for
what it learnt only where it beats this control.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from bench.api import EpochCallback, Generator, GeneratorMeta, hookimpl

SKIN = torch.tensor([[236, 200, 180], [224, 176, 150], [205, 150, 120], [180, 125, 95], [150, 100, 75],
                     [240, 210, 200]], dtype=torch.float32) / 255.0
"""Light to dark skin tones (RGB in [0, 1])."""
PIGMENT = torch.tensor([90, 55, 35], dtype=torch.float32) / 255.0
"""A brown lesion pigment (RGB in [0, 1]); each sample scales it."""


class EllipsesGenerator(Generator):
    """Random ellipses on skin: centre in the middle 70%, semi-axes 8-38% of the short side, any angle."""

    cacheable = False  # nothing is learnt: building it is all there is

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.device = torch.device("cpu")

    def fit(self, data: torch.Tensor, *, epochs: int, batch_size: int, rng: torch.Generator,
            on_epoch: EpochCallback | None = None) -> dict[str, float]:
        return {}

    def sample(self, n: int, *, rng: torch.Generator) -> torch.Tensor:
        h, w = self.size

        def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
            u = torch.rand(n, *shape, generator=rng, device=rng.device).to(self.device)
            return low + (high - low) * u

        yy = torch.linspace(-1, 1, h, device=self.device).view(1, h, 1)
        xx = torch.linspace(-1, 1, w, device=self.device).view(1, 1, w)
        tone = torch.randint(len(SKIN), (n,), generator=rng, device=rng.device).to("cpu")
        skin = (SKIN[tone].to(self.device) * uniform(0.94, 1.04, 1) * uniform(0.97, 1.03, 3)).view(n, 3, 1, 1)
        coarse = uniform(-1, 1, 1, 4, 4)
        shading = 1 + 0.08 * F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
        image = skin * shading

        cy, cx = uniform(-0.7, 0.7, 1, 1), uniform(-0.7, 0.7, 1, 1)
        short = min(h, w)
        ay = uniform(0.08, 0.38, 1, 1) * short / (h / 2)
        ax = uniform(0.08, 0.38, 1, 1) * short / (w / 2)
        angle = uniform(0, math.pi, 1, 1)
        dy, dx = yy - cy, xx - cx
        u = (dx * torch.cos(angle) + dy * torch.sin(angle) * (h / w)) / ax
        v = (-dx * torch.sin(angle) * (w / h) + dy * torch.cos(angle)) / ay
        inside = ((u ** 2 + v ** 2) <= 1).unsqueeze(1).float()
        soft = F.avg_pool2d(inside, 3, stride=1, padding=1, count_include_pad=False)

        contrast = uniform(0.3, 0.85, 1, 1, 1)
        pigment = PIGMENT.to(self.device).view(1, 3, 1, 1) * uniform(0.5, 1.3, 3, 1, 1)
        lesion = skin * (1 - contrast) + pigment * contrast
        image = image * (1 - soft) + lesion * soft
        radius = torch.sqrt(yy ** 2 + xx ** 2).unsqueeze(1)
        image = image * (1 - uniform(0.05, 0.4, 1, 1, 1) * (radius - 0.6).clamp(min=0) ** 2)
        image = image + 0.015 * torch.randn(n, 3, h, w, generator=rng, device=rng.device).to(self.device)
        return torch.cat((image.clamp(0, 1) * 2 - 1, inside * 2 - 1), 1)

    def to(self, device: torch.device) -> "EllipsesGenerator":
        self.device = torch.device(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def describe(self) -> str:
        return (f"random ellipses on skin at {self.size[0]}x{self.size[1]}: no parameters, nothing learnt "
                "(a shape-prior control for the GANs)")


def build_ellipses(size: tuple[int, int], width: float = 1.0, lr: float = 0.0, seed: int = 0) -> EllipsesGenerator:
    """The harness passes ``width``, ``lr`` and ``seed`` to every generator; nothing here learns, so they are
    unused (the samples' randomness comes from the run's generator RNG)."""
    return EllipsesGenerator(size)


@hookimpl
def bench_register_generators(register):
    register(
        "ellipses", build_ellipses,
        description="control: random ellipse masks on skin-coloured, vignetted backgrounds (nothing learnt)",
        meta=GeneratorMeta(size="192x256"),
        reference="skinbench control for Pollastri et al.: a shape prior without a GAN",
    )
