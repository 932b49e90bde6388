"""Generative metrics in a feature space: FID, KID and precision/recall/density/coverage, computed offline.

FID (Heusel et al. 2017) and KID (Bińkowski et al. 2018) come from torchmetrics, fed with features this module
extracts; precision, recall, density and coverage (Naeem et al. 2020, k nearest neighbours) are computed here
(torchmetrics has none of them). The feature extractor is either the encoder of a real-data-trained segmenter
(its deepest activation, globally averaged) or a timm backbone with a local weights file. Numbers from different
extractors, or from a different N, are different metrics: none of them is comparable with published
Inception FIDs.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import ConfigError

KID_SUBSETS = 100
PRDC_K = 5


@dataclass
class Extractor:
    """Images ``(B, 3, H, W)`` in [0, 1] -> features ``(B, D)``; ``name`` says exactly which network and layer."""

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device
    key: str = ""
    """What makes two feature spaces the same protocol (for a reference run: its seedless identity and layer)."""


def deepest_activation(model: nn.Module, example: torch.Tensor) -> tuple[str, nn.Module]:
    """The submodule whose output is the smallest feature map of a forward pass on ``example`` (the last one
    to finish at that size: the end of a segmenter's encoder, its bottleneck)."""
    seen: list[tuple[int, str, nn.Module]] = []
    handles = []
    for name, module in model.named_modules():
        if name:
            def hook(mod, inputs, output, name=name):
                if isinstance(output, torch.Tensor) and output.dim() == 4:
                    seen.append((output.shape[-2] * output.shape[-1], name, mod))
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    if not seen:
        raise ConfigError("--reference: the segmenter produced no 4-dimensional feature map to take features from")
    smallest = min(area for area, _, _ in seen)
    _, name, module = [s for s in seen if s[0] == smallest][-1]
    return name, module


def segmenter_extractor(model: nn.Module, size: tuple[int, int], expand: Callable[[torch.Tensor], torch.Tensor],
                        label: str, device: torch.device, key: str = "") -> Extractor:
    """Features from a trained segmenter: its deepest activation, averaged over positions. Images are resized
    to the segmenter's input size and given its channel set, as when it segments."""
    model = model.to(device).eval()
    layer_name, layer = deepest_activation(model, expand(torch.zeros(1, 3, *size, device=device)))
    captured: dict[str, torch.Tensor] = {}

    def fn(images: torch.Tensor) -> torch.Tensor:
        # hooked only while extracting: the same model also segments (mask coherence) without keeping activations
        handle = layer.register_forward_hook(lambda mod, inputs, output: captured.__setitem__("x", output))
        try:
            with torch.no_grad():
                model(expand(_resize(images, size)))
        finally:
            handle.remove()
        return captured.pop("x").float().mean(dim=(2, 3))

    return Extractor(f"{label}: activation of '{layer_name}', averaged over positions", fn, device,
                     f"{key or label}:{layer_name}")


def timm_extractor(name: str, weights: Path, device: torch.device) -> Extractor:
    """A timm backbone (no classifier) with ``weights`` loaded; every backbone weight must be in the file."""
    import timm
    from timm.data import resolve_data_config
    from timm.models import load_state_dict

    try:
        model = timm.create_model(name, pretrained=False, num_classes=0)
    except RuntimeError as exc:
        raise ConfigError(f"--features timm:{name}: {exc}") from None
    if not weights.is_file():
        raise ConfigError(f"--weights {weights}: file not found; expected the weights of timm model {name!r}")
    try:
        state = load_state_dict(str(weights))
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise ConfigError(f"--weights {weights}: cannot read it as a state dict ({type(exc).__name__}: {exc})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or wrong:
        shown = ", ".join((missing + wrong)[:5])
        raise ConfigError(f"--weights {weights}: not the weights of timm model {name!r} ({len(missing)} weights missing, "
                          f"{len(wrong)} of another shape: {shown})")
    model.load_state_dict({k: state[k] for k in own})
    model = model.to(device).eval()
    config = resolve_data_config({}, model=model)
    size = tuple(config["input_size"][1:])
    mean = torch.tensor(config["mean"], device=device).view(1, 3, 1, 1)
    std = torch.tensor(config["std"], device=device).view(1, 3, 1, 1)

    def fn(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model((_resize(images, size) - mean) / std).float().flatten(1)

    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    label = f"timm:{name} (weights {weights.name}, sha256 {digest}), pooled features at {size[0]}x{size[1]}"
    return Extractor(label, fn, device, label)


def _resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)


def extract(extractor: Extractor, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Features of ``images`` ``(N, 3, H, W)`` in [0, 1] (any device), float64 on the CPU."""
    out = [extractor.fn(images[i : i + batch_size].to(extractor.device).float()).double().cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out)


class _Given(nn.Module):
    """Hands torchmetrics features computed beforehand (its 'feature extractor' is then the identity)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.num_features = dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to the two feature sets (torchmetrics)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_Given(real.shape[1]))
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = KID_SUBSETS,
        subset_size: int | None = None, seed: int = 0) -> dict[str, Any]:
    """KID (torchmetrics): the unbiased squared MMD with the cubic polynomial kernel, averaged over ``subsets``
    random subsets of ``subset_size`` (default: half the smaller set, at most 1000), and its standard deviation
    over them, the standard error of a KID from ``subset_size`` samples. Seeded: the same features give the same
    numbers."""
    from torchmetrics.image.kid import KernelInceptionDistance

    m = subset_size or min(1000, min(len(real), len(fake)) // 2)
    if m < 2:
        raise ValueError(f"KID needs at least 4 samples of each kind, got {len(real)} real and {len(fake)} generated")
    with warnings.catch_warnings():  # "will save all extracted features": they are already in memory
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=_Given(real.shape[1]), subsets=subsets, subset_size=m)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return {"value": float(mean), "std": float(std), "subsets": subsets, "subset_size": m}


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = PRDC_K) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al. 2020) with ``k`` nearest neighbours.

    Each real sample's ball reaches its k-th nearest real neighbour (itself excluded), each generated sample's
    its k-th nearest generated neighbour. Precision: share of generated samples inside some real ball. Recall:
    share of real samples inside some generated ball. Density: mean number of real balls containing a generated
    sample, over k. Coverage: share of real samples whose ball contains some generated sample.
    """
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall/density/coverage need more than k={k} samples of each kind")
    real, fake = real.double(), fake.double()
    real_radius = torch.cdist(real, real).kthvalue(k + 1, dim=1).values  # k + 1: the distance to itself is 0
    fake_radius = torch.cdist(fake, fake).kthvalue(k + 1, dim=1).values
    cross = torch.cdist(real, fake)  # (n_real, n_fake)
    inside_real = cross <= real_radius[:, None]
    return {
        "precision": float(inside_real.any(0).double().mean()),
        "recall": float((cross <= fake_radius[None, :]).any(1).double().mean()),
        "density": float(inside_real.double().sum(0).mean() / k),
        "coverage": float((cross.min(1).values <= real_radius).double().mean()),
    }


def measure(extractor: Extractor, real_images: torch.Tensor, fake_images: torch.Tensor) -> dict[str, Any]:
    """Every feature-space metric of generated images against real ones (both ``(N, 3, H, W)`` in [0, 1])."""
    real, fake = extract(extractor, real_images), extract(extractor, fake_images)
    return {"extractor": extractor.name, "extractor_key": extractor.key, "dim": int(real.shape[1]), "n_real": len(real), "n_fake": len(fake),
            "fid": fid(real, fake), "kid": kid(real, fake), "k": PRDC_K, **prdc(real, fake)}
