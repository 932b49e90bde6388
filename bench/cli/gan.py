"""``bench gan``: train and cache a generator, look at its samples, measure its quality."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from bench.cli.common import overwrite_option, refuse_to_replace, host_of
import torch

from bench.config import profiles
from bench.plugin.build import resolve_device
from bench.config.file import SEED_MAX
from bench.config.run import GanConfig, build_gan
from bench.errors import ConfigError
from bench.gan.quality import measure_generator
from bench.gan.cache import entry_folder, trained
from bench.gan.sample_grid import sample_grid
from bench.config.options import field_options
from bench.apply.reference import feature_extractor, reference_segmenter
from bench.results.records import environment, quality_path, quality_record
from bench.storage.atomic import atomic_save, write_json


def gan_options(fn):
    """Options every ``bench gan`` command shares: which generator, trained on what, how (the profile fields
    that shape a generator, from the one table in :mod:`bench.config.profiles`)."""
    options = [
        click.option("--gen", required=True, help="Generator name, e.g. dcgan or lapgan."),
        click.option("--profile", default="quick", show_default=True, type=click.Choice(profiles.PROFILE_NAMES)),
        click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0, max=SEED_MAX)),
        click.option("--device", default="auto", show_default=True),
    ]
    for option in reversed(options):
        fn = option(fn)
    return field_options([profiles.BY_NAME["data"], *profiles.GAN_FIELDS])(fn)


def resolved(ctx: click.Context, gen: str, profile: str, seed: int, overrides: dict[str, Any]) -> GanConfig:
    """The generator these options name, resolved as a run resolves its generators."""
    return build_gan(host_of(ctx), gen, profile, seed, overrides)


@click.group(short_help="Train, sample and measure generators.")
def gan() -> None:
    """Train and cache generators, look at their samples, measure their quality."""

@gan.command("train", short_help="Train a generator once and cache it.")
@gan_options
@click.pass_context
def train(ctx, gen, profile, seed, device, **overrides) -> None:
    """Train GEN on the training split (or find it in the cache) and print its checkpoint."""
    from bench.cli.progress import RichReporter

    with RichReporter() as reporter:
        _, info, _ = trained(host_of(ctx), resolved(ctx, gen, profile, seed, overrides), resolve_device(device),
                             reporter, click.echo)
    click.echo(json.dumps({k: info[k] for k in ("name", "key", "cache", "checkpoint", "final_losses")}, indent=2))

@gan.command("sample", short_help="A PNG grid of a generator's samples.")
@gan_options
@click.option("--n", "n", default=16, show_default=True, type=int, help="Number of samples.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="PNG file to write.")
@click.option("--sample-seed", default=0, show_default=True, type=click.IntRange(min=0, max=SEED_MAX))
@overwrite_option()
@click.pass_context
def sample(ctx, gen, profile, seed, device, n, out, sample_seed, overwrite, **overrides) -> None:
    """Write a PNG grid of N samples: each image with its mask outline, then the mask alone (an existing OUT
    only with --overwrite)."""
    if n < 1:
        raise ConfigError("--n: must be at least 1")
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out {out}: expected a .png file name")
    refuse_to_replace(out, "--out", overwrite)
    dev = resolve_device(device)
    g, _, _ = trained(host_of(ctx), resolved(ctx, gen, profile, seed, overrides), dev, log=click.echo)
    rng = torch.Generator(device=dev).manual_seed(sample_seed)
    image = sample_grid(g.sample(n, rng=rng))
    atomic_save(out, lambda tmp: image.save(tmp, format="PNG"))
    click.echo(f"wrote {out} ({n} samples, {image.width}x{image.height} pixels)")

@gan.command("quality", short_help="Measure a generator's sample quality.")
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
    precision/recall/density/coverage; record them with the generator, one record per --reference run."""
    if n < 2:
        raise ConfigError("--n: must be at least 2 (diversity compares pairs)")
    host = host_of(ctx)
    dev = resolve_device(device)
    ref = reference_segmenter(host, reference, dev) if reference else None
    extractor = feature_extractor(features, weights, ref, dev)
    config = resolved(ctx, gen, profile, seed, overrides)
    g, info, real = trained(host, config, dev, log=click.echo)
    metrics, note = measure_generator(g, real, n, ref, extractor, n_features, dev)
    if note:
        click.echo(note)
    record = quality_record(info, config, metrics, environment(dev))
    reference_hash = ref["identity"] if ref else None
    folder = entry_folder(info)
    if folder is not None:  # the entry serves every number of sampling steps and references: the file names its own
        steps = info["config"].get("sample_steps")
        name = "quality" + ("" if steps is None else f"-steps{steps}") + (
            "" if reference_hash is None else f"-ref-{reference_hash[:8]}")
        write_json(folder / f"{name}.json", record)
    path = quality_path(out, config, reference_hash)
    write_json(path, record)
    click.echo(json.dumps(metrics, indent=2))
    click.echo(f"record: {path}")
