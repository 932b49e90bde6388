"""Datasets: ``isic2017:ROOT`` (official layout), ``folder:ROOT`` (images/ + masks/), ``fixture`` (synthetic)."""

from __future__ import annotations

import re
from pathlib import Path

from bench.api import ConfigError, DataError, Dataset, FileSplit, OptionsMeta, hookimpl, match_pairs, parse_size

from bench_plugins.fixture import FixtureSplit

ISIC_FOLDERS = {
    "train": ("ISIC-2017_Training_Data", "ISIC-2017_Training_Part1_GroundTruth"),
    "val": ("ISIC-2017_Validation_Data", "ISIC-2017_Validation_Part1_GroundTruth"),
    "test": ("ISIC-2017_Test_v2_Data", "ISIC-2017_Test_v2_Part1_GroundTruth"),
}
ISIC_ID = re.compile(r"ISIC_\d{7}")


def _root(arg: str | None, name: str) -> Path:
    if not arg:
        raise ConfigError(f"--data {name}: needs a root folder, e.g. {name}:/data/{name}")
    root = Path(arg).expanduser()
    if not root.is_dir():
        raise DataError(f"{root}: dataset root not found (from --data {name}:{arg})")
    return root


def _no_options(name: str, options: dict[str, str]) -> None:
    if options:
        raise ConfigError(f"--data {name}: takes no options, got {', '.join(sorted(options))}")


def isic2017(arg: str | None = None, **options: str) -> Dataset:
    """The official ISIC 2017 Part 1 layout: a split exists when both its folders exist."""
    _no_options("isic2017", options)
    root = _root(arg, "isic2017")
    splits = {}
    for split, (images, masks) in ISIC_FOLDERS.items():
        if (root / images).is_dir() or (root / masks).is_dir():
            pairs = match_pairs(root / images, root / masks, ISIC_ID, ("_segmentation",))
            splits[split] = FileSplit(split, pairs, str(root / images))
    if not splits:
        expected = ", ".join(f for pair in ISIC_FOLDERS.values() for f in pair)
        raise DataError(f"{root}: no ISIC 2017 folders found; expected some of: {expected}")
    return Dataset("isic2017", f"isic2017:{arg}", splits)


def folder(arg: str | None = None, **options: str) -> Dataset:
    """``ROOT/images`` + ``ROOT/masks`` (one split, ``all``), or ``ROOT/{train,val,test}/{images,masks}``."""
    _no_options("folder", options)
    root = _root(arg, "folder")
    splits = {}
    for split in ("train", "val", "test"):
        if (root / split).is_dir():
            splits[split] = FileSplit(split, match_pairs(root / split / "images", root / split / "masks"),
                                      str(root / split))
    if not splits:
        if not (root / "images").is_dir():
            raise DataError(f"{root}: expected images/ and masks/ folders, or train/, val/, test/ each holding them")
        splits["all"] = FileSplit("all", match_pairs(root / "images", root / "masks"), str(root))
    return Dataset("folder", f"folder:{arg}", splits)


def fixture(arg: str | None = None, **options: str) -> Dataset:
    """Synthetic dermoscopy-like pairs made in code: ``fixture?n=200&size=96x128&seed=0&n_test=50``."""
    known = {"n", "size", "seed", "n_test"}
    unknown = set(options) - known
    if unknown:
        raise ConfigError(f"--data fixture: unknown option {sorted(unknown)[0]!r}; known: {', '.join(sorted(known))}")
    try:
        n = int(options.get("n", 200))
        seed = int(options.get("seed", 0))
        n_test = int(options.get("n_test", max(8, n // 4)))
    except ValueError:
        raise ConfigError("--data fixture: n, n_test and seed must be integers, e.g. fixture?n=64&seed=0") from None
    if n < 1 or n_test < 1:
        raise ConfigError("--data fixture: n and n_test must be at least 1")
    size = parse_size(options.get("size", "96x128"), "--data fixture?size")
    splits = {
        "train": FixtureSplit("train", n, size, seed),
        "val": FixtureSplit("val", n_test, size, seed),
        "test": FixtureSplit("test", n_test, size, seed),
    }
    spec = "fixture" + (f"?{'&'.join(f'{k}={v}' for k, v in sorted(options.items()))}" if options else "")
    return Dataset("fixture", spec, splits)


@hookimpl
def bench_register_datasets(register):
    register("isic2017", isic2017, description="ISIC 2017 Part 1, official folder and file names; splits train, val, test",
             reference="Codella et al. 2018, ISIC 2017 challenge")
    register("folder", folder, description="any images/ + masks/ folder (masks matched by image stem)")
    register("fixture", fixture, description="synthetic dermoscopy-like pairs made in code (deterministic per seed)",
             meta=OptionsMeta({"n": 200, "size": "96x128", "seed": 0}))
