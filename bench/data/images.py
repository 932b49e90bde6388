"""Read one image/mask pair from disk and check it: readable, same size, binary mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from bench.errors import DataError


def read_image(path: Path) -> np.ndarray:
    """An RGB uint8 array; grayscale and RGBA images are converted, anything unreadable is an error."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in ("RGB", "L", "RGBA", "P", "LA", "CMYK", "YCbCr"):
                raise DataError(f"{path}: image mode {img.mode} is not supported; expected an 8-bit RGB image")
            return np.asarray(img.convert("RGB"))
    except DataError:
        raise
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: cannot read image ({exc}); expected a readable JPEG or PNG") from None


def read_mask(path: Path) -> np.ndarray:
    """A {0, 1} uint8 mask from a single-channel file holding only 0 and 255 (or 0 and 1)."""
    try:
        with Image.open(path) as img:
            img.load()
            arr = np.asarray(img)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise DataError(f"{path}: cannot read mask ({exc}); expected a single-channel PNG") from None
    if arr.ndim == 3:
        raise DataError(f"{path}: mask has {arr.shape[2]} channels; expected a single-channel image of 0 and 255")
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
