"""Batched geometric and photometric augmentation, identical for an image and its mask.

One random transform per image (rotation, flips, shift, scale) is built as an affine grid and
applied with ``grid_sample`` to the whole batch at once, on whatever device the batch is on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transforms (the paper names them but gives no ranges; these are ours)."""

    rotation_deg: float = 180.0
    flip: bool = True
    shift: float = 0.1
    scale: tuple[float, float] = (0.9, 1.1)
    contrast: tuple[float, float] = (0.8, 1.2)
    enabled: bool = True

    def as_dict(self) -> dict:
        return asdict(self)


def _uniform(n: int, lo: float, hi: float, rng: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=rng, device=device) * (hi - lo) + lo


def augment(
    rgb: torch.Tensor, mask: torch.Tensor, rng: torch.Generator, cfg: AugmentConfig = AugmentConfig()
) -> tuple[torch.Tensor, torch.Tensor]:
    """``rgb (B, 3, H, W)`` in [0, 1] and ``mask (B, 1, H, W)`` in {0, 1} -> augmented copies."""
    if not cfg.enabled:
        return rgb, mask
    b, device = rgb.shape[0], rgb.device
    angle = _uniform(b, -cfg.rotation_deg, cfg.rotation_deg, rng, device) * (math.pi / 180.0)
    scale = _uniform(b, cfg.scale[0], cfg.scale[1], rng, device)
    sx = torch.ones(b, device=device)
    sy = torch.ones(b, device=device)
    if cfg.flip:
        sx = torch.where(torch.rand(b, generator=rng, device=device) < 0.5, -sx, sx)
        sy = torch.where(torch.rand(b, generator=rng, device=device) < 0.5, -sy, sy)
    tx = _uniform(b, -cfg.shift, cfg.shift, rng, device) * 2.0
    ty = _uniform(b, -cfg.shift, cfg.shift, rng, device) * 2.0
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    aspect = rgb.shape[-2] / rgb.shape[-1]  # a true rotation in pixels, expressed in normalised coords
    theta = torch.stack(
        (
            torch.stack((cos * sx, -sin * aspect * sy, tx), 1),
            torch.stack((sin / aspect * sx, cos * sy, ty), 1),
        ),
        1,
    ).to(rgb.dtype)
    grid = F.affine_grid(theta, list(rgb.shape), align_corners=False)
    both = torch.cat((rgb, mask.to(rgb.dtype)), 1)
    out = F.grid_sample(both, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    rgb_out, mask_out = out[:, :3], (out[:, 3:] > 0.5).to(rgb.dtype)
    factor = _uniform(b, cfg.contrast[0], cfg.contrast[1], rng, device).view(b, 1, 1, 1).to(rgb.dtype)
    mean = rgb_out.mean(dim=(1, 2, 3), keepdim=True)
    rgb_out = ((rgb_out - mean) * factor + mean).clamp(0.0, 1.0)
    return rgb_out, mask_out
