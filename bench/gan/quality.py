"""Offline quality of a generator: mask coherence, diversity (pairwise SSIM), checkerboard energy.

- mask coherence: mean per-sample Jaccard between the generated mask and a real-data-trained
  segmenter's prediction on the generated image (both at the segmenter's input size; an image whose
  mask and prediction are both empty scores 1, as in ISIC scoring). High means image and mask agree.
- diversity: mean SSIM over all pairs of samples (RGB, data range 1); lower is more diverse. The same
  number over as many real training images is reported beside it.
- checkerboard: share of the spectral energy (grey level, mean removed, DC excluded) that lies on the
  Nyquist row and column, the frequencies a stride-2 transposed convolution's uneven overlap excites;
  the real images' value is reported beside it.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from bench.data import channels
from bench.scoring.metrics import confusion, image_metrics


def to_pairs(samples: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 4, H, W)`` in [-1, 1] -> (RGB float ``(n, H, W, 3)`` in [0, 1], masks bool ``(n, H, W)``)."""
    x = samples.detach().float().cpu()
    rgb = ((x[:, :3] + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    return rgb, (x[:, 3] > 0).numpy()


def mask_coherence(rgb: np.ndarray, masks: np.ndarray, model: torch.nn.Module, size: tuple[int, int],
                   channel_set: str, device: torch.device, batch_size: int = 32) -> float:
    model.eval()
    scores = []
    for start in range(0, len(rgb), batch_size):
        x = torch.from_numpy(rgb[start : start + batch_size]).permute(0, 3, 1, 2).to(device)
        m = torch.from_numpy(masks[start : start + batch_size]).float()[:, None].to(device)
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
            m = (F.interpolate(m, size=size, mode="bilinear", align_corners=False) > 0.5).float()
        with torch.no_grad():
            pred = torch.sigmoid(model(channels.expand(x, channel_set)).float()) > 0.5
        for p, t in zip(pred.cpu().numpy(), m.cpu().numpy() > 0.5):
            scores.append(image_metrics(confusion(t[0], p[0]))["jaccard"])
    return float(np.mean(scores))


def diversity_ssim(rgb: np.ndarray) -> tuple[float, int]:
    """Mean SSIM over all pairs, and the number of pairs."""
    values = [structural_similarity(a, b, channel_axis=2, data_range=1.0)
              for a, b in itertools.combinations(rgb, 2)]
    return float(np.mean(values)), len(values)


def checkerboard(rgb: np.ndarray) -> float:
    """Mean share of spectral energy on the Nyquist row and column (stride-2 artefact frequencies)."""
    grey = rgb.mean(axis=3)
    grey = grey - grey.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(grey)) ** 2
    h, w = grey.shape[1:]
    power[:, 0, 0] = 0.0
    nyquist = np.zeros((h, w), dtype=bool)
    nyquist[h // 2, :] = True
    nyquist[:, w // 2] = True
    total = power.sum(axis=(1, 2))
    share = power[:, nyquist].sum(axis=1) / np.maximum(total, 1e-12)
    return float(share.mean())


def measure(samples: torch.Tensor, real: torch.Tensor, reference: dict[str, Any] | None) -> dict[str, Any]:
    """All three metrics for ``samples`` (and the real reference values from ``real``, same count)."""
    rgb, masks = to_pairs(samples)
    real_rgb, _ = to_pairs(real)
    div, pairs = diversity_ssim(rgb)
    real_div, _ = diversity_ssim(real_rgb)
    out: dict[str, Any] = {
        "n_samples": len(rgb),
        "diversity_ssim": {"value": div, "real": real_div, "n_samples": len(rgb), "n_pairs": pairs},
        "checkerboard": {"value": checkerboard(rgb), "real": checkerboard(real_rgb), "n_samples": len(rgb)},
    }
    if reference is not None:
        out["mask_coherence"] = {
            "value": mask_coherence(rgb, masks, reference["model"], reference["size"], reference["channels"],
                                    reference["device"]),
            "n_samples": len(rgb), "reference_run": reference["path"],
            "reference_jaccard": reference["jaccard"], "reference_identity": reference.get("identity"),
        }
    return out


def measure_generator(generator: Any, real: Any, n: int, reference: dict[str, Any] | None, extractor: Any,
                      n_features: int, device: torch.device) -> tuple[dict[str, Any], str | None]:
    """``bench gan quality``'s numbers for a trained ``generator`` against ``real`` (a prepared split): the
    pixel-space metrics of :func:`measure` on ``n`` samples and, with an ``extractor``, FID, KID and
    precision/recall/density/coverage on ``n_features`` samples. Samples and real pairs are drawn with fixed
    seeds, so a generator measured twice gives the same numbers. Returns the metrics and a note (``None``, or
    why the feature-space metrics are absent)."""
    from bench.errors import ConfigError
    from bench.gan import feature_metrics
    from bench.gan.cache import to_gan_input

    samples = generator.sample(n, rng=torch.Generator(device=device).manual_seed(12345))
    idx = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[:n]
    metrics = measure(samples, to_gan_input(real, torch.device("cpu"), idx), reference)
    if extractor is None:
        return metrics, "no FID/KID/precision/recall: pass --reference RUN_DIR or --features timm:NAME --weights PATH"
    count = min(n_features, len(real))
    if count <= feature_metrics.PRDC_K:
        raise ConfigError(f"--n-features {n_features}: the feature-space metrics need more than "
                          f"{feature_metrics.PRDC_K} samples (the training split has {len(real)})")
    idx = torch.randperm(len(real), generator=torch.Generator().manual_seed(1))[:count]
    real_rgb = (to_gan_input(real, torch.device("cpu"), idx)[:, :3] + 1) / 2
    fake = generator.sample(count, rng=torch.Generator(device=device).manual_seed(54321))
    metrics["features"] = feature_metrics.measure(extractor, real_rgb, ((fake[:, :3] + 1) / 2).clamp(0, 1))
    return metrics, None
