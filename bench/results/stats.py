"""Comparisons of two sets of runs that account for both sources of variance: seeds and test images.

A leaderboard cell holds several runs (seeds, or the folds of a seed) that score the same test images. The
difference between two cells has two sources of noise: which seeds were trained (initialisation, batch order,
synthetic samples) and which images happen to be in the test set. An interval computed on per-image scores
averaged over seeds sees only the second; :func:`compare` adds the first. The method, its assumptions and a
worked example are in ``docs/statistics.md``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

BOOTSTRAP_SAMPLES = 5000
BOOTSTRAP_SEED = 0
LEVEL = 0.95
POWER = 0.80
MAX_SEEDS = 100
"""The largest seed count :meth:`Comparison.seeds_needed` searches; beyond it the answer is ``None``."""


@dataclass(frozen=True)
class Sample:
    """One cell's scores as a matrix: a row per unit (a seed, with its folds pooled), a column per test image."""

    units: tuple[str, ...]
    images: tuple[str, ...]
    scores: np.ndarray

    def restrict(self, images: list[str]) -> "Sample":
        """The same units on ``images`` only (columns in that order)."""
        index = {image: i for i, image in enumerate(self.images)}
        return Sample(self.units, tuple(images), self.scores[:, [index[i] for i in images]])

    def of_units(self, units: list[str]) -> "Sample":
        """These ``units`` only (rows in that order), on the same images."""
        index = {unit: i for i, unit in enumerate(self.units)}
        return Sample(tuple(units), self.images, self.scores[[index[u] for u in units], :])


def unit_of(record: dict[str, Any]) -> str:
    """The replicate a record belongs to: its seed (the folds of one seed are one unit), or for an ensemble
    its member seeds."""
    run = record["run"]
    if run.get("kind") == "ensemble":
        return "members " + "+".join(sorted(str(m.get("seed")) for m in run.get("members", [])))
    return f"seed {run.get('seed')}"


def sample(records: list[dict[str, Any]], metric: str = "jaccard") -> Sample:
    """The unit x image matrix of ``records`` (runs of one identity).

    Records of the same unit are pooled: the folds of a cross-validated seed each score their own images, so
    together they score every image once; two copies of one run average. Only images that every unit scored
    are kept, so every row is over the same images.
    """
    by_unit: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        for row in record["per_image"]:
            by_unit[unit_of(record)][row["id"]].append(float(row[metric]))
    units = sorted(by_unit)
    common = sorted(set.intersection(*(set(by_unit[u]) for u in units))) if units else []
    scores = np.array([[np.mean(by_unit[u][i]) for i in common] for u in units], dtype=np.float64)
    return Sample(tuple(units), tuple(common), scores.reshape(len(units), len(common)))


def unit_means(records: list[dict[str, Any]], metric: str = "jaccard") -> list[float]:
    """Each unit's mean score over the images it scored (a seed's folds together), in unit order."""
    by_unit: dict[str, list[float]] = defaultdict(list)
    for record in records:
        by_unit[unit_of(record)] += [float(row[metric]) for row in record["per_image"]]
    return [float(np.mean(by_unit[u])) for u in sorted(by_unit)]


@dataclass(frozen=True)
class Comparison:
    """``a - b`` for two samples: the mean difference, its seed x image interval, and the image-only one."""

    mean: float
    n_images: int
    seeds_a: int
    seeds_b: int
    paired: bool
    image_low: float
    image_high: float
    var_seed: float | None
    """Variance of the mean difference due to seeds (``None`` when a side has one unit)."""
    var_image: float
    """Variance of the mean difference due to the choice of test images."""
    seed_sd: float | None = None
    """The standard deviation of one seed's difference (paired: of the seeds' mean differences; unpaired: of a seed
    of ``a`` minus a seed of ``b``), ``None`` without two units on each side."""
    units: tuple[str, ...] = ()
    """The units (seeds) a paired difference is over."""
    of: tuple[int, int] | None = None
    """The units each side had when a paired difference used only the ones they share (``None``: all of them)."""

    @property
    def image_significant(self) -> bool:
        return self.image_low > 0 or self.image_high < 0

    @property
    def has_seed_interval(self) -> bool:
        return self.var_seed is not None

    @property
    def se(self) -> float | None:
        return None if self.var_seed is None else math.sqrt(self.var_seed + self.var_image)

    @property
    def df(self) -> int | None:
        """Degrees of freedom of the interval: the seeds' (``S - 1``, the smaller side's when unpaired).

        The seed-level variance, estimated from a handful of seeds, is the uncertain term; borrowing the
        images' degrees of freedom (Welch-Satterthwaite) makes the interval too narrow whenever that estimate
        comes out small by chance (``docs/statistics.md``)."""
        if self.var_seed is None:
            return None
        return (self.seeds_a if self.paired else min(self.seeds_a, self.seeds_b)) - 1

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% seed x image interval, ``None`` without two units on each side."""
        if self.se is None or self.df is None:
            return None
        half = float(sps.t.ppf(0.5 + LEVEL / 2, self.df)) * self.se
        return self.mean - half, self.mean + half

    @property
    def significant(self) -> bool:
        interval = self.interval
        return interval is not None and (interval[0] > 0 or interval[1] < 0)

    @property
    def p_value(self) -> float | None:
        """Two-sided p of "no difference" under the interval's t distribution, ``None`` without an interval."""
        if self.se is None or self.df is None:
            return None
        if self.se == 0:
            return 0.0 if self.mean != 0 else 1.0
        return float(2 * sps.t.sf(abs(self.mean) / self.se, self.df))

    @property
    def new_seed_wins(self) -> float | None:
        """The estimated probability that one new seed of ``a`` beats the baseline ``b`` on these images (paired: a
        new seed of both; unpaired: a new seed of each), from the t predictive distribution of one seed's
        difference; ``None`` without two units on each side."""
        if self.seed_sd is None or self.df is None:
            return None
        if self.seed_sd == 0:
            return 1.0 if self.mean > 0 else 0.0 if self.mean < 0 else 0.5
        n = self.seeds_a if self.paired else min(self.seeds_a, self.seeds_b)
        return float(sps.t.cdf(self.mean / (self.seed_sd * math.sqrt(1 + 1 / n)), self.df))

    def mde(self, seeds: int | None = None) -> float | None:
        """Minimum detectable effect (two-sided 5% test, 80% power) with ``seeds`` units per side (default:
        the ones there are): ``(t_0.975 + t_0.80) x SE``, the seed variance scaled to that many seeds."""
        if self.var_seed is None:
            return None
        now = min(self.seeds_a, self.seeds_b)
        seeds = seeds or now
        var_seed = self.var_seed * now / seeds
        t = float(sps.t.ppf(0.5 + LEVEL / 2, seeds - 1)) + float(sps.t.ppf(POWER, seeds - 1))
        return t * math.sqrt(var_seed + self.var_image)

    def seeds_needed(self, effect: float) -> int | None:
        """The fewest seeds per side at which ``effect`` is detectable with 80% power, ``None`` when not even
        :data:`MAX_SEEDS` are enough (the test images' own noise may be the limit)."""
        if self.var_seed is None or effect == 0:
            return None
        for seeds in range(2, MAX_SEEDS + 1):
            mde = self.mde(seeds)
            if mde is not None and mde <= abs(effect):
                return seeds
        return None

    def image_mde(self) -> float:
        """The smallest effect the test images alone let one detect, however many seeds: ``(z + z) x SE_image``."""
        return (float(sps.norm.ppf(0.5 + LEVEL / 2)) + float(sps.norm.ppf(POWER))) * math.sqrt(self.var_image)


