"""Read one image/mask pair from disk and check it: readable, same size, binary mask.

Documented normalisations: grayscale images are replicated to RGB; RGBA (and LA, P with transparency)
images are composited on black (the alpha is dropped); 16-bit images are scaled to 8 bits (value / 257).
Masks stored as JPEG (lossy, so never exactly binary) are thresholded at 127 with one warning per split;
any other mask holding values other than 0 and 255 (or 0 and 1) is an error. A palette mask (a 1-bit or 8-bit BMP
or PNG in mode ``P``) whose colours are all grey is read as those grey levels, not as palette indices, so a
white-first palette does not invert it. Images larger than Pillow's decompression-bomb limit
(``PIL.Image.MAX_IMAGE_PIXELS``) are refused.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from bench.errors import DataError

JPEG_SUFFIXES = {".jpg", ".jpeg"}


class JPEGMaskWarning(UserWarning):
    """A lossy JPEG mask was thresholded at 127 (``prepare`` reports these once per split)."""


def _open(path: Path, what: str) -> Image.Image:
    """Open and fully decode ``path``; any failure (bomb, truncation, garbage) names the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            img.load()
        return img
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(f"{path}: refused, the {what} is larger than Pillow's decompression-bomb limit "
                        f"({Image.MAX_IMAGE_PIXELS} pixels): {exc}") from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        detail = str(exc).replace(f" {str(path)!r}", "").replace(str(path), "the file")  # the path is said once
        raise DataError(f"{path}: cannot read {what} ({detail}); expected a complete, readable JPEG, PNG or BMP") from None


def read_image(path: Path) -> np.ndarray:
    """An RGB uint8 array ``(H, W, 3)``, normalised as the module docstring says."""
    img = _open(path, "image")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        scale = 257.0 if arr.max(initial=0) > 255 or img.mode.startswith("I;16") else 1.0
        grey = np.clip(np.round(arr / scale), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return np.asarray(Image.alpha_composite(black, rgba).convert("RGB"))
    if img.mode not in ("RGB", "L", "P", "CMYK", "YCbCr", "1"):
        raise DataError(f"{path}: image mode {img.mode} is not supported; expected an 8- or 16-bit RGB or grey image")
    return np.asarray(img.convert("RGB"))


def _grey_palette_values(img: Image.Image, arr: np.ndarray) -> np.ndarray:
    """A palette mask's pixels as the grey levels its palette gives them, when every colour it uses is grey.

    A 1-bit or 8-bit BMP whose palette is not exactly black-then-white (PH2's masks, a white-first palette) opens
    in mode ``P``: its pixels are palette indices, and index 1 may well be black. Reading the grey levels keeps a
    white lesion a lesion whatever the palette order. A palette with colours (a label map) keeps its indices."""
    palette = img.getpalette() or []
    used = np.unique(arr)
    levels = np.zeros(256, np.uint8)
    for index in used.tolist():
        rgb = palette[3 * index: 3 * index + 3]
        if len(rgb) != 3 or not rgb[0] == rgb[1] == rgb[2]:
            return arr
        levels[index] = rgb[0]
    return levels[arr]


def read_mask(path: Path) -> np.ndarray:
    """A {0, 1} uint8 mask ``(H, W)``."""
    img = _open(path, "mask")
    arr = np.asarray(img)
    if img.mode == "P" and arr.ndim == 2:
        arr = _grey_palette_values(img, arr)
    if arr.ndim == 3:
        raise DataError(f"{path}: mask has {arr.shape[2]} channels; expected a single-channel image of 0 and 255")
    if path.suffix.lower() in JPEG_SUFFIXES:
        warnings.warn(str(path), JPEGMaskWarning, stacklevel=2)
        return (arr > 127).astype(np.uint8)
    values = np.unique(arr)
    if values.size and not (set(values.tolist()) <= {0, 255} or set(values.tolist()) <= {0, 1}):
        shown = ", ".join(str(v) for v in values[:6]) + (", ..." if values.size > 6 else "")
        raise DataError(f"{path}: mask is not binary (values {shown}); expected only 0 and 255")
    return (arr > 0).astype(np.uint8)


def read_pair(image_path: Path, mask_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read and cross-check a pair; a size mismatch names both files."""
    image = read_image(image_path)
    mask = read_mask(mask_path)
    if image.shape[:2] != mask.shape:
        raise DataError(
            f"{mask_path}: mask is {mask.shape[0]}x{mask.shape[1]} but its image {image_path.name} is "
            f"{image.shape[0]}x{image.shape[1]} (HxW); expected the same size"
        )
    return image, mask
