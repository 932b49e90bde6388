"""LAPGAN for 4-channel image+mask pairs (Pollastri et al. Section 3.2, after Denton et al. 2015).

Five independent GANs. Level 0: G0/D0 are two fully connected layers each; G0 maps a 100-d z to a
6x8x4 image. Levels 1-4: G_k is a three-layer CNN (7x7, 7x7, 5x5 kernels, 64 channels, as Denton's
"eyescream") that takes the upsampled coarser image plus a noise plane and outputs a 4-channel residual
at 12x16, 24x32, 48x64, 96x128; D_k (two stride-2 convolutions and a fully connected layer) judges the
coarse image together with coarse + residual. Leaky ReLU inside, no activation on generator outputs.
G4 is applied once more to reach 192x256. Each level is trained on real Laplacian pyramids:
coarse = upsample(downsample(fine)), residual = fine - coarse.

Other output sizes follow from the base size: the output is base x 2^k for any k >= 1; levels beyond
the fourth reuse G4 (as the paper does once), and a smaller k trains and uses only G1..G_k.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.api import EpochCallback, Generator, GeneratorMeta, format_size, hookimpl, move_optimizer_state, parse_size, Option

Z_DIM = 100
CONV_LEVELS = 4


def downsample(x: torch.Tensor) -> torch.Tensor:
    """Halve each side by 2x2 averaging."""
    return F.avg_pool2d(x, 2)


def upsample(x: torch.Tensor) -> torch.Tensor:
    """Double each side bilinearly."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def build_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """``[coarsest image, residual_1, ..., residual_levels]`` of a batch ``(B, C, H, W)``."""
    images = [x]
    for _ in range(levels):
        images.append(downsample(images[-1]))
    images.reverse()
    return [images[0]] + [fine - upsample(coarse) for coarse, fine in zip(images, images[1:])]


def reconstruct(pyramid: list[torch.Tensor]) -> torch.Tensor:
    """Inverse of :func:`build_pyramid`."""
    image = pyramid[0]
    for residual in pyramid[1:]:
        image = upsample(image) + residual
    return image


class BaseG(nn.Module):
    def __init__(self, base: tuple[int, int], hidden: int) -> None:
        super().__init__()
        self.base = base
        self.net = nn.Sequential(nn.Linear(Z_DIM, hidden), nn.LeakyReLU(0.2, inplace=True),
                                 nn.Linear(hidden, 4 * base[0] * base[1]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, 4, *self.base)


class BaseD(nn.Module):
    def __init__(self, base: tuple[int, int], hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4 * base[0] * base[1], hidden), nn.LeakyReLU(0.2, inplace=True),
                                 nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, coarse: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x.flatten(1))


class ResidualG(nn.Module):
    """Coarse (upsampled) image + a noise plane -> a 4-channel residual."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(5, channels, 7, padding=3), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(channels, channels, 7, padding=3), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(channels, 4, 5, padding=2),
        )

    def forward(self, coarse: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat((coarse, noise), 1))


