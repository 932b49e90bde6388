"""DDPM for 4-channel image+mask pairs (Ho et al. 2020), sampled with DDIM (Song et al. 2021).

Not in Pollastri et al.: the diffusion counterpart of their two GANs, over the same 4 channels (RGB and the
mask, each in [-1, 1]). Training is Ho et al.'s: a linear noise schedule over T = 1000 steps (beta from 1e-4
to 0.02), a U-Net predicts the noise added to a pair at a uniformly drawn step, mean squared error, Adam,
gradients clipped at norm 1, and an exponential moving average (EMA) of the weights that is what samples.
Sampling is DDIM's deterministic update (eta = 0) over ``sample_steps`` evenly spaced steps from T-1 to 0, the
predicted clean pair clipped to [-1, 1] at every step.

The denoiser: a U-Net with sinusoidal timestep embedding (through a two-layer MLP, added in every residual
block), two residual blocks (GroupNorm, SiLU, 3x3 convolutions) per resolution, channel multipliers
1, 2, 2, 4, 4 on ``64 x width`` base channels, halving the resolution until it would drop below 6x8 (at most
four times: 48x64 -> 6x8, 192x256 -> 12x16), and self-attention at the bottleneck.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from bench.api import EpochCallback, Generator, GeneratorMeta, format_size, hookimpl, move_optimizer_state, Option

TIMESTEPS = 1000
BETA_START, BETA_END = 1e-4, 0.02
EMA_DECAY = 0.999
MULTIPLIERS = (1, 2, 2, 4, 4)
MIN_SIZE = (6, 8)

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""A denoiser: ``(x_t, t) -> predicted noise``, ``t`` a ``(B,)`` long tensor of steps in ``[0, T)``."""


def linear_schedule(timesteps: int = TIMESTEPS, start: float = BETA_START, end: float = BETA_END) -> torch.Tensor:
    """Cumulative products of ``1 - beta`` (alpha-bar) for Ho et al.'s linear beta schedule, float64."""
    betas = torch.linspace(start, end, timesteps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, 0)


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """The forward process in closed form: ``sqrt(ab_t) x0 + sqrt(1 - ab_t) noise`` (Ho et al., eq. 4)."""
    ab = alpha_bar.to(x0.device)[t].to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
    return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise


def ddim_steps(timesteps: int, steps: int) -> list[int]:
    """``steps`` distinct steps evenly spaced from ``timesteps - 1`` down to 0."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"sample_steps must lie between 1 and {timesteps}, got {steps}")
    if steps == 1:
        return [timesteps - 1]
    return sorted({round(i * (timesteps - 1) / (steps - 1)) for i in range(steps)}, reverse=True)


@torch.no_grad()
def ddim_sample(model: EpsModel, noise: torch.Tensor, alpha_bar: torch.Tensor, steps: int) -> torch.Tensor:
    """DDIM with eta = 0 (Song et al. 2021, eq. 12) from ``noise`` = x_T: at each step the clean pair is
    predicted from the noise estimate, clipped to [-1, 1], and moved to the next step's noise level; the last
    step returns the clean prediction."""
    x = noise
    ab = alpha_bar.to(noise.device)
    schedule = ddim_steps(len(ab), steps)
    x0 = x
    for i, t in enumerate(schedule):
        a_t = ab[t].to(x.dtype)
        eps = model(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long))
        x0 = ((x - (1 - a_t).sqrt() * eps) / a_t.sqrt()).clamp(-1.0, 1.0)
        if i + 1 == len(schedule):
            break
        a_prev = ab[schedule[i + 1]].to(x.dtype)
        eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()  # the noise consistent with the clipped prediction
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return x0


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer steps (Vaswani et al. 2017, as Ho et al. use it), ``(B, dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat((args.sin(), args.cos()), 1)
    return F.pad(emb, (0, dim % 2))


def _norm(channels: int) -> nn.GroupNorm:
    groups = next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    """Single-head self-attention over the positions of a feature map, with a residual connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)
        y = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(y.transpose(-1, -2).reshape(b, c, h, w))


def levels_for(size: tuple[int, int]) -> int:
    """How many times the U-Net halves ``size``: until the next halving would go below 6x8, at most four."""
    h, w = size
    levels = 0
    while levels < len(MULTIPLIERS) - 1 and h % 2 == 0 and w % 2 == 0 and h // 2 >= MIN_SIZE[0] \
            and w // 2 >= MIN_SIZE[1]:
        h, w, levels = h // 2, w // 2, levels + 1
    return levels


