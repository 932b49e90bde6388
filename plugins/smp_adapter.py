"""Any segmentation-models-pytorch model: ``--seg smp:ARCH:ENCODER`` (timm encoders as ``tu-NAME``).

Builds ``smp.create_model(ARCH, ENCODER, encoder_weights=None, in_channels=<channel set>, classes=1)``:
nothing is ever downloaded. ``--weights PATH`` loads a local file (``torch.load(weights_only=True)``, or
safetensors) into the encoder, strictly; the record holds the path and its SHA-256. ``--encoder-weights TAG``
loads the encoder's published pretrained weights (smp's ``imagenet``/``ssl``/``swsl``..., a timm tag for
``tu-`` encoders) from the local Hugging Face hub cache only (:func:`encoder_weights_file`, docs/pretrained.md).
``width`` does not apply to smp models and is ignored. Inputs are reflection-padded to a multiple of 2^depth
(32) and the output cropped back, so any size works.
"""

from __future__ import annotations

import difflib
import functools
import os
from pathlib import Path
from typing import Any

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


def hub_cache() -> tuple[Path, str]:
    """The Hugging Face hub cache folder, read from the environment now (huggingface_hub reads it once, at import),
    and what chose it: ``HF_HUB_CACHE``, the legacy ``HUGGINGFACE_HUB_CACHE``, ``HF_HOME``/hub, or the default."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.path.expandvars(os.environ[variable])).expanduser(), variable
    if os.environ.get("HF_HOME"):
        return Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub", "HF_HOME/hub"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "huggingface" / "hub", "the default; set HF_HUB_CACHE for another"


def hub_files(encoder: str, tag: str) -> tuple[str, tuple[str, ...], str | None, str | None]:
    """Where encoder ``encoder``'s ``tag`` weights live on the Hugging Face hub: ``(repo id, file names to try,
    revision, timm tag)``. smp's own encoders: the ``smp-hub`` repository and pinned commit smp itself downloads
    (``pretrained_settings``); ``tu-`` encoders: timm's ``hf_hub_id`` for ``NAME.TAG`` (``imagenet``: timm's
    default tag for the model), safetensors before a pickle. An unknown tag names the ones there are."""
    if encoder.startswith("tu-"):
        return _timm_files(encoder[3:], tag)
    from segmentation_models_pytorch.encoders import encoders as smp_encoders

    offered = smp_encoders[encoder].get("pretrained_settings") or {}
    if tag not in offered:
        there = ", ".join(sorted(offered)) or "none"
        raise ConfigError(f"--encoder-weights {tag}: smp publishes no {tag!r} weights for encoder {encoder}; it has: "
                          f"{there}")
    return offered[tag]["repo_id"], ("model.safetensors",), offered[tag].get("revision"), None


def _timm_files(name: str, tag: str) -> tuple[str, tuple[str, ...], str | None, str]:
    """:func:`hub_files` for timm model ``name``: the pretrained configuration of ``name.TAG``."""
    import timm
    from timm.models import get_pretrained_cfg

    tags = [t.split(".", 1)[1] for t in timm.list_pretrained(f"{name}.*") if "." in t]
    default = get_pretrained_cfg(name)
    if not tags or default is None:
        raise ConfigError(f"--encoder-weights {tag}: timm publishes no pretrained weights for tu-{name}")
    chosen = default.tag if tag == "imagenet" and tag not in tags else tag
    if chosen not in tags:
        raise ConfigError(f"--encoder-weights {tag}: timm has no tag {tag!r} for tu-{name}; it has: imagenet (its "
                          f"default, {default.tag}), {', '.join(tags)}")
    cfg = get_pretrained_cfg(f"{name}.{chosen}")
    if cfg is None or not cfg.hf_hub_id or cfg.custom_load:
        where = "a custom loader" if cfg is not None and cfg.custom_load else f"{getattr(cfg, 'url', None) or 'nowhere'}"
        raise ConfigError(f"--encoder-weights {tag}: timm loads {name}.{chosen} from {where}, not from a Hugging Face "
                          "hub file, which is all this harness resolves offline; choose another tag or encoder")
    repo, _, revision = cfg.hf_hub_id.partition("@")
    files = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else ("model.safetensors", "pytorch_model.bin")
    return repo, files, revision or None, chosen


def encoder_weights_file(spec: str | None, tag: str) -> Path:
    """The local file of ``--seg smp:SPEC``'s encoder weights ``tag``, found in the Hugging Face hub cache only
    (never downloaded: the harness makes no network access at run time); when absent, a one-line error saying
    what was looked for, in which folder, and how to put it there from a machine with internet."""
    from huggingface_hub import try_to_load_from_cache

    _, encoder = parse(spec)
    repo, files, revision, _ = hub_files(encoder, tag)
    cache, chosen_by = hub_cache()
    for name in files:
        found = try_to_load_from_cache(repo, name, cache_dir=str(cache), revision=revision)
        if isinstance(found, str):
            return Path(found)
    at = f", revision={revision!r}" if revision else ""
    fetch = "; ".join(f"hf_hub_download({repo!r}, {name!r}{at})"
                      for name in (("config.json",) if not encoder.startswith("tu-") else ()) + files[:1])
    folder = "models--" + repo.replace("/", "--")
    raise ConfigError(
        f"--encoder-weights {tag}: {repo} {' or '.join(files)} (revision {revision or 'main'}) is not in the Hugging "
        f"Face cache {cache} ({chosen_by}); nothing is downloaded at run time. On a machine with internet run "
        f"python -c \"from huggingface_hub import hf_hub_download; {fetch}\", then copy the cache folder {folder} "
        f"(under ~/.cache/huggingface/hub there) into {cache}, or point HF_HUB_CACHE at a copy (docs/pretrained.md)")


def read_hub_weights(path: Path, tag: str) -> dict[str, torch.Tensor]:
    """The tensors of a hub weights file: safetensors, or a pickle loaded with ``weights_only=True`` (no code runs)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"--encoder-weights {tag}: {path} cannot be read as weights ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); delete it from the cache and fetch it "
                          "again") from None


