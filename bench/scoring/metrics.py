"""ISIC 2017 Part 1 scoring: per-image confusion counts and metrics, summary, histogram (Fig. 7).

Edge cases follow the official ``isic-challenge-scoring`` package: an image whose prediction and
ground truth are both empty scores Jaccard and Dice 1; sensitivity (specificity) is 1 when the ground
truth has no positive (negative) pixel. The score is the mean over images, not over pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

HISTOGRAM_EDGES = [round(0.1 * i, 1) for i in range(11)]
THRESHOLD_JACCARD = 0.65


def confusion(truth: np.ndarray, prediction: np.ndarray) -> dict[str, int]:
    """Counts of two boolean masks of the same shape."""
    t = truth.astype(bool)
    p = prediction.astype(bool)
    tp = int(np.count_nonzero(t & p))
    fp = int(np.count_nonzero(~t & p))
    fn = int(np.count_nonzero(t & ~p))
    tn = int(t.size - tp - fp - fn)
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def image_metrics(c: dict[str, int]) -> dict[str, float]:
    """Jaccard, Dice, accuracy, sensitivity, specificity and threshold Jaccard of one image."""
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
    union = tp + fp + fn
    jaccard = 1.0 if union == 0 else tp / union
    return {
        "jaccard": jaccard,
        "dice": 1.0 if union == 0 else 2 * tp / (2 * tp + fp + fn),
        "accuracy": (tp + tn) / (tp + tn + fp + fn),
        "sensitivity": 1.0 if tp + fn == 0 else tp / (tp + fn),
        "specificity": 1.0 if tn + fp == 0 else tn / (tn + fp),
        "threshold_jaccard": jaccard if jaccard >= THRESHOLD_JACCARD else 0.0,
    }


def summarise(per_image: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(summary, histogram)`` of per-image rows that hold the metrics of :func:`image_metrics`."""
    if not per_image:
        raise ValueError("no images were scored")
    keys = ("jaccard", "dice", "accuracy", "sensitivity", "specificity", "threshold_jaccard")
    summary: dict[str, Any] = {k: float(np.mean([row[k] for row in per_image])) for k in keys}
    jac = np.array([row["jaccard"] for row in per_image])
    summary["n_images"] = len(per_image)
    summary["below_0.6"] = int(np.count_nonzero(jac < 0.6))
    summary["below_0.7"] = int(np.count_nonzero(jac < 0.7))
    counts, _ = np.histogram(jac, bins=HISTOGRAM_EDGES)
    return summary, {"edges": HISTOGRAM_EDGES, "counts": [int(c) for c in counts]}
