"""``ph2:ROOT``: the PH2 database (200 dermoscopic images with lesion masks) in its own layout, as one ``test``
split: PH2 is the usual external test set of skin-lesion segmentation (train on ISIC, score with ``--test``)."""

from __future__ import annotations

import re
from pathlib import Path

from bench.api import DataError, Dataset, FileSplit, Pair

from bench_plugins.datasets import _no_options, _root

IMAGES_FOLDER = "PH2 Dataset images"
CASE = re.compile(r"IMD\d+")
LAYOUT = ("IMDnnn/IMDnnn_Dermoscopic_Image/IMDnnn.bmp and IMDnnn/IMDnnn_lesion/IMDnnn_lesion.bmp, as "
          "PH2Dataset.rar extracts")


def _cases(folder: Path) -> list[Path]:
    """The case folders (``IMD002`` ...) directly in ``folder``, in id order."""
    if not folder.is_dir():
        return []
    cases = sorted(p for p in folder.iterdir() if p.is_dir() and CASE.fullmatch(p.name))
    odd = sorted(p for p in folder.iterdir() if p.is_dir() and CASE.fullmatch(p.name.upper()) and p not in cases)
    if odd:  # a case folder in the wrong case would otherwise be dropped without a word
        raise DataError(f"{odd[0]}: a PH2 case folder is named IMDnnn (capitals), as are the files in it; rename it")
    return cases


def _cases_folder(root: Path) -> Path:
    """The folder holding the case folders: ``ROOT/PH2 Dataset images`` (ROOT is the extracted ``PH2Dataset``),
    ``ROOT/PH2Dataset/PH2 Dataset images`` (ROOT is where the archive was extracted), or ROOT itself."""
    for folder in (root / IMAGES_FOLDER, root / "PH2Dataset" / IMAGES_FOLDER, root):
        if _cases(folder):
            return folder
    raise DataError(f"{root}: no PH2 case folders (IMDnnn/) in {root / IMAGES_FOLDER} nor in {root}; expected "
                    f"ROOT/{IMAGES_FOLDER}/ holding {LAYOUT}")


def _case_pair(case: Path) -> Pair:
    """One case's dermoscopic image and lesion mask (both BMP); a missing one is named with the expected path."""
    image = case / f"{case.name}_Dermoscopic_Image" / f"{case.name}.bmp"
    mask = case / f"{case.name}_lesion" / f"{case.name}_lesion.bmp"
    for path, what in ((image, "dermoscopic image"), (mask, "lesion mask")):
        if not path.is_file():
            raise DataError(f"{path}: not found; expected the {what} of case {case.name} (PH2 layout: {LAYOUT})")
    return Pair(case.name, image, mask)


def ph2(arg: str | None = None, **options: str) -> Dataset:
    """PH2 (Mendonca et al. 2013): 200 cases, each ``IMDnnn/IMDnnn_Dermoscopic_Image/IMDnnn.bmp`` with its mask
    ``IMDnnn/IMDnnn_lesion/IMDnnn_lesion.bmp`` (0/255, 1-bit or 8-bit). ROOT is the extracted ``PH2Dataset``
    folder (holding ``PH2 Dataset images/``) or the folder holding the case folders. One split, ``test``: PH2 is an
    external test set, scored with ``--test ph2:ROOT``; a case missing its image or mask is an error naming it."""
    _no_options("ph2", options)
    root = _root(arg, "ph2")
    folder = _cases_folder(root)
    pairs = [_case_pair(case) for case in _cases(folder)]
    return Dataset("ph2", f"ph2:{arg}", {"test": FileSplit("test", pairs, str(folder))})
