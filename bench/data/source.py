"""Datasets and splits: lists of image/mask pairs that load validated, original-size arrays."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.data.images import read_pair
from bench.errors import DataError


class Split(ABC):
    """One split of a dataset: ordered ids, a loader of validated pairs, and a content fingerprint."""

    name: str

    @abstractmethod
    def ids(self) -> list[str]:
        """Image ids in a stable order."""

    @abstractmethod
    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(image uint8 HxWx3, mask uint8 HxW in {0, 1})`` at the original size, validated."""

    @abstractmethod
    def fingerprint(self) -> str:
        """A hash that changes whenever any pixel of the split could change."""

    def __len__(self) -> int:
        return len(self.ids())


@dataclass(frozen=True)
class Pair:
    id: str
    image: Path
    mask: Path


class FileSplit(Split):
    """A split backed by image and mask files on disk."""

    def __init__(self, name: str, pairs: list[Pair], where: str) -> None:
        if not pairs:
            raise DataError(f"split {name!r} in {where} holds no image/mask pairs")
        self.name = name
        self.pairs = pairs
        self.where = where
        self._fingerprint: str | None = None

    def ids(self) -> list[str]:
        return [p.id for p in self.pairs]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        pair = self.pairs[index]
        return read_pair(pair.image, pair.mask)

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            h = hashlib.sha256()
            for pair in self.pairs:
                for path in (pair.image, pair.mask):
                    h.update(path.name.encode())
                    h.update(hashlib.sha256(path.read_bytes()).digest())
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint


class SubsetSplit(Split):
    """Some pairs of another split, by index (``--subset``, ``--exclude``); its fingerprint covers the choice."""

    def __init__(self, base: Split, indices: list[int], label: str) -> None:
        self.base, self.indices, self.label = base, list(indices), label
        self.name = base.name

    def ids(self) -> list[str]:
        ids = self.base.ids()
        return [ids[i] for i in self.indices]

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.base.load(self.indices[index])

    def fingerprint(self) -> str:
        text = f"{self.base.fingerprint()}|{self.label}|{','.join(map(str, self.indices))}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Dataset:
    """A named dataset and its splits; ``test_split`` is the split scored by default."""

    name: str
    spec: str
    splits: dict[str, Split] = field(default_factory=dict)

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise DataError(
                f"dataset {self.spec!r} has no {name!r} split; it has: {', '.join(self.splits) or 'none'}"
            )
        return self.splits[name]

    def test_split(self) -> tuple[str, str]:
        """``(split name, why)``: the test split, or the validation split when there is no test split."""
        if "test" in self.splits:
            return "test", "the dataset's test split"
        if "val" in self.splits:
            return "val", "the dataset's validation split (it has no test split)"
        if len(self.splits) == 1:
            only = next(iter(self.splits))
            return only, f"the dataset's only split, {only!r} (use it with --test, not for training)"
        raise DataError(f"dataset {self.spec!r} has neither a test nor a validation split to score on")
