"""Prepare a split once per size into an on-disk cache (uint8 arrays, no pickle) and load it back."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.data.images import JPEGMaskWarning
from bench.storage.paths import cache_root
from bench.storage.integrity import array_digest, store_entry
from bench.data.source import Split

PREP_VERSION = 2
"""2: entries carry BLAKE2b checksums of their arrays, verified on every read (1 had none)."""


@dataclass
class Prepared:
    """A split resized to one size: RGB ``(N, 3, H, W)`` and masks ``(N, 1, H, W)``, both uint8."""

    ids: list[str]
    images: torch.Tensor
    masks: torch.Tensor
    original_sizes: list[tuple[int, int]]
    fingerprint: str
    from_cache: bool

    def __len__(self) -> int:
        return len(self.ids)

    def to(self, device: torch.device) -> "Prepared":
        return Prepared(
            self.ids, self.images.to(device), self.masks.to(device), self.original_sizes,
            self.fingerprint, self.from_cache,
        )


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An RGB uint8 image resized to ``size`` (HxW), bilinear with PIL's antialiasing: how every image the
    networks see is resized (prepared splits, ``bench predict``)."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    return np.asarray(Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR))


def resize_pair(image: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear (antialiased) image resize; the mask is resized as grey levels and re-binarised at 0.5."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image, mask
    m = np.asarray(Image.fromarray(mask * 255).resize((w, h), Image.Resampling.BILINEAR)) >= 128
    return resize_image(image, size), m.astype(np.uint8)


def _read_entry(folder: Path, split: Split) -> Prepared | None:
    """The cached arrays if they are whole and match their checksums; otherwise warn, remove the entry, and
    return ``None`` so that it is rebuilt from the images."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        images = np.load(folder / "images.npy", allow_pickle=False)
        masks = np.load(folder / "masks.npy", allow_pickle=False)
        sums = meta["checksums"]
        problem = None
        if array_digest(images) != sums["images"]:
            problem = "images.npy does not match its checksum"
        elif array_digest(masks) != sums["masks"]:
            problem = "masks.npy does not match its checksum"
        elif len(meta["ids"]) != len(images) or len(images) != len(masks):
            problem = "its arrays and ids disagree in length"
        elif meta["fingerprint"] != split.fingerprint() or meta["ids"] != split.ids():
            problem = "it holds another split's arrays (its fingerprint or ids are not this split's)"
        elif tuple(meta["size"]) != tuple(images.shape[2:4]):
            problem = "its arrays are not at the size it records"
    except (OSError, ValueError, KeyError, TypeError, EOFError, IndexError) as exc:
        problem = f"it cannot be read ({type(exc).__name__}: {exc})"
    if problem is None:
        return Prepared(meta["ids"], torch.from_numpy(images), torch.from_numpy(masks),
                        [tuple(s) for s in meta["original_sizes"]], split.fingerprint(), True)
    warnings.warn(f"prepared-data cache entry {folder} is damaged ({problem}); rebuilding it from the images",
                  CacheWarning, stacklevel=3)
    shutil.rmtree(folder, ignore_errors=True)
    return None


class CacheWarning(UserWarning):
    """A cache entry failed its check and was rebuilt."""


def prepare(split: Split, size: tuple[int, int], workers: int | None = None) -> Prepared:
    """Decode, check and resize every pair of ``split`` once; later calls load the cached arrays."""
    key = hashlib.sha256(f"{split.fingerprint()}|{size}|v{PREP_VERSION}".encode()).hexdigest()[:20]
    folder = cache_root() / "prepared" / key
    if (folder / "meta.json").exists():
        cached = _read_entry(folder, split)
        if cached is not None:
            return cached

    n = len(split)
    h, w = size
    images = np.empty((n, 3, h, w), dtype=np.uint8)
    masks = np.empty((n, 1, h, w), dtype=np.uint8)
    original: list[tuple[int, int]] = [(0, 0)] * n

    def one(i: int) -> None:
        image, mask = split.load(i)
        original[i] = (int(image.shape[0]), int(image.shape[1]))
        img, m = resize_pair(image, mask, size)
        images[i] = img.transpose(2, 0, 1)
        masks[i, 0] = m

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", JPEGMaskWarning)
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            list(pool.map(one, range(n)))
    jpeg = sorted(str(w.message) for w in caught if issubclass(w.category, JPEGMaskWarning))
    for caught_warning in caught:
        if not issubclass(caught_warning.category, JPEGMaskWarning):
            warnings.warn_explicit(caught_warning.message, caught_warning.category, caught_warning.filename,
                                   caught_warning.lineno)
    if jpeg:
        warnings.warn(f"{len(jpeg)} JPEG mask(s) in split {split.name!r} are lossy and were thresholded at 127 "
                      f"(first: {jpeg[0]}); save masks as PNG to avoid it", JPEGMaskWarning, stacklevel=2)

    def write(tmp: Path) -> None:
        np.save(tmp / "images.npy", images, allow_pickle=False)
        np.save(tmp / "masks.npy", masks, allow_pickle=False)
        meta = {"ids": split.ids(), "original_sizes": original, "size": list(size),
                "fingerprint": split.fingerprint(), "version": PREP_VERSION,
                "checksums": {"images": array_digest(images), "masks": array_digest(masks)}}
        (tmp / "meta.json").write_text(json.dumps(meta))

    store_entry(folder, write)
    return Prepared(split.ids(), torch.from_numpy(images), torch.from_numpy(masks), original,
                    split.fingerprint(), False)
