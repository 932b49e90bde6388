"""Evaluation: predict at the model's size, upsample to each image's original size, threshold, score."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from bench.data import channels
from bench.data.prepare import Prepared
from bench.data.source import Split
from bench.scoring.metrics import confusion, image_metrics, summarise


@torch.no_grad()
def predict_probabilities(
    model: torch.nn.Module, prepared: Prepared, channel_set: str, device: torch.device, batch_size: int
) -> torch.Tensor:
    """Probabilities ``(N, 1, h, w)`` at the model's input size, on ``device``."""
    model.eval()
    out = []
    for start in range(0, len(prepared), batch_size):
        rgb = prepared.images[start : start + batch_size].to(device, non_blocking=True).float() / 255.0
        logits = model(channels.expand(rgb, channel_set))
        out.append(torch.sigmoid(logits.float()))
    return torch.cat(out)


@torch.no_grad()
def curve_point(
    model: torch.nn.Module, prepared: Prepared, channel_set: str, device: torch.device, batch_size: int
) -> dict[str, float]:
    """Mean per-image Jaccard and pixel accuracy at the training resolution: one point of Fig. 5's curve, named
    for what it is (``curve_jaccard``, ``curve_accuracy``), on whatever pairs ``prepared`` holds (the run's
    ``--curve-split``: held-out training pairs, or the scored split).

    Cheaper than :func:`score_probabilities` (no resizing to original sizes) and used only to plot
    training, never to select a model; empty-empty images score 1 as in :mod:`bench.scoring.metrics`.
    """
    probs = predict_probabilities(model, prepared, channel_set, device, batch_size)
    pred = probs > 0.5
    truth = prepared.masks.to(device) > 0.5
    inter = (pred & truth).flatten(1).sum(1).float()
    union = (pred | truth).flatten(1).sum(1).float()
    jaccard = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    accuracy = (pred == truth).flatten(1).float().mean(1)
    return {CURVE_KEYS["jaccard"]: float(jaccard.mean()), CURVE_KEYS["accuracy"]: float(accuracy.mean())}


CURVE_KEYS = {"jaccard": "curve_jaccard", "accuracy": "curve_accuracy"}
"""The history keys of a curve point, by metric."""
LEGACY_CURVE_KEYS = {"jaccard": "val_jaccard", "accuracy": "val_accuracy"}
"""What records written before ``--curve-split`` called them (always computed on the scored split)."""


def curve_value(entry: dict[str, Any], metric: str) -> float | None:
    """A history entry's curve ``metric`` (``jaccard`` or ``accuracy``), under its name or its legacy ``val_``
    name; ``None`` for an epoch without a curve point."""
    value = entry.get(CURVE_KEYS[metric], entry.get(LEGACY_CURVE_KEYS[metric]))
    return None if value is None else float(value)


def upsample(prob: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """One probability map ``(1, h, w)`` bilinearly resized to ``size`` -> ``(H, W)``."""
    if tuple(prob.shape[-2:]) == tuple(size):
        return prob[0]
    return F.interpolate(prob[None], size=size, mode="bilinear", align_corners=False)[0, 0]


def score_probabilities(
    probabilities: torch.Tensor | Callable[[int], torch.Tensor],
    split: Split,
    threshold: float,
    predictions_dir: Path | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """Score per image at original resolution; optionally write scorer-ready ``<id>_segmentation.png``.

    ``probabilities`` is either ``(N, 1, h, w)`` or a function giving image ``i``'s map at its
    original size (ensembles). Returns ``(per_image, summary, histogram)``.
    """
    ids = split.ids()
    rows: list[dict[str, Any]] = []
    if predictions_dir is not None:
        predictions_dir.mkdir(parents=True, exist_ok=True)
    for i, image_id in enumerate(ids):
        _, truth = split.load(i)
        if callable(probabilities):
            full = probabilities(i)
        else:
            full = upsample(probabilities[i], truth.shape)
        pred = (full > threshold).cpu().numpy()
        c = confusion(truth > 0, pred)
        rows.append({"id": image_id, **image_metrics(c), **c})
        if predictions_dir is not None:
            Image.fromarray(pred.astype(np.uint8) * 255).save(predictions_dir / f"{image_id}_segmentation.png")
    summary, histogram = summarise(rows)
    return rows, summary, histogram