def _create(arch: str, encoder: str, encoder_weights: Any, in_channels: int, blame: str,
            **options) -> torch.nn.Module:
    """``smp.create_model`` with one output class; smp's (and timm's) refusals as a ConfigError after ``blame``."""
    import segmentation_models_pytorch as smp

    try:
        return smp.create_model(arch, encoder_name=encoder, encoder_weights=encoder_weights, in_channels=in_channels,
                                classes=1, **options)
    except (TypeError, ValueError, KeyError, RuntimeError, AssertionError) as exc:
        detail = " ".join(line.strip() for line in str(exc).splitlines()[:3])
        raise ConfigError(f"{blame}: {detail}") from None


def pretrained_model(spec: str | None, arch: str, encoder: str, tag: str, in_channels: int,
                     **options) -> torch.nn.Module:
    """The model with encoder weights ``tag`` from the local hub cache, its first convolution adapted to
    ``in_channels`` by the library that publishes the weights, as a download would have it: smp's encoders are
    built for RGB, loaded strictly and given smp's ``set_in_channels(pretrained=True)`` (what
    ``smp.encoders.get_encoder`` does after its download); timm's get the file's tensors as their pretrained
    state dict, which timm filters and adapts itself (``load_pretrained``), so no hub call is ever made."""
    file = encoder_weights_file(spec, tag)
    state = read_hub_weights(file, tag)
    fits = f"--encoder-weights {tag}: {file} does not fit encoder {encoder} with {in_channels} input channels"
    if encoder.startswith("tu-"):
        return _create(arch, f"{encoder}.{hub_files(encoder, tag)[3]}", True, in_channels, fits,
                       pretrained_cfg_overlay={"state_dict": state}, **options)
    model = _create(arch, encoder, None, 3, f"--seg smp:{spec}: smp could not build it", **options)
    try:
        model.encoder.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(line.strip() for line in str(exc).splitlines()[1:3])
        raise ConfigError(f"{fits}: {detail}") from None
    model.encoder.set_in_channels(in_channels, pretrained=True)
    return model


def build_smp(in_channels: int, width: float = 1.0, spec: str | None = None, weights: str | None = None,
              encoder_weights: str | None = None, **options) -> torch.nn.Module:
    """``--seg smp:ARCH:ENCODER``: freshly initialised, or with the encoder from a local file (``weights``) or
    from its published pretrained weights in the local hub cache (``encoder_weights``, a tag)."""
    arch, encoder = parse(spec)
    if weights and encoder_weights:
        raise ConfigError(f"--weights {weights} and --encoder-weights {encoder_weights} both set the encoder's "
                          "weights; keep one of them")
    if encoder_weights:
        model = pretrained_model(spec, arch, encoder, encoder_weights, in_channels, **options)
    else:
        model = _create(arch, encoder, None, in_channels, f"--seg smp:{spec}: smp could not build it", **options)
    if weights:
        state = load_weights(weights)
        try:
            model.encoder.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            detail = " ".join(line.strip() for line in str(exc).splitlines()[1:3])
            raise ConfigError(f"--weights {weights}: does not fit encoder {encoder} with {in_channels} input "
                              f"channels: {detail}") from None
    return PadToMultiple(model, 2 ** getattr(model.encoder, "_depth", 5))


build_smp.encoder_weights_file = encoder_weights_file  # type: ignore[attr-defined]
"""How the harness finds (and hashes, for the run's identity) the file ``--encoder-weights`` loads, before any
data work: ``bench.plugin.pretrained`` asks a segmenter factory for it by this name."""


@hookimpl
def bench_register_segmenters(register):
    register(
        "smp", build_smp,
        description="any segmentation-models-pytorch model as smp:ARCH:ENCODER (timm encoders as tu-NAME); "
                    "no download, --weights for a local file, --encoder-weights TAG from the local "
                    "Hugging Face cache",
        meta=SegmenterMeta(size="192x256", channels="rgb", loss="bce"),
        reference="Iakubovskii, segmentation-models-pytorch; Wightman, timm",
        variants=variants,
    )
