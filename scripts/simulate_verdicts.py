"""Simulate `bench claims`' verdicts under the two-way seed x image model (docs/statistics.md, "Simulations of
the verdicts"): family-wise false verdicts without and with Holm, false "smaller than the paper's" verdicts
when the true effect is the paper's, and the power to support a gain of the paper's size.

    python scripts/simulate_verdicts.py [--families 400] [--seed 0]

Each simulated claim compares two cells of S paired seeds on I test images: difference d[s, i] = mu + a[s]
+ b[i] + e[s, i] with standard deviations SEED_SD, IMAGE_SD and INTERACTION_SD (the orders of magnitude of the
ISIC quick board's CDNN3 comparisons). Claims of one family are independent here; the board's claims share
cells, which this does not model.
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.results.claims import CONTRADICTED, SMALLER, SUPPORTED, Verdict, holm, magnitude
from bench.results.stats import Sample, compare

SEEDS, IMAGES, FAMILY = 5, 150, 16
SEED_SD, IMAGE_SD, INTERACTION_SD = 0.010, 0.030, 0.040
PAPER_GAIN = 0.009


def claim(rng: np.random.Generator, mu: float, seeds: int, gain: float | None) -> Verdict:
    """One claim "a beats b" with true difference ``mu``, judged as `bench claims` judges it (before Holm)."""
    units = tuple(f"seed {s}" for s in range(seeds))
    images = tuple(f"i{k}" for k in range(IMAGES))
    b = rng.uniform(0.4, 0.9, (seeds, IMAGES))
    d = (mu + rng.normal(0, SEED_SD, (seeds, 1)) + rng.normal(0, IMAGE_SD, (1, IMAGES))
         + rng.normal(0, INTERACTION_SD, (seeds, IMAGES)))
    result = compare(Sample(units, images, b + d), Sample(units, images, b), samples=10)
    assert result is not None and result.interval is not None and result.p_value is not None
    low, high = result.interval
    return Verdict("claim", "", "", "", "", "", result.p_value, result.mean > 0, gain=gain, low=low, high=high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    any_raw = any_holm = 0
    for _ in range(args.families):  # global null: every claim's true difference is 0
        family = [claim(rng, 0.0, SEEDS, None) for _ in range(FAMILY)]
        any_raw += any(v.p is not None and v.p < 0.05 for v in family)
        any_holm += any(v.verdict in (SUPPORTED, CONTRADICTED) for v in holm(family))
    n = args.families
    print(f"global null, {FAMILY} independent claims, {SEEDS} seeds, {IMAGES} images, {n} families:")
    print(f"  P(any false verdict): each claim at 5% {any_raw / n:.3f}; Holm {any_holm / n:.3f}")
    trials = n * 4
    smaller = sum(magnitude(claim(rng, PAPER_GAIN, SEEDS, PAPER_GAIN), False).startswith(SMALLER)
                  for _ in range(trials))
    print(f"true effect = the paper's {PAPER_GAIN:+.3f}: false 'smaller than the paper's' {smaller / trials:.3f} "
          f"({trials} claims, alone)")
    for seeds in (SEEDS, 10, 20):
        supported = sum(claim(rng, PAPER_GAIN, seeds, PAPER_GAIN).p < 0.05 / FAMILY for _ in range(trials))
        print(f"power to support {PAPER_GAIN:+.3f} with {seeds} seeds, as the first claim Holm tests "
              f"(p < 0.05/{FAMILY}): {supported / trials:.3f}")


if __name__ == "__main__":
    main()
