"""``bench gan``: train and cache a generator, look at its samples, measure its quality."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import torch

from bench import profiles
from bench.data.prepare import prepare
from bench.data.spec import format_size, parse_size, parse_spec
from bench.errors import BenchError, ConfigError
from bench.gan_quality import measure
from bench.generators import cache_message, entry_folder, generator_config, obtain, to_gan_input
from bench.grid import sample_grid
from bench.plugins import PluginHost
from bench.records import RESULTS, SCHEMA, data_label, environment, safe_name, write_json
from bench.run import build_segmenter, load_dataset, resolve_device

GAN_OVERRIDES = ("gan_epochs", "gan_size", "gan_batch_size", "gan_lr", "width")


def gan_options(fn):
    """Options every ``bench gan`` command shares: which generator, trained on what, how."""
    options = [
        click.option("--gen", required=True, help="Generator name, e.g. dcgan or lapgan."),
        click.option("--data", default=None, help="Training dataset (default: the profile's)."),
        click.option("--profile", default="quick", show_default=True),
        click.option("--seed", default=0, show_default=True, type=int),
        click.option("--device", default="auto", show_default=True),
        click.option("--gan-epochs", default=None, type=int),
        click.option("--gan-size", default=None, help="HxW"),
        click.option("--gan-batch-size", default=None, type=int),
        click.option("--gan-lr", default=None, type=float),
        click.option("--width", default=None, type=float),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def trained(host: PluginHost, gen: str, data: str | None, profile: str, seed: int, device: str,
            overrides: dict[str, Any], reporter=None, log=click.echo) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The cached (or newly trained) generator these options name, with its info and the resolved values."""
    prof = profiles.resolve(profile, {k: overrides.get(k) for k in GAN_OVERRIDES})
    values = {
        "gan_size": format_size(parse_size(prof["gan_size"], "--gan-size")), "width": prof["width"],
        "gan_lr": prof["gan_lr"], "gan_epochs": prof["gan_epochs"], "gan_batch_size": prof["gan_batch_size"],
        "data": data or prof["data"], "profile": profile, "seed": seed,
        "overrides": {k: v for k, v in sorted(overrides.items()) if v is not None},
    }
    dev = resolve_device(device)
    dataset = load_dataset(host, values["data"], "--data")
    real = prepare(dataset.split("train"), parse_size(values["gan_size"]))
    values["data_name"] = parse_spec(values["data"]).name
    g, info = obtain(host, generator_config(gen, values), real, seed, dev, reporter)
    log(cache_message(info))
    return g, info, {**values, "device": dev, "real": real}


def register(cli: click.Group, host_of) -> None:
    @cli.group()
    def gan() -> None:
        """Train and cache generators, look at their samples, measure their quality."""

    @gan.command("train")
    @gan_options
    @click.pass_context
    def train(ctx, gen, data, profile, seed, device, **overrides) -> None:
        """Train GEN on the training split (or find it in the cache) and print its checkpoint."""
        from bench.progress import RichReporter

        with RichReporter() as reporter:
            _, info, _ = trained(host_of(ctx), gen, data, profile, seed, device, overrides, reporter)
        click.echo(json.dumps({k: info[k] for k in ("name", "key", "cache", "checkpoint", "final_losses")}, indent=2))

    @gan.command("sample")
    @gan_options
    @click.option("--n", "n", default=16, show_default=True, type=int, help="Number of samples.")
    @click.option("--out", required=True, type=click.Path(path_type=Path), help="PNG file to write.")
    @click.option("--sample-seed", default=0, show_default=True, type=int)
    @click.pass_context
    def sample(ctx, gen, data, profile, seed, device, n, out, sample_seed, **overrides) -> None:
        """Write a PNG grid of N samples: each image with its mask outline, then the mask alone."""
        if n < 1:
            raise ConfigError("--n: must be at least 1")
        if out.suffix.lower() != ".png":
            raise ConfigError(f"--out {out}: expected a .png file name")
        g, _, values = trained(host_of(ctx), gen, data, profile, seed, device, overrides)
        rng = torch.Generator(device=values["device"]).manual_seed(sample_seed)
        image = sample_grid(g.sample(n, rng=rng))
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp.png")
        image.save(tmp)
        tmp.replace(out)
        click.echo(f"wrote {out} ({n} samples, {image.width}x{image.height} pixels)")

    @gan.command("quality")
    @gan_options
    @click.option("--n", "n", default=64, show_default=True, type=int, help="Samples to measure.")
    @click.option("--reference", type=click.Path(path_type=Path), default=None,
                  help="A finished real-data run whose segmenter judges mask coherence.")
    @click.option("--out", default="runs", show_default=True, type=click.Path(path_type=Path), help="Runs folder.")
    @click.pass_context
    def quality(ctx, gen, data, profile, seed, device, n, reference, out, **overrides) -> None:
        """Measure mask coherence, diversity and checkerboard energy; record them with the generator."""
        if n < 2:
            raise ConfigError("--n: must be at least 2 (diversity compares pairs)")
        host = host_of(ctx)
        g, info, values = trained(host, gen, data, profile, seed, device, overrides)
        dev = values["device"]
        ref = _reference(host, reference, dev) if reference else None
        rng = torch.Generator(device=dev).manual_seed(12345)
        samples = g.sample(n, rng=rng)
        idx = torch.randperm(len(values["real"]), generator=torch.Generator().manual_seed(0))[:n]
        real = to_gan_input(values["real"], torch.device("cpu"))[idx]
        metrics = measure(samples, real, ref)
        record = {
            "schema": SCHEMA, "kind": "generator-quality", "status": "finished",
            "generator": {k: info[k] for k in ("name", "plugin", "plugin_version", "key", "checkpoint", "config")},
            "run": {"gen": [gen], "data": values["data"], "data_name": values["data_name"], "profile": profile,
                    "seed": seed, "gan_size": values["gan_size"], "overrides": values["overrides"]},
            "metrics": metrics, "env": environment(dev),
        }
        if entry_folder(info) is not None:
            write_json(entry_folder(info) / "quality.json", record)
        leaf = "__".join(safe_name(x) for x in [f"gan-{gen}"] + (
            ["_".join(f"{k}-{v}" for k, v in values["overrides"].items())] if values["overrides"] else []))
        path = out / safe_name(data_label(values["data"], values["data_name"])) / safe_name(profile) / leaf / \
            f"seed_{seed}" / "quality.json"
        write_json(path, record)
        click.echo(json.dumps(metrics, indent=2))
        click.echo(f"record: {path}")


def _reference(host: PluginHost, path: Path, device: torch.device) -> dict[str, Any]:
    folder = path.parent if path.name == RESULTS else path
    try:
        record = json.loads((folder / RESULTS).read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"--reference {folder}: not a finished run ({exc})") from None
    run = record["run"]
    if run.get("kind") == "ensemble":
        raise ConfigError(f"--reference {folder}: an ensemble; pass a single run (ideally real-only)")
    model = build_segmenter(host, run)
    model.load_state_dict(torch.load(folder / "checkpoints" / "final.pt", map_location="cpu",
                                     weights_only=True)["model"])
    return {"model": model.to(device), "size": parse_size(run["size"]), "channels": run["channels"],
            "device": device, "path": str(folder), "jaccard": record["summary"]["jaccard"]}
