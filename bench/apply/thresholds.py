"""Choosing an ensemble's dual thresholds on images that are not the ones it is scored on.

A threshold picked by looking at the scores of the scored images flatters them (the choice fits their noise).
Two honest ways are offered. ``folds:K`` cross-fits on the scored images: they are dealt into K folds (a
seeded shuffle of their ids), and each fold is post-processed with the ``(high, low)`` of :data:`GRID` that
scores best on the other K - 1 folds, so no image is scored with a threshold chosen on it. ``split:NAME`` picks
one pair on another split of the test dataset (``val`` when scoring ``test``) and scores the scored split with
it. The pair a later ``bench predict`` uses is the one that is best on all the tuning images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from bench.data.source import Split
from bench.errors import ConfigError
from bench.scoring.metrics import confusion, image_metrics
from bench.scoring.postprocess import dual_threshold_grid

HIGHS = (0.5, 0.6, 0.7, 0.8, 0.9)
LOWS = (0.3, 0.4, 0.5)
GRID: tuple[tuple[float, float], ...] = tuple((h, lo) for h in HIGHS for lo in LOWS if lo <= h)
"""The ``(high, low)`` pairs a tuned ensemble chooses from; it holds the paper's (0.8, 0.4)."""


@dataclass(frozen=True)
class Tuning:
    """How an ensemble's thresholds are chosen: cross-fitted on ``folds`` folds of the scored images (shuffled
    by ``seed``), or on the named ``split`` of the test dataset."""

    folds: int | None = None
    split: str | None = None
    seed: int = 0

    @property
    def label(self) -> str:
        """What names the choice in folders, identities and tables: ``folds:5 seed 0`` or ``split:val``."""
        return f"folds:{self.folds} seed {self.seed}" if self.folds else f"split:{self.split}"


def parse_tuning(text: str, seed: int = 0) -> Tuning:
    """``folds:K`` (K >= 2) or ``split:NAME`` -> :class:`Tuning`; the error names ``--tune`` and the forms."""
    if seed < 0:
        raise ConfigError(f"--tune-seed {seed}: expected 0 or more")
    kind, _, value = text.partition(":")
    if kind == "folds" and value.isdigit() and int(value) >= 2:
        return Tuning(folds=int(value), seed=seed)
    if kind == "split" and value.strip():
        return Tuning(split=value.strip(), seed=seed)
    raise ConfigError(f"--tune {text}: expected folds:K (K >= 2: cross-fitted on K folds of the scored images) "
                      "or split:NAME (chosen on another split of the test dataset, e.g. split:val)")


Maps = Callable[[int], torch.Tensor]
"""Image ``i``'s mean probability map at its original size."""


def grid_confusions(maps: Maps, split: Split) -> list[list[dict[str, int]]]:
    """For every image of ``split``, the confusion counts of every pair of :data:`GRID` (image x pair)."""
    out = []
    for i in range(len(split)):
        _, truth = split.load(i)
        masks = dual_threshold_grid(maps(i).numpy(), list(GRID))
        out.append([confusion(truth > 0, m) for m in masks])
    return out


def best_pair(confusions: list[list[dict[str, int]]], images: list[int]) -> int:
    """Index in :data:`GRID` of the pair with the highest mean Jaccard over ``images`` (the first on a tie)."""
    means = [np.mean([image_metrics(confusions[i][p])["jaccard"] for i in images]) for p in range(len(GRID))]
    return int(np.argmax(means))


def fold_of(n: int, folds: int, seed: int) -> list[int]:
    """Each of ``n`` images' fold (0-based): a ``seed``-ed shuffle dealt round-robin, sizes differing by one."""
    if not 2 <= folds <= n:
        raise ConfigError(f"--tune folds:{folds}: expected 2 to {n} folds for {n} scored images")
    order = np.random.default_rng(seed).permutation(n)
    fold = [0] * n
    for position, image in enumerate(order):
        fold[int(image)] = position % folds
    return fold


def cross_fit(confusions: list[list[dict[str, int]]], folds: int, seed: int
              ) -> tuple[list[int], list[int], list[int]]:
    """``(pair index per image, pair index per fold, fold per image)``: each fold takes the pair best on the
    other folds."""
    fold = fold_of(len(confusions), folds, seed)
    chosen = [best_pair(confusions, [i for i, f in enumerate(fold) if f != k]) for k in range(folds)]
    return [chosen[f] for f in fold], chosen, fold


def tuned_rows(ids: list[str], confusions: list[list[dict[str, int]]], per_image: list[int]) -> list[dict[str, Any]]:
    """Per-image rows as :func:`bench.scoring.evaluate.score_probabilities` writes them, each image at its pair."""
    return [{"id": image_id, **image_metrics(confusions[i][p]), **confusions[i][p]}
            for i, (image_id, p) in enumerate(zip(ids, per_image))]


def description(tuning: Tuning, chosen: list[int], final: int, n_images: int,
                image_folds: dict[str, int] | None = None) -> dict[str, Any]:
    """The record's account of the choice: method, grid, each fold's pair and which images it scored (or the
    split's pair), and the final pair (the best on all tuning images, which ``bench predict`` uses)."""
    out: dict[str, Any] = {"method": "cross-fitted" if tuning.folds else "split", "grid": [list(p) for p in GRID],
                           "final": list(GRID[final]), "n_images": n_images}
    if tuning.folds:
        out.update({"folds": tuning.folds, "seed": tuning.seed, "per_fold": [list(GRID[c]) for c in chosen],
                    "image_folds": image_folds or {}})
    else:
        out["split"] = tuning.split
    return out
