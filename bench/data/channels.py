"""Channel sets (Table 1): RGB, RGB+HSV+L*, RGB+HSV+CIELAB, computed in torch on whole batches.

The conversions follow scikit-image's ``rgb2hsv`` and ``rgb2lab`` (D65, 2 degree observer) exactly
(tests compare them), and run on the training device after augmentation, so real and synthetic
batches are expanded the same way. Each channel is mapped by a fixed affine to about [-1, 1].
"""

from __future__ import annotations

import torch

from bench.errors import ConfigError

CHANNEL_SETS: dict[str, tuple[str, ...]] = {
    "rgb": ("R", "G", "B"),
    "rgb-hsv-l": ("R", "G", "B", "H", "S", "V", "L*"),
    "rgb-hsv-lab": ("R", "G", "B", "H", "S", "V", "L*", "a*", "b*"),
}

_XYZ_FROM_RGB = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
_D65 = (0.95047, 1.0, 1.08883)
"""Python numbers, never tensors: the conversion runs inside a captured training step, where a constant tensor
would be a host-to-device copy (CUDA graph capture refuses it; an eager step waits on it)."""


def channel_count(channel_set: str) -> int:
    return len(_names(channel_set))


def _names(channel_set: str) -> tuple[str, ...]:
    if channel_set not in CHANNEL_SETS:
        raise ConfigError(
            f"--channels: unknown channel set {channel_set!r}; expected one of {', '.join(CHANNEL_SETS)}"
        )
    return CHANNEL_SETS[channel_set]


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] -> HSV in [0, 1], as ``skimage.color.rgb2hsv``."""
    r, g, b = rgb.unbind(1)
    v, _ = rgb.max(1)
    delta = v - rgb.min(1).values
    s = torch.where(v > 0, delta / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(
        r == v, (g - b) / safe, torch.where(g == v, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe)
    )
    h = torch.remainder(h / 6.0, 1.0)
    h = torch.where(delta > 0, h, torch.zeros_like(h))
    return torch.stack((h, s, v), 1)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] -> CIELAB (L in [0, 100]), as ``skimage.color.rgb2lab``."""
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).clamp(min=0) ** 2.4, rgb / 12.92)
    r, g, b = lin.unbind(1)
    t = torch.stack([r * (m[0] / white) + g * (m[1] / white) + b * (m[2] / white)
                     for m, white in zip(_XYZ_FROM_RGB, _D65)], 1)  # XYZ over the white point
    f = torch.where(t > 0.008856, t.clamp(min=1e-12) ** (1.0 / 3.0), 7.787 * t + 16.0 / 116.0)
    fx, fy, fz = f.unbind(1)
    lum = 116.0 * fy - 16.0
    return torch.stack((lum, 500.0 * (fx - fy), 200.0 * (fy - fz)), 1)


def expand(rgb: torch.Tensor, channel_set: str) -> torch.Tensor:
    """RGB in [0, 1] -> the channel set, each channel affinely scaled to about [-1, 1]."""
    names = _names(channel_set)
    parts = [rgb * 2.0 - 1.0]
    if "H" in names:
        parts.append(rgb_to_hsv(rgb) * 2.0 - 1.0)
    if "L*" in names:
        lab = rgb_to_lab(rgb)
        parts.append(lab[:, :1] / 50.0 - 1.0)
        if "a*" in names:
            parts.append(lab[:, 1:] / 110.0)
    return torch.cat(parts, 1)