class Denoiser(nn.Module):
    """The noise-predicting U-Net: ``(x_t, t) -> eps``, 4 channels in and out."""

    def __init__(self, size: tuple[int, int], width: float = 1.0, blocks: int = 2) -> None:
        super().__init__()
        self.levels = levels_for(size)
        if self.levels == 0:
            raise ValueError(f"ddpm: output size {format_size(size)} is too small; expected at least 12x16 with "
                             "even height and width")
        base = max(8, int(round(64 * width)))
        self.emb_in = base
        emb_dim = 4 * base
        self.time = nn.Sequential(nn.Linear(base, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        chans = [base * m for m in MULTIPLIERS[: self.levels + 1]]
        self.stem = nn.Conv2d(4, base, 3, padding=1)
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        skips = [base]
        cin = base
        for level, ch in enumerate(chans):
            for _ in range(blocks):
                self.down.append(ResBlock(cin, ch, emb_dim))
                cin = ch
                skips.append(ch)
            if level < self.levels:
                self.pool.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        self.mid1, self.mid_attn, self.mid2 = ResBlock(cin, cin, emb_dim), Attention(cin), ResBlock(cin, cin, emb_dim)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level, ch in reversed(list(enumerate(chans))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(cin + skips.pop(), ch, emb_dim))
                cin = ch
            if level > 0:
                self.upsample.append(nn.Conv2d(ch, ch, 3, padding=1))
        self.blocks = blocks
        self.head = nn.Sequential(_norm(cin), nn.SiLU(), nn.Conv2d(cin, 4, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time(timestep_embedding(t, self.emb_in))
        h = self.stem(x)
        hs = [h]
        blocks = iter(self.down)
        for level in range(self.levels + 1):
            for _ in range(self.blocks):
                h = next(blocks)(h, emb)
                hs.append(h)
            if level < self.levels:
                h = self.pool[level](h)
                hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        blocks = iter(self.up)
        for i, level in enumerate(reversed(range(self.levels + 1))):
            for _ in range(self.blocks + 1):
                h = next(blocks)(torch.cat((h, hs.pop()), 1), emb)
            if level > 0:
                h = self.upsample[i](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.head(h)


class DDPM(Generator):
    """Denoising diffusion over image+mask pairs; samples with DDIM from the EMA weights."""

    def __init__(self, size: tuple[int, int], width: float = 1.0, lr: float = 2e-4, seed: int = 0,
                 sample_steps: int = 50, ema_decay: float = EMA_DECAY) -> None:
        ddim_steps(TIMESTEPS, sample_steps)
        self.size = tuple(size)
        self.sample_steps = sample_steps
        self.ema_decay = ema_decay
        torch.manual_seed(seed)
        self.model = Denoiser(self.size, width)
        self.ema = Denoiser(self.size, width)
        self.ema.load_state_dict(self.model.state_dict())
        self.ema.requires_grad_(False)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.updates = 0
        self.alpha_bar = linear_schedule()

    def to(self, device: torch.device) -> "DDPM":
        self.model.to(device)
        self.ema.to(device)
        move_optimizer_state([self.opt], device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def fit(self, data: torch.Tensor, *, epochs: int, batch_size: int, rng: torch.Generator,
            on_epoch: EpochCallback | None = None) -> dict[str, float]:
        device = self.device
        ab = self.alpha_bar.to(device=device, dtype=torch.float32)
        n = data.shape[0]
        last: dict[str, float] = {}
        for epoch in range(epochs):
            self.model.train()
            order = torch.randperm(n, generator=rng, device=rng.device).to(device)
            total, steps = torch.zeros((), device=device), 0
            for start in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
                x0 = data[order[start : start + batch_size]]
                b = x0.shape[0]
                t = torch.randint(0, TIMESTEPS, (b,), generator=rng, device=rng.device).to(device)
                noise = torch.randn(x0.shape, generator=rng, device=rng.device).to(device)
                loss = F.mse_loss(self.model(q_sample(x0, t, noise, ab), t), noise)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                self.opt.step()
                self._update_ema()
                total += loss.detach()
                steps += 1
            last = {"loss": float(total) / max(steps, 1)}
            if on_epoch:
                on_epoch(epoch + 1, last)
        return last

    @torch.no_grad()
    def _update_ema(self) -> None:
        """EMA with the usual warm-up, ``min(decay, (1 + n) / (10 + n))``, so early weights fade quickly."""
        self.updates += 1
        decay = min(self.ema_decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(list(self.ema.parameters()), list(self.model.parameters()), 1.0 - decay)

    @torch.no_grad()
    def sample(self, n: int, *, rng: torch.Generator) -> torch.Tensor:
        self.ema.eval()
        h, w = self.size
        chunk = max(1, 2**22 // (h * w)) if self.device.type == "cuda" else 64  # CPU: small batches are faster
        out = []
        for start in range(0, n, chunk):
            noise = torch.randn(min(chunk, n - start), 4, h, w, generator=rng, device=rng.device).to(self.device)
            out.append(ddim_sample(self.ema, noise, self.alpha_bar, self.sample_steps))
        return torch.cat(out)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "ema": self.ema.state_dict(), "opt": self.opt.state_dict(),
                "updates": torch.tensor(self.updates)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        self.updates = int(state["updates"])

    def describe(self) -> str:
        params = sum(p.numel() for p in self.model.parameters())
        bottom = (self.size[0] >> self.model.levels, self.size[1] >> self.model.levels)
        return (f"DDPM {format_size(self.size)}x4: U-Net denoiser {params:,} parameters, {self.model.levels} "
                f"halvings to {format_size(bottom)} (self-attention there), T = {TIMESTEPS} linear betas "
                f"{BETA_START:g}..{BETA_END:g}, EMA {self.ema_decay}, DDIM sampling in {self.sample_steps} steps\n"
                f"{self.model}")


def build_ddpm(size: tuple[int, int], width: float = 1.0, lr: float = 2e-4, seed: int = 0, sample_steps: int = 50,
               ema_decay: float = EMA_DECAY) -> DDPM:
    return DDPM(size, width=width, lr=lr, seed=seed, sample_steps=sample_steps, ema_decay=ema_decay)


@hookimpl
def bench_register_generators(register):
    register(
        "ddpm", build_ddpm,
        description=f"DDPM over RGB + mask (4 channels): U-Net noise predictor, T={TIMESTEPS} linear betas "
                    f"{BETA_START:g}..{BETA_END:g}, EMA, DDIM sampling (eta 0) in --sample-steps steps",
        meta=GeneratorMeta(size="192x256", iterative=True, options={
            "ema_decay": Option(EMA_DECAY, help="decay of the weights' moving average that samples")}),
        reference="Ho et al. 2020, Denoising Diffusion Probabilistic Models (arXiv:2006.11239); Song et al. 2021, "
                  "Denoising Diffusion Implicit Models (arXiv:2010.02502)",
    )
