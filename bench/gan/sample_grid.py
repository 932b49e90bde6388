"""A PNG grid of generated pairs: each sample as its image with the mask outline, then the mask alone."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from bench.gan.quality import to_pairs

OUTLINE = np.array([0, 255, 0], dtype=np.uint8)


def pair_tiles(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``[image with green outline | mask]`` side by side, uint8."""
    image = (rgb * 255).round().astype(np.uint8)
    edge = mask & ~ndimage.binary_erosion(mask, iterations=1, border_value=0)
    image[edge] = OUTLINE
    mask_rgb = np.repeat((mask.astype(np.uint8) * 255)[..., None], 3, axis=2)
    gap = np.full((image.shape[0], 2, 3), 64, dtype=np.uint8)
    return np.concatenate((image, gap, mask_rgb), axis=1)


def sample_grid(samples: torch.Tensor, min_tile_height: int = 128) -> Image.Image:
    rgb, masks = to_pairs(samples)
    tiles = [pair_tiles(r, m) for r, m in zip(rgb, masks)]
    h, w = tiles[0].shape[:2]
    cols = max(1, math.ceil(math.sqrt(len(tiles) / 2)))
    rows = math.ceil(len(tiles) / cols)
    pad = 6
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 32, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        canvas[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = tile
    img = Image.fromarray(canvas)
    scale = max(1, min_tile_height // h)
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST) if scale > 1 else img
