"""Datasets: ``isic2017:ROOT`` and ``isic2018:ROOT`` (official layouts), ``ham10000:ROOT`` and ``ph2:ROOT``
(:mod:`bench_plugins.datasets_ham10000`, :mod:`bench_plugins.datasets_ph2`), ``folder:ROOT`` (images/ + masks/),
``fixture`` (synthetic)."""

from __future__ import annotations

import re
from pathlib import Path

from bench.api import (ConfigError, DataError, Dataset, FileSplit, Option, OptionsMeta, Split, hookimpl, match_pairs,
                       parse_size)

from bench_plugins.fixture import FixtureSplit

ISIC_FOLDERS = {
    "train": ("ISIC-2017_Training_Data", "ISIC-2017_Training_Part1_GroundTruth"),
    "val": ("ISIC-2017_Validation_Data", "ISIC-2017_Validation_Part1_GroundTruth"),
    "test": ("ISIC-2017_Test_v2_Data", "ISIC-2017_Test_v2_Part1_GroundTruth"),
}
ISIC2018_FOLDERS = {
    "train": ("ISIC2018_Task1-2_Training_Input", "ISIC2018_Task1_Training_GroundTruth"),
    "val": ("ISIC2018_Task1-2_Validation_Input", "ISIC2018_Task1_Validation_GroundTruth"),
    "test": ("ISIC2018_Task1-2_Test_Input", "ISIC2018_Task1_Test_GroundTruth"),
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


def _isic(name: str, title: str, folders: dict[str, tuple[str, str]], arg: str | None) -> Dataset:
    """An official ISIC challenge layout: a split exists when either of its folders exists (then both must).
    Only ``ISIC_nnnnnnn`` images count: superpixel files, metadata CSVs, LICENSE.txt and ATTRIBUTION.txt in the
    official zips' folders are not pairs."""
    root = _root(arg, name)
    splits: dict[str, Split] = {}
    for split, (images, masks) in folders.items():
        if (root / images).is_dir() or (root / masks).is_dir():
            pairs = match_pairs(root / images, root / masks, ISIC_ID, ("_segmentation",))
            splits[split] = FileSplit(split, pairs, str(root / images))
    if not splits:
        expected = ", ".join(f for pair in folders.values() for f in pair)
        raise DataError(f"{root}: no {title} folders found; expected some of: {expected}")
    return Dataset(name, f"{name}:{arg}", splits)


def isic2017(arg: str | None = None, **options: str) -> Dataset:
    """The official ISIC 2017 Part 1 layout: a split exists when both its folders exist."""
    _no_options("isic2017", options)
    return _isic("isic2017", "ISIC 2017", ISIC_FOLDERS, arg)


def isic2018(arg: str | None = None, **options: str) -> Dataset:
    """The official ISIC 2018 Task 1 layout (2594 training, 100 validation, 1000 test pairs): a split exists when
    its folders exist."""
    _no_options("isic2018", options)
    return _isic("isic2018", "ISIC 2018 Task 1", ISIC2018_FOLDERS, arg)


def folder(arg: str | None = None, **options: str) -> Dataset:
    """``ROOT/images`` + ``ROOT/masks`` (one split, ``all``), or ``ROOT/{train,val,test}/{images,masks}``."""
    _no_options("folder", options)
    root = _root(arg, "folder")
    splits: dict[str, Split] = {}
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
    if arg is not None:
        raise ConfigError(f"--data fixture:{arg}: the fixture is made in code and takes no folder; pass options "
                          "as fixture?n=64&seed=0")
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
    # imported here, not at the top: those modules use this one's _root and _no_options
    from bench_plugins.datasets_ham10000 import HAM10000_OPTIONS, ham10000
    from bench_plugins.datasets_ph2 import ph2

    register("isic2017", isic2017, description="ISIC 2017 Part 1, official folder and file names; splits train, val, test",
             reference="Codella et al. 2018, ISIC 2017 challenge")
    register("isic2018", isic2018, description="ISIC 2018 Task 1, official folder and file names; splits train, val, "
             "test", reference="Codella et al. 2019, ISIC 2018 challenge (arXiv:1902.03368)")
    register("ham10000", ham10000, description="HAM10000 images with Tschandl's lesion masks; splits train, val, test "
             "made by lesion id (a lesion's images never straddle splits)", meta=HAM10000_OPTIONS,
             reference="Tschandl et al. 2018, Sci. Data 5:180161; masks: Tschandl et al. 2020, Nat. Med.")
    register("ph2", ph2, description="PH2 (200 images), its own layout; one split, test: an external test set "
             "(--test ph2:ROOT)", reference="Mendonca et al. 2013, EMBC, PH2 database")
    register("folder", folder, description="any images/ + masks/ folder (masks matched by image stem)")
    register("fixture", fixture, description="synthetic dermoscopy-like pairs made in code (deterministic per seed)",
             meta=OptionsMeta({"n": 200, "size": "96x128", "seed": 0,
                                "n_test": Option(None, type=int, help="validation and test pairs each (max(8, n // 4))")}))
