"""DCGAN for 4-channel image+mask pairs (Pollastri et al. Section 3.1, after Radford et al. 2016).

Generator: z (100) -> linear to (H/16 x W/16 x 512) -> four 5x5 stride-2 transposed convolutions
(512 -> 256 -> 128 -> 64 -> 4) with batch norm and leaky ReLU (0.2) between, tanh out: the paper's "each
layer, but the last two, is followed by a LReLU and batch normalization" holds for both networks (Radford et
al.'s generator used ReLU, which this one did until 2026-11-27). Discriminator: four 5x5
stride-2 convolutions (4 -> 64 -> 128 -> 256 -> 512), leaky ReLU, batch norm from the second, a linear
layer to one logit (the sigmoid sits in the loss). Adam 2e-4, beta1 0.5; non-saturating GAN loss.

One-sided label smoothing (real target 0.9, Salimans et al. 2016) is on by default: the real mask
channel is exactly -1/+1 while tanh outputs never are, and without smoothing the discriminator
separates them within a few hundred updates and the generator collapses to one checkered pattern
(seen on the fixture at 48x64: discriminator loss 0.02, generator loss 6.7, identical samples).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.api import EpochCallback, Generator, GeneratorMeta, hookimpl, move_optimizer_state, Option

Z_DIM = 100


class DCGANGenerator(nn.Module):
    def __init__(self, size: tuple[int, int], width: float = 1.0, z_dim: int = Z_DIM) -> None:
        super().__init__()
        h, w = size
        if h % 16 or w % 16:
            raise ValueError(f"dcgan: output size {h}x{w} must have height and width divisible by 16")
        ch = [max(4, int(round(c * width))) for c in (512, 256, 128, 64)]
        self.ch0, self.h0, self.w0 = ch[0], h // 16, w // 16
        self.project = nn.Linear(z_dim, ch[0] * self.h0 * self.w0)
        self.bn0 = nn.BatchNorm2d(ch[0])
        layers: list[nn.Module] = []
        for cin, cout in zip(ch, ch[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 5, 2, padding=2, output_padding=1, bias=False),
                       nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.ConvTranspose2d(ch[-1], 4, 5, 2, padding=2, output_padding=1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(-1, self.ch0, self.h0, self.w0)
        return self.body(F.leaky_relu(self.bn0(x), 0.2))


class DCGANDiscriminator(nn.Module):
    def __init__(self, size: tuple[int, int], width: float = 1.0) -> None:
        super().__init__()
        ch = [4] + [max(4, int(round(c * width))) for c in (64, 128, 256, 512)]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(ch, ch[1:])):
            layers.append(nn.Conv2d(cin, cout, 5, 2, padding=2, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(ch[-1] * (size[0] // 16) * (size[1] // 16), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x).flatten(1))


def _init(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class DCGAN(Generator):
    """The trainable pair generator the harness samples from."""

    def __init__(self, size: tuple[int, int], width: float = 1.0, lr: float = 2e-4, seed: int = 0,
                 real_label: float = 0.9) -> None:
        self.size = tuple(size)
        self.lr = lr
        self.real_label = real_label
        torch.manual_seed(seed)
        self.g = DCGANGenerator(self.size, width)
        self.d = DCGANDiscriminator(self.size, width)
        self.g.apply(_init)
        self.d.apply(_init)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=lr, betas=(0.5, 0.999))

    def to(self, device: torch.device) -> "DCGAN":
        self.g.to(device)
        self.d.to(device)
        move_optimizer_state([self.opt_g, self.opt_d], device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.g.parameters()).device

    def fit(self, data: torch.Tensor, *, epochs: int, batch_size: int, rng: torch.Generator,
            on_epoch: EpochCallback | None = None) -> dict[str, float]:
        device = self.device
        n = data.shape[0]
        last: dict[str, float] = {}
        for epoch in range(epochs):
            self.g.train()
            self.d.train()
            order = torch.randperm(n, generator=rng, device=rng.device).to(device)
            sums = torch.zeros(2, device=device)
            steps = 0
            for start in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
                real = data[order[start : start + batch_size]]
                b = real.shape[0]
                z = torch.randn(b, Z_DIM, generator=rng, device=rng.device).to(device)
                fake = self.g(z)
                ones, zeros = torch.ones(b, 1, device=device), torch.zeros(b, 1, device=device)
                loss_d = F.binary_cross_entropy_with_logits(self.d(real), ones * self.real_label) + \
                    F.binary_cross_entropy_with_logits(self.d(fake.detach()), zeros)
                self.opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                self.opt_d.step()
                loss_g = F.binary_cross_entropy_with_logits(self.d(fake), ones)
                self.opt_g.zero_grad(set_to_none=True)
                loss_g.backward()
                self.opt_g.step()
                sums += torch.stack((loss_d.detach(), loss_g.detach()))
                steps += 1
            d, g = (sums / max(steps, 1)).tolist()
            last = {"loss_d": d, "loss_g": g}
            if on_epoch:
                on_epoch(epoch + 1, last)
        return last

    @torch.no_grad()
    def sample(self, n: int, *, rng: torch.Generator) -> torch.Tensor:
        self.g.eval()
        z = torch.randn(n, Z_DIM, generator=rng, device=rng.device).to(self.device)
        return self.g(z)

    def state_dict(self) -> dict[str, Any]:
        return {"g": self.g.state_dict(), "d": self.d.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.g.load_state_dict(state["g"])
        self.d.load_state_dict(state["d"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])

    def describe(self) -> str:
        count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)  # noqa: E731
        return (f"DCGAN {self.size[0]}x{self.size[1]}x4: generator {count(self.g):,} parameters, "
                f"discriminator {count(self.d):,} parameters\n{self.g}\n{self.d}")


def build_dcgan(size: tuple[int, int], width: float = 1.0, lr: float = 2e-4, seed: int = 0,
                real_label: float = 0.9) -> DCGAN:
    return DCGAN(size, width=width, lr=lr, seed=seed, real_label=real_label)


@hookimpl
def bench_register_generators(register):
    register(
        "dcgan", build_dcgan,
        description=f"DCGAN generating RGB + mask (4 channels) from a {Z_DIM}-d z; 5x5 stride-2 (de)convolutions; "
                    "Adam (beta1 0.5) at --gan-lr",
        meta=GeneratorMeta(size="192x256", options={
            "real_label": Option(0.9, help="the discriminator's target for real pairs (one-sided label smoothing)")}),
        reference="Pollastri et al., Section 3.1; Radford et al. 2016",
    )
