"""Synthetic dermoscopy-like image/mask pairs, made deterministically in code.

Each image has a skin tone with low-frequency shading, a dermoscope vignette (sometimes a dark
circular rim), an irregular pigmented lesion of varied size, position and contrast with mottled
inner texture and a soft border, specular noise, and dark hairs crossing lesion and skin. The lesion
is off-centre often enough, and faint often enough, that a centred blob scores poorly.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from bench.api import Split

FIXTURE_VERSION = 1
_SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
SKIN_TONES = np.array(
    [[236, 200, 180], [224, 176, 150], [205, 150, 120], [180, 125, 95], [150, 100, 75], [240, 210, 200]],
    dtype=np.float32,
)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a coarse random grid upsampled bicubically."""
    coarse = rng.uniform(-1, 1, size=(cells, cells)).astype(np.float32)
    img = Image.fromarray(((coarse + 1) * 127.5).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    return np.asarray(img, dtype=np.float32) / 127.5 - 1.0


def make_pair(seed: int, split: str, index: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One ``(image uint8 HxWx3, mask uint8 HxW in {0, 1})`` pair; same arguments, same pixels."""
    h, w = size
    rng = np.random.default_rng([FIXTURE_VERSION, seed, _SPLIT_CODES.get(split, 3), index])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ny, nx = (yy - h / 2) / (h / 2), (xx - w / 2) / (w / 2)

    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.94, 1.04) * rng.uniform(0.97, 1.03, size=3)
    img = np.broadcast_to(skin, (h, w, 3)).astype(np.float32).copy()
    img *= (1.0 + 0.08 * _smooth_noise(rng, h, w, 4))[..., None]

    # Lesion: polar radius with random harmonics, centre anywhere in the middle 70%.
    cy = h / 2 + rng.uniform(-0.35, 0.35) * h
    cx = w / 2 + rng.uniform(-0.35, 0.35) * w
    r0 = rng.uniform(0.08, 0.38) * min(h, w)
    theta = np.arctan2(yy - cy, (xx - cx) * rng.uniform(0.7, 1.3))
    radius = np.full_like(theta, r0)
    for k in range(2, 7):
        radius += r0 * rng.uniform(0, 0.18 / (k - 1) ** 0.5) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    dist = np.hypot(yy - cy, (xx - cx) * rng.uniform(0.8, 1.2))
    mask = (dist <= radius).astype(np.uint8)
    if mask.sum() < 16:  # tiny images: make sure there is a lesion at all
        mask = (dist <= max(radius.max(), 2.0)).astype(np.uint8)
    soft = np.asarray(
        Image.fromarray(mask * 255).filter(ImageFilter.GaussianBlur(max(0.6, r0 * rng.uniform(0.03, 0.12)))),
        dtype=np.float32,
    ) / 255.0

    contrast = rng.uniform(0.25, 0.85)
    pigment = np.array([90, 55, 35], dtype=np.float32) * rng.uniform(0.5, 1.3, size=3)
    texture = 0.5 + 0.5 * _smooth_noise(rng, h, w, int(rng.integers(5, 12)))
    core = np.clip(1.0 - dist / (radius + 1e-6), 0, 1) ** rng.uniform(0.5, 2.0)
    strength = contrast * (0.55 + 0.25 * texture + 0.2 * core)
    lesion_colour = skin * (1 - strength[..., None]) + pigment * strength[..., None]
    img = img * (1 - soft[..., None]) + lesion_colour * soft[..., None]

    # Vignette, and sometimes the dark circular rim of a dermoscope's lens.
    r = np.hypot(ny, nx)
    img *= (1.0 - rng.uniform(0.05, 0.4) * np.clip(r - 0.6, 0, None) ** 2)[..., None]
    if rng.random() < 0.35:
        rim = np.clip((r - rng.uniform(1.05, 1.3)) * 8, 0, 1)
        img *= (1 - 0.9 * rim)[..., None]

    img += rng.normal(0, 4.0, size=img.shape).astype(np.float32)
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))

    draw = ImageDraw.Draw(out)
    for _ in range(int(rng.integers(0, 9))):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        angle = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(0.3, 0.9) * max(h, w)
        bend = rng.uniform(-0.3, 0.3) * length
        pts = []
        for t in np.linspace(0, 1, 12):
            px = x0 + np.cos(angle) * length * t - np.sin(angle) * bend * 4 * t * (1 - t)
            py = y0 + np.sin(angle) * length * t + np.cos(angle) * bend * 4 * t * (1 - t)
            pts.append((float(px), float(py)))
        shade = int(rng.integers(15, 70))
        draw.line(pts, fill=(shade, shade - 5 if shade > 5 else 0, 0), width=max(1, int(round(min(h, w) / 120))))
    return np.asarray(out), mask


class FixtureSplit(Split):
    """A split of ``n`` synthetic pairs at ``size``; its fingerprint covers everything that shapes them."""

    def __init__(self, name: str, n: int, size: tuple[int, int], seed: int) -> None:
        self.name, self.n, self.size, self.seed = name, n, size, seed

    def ids(self) -> list[str]:
        return [f"fixture_{self.name}_{i:05d}" for i in range(self.n)]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return make_pair(self.seed, self.name, index, self.size)

    def fingerprint(self) -> str:
        text = f"fixture-v{FIXTURE_VERSION}|{self.name}|{self.n}|{self.size}|{self.seed}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]
