"""``bench gan``: train and cache a generator, look at its samples, measure its quality."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bench.cli.common import host_of
import torch

from bench.gan import feature_metrics
from bench.config import profiles
from bench.plugin.build import build_segmenter, resolve_device
from bench.train.checkpoints import load as load_checkpoint
from bench.data import channels
from bench.config.run import GanConfig, build_gan
from bench.data.spec import parse_size
from bench.errors import ConfigError
from bench.gan.quality import measure_generator
from bench.gan.cache import entry_folder, trained
from bench.gan.sample_grid import sample_grid
from bench.config.options import field_options
from bench.plugin.host import PluginHost
from bench.results.records import environment, load_run, quality_path, quality_record
from bench.storage.atomic import atomic_save, write_json


def gan_options(fn):
    """Options every ``bench gan`` command shares: which generator, trained on what, how (the profile fields
    that shape a generator, from the one table in :mod:`bench.config.profiles`)."""
    options = [
        click.option("--gen", required=True, help="Generator name, e.g. dcgan or lapgan."),
        click.option("--profile", default="quick", show_default=True, type=click.Choice(profiles.PROFILE_NAMES)),
        click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0)),
        click.option("--device", default="auto", show_default=True),
    ]
    for option in reversed(options):
        fn = option(fn)
    return field_options([profiles.BY_NAME["data"], *profiles.GAN_FIELDS])(fn)


def resolved(ctx: click.Context, gen: str, profile: str, seed: int, overrides: dict[str, Any]) -> GanConfig:
    """The generator these options name, resolved as a run resolves its generators."""
    return build_gan(host_of(ctx), gen, profile, seed, overrides)


@click.group()
def gan() -> None:
    """Train and cache generators, look at their samples, measure their quality."""

@gan.command("train")
@gan_options
@click.pass_context
def train(ctx, gen, profile, seed, device, **overrides) -> None:
    """Train GEN on the training split (or find it in the cache) and print its checkpoint."""
    from bench.cli.progress import RichReporter

    with RichReporter() as reporter:
        _, info, _ = trained(host_of(ctx), resolved(ctx, gen, profile, seed, overrides), resolve_device(device),
                             reporter, click.echo)
    click.echo(json.dumps({k: info[k] for k in ("name", "key", "cache", "checkpoint", "final_losses")}, indent=2))

@gan.command("sample")
@gan_options
@click.option("--n", "n", default=16, show_default=True, type=int, help="Number of samples.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="PNG file to write.")
@click.option("--sample-seed", default=0, show_default=True, type=int)
@click.pass_context
def sample(ctx, gen, profile, seed, device, n, out, sample_seed, **overrides) -> None:
    """Write a PNG grid of N samples: each image with its mask outline, then the mask alone."""
    if n < 1:
        raise ConfigError("--n: must be at least 1")
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out {out}: expected a .png file name")
    dev = resolve_device(device)
    g, _, _ = trained(host_of(ctx), resolved(ctx, gen, profile, seed, overrides), dev, log=click.echo)
    rng = torch.Generator(device=dev).manual_seed(sample_seed)
    image = sample_grid(g.sample(n, rng=rng))
    atomic_save(out, lambda tmp: image.save(tmp, format="PNG"))
    click.echo(f"wrote {out} ({n} samples, {image.width}x{image.height} pixels)")

@gan.command("quality")
@gan_options
@click.option("--n", "n", default=64, show_default=True, type=int, help="Samples to measure.")
@click.option("--reference", type=click.Path(path_type=Path), default=None,
              help="A finished real-data run whose segmenter judges mask coherence.")
@click.option("--features", default=None, metavar="reference|timm:NAME",
              help="Feature space of FID, KID and precision/recall/density/coverage: the --reference run's "
                   "segmenter encoder (the default when --reference is given) or a timm backbone with --weights.")
@click.option("--weights", type=click.Path(path_type=Path), default=None,
              help="Local weights file of the --features timm backbone (nothing is downloaded).")
@click.option("--n-features", default=1000, show_default=True, type=int,
              help="Generated and real samples for the feature-space metrics (real: at most the training split).")
@click.option("--out", default="runs", show_default=True, type=click.Path(path_type=Path), help="Runs folder.")
@click.pass_context
def quality(ctx, gen, profile, seed, device, n, reference, features, weights, n_features, out,
            **overrides) -> None:
    """Measure mask coherence, diversity, checkerboard energy and, in a feature space, FID, KID and
    precision/recall/density/coverage; record them with the generator."""
    if n < 2:
        raise ConfigError("--n: must be at least 2 (diversity compares pairs)")
    host = host_of(ctx)
    dev = resolve_device(device)
    ref = _reference(host, reference, dev) if reference else None
    extractor = _extractor(features, weights, ref, dev)
    config = resolved(ctx, gen, profile, seed, overrides)
    g, info, real = trained(host, config, dev, log=click.echo)
    metrics, note = measure_generator(g, real, n, ref, extractor, n_features, dev)
    if note:
        click.echo(note)
    record = quality_record(info, config, metrics, environment(dev))
    folder = entry_folder(info)
    if folder is not None:  # the entry serves every number of sampling steps: the file names its own
        steps = info["config"].get("sample_steps")
        write_json(folder / ("quality.json" if steps is None else f"quality-steps{steps}.json"), record)
    path = quality_path(out, config)
    write_json(path, record)
    click.echo(json.dumps(metrics, indent=2))
    click.echo(f"record: {path}")


def _extractor(features: str | None, weights: Path | None, ref: dict[str, Any] | None,
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


def _reference(host: PluginHost, path: Path, device: torch.device) -> dict[str, Any]:
    """The segmenter of a finished run, to judge whether generated masks fit generated images."""
    member = load_run(path, "--reference")
    run = member.run
    model = build_segmenter(host, run["seg"], run["channels"], run["width"], run.get("weights"))
    model.load_state_dict(load_checkpoint(member.checkpoint)["model"])
    return {"model": model.to(device), "size": parse_size(run["size"]), "channels": run["channels"],
            "device": device, "path": str(member.folder), "jaccard": member.record["summary"]["jaccard"],
            "seg": run["seg"], "identity": member.record["identity"]["hash"]}
