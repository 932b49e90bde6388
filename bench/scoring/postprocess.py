"""Dual-threshold post-processing of a probability map (Pollastri et al. Section 5.2).

1. Threshold at ``high`` (0.8), label connected components (8-connectivity) and take the centre of
   mass of the largest one as the lesion centre.
2. Threshold at ``low`` (0.4) and keep only the component that holds the centre; when the centre lies
   outside every low-threshold component (a ring- or C-shaped lesion), keep the component nearest to it.

Documented edge cases: an empty map (nothing above ``low``) gives an empty mask; a map with nothing above
``high`` has no centre, so the largest low-threshold component is kept (the most lesion-like object,
rather than predicting nothing).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

EIGHT = np.ones((3, 3), dtype=bool)


def lesion_centre(prob: np.ndarray, high: float = 0.8) -> tuple[float, float] | None:
    """Centre of mass of the largest component above ``high``, or ``None`` when there is none."""
    labels, n = ndimage.label(prob > high, structure=EIGHT)
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    biggest = int(np.argmax(sizes)) + 1
    cy, cx = ndimage.center_of_mass(labels == biggest)
    return float(cy), float(cx)


def dual_threshold(prob: np.ndarray, high: float = 0.8, low: float = 0.4) -> np.ndarray:
    """The binary mask of :mod:`this module`'s procedure for one ``(H, W)`` probability map."""
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"thresholds must satisfy 0 <= low <= high <= 1, got low={low}, high={high}")
    labels, n = ndimage.label(prob > low, structure=EIGHT)
    return _keep(labels, n, lesion_centre(prob, high))


def dual_threshold_grid(prob: np.ndarray, pairs: list[tuple[float, float]]) -> list[np.ndarray]:
    """:func:`dual_threshold` at every ``(high, low)`` of ``pairs``, each threshold's components labelled once
    (a threshold study scores many pairs on large maps)."""
    for high, low in pairs:
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"thresholds must satisfy 0 <= low <= high <= 1, got low={low}, high={high}")
    lows: dict[float, tuple[np.ndarray, int]] = {
        low: ndimage.label(prob > low, structure=EIGHT) for low in {low for _, low in pairs}}
    centres = {high: lesion_centre(prob, high) for high in {high for high, _ in pairs}}
    return [_keep(lows[low][0], lows[low][1], centres[high]) for high, low in pairs]


def _keep(labels: np.ndarray, n: int, centre: tuple[float, float] | None) -> np.ndarray:
    """The component of the low-threshold ``labels`` that holds (or is nearest to) ``centre``; the largest when
    there is no centre; nothing when there is no component."""
    if n == 0:
        return np.zeros(labels.shape, dtype=bool)
    if centre is None:
        sizes = np.bincount(labels.ravel())[1:]
        return labels == int(np.argmax(sizes)) + 1
    cy, cx = (min(max(int(round(c)), 0), s - 1) for c, s in zip(centre, labels.shape))
    keep = labels[cy, cx]
    if keep == 0:
        _, (iy, ix) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
        keep = labels[iy[cy, cx], ix[cy, cx]]
    return labels == keep
