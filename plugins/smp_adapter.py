"""Any segmentation-models-pytorch model: ``--seg smp:ARCH:ENCODER`` (timm encoders as ``tu-NAME``).

Builds ``smp.create_model(ARCH, ENCODER, encoder_weights=None, in_channels=<channel set>, classes=1)``:
nothing is ever downloaded. ``--weights PATH`` loads a local file (``torch.load(weights_only=True)``, or
safetensors) into the encoder, strictly; the record holds the path and its SHA-256. ``width`` does not
apply to smp models and is ignored. Inputs are reflection-padded to a multiple of 2^depth (32) and the
output cropped back, so any size works.
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path

import torch

from bench.api import ConfigError, SegmenterMeta, UnknownComponentError, hookimpl


@functools.lru_cache(maxsize=1)
def architectures() -> dict[str, str]:
    """Lower-case name -> the class name users see (``unetplusplus`` -> ``UnetPlusPlus``)."""
    import segmentation_models_pytorch as smp

    return {key: cls.__name__ for key, cls in smp.MODEL_ARCHITECTURES_MAPPING.items()}


@functools.lru_cache(maxsize=1)
def encoders() -> list[str]:
    import segmentation_models_pytorch as smp

    return sorted(smp.encoders.get_encoder_names())


@functools.lru_cache(maxsize=1)
def timm_encoders() -> list[str]:
    import timm

    return ["tu-" + name for name in timm.list_models()]


def variants() -> dict[str, list[str]]:
    return {"ARCH": sorted(architectures().values()), "ENCODER": encoders() + timm_encoders()}


def _close(what: str, name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    shown = ", ".join(valid) if len(valid) <= 80 else ", ".join(valid[:80]) + f", ... ({len(valid)} in all)"
    return f"unknown smp {what} {name!r}{hint} Valid: {shown}"


def parse(spec: str | None) -> tuple[str, str]:
    """``"Unet:resnet34"`` -> (architecture key, encoder name), checked against the installed smp and timm."""
    if not spec or spec.count(":") != 1:
        raise ConfigError(f"--seg smp:{spec or ''}: expected smp:ARCH:ENCODER, e.g. smp:Unet:resnet34 "
                          "(`bench list segmenters 'smp:*'` lists them)")
    arch, encoder = spec.split(":")
    archs = architectures()
    if arch.lower() not in archs:
        raise UnknownComponentError(_close("architecture", arch, sorted(archs.values())))
    if encoder.startswith("tu-"):
        if encoder not in set(timm_encoders()):
            raise UnknownComponentError(_close("timm encoder", encoder, timm_encoders()))
    elif encoder not in encoders():
        raise UnknownComponentError(_close("encoder", encoder, encoders()))
    return arch.lower(), encoder


def load_weights(path: str) -> dict[str, torch.Tensor]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"--weights {path}: file not found; expected a local .pt/.pth or .safetensors file")
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(file))
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"--weights {path}: cannot be loaded safely (weights_only=True): {exc}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ConfigError(f"--weights {path}: expected a state dict of tensors")
    return state


class PadToMultiple(torch.nn.Module):
    """Reflection-pads inputs to a multiple of ``multiple`` and crops the logits back (smp needs /32)."""

    def __init__(self, model: torch.nn.Module, multiple: int = 32) -> None:
        super().__init__()
        self.model, self.multiple = model, multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.multiple, (-w) % self.multiple
        if ph or pw:
            mode = "reflect" if min(h, w) > max(ph, pw) else "replicate"
            x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode=mode)
        return self.model(x)[..., :h, :w]


def build_smp(in_channels: int, width: float = 1.0, spec: str | None = None, weights: str | None = None,
              **options) -> torch.nn.Module:
    import segmentation_models_pytorch as smp

    arch, encoder = parse(spec)
    try:
        model = smp.create_model(arch, encoder_name=encoder, encoder_weights=None, in_channels=in_channels,
                                 classes=1, **options)
    except (TypeError, ValueError, KeyError, RuntimeError, AssertionError) as exc:
        raise ConfigError(f"--seg smp:{spec}: smp could not build it: {exc}") from None
    if weights:
        state = load_weights(weights)
        try:
            model.encoder.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            detail = " ".join(line.strip() for line in str(exc).splitlines()[1:3])
            raise ConfigError(f"--weights {weights}: does not fit encoder {encoder} with {in_channels} input "
                              f"channels: {detail}") from None
    return PadToMultiple(model, 2 ** getattr(model.encoder, "_depth", 5))


@hookimpl
def bench_register_segmenters(register):
    register(
        "smp", build_smp,
        description="any segmentation-models-pytorch model as smp:ARCH:ENCODER (timm encoders as tu-NAME); "
                    "no download, --weights for a local file",
        meta=SegmenterMeta(size="192x256", channels="rgb", loss="bce"),
        reference="Iakubovskii, segmentation-models-pytorch; Wightman, timm",
        variants=variants,
    )
