"""A finished run applied to generated data: its segmenter judges whether generated masks fit their images
(``bench gan quality --reference``), its encoder (or a local timm backbone) is the feature space of FID, KID and
precision/recall/density/coverage (``--features``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench.data import channels
from bench.data.spec import parse_size
from bench.errors import ConfigError
from bench.gan import feature_metrics
from bench.plugin.build import build_segmenter
from bench.plugin.host import PluginHost
from bench.results.records import gen_label
from bench.results.reader import load_run
from bench.train.checkpoints import load as load_checkpoint


def feature_extractor(features: str | None, weights: Path | None, ref: dict[str, Any] | None,
               device: torch.device) -> feature_metrics.Extractor | None:
    """The feature extractor ``--features`` names (by default the ``--reference`` segmenter's), or ``None``."""
    if features is None or features == "reference":
        if weights is not None:
            raise ConfigError("--weights: only used with --features timm:NAME")
        if ref is None:
            if features == "reference":
                raise ConfigError("--features reference: pass --reference RUN_DIR, a finished real-data run")
            return None
        return feature_metrics.segmenter_extractor(
            ref["model"], ref["size"], lambda x: channels.expand(x, ref["channels"]),
            f"encoder of the {ref['seg']} reference run {ref['path']}", device,
            f"encoder of the {ref['seg']} reference, identity {ref['identity']}")
    if features.startswith("timm:") and features[5:]:
        if weights is None:
            raise ConfigError(f"--features {features}: pass --weights PATH, a local weights file of that model")
        return feature_metrics.timm_extractor(features[5:], weights, device)
    raise ConfigError(f"--features {features}: expected reference or timm:NAME (e.g. timm:resnet50)")


def reference_segmenter(host: PluginHost, path: Path, device: torch.device) -> dict[str, Any]:
    """The segmenter of a finished real-data run, to judge whether generated masks fit generated images: one that
    trained on generated pairs would judge them by what it learnt from them, so it is refused."""
    member = load_run(path, "--reference")
    run = member.run
    if run.get("gen"):
        raise ConfigError(f"--reference {path} trained on generated data (gen {gen_label(run['gen'])}); pass a "
                          "real-data run (gen none)")
    model = build_segmenter(host, run["seg"], run["channels"], run["width"], run.get("weights"))
    model.load_state_dict(load_checkpoint(member.checkpoint)["model"])
    return {"model": model.to(device), "size": parse_size(run["size"]), "channels": run["channels"],
            "device": device, "path": str(member.folder), "jaccard": member.record["summary"]["jaccard"],
            "seg": run["seg"], "identity": member.record["identity"]["hash"]}
