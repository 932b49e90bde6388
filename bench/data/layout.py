"""Match image files with their mask files in folders, reporting missing and extra masks by name."""

from __future__ import annotations

import re
from pathlib import Path

from bench.data.source import Pair
from bench.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
MASK_SUFFIXES = ("_segmentation", "_lesion", "_mask", "_Segmentation", "")


def match_pairs(
    image_dir: Path,
    mask_dir: Path,
    image_pattern: re.Pattern[str] | None = None,
    mask_suffixes: tuple[str, ...] = MASK_SUFFIXES,
) -> list[Pair]:
    """Pairs in id order; every image needs exactly one mask and every mask an image."""
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise DataError(f"{folder}: folder not found; expected it to hold the split's "
                            f"{'images' if folder == image_dir else 'masks'}")
    images = sorted(
        p for p in image_dir.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        and (image_pattern is None or image_pattern.fullmatch(p.stem))
    )
    _unique_stems(images)
    mask_files = sorted(p for p in mask_dir.iterdir()
                        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    _unique_stems(mask_files)
    masks = {p.stem: p for p in mask_files}
    used: set[str] = set()
    pairs: list[Pair] = []
    for image in images:
        found = [masks[image.stem + s] for s in mask_suffixes if image.stem + s in masks]
        if not found:
            expected = mask_dir / f"{image.stem}{mask_suffixes[0]}.png"
            raise DataError(f"{image}: no mask found; expected {expected}")
        used.add(found[0].stem)
        pairs.append(Pair(image.stem, image, found[0]))
    extra = sorted(set(masks) - used)
    if extra:
        raise DataError(
            f"{masks[extra[0]]}: mask has no image in {image_dir}"
            + (f" (and {len(extra) - 1} more masks without images)" if len(extra) > 1 else "")
        )
    return pairs


def same_stem(files: list[Path]) -> tuple[Path, Path] | None:
    """The first two of ``files`` with one stem (``x.jpg`` and ``x.png``), or ``None``: they would name one id."""
    seen: dict[str, Path] = {}
    for path in files:
        if path.stem in seen:
            return seen[path.stem], path
        seen[path.stem] = path
    return None


def _unique_stems(files: list[Path]) -> None:
    """Refuse two files of one id: which one is the image (or the mask) would depend on the order a directory
    lists them, and both would be used, or one silently."""
    twins = same_stem(files)
    if twins:
        raise DataError(f"{twins[0]} and {twins[1]}: two files with the id {twins[0].stem!r}; keep one of them "
                        "(the split would otherwise use both, or one chosen by directory order)")
