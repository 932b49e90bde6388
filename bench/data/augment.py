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


NOISE_ROWS = 7
"""Uniform draws per image: angle, scale, flip x, flip y, shift x, shift y, contrast."""


def augment_noise(b: int, rng: torch.Generator, device: torch.device,
                  cfg: AugmentConfig = AugmentConfig()) -> torch.Tensor:
    """The ``(7, b)`` uniform draws of :func:`augment`, in the order it has always drawn them.

    Drawn apart from the transform so a captured training step (a CUDA graph) can take them as an input
    while the run's generator stays the one source of randomness (saved in checkpoints, resumable).
    """
    rows = [torch.rand(b, generator=rng, device=device) for _ in range(2)]
    if cfg.flip:
        rows += [torch.rand(b, generator=rng, device=device) for _ in range(2)]
    else:
        rows += [torch.ones(b, device=device)] * 2  # never below 0.5: no flip
    rows += [torch.rand(b, generator=rng, device=device) for _ in range(3)]
    return torch.stack(rows)


def apply_augment(rgb: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor,
                  cfg: AugmentConfig = AugmentConfig()) -> tuple[torch.Tensor, torch.Tensor]:
    """Transform ``rgb (B, 3, H, W)`` in [0, 1] and ``mask (B, 1, H, W)`` in {0, 1} with the draws ``noise``.

    No host synchronisation and no data-dependent shapes: safe inside a captured CUDA graph.
    """
    if not cfg.enabled:
        return rgb, mask
    b, device = rgb.shape[0], rgb.device

    def span(row: int, lo: float, hi: float) -> torch.Tensor:
        return noise[row] * (hi - lo) + lo

    angle = span(0, -cfg.rotation_deg, cfg.rotation_deg) * (math.pi / 180.0)
    scale = span(1, cfg.scale[0], cfg.scale[1])
    ones = torch.ones(b, device=device)
    sx = torch.where(noise[2] < 0.5, -ones, ones)
    sy = torch.where(noise[3] < 0.5, -ones, ones)
    tx = span(4, -cfg.shift, cfg.shift) * 2.0
    ty = span(5, -cfg.shift, cfg.shift) * 2.0
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
    factor = span(6, cfg.contrast[0], cfg.contrast[1]).view(b, 1, 1, 1).to(rgb.dtype)
    mean = rgb_out.mean(dim=(1, 2, 3), keepdim=True)
    rgb_out = ((rgb_out - mean) * factor + mean).clamp(0.0, 1.0)
    return rgb_out, mask_out


def augment(
    rgb: torch.Tensor, mask: torch.Tensor, rng: torch.Generator, cfg: AugmentConfig = AugmentConfig()
) -> tuple[torch.Tensor, torch.Tensor]:
    """``rgb (B, 3, H, W)`` in [0, 1] and ``mask (B, 1, H, W)`` in {0, 1} -> augmented copies."""
    if not cfg.enabled:
        return rgb, mask
    return apply_augment(rgb, mask, augment_noise(rgb.shape[0], rng, rgb.device, cfg), cfg)
