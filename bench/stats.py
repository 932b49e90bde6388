"""Statistics for leaderboards: seed means of per-image scores and paired bootstrap intervals."""

from __future__ import annotations

from typing import Any

import numpy as np

BOOTSTRAP_SAMPLES = 5000
BOOTSTRAP_SEED = 0


def per_image_mean(records: list[dict[str, Any]], metric: str = "jaccard") -> dict[str, float]:
    """Image id -> the metric averaged over the records (seeds) that scored that image."""
    sums: dict[str, list[float]] = {}
    for record in records:
        for row in record["per_image"]:
            sums.setdefault(row["id"], []).append(float(row[metric]))
    return {image: float(np.mean(values)) for image, values in sums.items()}


def paired_bootstrap(a: dict[str, float], b: dict[str, float], samples: int = BOOTSTRAP_SAMPLES,
                     seed: int = BOOTSTRAP_SEED) -> dict[str, Any] | None:
    """Mean of ``a - b`` over the images both scored, with a 95% percentile interval from resampling images.

    Returns ``None`` when the two share no image. The resampling is seeded, so a leaderboard renders the
    same intervals every time.
    """
    common = sorted(set(a) & set(b))
    if not common:
        return None
    diff = np.array([a[i] - b[i] for i in common])
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(samples, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(diff.mean()), "low": float(low), "high": float(high), "n_images": len(common),
            "significant": bool(low > 0 or high < 0)}