class ResidualD(nn.Module):
    """Judges a fine image given its coarse version: two stride-2 convolutions and a linear layer."""

    def __init__(self, size: tuple[int, int], channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(8, channels, 5, stride=2, padding=2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(channels, channels, 5, stride=2, padding=2), nn.LeakyReLU(0.2, inplace=True),
        )
        h, w = (size[0] + 3) // 4, (size[1] + 3) // 4
        self.fc = nn.Linear(channels * h * w, 1)

    def forward(self, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        return self.fc(self.net(torch.cat((coarse, fine), 1)).flatten(1))


class LAPGAN(Generator):
    """The pyramid of independent GANs; ``levels`` conv levels are applied on top of the base."""

    def __init__(self, size: tuple[int, int], base: tuple[int, int] = (6, 8), width: float = 1.0,
                 lr: float = 2e-4, seed: int = 0) -> None:
        self.size, self.base = tuple(size), tuple(base)
        k, rest = 0, self.size
        while rest[0] > base[0] and rest[0] % 2 == 0 and rest[1] % 2 == 0:
            rest, k = (rest[0] // 2, rest[1] // 2), k + 1
        if rest != self.base or k < 1:
            raise ValueError(
                f"lapgan: output size {format_size(self.size)} is not the base {format_size(self.base)} times a "
                f"power of two; use e.g. {format_size((base[0] * 32, base[1] * 32))} or set base=HxW"
            )
        self.levels = k
        torch.manual_seed(seed)
        ch = max(4, int(round(64 * width)))
        self.sizes = [(base[0] * 2**i, base[1] * 2**i) for i in range(k + 1)]
        trained = min(k, CONV_LEVELS)
        self.gs = nn.ModuleList([BaseG(self.base, max(8, int(round(1200 * width))))] +
                                [ResidualG(ch) for _ in range(trained)])
        self.ds = nn.ModuleList([BaseD(self.base, max(8, int(round(600 * width))))] +
                                [ResidualD(self.sizes[i], ch) for i in range(1, trained + 1)])
        self.opt_g = [torch.optim.Adam(g.parameters(), lr=lr, betas=(0.5, 0.999)) for g in self.gs]
        self.opt_d = [torch.optim.Adam(d.parameters(), lr=lr, betas=(0.5, 0.999)) for d in self.ds]

    def to(self, device: torch.device) -> "LAPGAN":
        self.gs.to(device)
        self.ds.to(device)
        move_optimizer_state(self.opt_g + self.opt_d, device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.gs.parameters()).device

    def _noise(self, like: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        shape = (like.shape[0], 1, *like.shape[-2:])
        return torch.randn(shape, generator=rng, device=rng.device).to(like.device)

    def fit(self, data: torch.Tensor, *, epochs: int, batch_size: int, rng: torch.Generator,
            on_epoch: EpochCallback | None = None) -> dict[str, float]:
        device, n = self.device, data.shape[0]
        trained = len(self.gs) - 1
        last: dict[str, float] = {}
        for epoch in range(epochs):
            self.gs.train()
            self.ds.train()
            order = torch.randperm(n, generator=rng, device=rng.device).to(device)
            sums = torch.zeros(len(self.gs), 2, device=device)
            steps = 0
            for start in range(0, max(n - batch_size + 1, 1), batch_size):
                real = data[order[start : start + batch_size]]
                # The top trained level sees the real images at its own size (pyramids are exact).
                while real.shape[-2] > self.sizes[trained][0]:
                    real = downsample(real)
                pyramid = build_pyramid(real, trained)
                images = [pyramid[0]]
                for residual in pyramid[1:]:
                    images.append(upsample(images[-1]) + residual)
                for level in range(trained + 1):
                    sums[level] += self._step(level, images, pyramid, rng)
                steps += 1
            means = (sums / max(steps, 1)).tolist()
            last = {f"level{i}_{k}": v for i, pair in enumerate(means) for k, v in zip(("loss_d", "loss_g"), pair)}
            if on_epoch:
                on_epoch(epoch + 1, {"loss_d": sum(p[0] for p in means), "loss_g": sum(p[1] for p in means)})
        return last

    def _step(self, level: int, images: list[torch.Tensor], pyramid: list[torch.Tensor],
              rng: torch.Generator) -> torch.Tensor:
        g, d, opt_g, opt_d = self.gs[level], self.ds[level], self.opt_g[level], self.opt_d[level]
        b = pyramid[0].shape[0]
        if level == 0:
            coarse, real = None, pyramid[0]
            fake = g(torch.randn(b, Z_DIM, generator=rng, device=rng.device).to(real.device))
        else:
            coarse = upsample(images[level - 1])
            real = coarse + pyramid[level]
            fake = coarse + g(coarse, self._noise(coarse, rng))
        ones = torch.ones(b, 1, device=real.device)
        zeros = torch.zeros(b, 1, device=real.device)
        loss_d = F.binary_cross_entropy_with_logits(d(real, coarse), ones) + \
            F.binary_cross_entropy_with_logits(d(fake.detach(), coarse), zeros)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = F.binary_cross_entropy_with_logits(d(fake, coarse), ones)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return torch.stack((loss_d.detach(), loss_g.detach()))

    @torch.no_grad()
    def sample(self, n: int, *, rng: torch.Generator) -> torch.Tensor:
        self.gs.eval()
        image = self.gs[0](torch.randn(n, Z_DIM, generator=rng, device=rng.device).to(self.device))
        for level in range(1, self.levels + 1):
            coarse = upsample(image)
            image = coarse + self.gs[min(level, len(self.gs) - 1)](coarse, self._noise(coarse, rng))
        return image.clamp(-1.0, 1.0)

    def state_dict(self) -> dict[str, Any]:
        return {"gs": self.gs.state_dict(), "ds": self.ds.state_dict(),
                "opt_g": [o.state_dict() for o in self.opt_g], "opt_d": [o.state_dict() for o in self.opt_d]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gs.load_state_dict(state["gs"])
        self.ds.load_state_dict(state["ds"])
        for opt, s in zip(self.opt_g, state["opt_g"]):
            opt.load_state_dict(s)
        for opt, s in zip(self.opt_d, state["opt_d"]):
            opt.load_state_dict(s)

    def describe(self) -> str:
        count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)  # noqa: E731
        lines = [f"LAPGAN {format_size(self.size)}x4 from base {format_size(self.base)}: "
                 f"{len(self.gs)} independent GANs, {self.levels} upsampling steps"]
        for i, (g, d) in enumerate(zip(self.gs, self.ds)):
            what = f"z({Z_DIM}) -> {format_size(self.base)}x4, fully connected" if i == 0 else \
                f"residual at {format_size(self.sizes[i])}, conditioned on the upsampled {format_size(self.sizes[i - 1])}"
            lines.append(f"  level {i}: {what}; G {count(g):,} parameters, D {count(d):,} parameters")
        for level in range(len(self.gs), self.levels + 1):
            lines.append(f"  step {level}: G{len(self.gs) - 1} applied again at {format_size(self.sizes[level])}")
        return "\n".join(lines)


def build_lapgan(size: tuple[int, int], width: float = 1.0, lr: float = 2e-4, seed: int = 0,
                 base: str = "6x8") -> LAPGAN:
    return LAPGAN(size, parse_size(base, "lapgan base"), width=width, lr=lr, seed=seed)


@hookimpl
def bench_register_generators(register):
    register(
        "lapgan", build_lapgan,
        description="LAPGAN: five independent GANs over a Laplacian pyramid, 6x8 base, G4 reused for 192x256",
        meta=GeneratorMeta(size="192x256", options={
            "base": Option("6x8", help=f"HxW of the first GAN's output (from a {Z_DIM}-d z); the pyramid doubles it")}),
        reference="Pollastri et al., Section 3.2; Denton et al. 2015",
    )
