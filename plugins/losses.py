"""The paper's losses (Section 4): Eq. 1 Tanimoto, Eq. 3 generalised Jaccard, Eq. 4 MSE, Eq. 6 BCE.

Every loss takes logits ``(B, 1, H, W)`` and a binary target of the same shape. Eq. 1 and Eq. 3 sum
over the pixels of one image and the batch loss is the mean of the per-image losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.api import hookimpl

EPS = 1e-7


def tanimoto(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 1: ``1 - sum(tp) / (sum(t^2) + sum(p^2) - sum(tp))`` per image, averaged over the batch."""
    p = torch.sigmoid(logits.float()).flatten(1)
    t = target.float().flatten(1)
    tp = (t * p).sum(1)
    return (1.0 - tp / ((t * t).sum(1) + (p * p).sum(1) - tp + EPS)).mean()


def jaccard(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 3: ``1 - sum(tp) / (sum(t) + sum(p) - sum(tp))`` per image, averaged over the batch."""
    p = torch.sigmoid(logits.float()).flatten(1)
    t = target.float().flatten(1)
    tp = (t * p).sum(1)
    return (1.0 - tp / (t.sum(1) + p.sum(1) - tp + EPS)).mean()


def mse(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 4: mean squared error between probability and target over all pixels."""
    return F.mse_loss(torch.sigmoid(logits.float()), target.float())


def bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 6: binary cross-entropy over all pixels (computed from logits for stability)."""
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


@hookimpl
def bench_register_losses(register):
    for name, fn, eq, text in (
        ("tanimoto", tanimoto, "Eq. 1", "Tanimoto distance of Yuan et al. (CDNN0-4)"),
        ("jaccard", jaccard, "Eq. 3", "generalised Jaccard distance (CDNN5)"),
        ("mse", mse, "Eq. 4", "mean squared error (CDNN6)"),
        ("bce", bce, "Eq. 6", "binary cross-entropy (U-Net's standard loss)"),
    ):
        register(name, lambda fn=fn: fn, description=text, reference=f"Pollastri et al., {eq}")
