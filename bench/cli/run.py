"""``bench run``: one run of the protocol."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bench.cli.common import err, host_of
from bench.config.file import check_seed
from bench.config.options import COMPILE_REMOVED, field_options
from bench.config.profiles import FIELDS, PROFILE_NAMES
from bench.plugin.host import get_host


INVOCATION_OPTIONS = {"out", "force", "resume", "nproc", "config_file", "compile_"}
"""Options of this invocation, not settings of the run (a ``--config`` file cannot give them)."""


def typed_settings(ctx: click.Context) -> dict[str, object]:
    """The run settings typed on the command line (or from the environment): the last layer of the pipeline,
    over ``--config`` and the defaults; an option left at its default is not a setting the user gave."""
    from click.core import ParameterSource

    out: dict[str, object] = {}
    for name, value in ctx.params.items():
        source = ctx.get_parameter_source(name)
        if name in INVOCATION_OPTIONS or source not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            continue
        if name == "log_names":
            name, value = "log", tuple(value) or None
        if value is not None:
            out[name] = value
    return out


@click.command(short_help="Train and score one run; write its record.")
@click.option("--gen", default="none", show_default=True, help="Generator(s): NAME, NAME1,NAME2 (alternated), or none.")
@click.option("--seg", default="unet", show_default=True, help="Segmenter name, e.g. unet.")
@click.option("--loss", default=None, help="Loss name; default: the segmenter's.")
@click.option("--schedule", default=None, help="real-only, two-phase, mixed, real-only-matched (`bench list schedules`); default: two-phase with a generator, else real-only.")
@click.option("--test", "test", default=None, help="Score on another dataset's test (or val) split.")
@click.option("--profile", default="quick", show_default=True, type=click.Choice(PROFILE_NAMES))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              callback=lambda _ctx, _param, value: check_seed(value, "--seed"))
@click.option("--out", default="runs", show_default=True, type=click.Path(path_type=Path), help="Runs folder.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--save-predictions", is_flag=True, help="Write predictions/<id>_segmentation.png (0/255).")
@click.option("--force", is_flag=True, help="Start afresh: discard a finished record or a checkpoint.")
@click.option("--cuda-graph", is_flag=True,
              help="Capture the training step as one CUDA graph (CUDA, one process; eager otherwise, with the reason recorded).")
@click.option("--bank-mb", default=None, type=click.IntRange(min=1),
              help="Memory for generated pairs held on the device (default: a quarter of free GPU memory up to 4096, 1024 on CPU).")
@click.option("--compile", "compile_", is_flag=True, hidden=True)
@click.option("--subset", default=None, type=click.IntRange(min=1),
              help="Train (generators included) on N random training pairs.")
@click.option("--subset-seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed of the --subset draw.")
@click.option("--exclude", default=None, help="Text file of image ids to drop from training (one per line).")
@click.option("--fold", default=None, metavar="K/N",
              help="Cross-validation: train on the other N-1 folds of the training split, score fold K (1..N).")
@click.option("--fold-seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seed that deals the training split into --fold's N folds.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint (rerunning the command does too).")
@click.option("--weights", default=None, help="Local weights file for the segmenter (smp: its encoder).")
@click.option("--encoder-weights", default=None, metavar="TAG",
              help="Pretrained encoder weights from the local Hugging Face cache, never downloaded (smp: imagenet, "
                   "ssl, swsl...; tu- encoders: a timm tag, imagenet for timm's default); see docs/pretrained.md.")
@click.option("--nproc", default=None, type=click.IntRange(min=1),
              help="Train with DistributedDataParallel in N processes (torchrun; nccl on CUDA, gloo on CPU).")
@click.option("--log", "log_names", multiple=True, metavar="NAME",
              help="Experiment logger(s) (bench list loggers), e.g. tensorboard; repeatable.")
@click.option("--config", "config_file", default=None, type=click.Path(path_type=Path, dir_okay=False),
              help="TOML file of settings (a grid's [run] keys, and seed), e.g. a run's own config.toml; "
                   "options given on the command line win.")
@field_options(FIELDS)
@click.pass_context
def run(ctx: click.Context, out: Path, force: bool, resume: bool, compile_: bool, nproc: int | None,
        config_file: Path | None, **_: object) -> None:
    """Run the protocol once and write a record (and its config.toml) under OUT."""
    if compile_:
        raise click.UsageError(COMPILE_REMOVED)
    from bench.config import file as configuration_file
    from bench.config.layers import Layer, merge, run_options

    layers = [configuration_file.layer(config_file)] if config_file is not None else []
    settings = merge([*layers, Layer("the command line", typed_settings(ctx))])
    from bench.train import distributed
    from bench.cli.progress import RichReporter
    from bench.train.run import execute

    world = distributed.from_environment()
    if nproc is not None and nproc > 1 and not world.distributed:
        sys.exit(distributed.launch(nproc, distributed.strip_option(sys.argv[1:], "--nproc")))
    if nproc is not None and world.distributed and nproc != world.size:
        raise click.UsageError(f"--nproc {nproc} disagrees with torchrun's WORLD_SIZE={world.size}; drop --nproc")
    host = get_host(strict=bool(ctx.find_root().params.get("strict_plugins"))) if not world.main else host_of(ctx)
    opts = run_options(settings, out=out, force=force, resume=resume)
    if not world.main:  # rank 0 speaks for the run
        execute(host, opts, world=world)
        return
    with RichReporter(err) as reporter:
        record = execute(host, opts, reporter, log=lambda m: err.print(m, markup=False, highlight=False, soft_wrap=True),
                         world=world)
    s = record["summary"]
    click.echo(
        f"jaccard {s['jaccard']:.4f}  dice {s['dice']:.4f}  threshold-jaccard {s['threshold_jaccard']:.4f}  "
        f"({s['n_images']} images, {s['below_0.6']} below 0.6, {s['below_0.7']} below 0.7)")
    click.echo(f"record: {record['_path']}")