def _interaction(scores: np.ndarray) -> float:
    """The residual (unit x image interaction) mean square of a two-way layout, divided by its cell count:
    its share of the variance of the grand mean."""
    units, images = scores.shape
    if units < 2 or images < 2:
        return 0.0
    resid = scores - scores.mean(axis=1, keepdims=True) - scores.mean(axis=0, keepdims=True) + scores.mean()
    return float((resid ** 2).sum()) / ((units - 1) * (images - 1)) / (units * images)


def compare(a: Sample, b: Sample, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> Comparison | None:
    """``a - b`` on the images both scored; ``None`` when they share none.

    Paired by seed when both have the same units (each seed's per-image difference), else the two sides'
    seed variances add. The variance of the mean difference is ``var(seed means) / S + var(image means) / I``
    with the seed x image interaction, which both terms hold, counted once. The image-only interval
    resamples images (``samples`` seeded draws) from each image's seed-averaged difference, so a table
    renders the same every time.
    """
    common = sorted(set(a.images) & set(b.images))
    if not common or not a.units or not b.units:
        return None
    a, b = a.restrict(common), b.restrict(common)
    of = None
    shared = sorted(set(a.units) & set(b.units), key=_unit_order)
    if a.units != b.units and len(shared) >= 2:  # pair on the seeds both ran: a seed bad for all shifts both sides
        of = (len(a.units), len(b.units))
        a, b = a.of_units(shared), b.of_units(shared)
    paired = a.units == b.units
    per_image = a.scores.mean(axis=0) - b.scores.mean(axis=0)
    n = len(common)
    var_image = float(np.var(per_image, ddof=1)) / n if n > 1 else 0.0
    seed_sd: float | None = None
    if paired and len(a.units) > 1:
        diff = a.scores - b.scores
        var_seed: float | None = float(np.var(diff.mean(axis=1), ddof=1)) / len(a.units)
        var_both = _interaction(diff)
        seed_sd = float(np.std(diff.mean(axis=1), ddof=1))
    elif not paired and len(a.units) > 1 and len(b.units) > 1:
        var_a, var_b = float(np.var(a.scores.mean(axis=1), ddof=1)), float(np.var(b.scores.mean(axis=1), ddof=1))
        var_seed = var_a / len(a.units) + var_b / len(b.units)
        var_both = _interaction(a.scores) + _interaction(b.scores)
        seed_sd = math.sqrt(var_a + var_b)
    else:
        var_seed, var_both = None, 0.0
    if var_seed is not None:
        # var_seed and var_image each hold the seed x image interaction once (var_both): count it once,
        # never going below either term alone (the two-way random-effects estimate of the mean's variance)
        var_image = max(var_image - var_both, var_image - var_seed, 0.0)
    rng = np.random.default_rng(seed)
    means = per_image[rng.integers(0, n, size=(samples, n))].mean(axis=1)
    low, high = np.percentile(means, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
    return Comparison(mean=float(per_image.mean()), n_images=n, seeds_a=len(a.units), seeds_b=len(b.units),
                      paired=paired, image_low=float(low), image_high=float(high), var_seed=var_seed,
                      var_image=var_image, seed_sd=seed_sd, units=a.units if paired else (), of=of)


def _unit_order(unit: str) -> tuple[int, str]:
    """Seeds in numeric order (``seed 2`` before ``seed 10``), other units after, by name."""
    tail = unit.rsplit(" ", 1)[-1]
    return (int(tail), unit) if tail.isdigit() else (1 << 62, unit)
