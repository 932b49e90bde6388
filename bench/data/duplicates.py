"""Near-duplicate images across splits: a training image that is a near-copy of a test image inflates scores.

Each image becomes a 32x32 grey thumbnail, normalised to zero mean and unit norm; two images of different
splits whose thumbnails correlate above a threshold (0.95 by default) are reported. Resizing, re-encoding and
small colour changes keep the correlation near 1; different lesions rarely pass 0.9.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

THUMB = 32
THRESHOLD = 0.95


def thumbnail(image: np.ndarray) -> np.ndarray:
    """The normalised grey thumbnail of an ``HxWx3`` uint8 image (a unit vector of ``THUMB * THUMB`` values)."""
    grey = np.asarray(Image.fromarray(image).convert("L").resize((THUMB, THUMB), Image.Resampling.BILINEAR),
                      dtype=np.float64).ravel()
    grey -= grey.mean()
    norm = np.linalg.norm(grey)
    return grey / norm if norm > 0 else grey


@dataclass(frozen=True)
class Pair:
    """Two near-identical images of different splits and their thumbnail correlation."""

    split_a: str
    id_a: str
    split_b: str
    id_b: str
    correlation: float


def near_duplicates(thumbs: dict[str, tuple[list[str], np.ndarray]], threshold: float = THRESHOLD) -> list[Pair]:
    """Every pair of images in different splits whose thumbnails correlate at ``threshold`` or more.

    ``thumbs`` maps a split name to its ids and an ``(n, THUMB*THUMB)`` array of thumbnails.
    """
    names = list(thumbs)
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ids_a, ta = thumbs[a]
            ids_b, tb = thumbs[b]
            if not len(ids_a) or not len(ids_b):
                continue
            corr = ta @ tb.T
            for r, c in zip(*np.nonzero(corr >= threshold)):
                pairs.append(Pair(a, ids_a[r], b, ids_b[c], float(corr[r, c])))
    return sorted(pairs, key=lambda p: -p.correlation)
