"""``ham10000:ROOT``: the 10,015 HAM10000 images with Tschandl's lesion masks, split train/val/test by lesion.

HAM10000 has no official split and holds several images of many lesions (10,015 images of 7,470 lesions), so a
split by image would put near-copies of one lesion on both sides. The split here is by ``lesion_id``, from a hash,
so it is the same on every machine, whatever order the files or metadata rows come in: see :func:`split_of`.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.api import ConfigError, DataError, Dataset, FileSplit, OptionsMeta, Pair, Split

from bench_plugins.datasets import _root

HAM10000_OPTIONS = OptionsMeta({"test_fraction": 0.2, "val_fraction": 0.1})
SALT = "skinbench/ham10000/lesion-split/v1:"
IMAGE_FOLDERS = (("HAM10000_images_part_1", "HAM10000_images_part_2"),
                 ("ham10000_images_part_1", "ham10000_images_part_2"),  # Kaggle's copy spells them so
                 ("images",))
MASK_FOLDER = "HAM10000_segmentations_lesion_tschandl"
METADATA_NAMES = ("HAM10000_metadata.csv", "HAM10000_metadata.tab", "HAM10000_metadata")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
ISIC_ID = re.compile(r"ISIC_\d{7}")
MASK_STEM = re.compile(r"(ISIC_\d{7})_segmentation")


def lesion_position(lesion_id: str) -> float:
    """Where a lesion falls in [0, 1): the first 8 bytes of SHA-256(``SALT`` + lesion_id), as a fraction of 2**64.
    Not Python's ``hash()``, which differs between processes."""
    digest = hashlib.sha256((SALT + lesion_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(lesion_id: str, test_fraction: float, val_fraction: float) -> str:
    """``test`` when the lesion's position is below ``test_fraction``, ``val`` below ``test_fraction +
    val_fraction``, ``train`` above: each image goes where its lesion goes. A larger ``val_fraction`` only moves
    lesions from train to val; the test lesions depend on ``test_fraction`` alone."""
    position = lesion_position(lesion_id)
    if position < test_fraction:
        return "test"
    return "val" if position < test_fraction + val_fraction else "train"


def _fraction(options: Mapping[str, Any], key: str) -> float:
    """Option ``key`` as a float in [0, 1), given as text (``"0.2"``) or already typed, else its default."""
    value = options.get(key, HAM10000_OPTIONS.options[key])
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not 0 <= number < 1:  # NaN fails this too
        raise ConfigError(f"--data ham10000?{key}={value}: expected a fraction of the lesions in [0, 1), e.g. "
                          f"{key}={HAM10000_OPTIONS.options[key]}")
    return number


def _fractions(options: Mapping[str, Any]) -> tuple[float, float]:
    """``(test_fraction, val_fraction)``, checked: known options, each in [0, 1), some lesions left for training."""
    unknown = sorted(set(options) - set(HAM10000_OPTIONS.options))
    if unknown:
        raise ConfigError(f"--data ham10000: unknown option {unknown[0]!r}; known: "
                          f"{', '.join(sorted(HAM10000_OPTIONS.options))}, e.g. ham10000:ROOT?test_fraction=0.2")
    test, val = _fraction(options, "test_fraction"), _fraction(options, "val_fraction")
    if test == 0:
        raise ConfigError("--data ham10000: test_fraction=0 leaves no test split, so a run would score the images "
                          "it trained on; expected test_fraction above 0, e.g. test_fraction=0.2")
    if test + val >= 1:
        raise ConfigError(f"--data ham10000: test_fraction + val_fraction = {test + val:g} leaves no lesion for "
                          "training; expected a sum below 1, e.g. test_fraction=0.2&val_fraction=0.1")
    return test, val


def _metadata_path(root: Path) -> Path:
    """``HAM10000_metadata.csv`` (or Dataverse's ``.tab`` export of it): the lesion of every image."""
    for name in METADATA_NAMES:
        if (root / name).is_file():
            return root / name
    raise DataError(f"{root / METADATA_NAMES[0]}: not found; HAM10000's split is made by lesion, and only this file "
                    "(columns lesion_id,image_id,dx,...) says which lesion an image shows: bench data download "
                    f"ham10000 --root {root} fetches it")


def read_metadata(path: Path) -> dict[str, tuple[str, int]]:
    """image_id -> (lesion_id, line) from the metadata, comma- or tab-separated (quoted or not); a file without
    those columns, an empty id or an image listed twice is an error naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the metadata ({exc}); expected HAM10000's CSV, UTF-8") from None
    header = text.split("\n", 1)[0]
    reader = csv.DictReader(text.splitlines(), delimiter="\t" if "\t" in header else ",")
    columns = [c.strip() for c in reader.fieldnames or []]
    for column in ("lesion_id", "image_id"):
        if column not in columns:
            raise DataError(f"{path}: no {column!r} column (it has: {', '.join(columns) or 'none'}); expected "
                            "HAM10000's metadata, columns lesion_id,image_id,dx,dx_type,age,sex,localization")
    rows: dict[str, tuple[str, int]] = {}
    for row in reader:
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        line = reader.line_num
        image_id, lesion_id = row["image_id"], row["lesion_id"]
        if not image_id or not lesion_id:
            raise DataError(f"{path}, line {line}: empty {'image_id' if not image_id else 'lesion_id'}; expected "
                            "both on every row")
        if image_id in rows:
            raise DataError(f"{path}, line {line}: image {image_id} is listed twice (also on line "
                            f"{rows[image_id][1]}); expected one row per image")
        rows[image_id] = (lesion_id, line)
    return rows


def _image_folders(root: Path) -> list[Path]:
    """The image folders of the first layout present: the two Dataverse parts, Kaggle's spelling, or ``images/``."""
    for group in IMAGE_FOLDERS:
        if any((root / name).is_dir() for name in group):
            return [root / name for name in group]
    raise DataError(f"{root}: no HAM10000 image folders found; expected HAM10000_images_part_1/ and "
                    "HAM10000_images_part_2/ (as bench data download ham10000 extracts them), or images/")


def _images(folders: list[Path]) -> dict[str, Path]:
    """image id -> file over all image folders (``ISIC_nnnnnnn.jpg``); one id in two files is an error."""
    found: dict[str, Path] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and ISIC_ID.fullmatch(path.stem):
                if path.stem in found:
                    raise DataError(f"{found[path.stem]} and {path}: two files with the id {path.stem!r}; keep one "
                                    "of them")
                found[path.stem] = path
    return found


def _masks(folder: Path) -> dict[str, Path]:
    """image id -> mask (``ISIC_nnnnnnn_segmentation.png``) in the lesion-mask folder."""
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; expected HAM10000's lesion masks, ISIC_nnnnnnn_segmentation.png "
                        "(HAM10000_segmentations_lesion_tschandl.zip, fetched by bench data download ham10000)")
    masks = {}
    for path in sorted(folder.iterdir()):
        match = MASK_STEM.fullmatch(path.stem)
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES and match:
            masks[match.group(1)] = path
    return masks


def _pairs(root: Path, metadata: Path, rows: dict[str, tuple[str, int]]) -> list[Pair]:
    """Every image with its mask, cross-checked both ways with the masks and with the metadata rows."""
    folders = _image_folders(root)
    images = _images(folders)
    mask_folder = root / MASK_FOLDER
    masks = _masks(mask_folder)
    for image_id, path in sorted(images.items()):
        if image_id not in rows:
            raise DataError(f"{path}: no row for {image_id} in {metadata}; expected one per image (its lesion_id "
                            "decides its split)")
        if image_id not in masks:
            raise DataError(f"{path}: no mask found; expected {mask_folder / (image_id + '_segmentation.png')}")
    for image_id, (_, line) in sorted(rows.items(), key=lambda item: item[1][1]):
        if image_id not in images:
            raise DataError(f"{metadata}, line {line}: image {image_id} not found; expected "
                            f"{folders[0] / (image_id + '.jpg')} (looked in {', '.join(f.name for f in folders)})")
    extra = sorted(set(masks) - set(images))
    if extra:
        raise DataError(f"{masks[extra[0]]}: mask has no image in {', '.join(str(f) for f in folders)}"
                        + (f" (and {len(extra) - 1} more masks without images)" if len(extra) > 1 else ""))
    return [Pair(image_id, images[image_id], masks[image_id]) for image_id in sorted(images)]


def ham10000(arg: str | None = None, **options: Any) -> Dataset:
    """HAM10000 (Tschandl et al. 2018) with the lesion masks of Tschandl et al. 2020, split by lesion.

    ROOT holds ``HAM10000_images_part_1/`` and ``HAM10000_images_part_2/`` (or one ``images/``), the masks in
    ``HAM10000_segmentations_lesion_tschandl/ISIC_nnnnnnn_segmentation.png`` and ``HAM10000_metadata.csv``
    (lesion_id, image_id, ...). Every image needs a metadata row and a mask, every row its image.

    Split rule (HAM10000 has no official split): each lesion_id gets a position in [0, 1), the first 8 bytes of
    SHA-256("skinbench/ham10000/lesion-split/v1:" + lesion_id) over 2**64; a lesion below ``test_fraction``
    (default 0.2) is test, below ``test_fraction + val_fraction`` (default 0.1) val, the rest train, and all of a
    lesion's images go with it. The fractions are of lesions, so of images only approximately; the split is the
    same on every machine and for any file or row order. Options: ``ham10000:ROOT?test_fraction=0.2&val_fraction=0.1``.
    """
    test_fraction, val_fraction = _fractions(options)
    root = _root(arg, "ham10000")
    metadata = _metadata_path(root)
    rows = read_metadata(metadata)
    fractions = {"train": 1 - test_fraction - val_fraction, "val": val_fraction, "test": test_fraction}
    by_split: dict[str, list[Pair]] = {name: [] for name in fractions}
    for pair in _pairs(root, metadata, rows):
        by_split[split_of(rows[pair.id][0], test_fraction, val_fraction)].append(pair)
    lesions = len({lesion for lesion, _ in rows.values()})
    splits: dict[str, Split] = {}
    for name, pairs in by_split.items():
        if fractions[name] == 0:
            continue
        if not pairs:
            raise DataError(f"{root}: no lesion of the {lesions} falls in the {name} split (fraction "
                            f"{fractions[name]:g}); expected a larger fraction, or more lesions")
        splits[name] = FileSplit(name, pairs, str(root))
    given = "&".join(f"{key}={float(options[key])!r}" for key in sorted(options))
    return Dataset("ham10000", f"ham10000:{arg}" + (f"?{given}" if given else ""), splits)
