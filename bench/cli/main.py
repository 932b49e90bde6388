"""The ``bench`` command line: run, plugins, list, describe, leaderboard (plus plugin commands)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click
from rich.console import Console

from bench.errors import BenchError
from bench.config.options import COMPILE_REMOVED, field_options
from bench.plugin.host import PluginHost, get_host
from bench.config.profiles import BY_NAME, FIELDS, PROFILE_NAMES
from bench.plugin.catalog import KINDS

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _host(ctx: click.Context) -> PluginHost:
    strict = bool(ctx.find_root().params.get("strict_plugins"))
    host = get_host(strict=strict)
    if not strict:
        for info, message in host.errors():
            err.print("[yellow]warning:[/] ", end="")
            err.print(f"plugin {info.name!r} ({info.distribution or 'unknown distribution'}) skipped: {message}",
                      markup=False, highlight=False)
    return host


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--strict-plugins", is_flag=True, help="Make any plugin fault (import error, raising hook) fatal.")
@click.version_option(package_name="skinbench", prog_name="bench")
def cli(strict_plugins: bool) -> None:
    """skinbench: GAN data augmentation for skin-lesion segmentation, one command per experiment."""


@cli.command()
@click.option("--gen", default="none", show_default=True, help="Generator(s): NAME, NAME1,NAME2 (alternated), or none.")
@click.option("--seg", default="unet", show_default=True, help="Segmenter name, e.g. unet.")
@click.option("--loss", default=None, help="Loss name; default: the segmenter's.")
@click.option("--schedule", default=None, help="real-only, two-phase, mixed, real-only-matched (`bench list schedules`); default: two-phase with a generator, else real-only.")
@click.option("--test", "test", default=None, help="Score on another dataset's test (or val) split.")
@click.option("--profile", default="quick", show_default=True, type=click.Choice(PROFILE_NAMES))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
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
@click.option("--nproc", default=None, type=click.IntRange(min=1),
              help="Train with DistributedDataParallel in N processes (torchrun; nccl on CUDA, gloo on CPU).")
@click.option("--log", "log_names", multiple=True, metavar="NAME",
              help="Experiment logger(s) (bench list loggers), e.g. tensorboard; repeatable.")
@click.option("--config", "config_file", default=None, type=click.Path(path_type=Path, dir_okay=False),
              help="TOML file of settings (a grid's [run] keys, and seed), e.g. a run's own config.toml; "
                   "options given on the command line win.")
@field_options(FIELDS)
@click.pass_context
def run(ctx: click.Context, gen, seg, loss, schedule, test, profile, seed, out, device,
        save_predictions, force, resume, cuda_graph, bank_mb, compile_, subset, subset_seed, exclude, fold, fold_seed,
        weights, nproc, log_names, config_file, **overrides) -> None:
    """Run the protocol once and write a record (and its config.toml) under OUT."""
    if compile_:
        raise click.UsageError(COMPILE_REMOVED)
    values = dict(gen=gen, seg=seg, loss=loss, schedule=schedule, test=test, profile=profile, seed=seed,
                  device=device, save_predictions=save_predictions, cuda_graph=cuda_graph, bank_mb=bank_mb,
                  subset=subset, subset_seed=subset_seed, exclude=exclude, weights=weights, fold=fold,
                  fold_seed=fold_seed, log=",".join(log_names) or None)
    if config_file is not None:
        from click.core import ParameterSource

        from bench.config import file as configuration_file

        given = {"log" if k == "log_names" else k for k in ctx.params
                 if ctx.get_parameter_source(k) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}
        settings = {k: v for k, v in configuration_file.read(config_file).items() if k not in given}  # CLI wins
        values.update({k: v for k, v in settings.items() if k not in overrides})
        seg_name = str(values["seg"]).split(":")[0]
        seg_meta = _host(ctx).registry.get("segmenters", seg_name).meta
        overrides.update(configuration_file.without_defaults(
            {k: v for k, v in settings.items() if k in overrides}, str(values["profile"]), seg_meta))
    from bench.train import distributed
    from bench.cli.progress import RichReporter
    from bench.train.run import RunOptions, execute

    world = distributed.from_environment()
    if nproc is not None and nproc > 1 and not world.distributed:
        sys.exit(distributed.launch(nproc, distributed.strip_option(sys.argv[1:], "--nproc")))
    if nproc is not None and world.distributed and nproc != world.size:
        raise click.UsageError(f"--nproc {nproc} disagrees with torchrun's WORLD_SIZE={world.size}; drop --nproc")
    host = get_host(strict=bool(ctx.find_root().params.get("strict_plugins"))) if not world.main else _host(ctx)
    data = overrides.pop("data")
    opts = RunOptions(**values, data=data, out=out, force=force, resume=resume, overrides=overrides)
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


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--available", is_flag=True, help="Plugin packages in the registry that are not installed.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool, available: bool) -> None:
    """Installed plugins, their versions, what each registered, and load errors."""
    if available:
        from bench.plugin.index import not_installed

        entries = not_installed()
        if as_json:
            click.echo(json.dumps(entries, indent=2))
        elif not entries:
            click.echo("every plugin package in the registry is installed")
        for e in [] if as_json else entries:
            where = e["homepage"] if e["status"] == "published" else f"{e['homepage']} (example, not on PyPI)"
            click.echo(f"{e['name']:<16} {e['package']:<20} {', '.join(e['kinds']):<24} {e['description']}  {where}")
        return
    host = get_host(strict=bool(ctx.find_root().params.get("strict_plugins")))
    infos = [p.as_dict() for p in host.plugins.values()]
    if as_json:
        click.echo(json.dumps(infos, indent=2))
        return
    for p in infos:
        version = p["version"] or "?"
        console.print(f"{p['name']} {version} ({p['distribution'] or 'unknown distribution'})",
                      markup=False, highlight=False)
        for kind, names in p["registered"].items():
            console.print(f"  {kind}: {', '.join(names)}", markup=False, highlight=False)
        for e in p["errors"]:
            console.print("  [red]error:[/] ", end="")
            console.print(e, markup=False, highlight=False)


@cli.command(name="list")
@click.argument("kind", type=click.Choice(KINDS + tuple(k[:-1] for k in KINDS)))
@click.argument("pattern", required=False)
@click.pass_context
def list_(ctx: click.Context, kind: str, pattern: str | None) -> None:
    """Components of KIND, optionally filtered by a wildcard PATTERN (e.g. 'cdnn*')."""
    from bench.plugin.listing import list_lines

    for line in list_lines(_host(ctx).registry, kind, pattern):
        console.print(line, markup=False, highlight=False)


@cli.command()
@click.argument("name")
@click.pass_context
def describe(ctx: click.Context, name: str) -> None:
    """One component's description, defaults, reference and (for networks) layers and parameters."""
    from bench.plugin.describe import describe_component

    host = _host(ctx)
    found = host.registry.find(name.split(":", 1)[0])
    if not found:
        from bench.plugin.catalog import unknown_message

        everything = sorted({n for kind in KINDS for n in host.registry.names(kind)})
        raise BenchError(unknown_message("component", name, everything))
    for component in found:
        console.print(describe_component(component, name.split(":", 1)[1] if ":" in name else None),
                      highlight=False, markup=False)


@cli.command(name="ensemble")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", default="runs", show_default=True, type=click.Path(path_type=Path), help="Runs folder.")
@click.option("--high", default=0.8, show_default=True, type=float, help="Threshold that finds the lesion centre.")
@click.option("--low", default=0.4, show_default=True, type=float, help="Threshold of the final mask.")
@click.option("--device", default="auto", show_default=True)
@click.option("--save-predictions", is_flag=True, help="Write predictions/<id>_segmentation.png (0/255).")
@click.pass_context
def ensemble_(ctx: click.Context, run_dirs, out, high, low, device, save_predictions) -> None:
    """Mean-probability ensemble of finished RUN_DIRS with dual-threshold post-processing, scored and recorded."""
    from bench.apply.ensemble import ensemble

    record = ensemble(_host(ctx), list(run_dirs), out, high, low, device, save_predictions)
    s = record["summary"]
    click.echo(f"jaccard {s['jaccard']:.4f}  dice {s['dice']:.4f}  threshold-jaccard {s['threshold_jaccard']:.4f}  "
               f"({s['n_images']} images, {s['below_0.6']} below 0.6, {s['below_0.7']} below 0.7)")
    click.echo(f"record: {record['_path']}")


@cli.command()
@click.option("--runs", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--out", default=None, type=click.Path(path_type=Path), help="Write the markdown here too.")
@click.option("--metric", default="jaccard", show_default=True,
              type=click.Choice(["jaccard", "dice", "threshold_jaccard", "accuracy", "sensitivity", "specificity"]))
@click.option("--plots", is_flag=True,
              help="Draw every row's histogram and training curves as PNGs in OUT's folder (OUT-stem_plots/) and link them.")
@click.option("--baseline", "baselines", multiple=True, metavar="COLUMN",
              help="Column every strategy is compared with (repeatable); default: 'real only' and, when run, "
                   "'real only (matched steps)'.")
def leaderboard(runs: Path, out: Path | None, metric: str, plots: bool, baselines: tuple[str, ...]) -> None:
    """Markdown leaderboards (Table 2 style) from the records under RUNS."""
    from bench.results.leaderboard import render, render_quality
    from bench.results.records import load_quality, load_records
    from bench.storage.atomic import atomic_write_bytes

    if not runs.is_dir():
        raise BenchError(f"--runs {runs}: folder not found; expected the --out folder of `bench run`")
    records, warnings = load_records(runs)
    quality, quality_warnings = load_quality(runs)
    for w in warnings + quality_warnings:
        err.print("[yellow]warning:[/] ", end="")
        err.print(w, markup=False, highlight=False)
    if plots and not out:
        raise BenchError("--plots needs --out FILE.md: the plots are written beside it and linked from it")
    if out is not None and out.is_dir():
        raise BenchError(f"--out {out}: is a folder; expected a markdown file name such as {out / 'leaderboard.md'}")
    plot_dir = out.parent / f"{out.stem}_plots" if plots and out else None
    text = render(records, metric, plot_dir, out.parent if out else None, **({"baselines": baselines} if baselines else {}))
    if quality:
        text = text.rstrip("\n") + "\n\n" + render_quality(quality)
    if out:
        atomic_write_bytes(out, text.encode())
    click.echo(text)


@cli.command()
@click.option("--runs", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--out", default=None, type=click.Path(path_type=Path), help="Write the markdown here too.")
@click.option("--metric", default="jaccard", show_default=True,
              type=click.Choice(["jaccard", "dice", "threshold_jaccard", "accuracy", "sensitivity", "specificity"]))
def claims(runs: Path, out: Path | None, metric: str) -> None:
    """A verdict on each claim of the paper (supported, contradicted, not resolvable, not run) from RUNS."""
    from bench.results.claims import render
    from bench.results.records import load_records
    from bench.storage.atomic import atomic_write_bytes

    if not runs.is_dir():
        raise BenchError(f"--runs {runs}: folder not found; expected the --out folder of `bench run`")
    if out is not None and out.is_dir():
        raise BenchError(f"--out {out}: is a folder; expected a markdown file name such as {out / 'claims.md'}")
    records, warnings = load_records(runs)
    for w in warnings:
        err.print("[yellow]warning:[/] ", end="")
        err.print(w, markup=False, highlight=False)
    text = render(records, metric)
    if out:
        atomic_write_bytes(out, text.encode())
    click.echo(text)


@cli.command()
@click.option("--runs", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--seg", default="cdnn0", show_default=True, help="The segmenter whose runs form the curves.")
@click.option("--out", default=None, type=click.Path(path_type=Path),
              help="Write the markdown here, and the figure beside it (OUT-stem_plots/).")
@click.option("--run", "run_missing", is_flag=True, help="First run what is missing (sizes x gens x seeds).")
@click.option("--data", default=None, help="--run: the training dataset, e.g. isic2017:/data/isic2017.")
@click.option("--profile", default="quick", show_default=True, help="--run: the profile.")
@click.option("--seeds", default="0", show_default=True, help="--run: comma-separated seeds.")
@click.option("--sizes", default="500,1000,1500,all", show_default=True, help="--run: training-set sizes.")
@click.option("--gens", default="none,dcgan,lapgan", show_default=True,
              help="--run: strategies, separated by ';' or ',' (none = real only; a+b alternates a and b).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="--run: any profile value, e.g. epochs=100.")
@click.pass_context
def scalability(ctx, runs: Path, seg: str, out: Path | None, run_missing: bool, data: str | None, profile: str,
                seeds: str, sizes: str, gens: str, settings: tuple[str, ...]) -> None:
    """Figs. 8 and 9: Jaccard against the number of real training images, and each GAN's worth in real images."""
    from bench.results.records import load_records
    from bench.storage.atomic import atomic_write_bytes
    from bench.results.scalability import render

    if run_missing:
        from bench.cli.progress import RichReporter
        from bench.config.options import parse_settings, split_run_options
        from bench.train.run import RunOptions, execute

        host = _host(ctx)
        try:
            seed_list = [int(x) for x in seeds.split(",") if x.strip()]
            size_list = [None if x.strip() == "all" else int(x) for x in sizes.split(",") if x.strip()]
        except ValueError:
            raise BenchError("--seeds and --sizes: expected integers separated by commas (sizes may include all)")
        gen_list = [g.strip().replace("+", ",") for g in gens.replace(";", ",").split(",") if g.strip()]
        own, overrides = split_run_options(parse_settings(settings))
        for n in size_list:
            for gen in gen_list:
                for seed in seed_list:
                    opts = RunOptions(**{**own, "gen": gen, "seg": seg, "data": data, "profile": profile,
                                         "seed": seed, "out": runs, "subset": n}, overrides=overrides)
                    with RichReporter(err) as reporter:
                        execute(host, opts, reporter, log=lambda m: err.print(m, markup=False, highlight=False))
    if not runs.is_dir():
        raise BenchError(f"--runs {runs}: folder not found; expected the --out folder of `bench run`")
    records, warnings = load_records(runs)
    for w in warnings:
        err.print("[yellow]warning:[/] ", end="")
        err.print(w, markup=False, highlight=False)
    text = render(records, seg, out.parent / f"{out.stem}_plots" if out else None, out.parent if out else None)
    if out:
        atomic_write_bytes(out, text.encode())
    click.echo(text)


@cli.command(name="predict")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--images", required=True, help="A folder of JPEG/PNG images, or a glob such as 'photos/*.jpg'.")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Folder for <id>_segmentation.png (0/255, each image's own size).")
@click.option("--tta", type=click.Choice(["none", "flip"]), default="none", show_default=True,
              help="flip: average the probabilities of the four horizontal/vertical flips.")
@click.option("--probabilities", "write_probabilities", is_flag=True,
              help="Also write <id>_probability.png (probability x 255).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--batch-size", default=None, type=click.IntRange(min=1),
              help="Images per forward pass [default: the run's eval batch size].")
@click.pass_context
def predict_(ctx, source, images, out, tta, write_probabilities, device, batch_size) -> None:
    """Segment images without masks with a trained run (RUN_DIR) or an ensemble (its folder or results.json).

    Each image goes through the run's own preprocessing (resize to its size, channel set), threshold and,
    for an ensemble, its dual-threshold post-processing; masks are written at the image's original size.
    Unreadable images are named and skipped (exit code 1 after the others are written).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from bench.apply import predict as prediction
    from bench.plugin.build import resolve_device

    dev = resolve_device(device)
    predictor = prediction.load_predictor(_host(ctx), source, dev)
    paths = prediction.find_images(images)
    err.print(f"{predictor.describe()}; {len(paths)} images", markup=False, highlight=False)
    with Progress(TextColumn("predict"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err,
                  transient=True) as progress:
        task = progress.add_task("predict", total=len(paths))
        written, skipped = prediction.predict(predictor, paths, out, dev, batch_size or predictor.batch_size, tta,
                                              write_probabilities, lambda n: progress.advance(task, n))
    for path, reason in skipped:
        err.print(f"skipped {path}: {reason}", markup=False, highlight=False)
    click.echo(f"wrote {len(written)} masks to {out}" + (f"; skipped {len(skipped)} unreadable" if skipped else ""))
    if skipped:
        raise click.exceptions.Exit(1)


@cli.command(name="export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["torchscript", "onnx"]), required=True,
              help="torchscript (torch.jit.load; deprecated in recent PyTorch, still loads) or onnx "
                   "(onnxruntime; pip install 'skinbench[export]').")
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False), help="The file to write.")
@click.pass_context
def export_(ctx, run_dir, fmt, out) -> None:
    """Export a finished run as one file: RGB uint8 images in, probabilities out.

    \b
    Input  rgb: uint8 (B, 3, H, W), RGB, the image resized to the run's HxW (bilinear, antialiased).
    Output probability: float32 (B, 1, H, W); the channel conversion (HSV, L*, Lab) happens inside.
    Mask: upsample the probabilities to the image's size, threshold at the run's threshold.
    TorchScript: torch.jit.load(FILE)(rgb). ONNX: onnxruntime.InferenceSession(FILE).run(None, {"rgb": x}).
    The file's metadata (skinbench.json in TorchScript, metadata_props in ONNX) names size, channels,
    threshold and the run's identity; bench predict applies a run with all of this done for you.
    """
    from bench.apply import export as exporting

    meta = exporting.export(_host(ctx), run_dir, fmt, out)
    click.echo(f"wrote {out} ({fmt}, {meta['seg']} at {meta['size']}, channels {meta['channels']}, "
               f"threshold {meta['threshold']:g})")
    click.echo(exporting.usage(meta, fmt).replace("FILE", repr(str(out))))


@cli.command(name="perf")
@click.option("--grid", "grids", multiple=True, metavar="GRID",
              help="Measure exactly the rows bench sweep GRID --estimate needs (table2, table3, scalability, a .toml; "
                   "repeatable: each row once).")
@click.option("--profile", default=None, type=click.Choice(PROFILE_NAMES), help="--grid: the runs' profile.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="--grid: any run option of every run.")
@click.option("--seg", "segs", multiple=True, help="Segmenter(s) to measure (repeatable).")
@click.option("--gen", "gens", multiple=True, help="Generator(s) to measure (repeatable).")
@click.option("--size", default=None, help="HxW for every segmenter (default: each one's own).")
@click.option("--batch", default=16, show_default=True, type=click.IntRange(min=1))
@click.option("--width", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Channel-width multiplier of the networks.")
@click.option("--channels", "channel_set", default=None, help="Channel set of every segmenter (default: its own).")
@click.option("--loss", default=None, help="Loss of every segmenter (default: its own).")
@click.option("--gan-size", default=None, help="Generator size HxW (default: --size, else 192x256).")
@click.option("--gan-batch", default=None, type=click.IntRange(min=1), help="GAN training batch (default: --batch).")
@click.option("--eval-batch", default=16, show_default=True, type=click.IntRange(min=1),
              help="Batch size of the evaluation rate (the run's --eval-batch-size).")
@click.option("--device", default="auto", show_default=True)
@click.option("--data", default=None, help="Dataset whose training split is used [default: fixture?n=64, or the "
              "grid's].")
@click.option("--steps", default=10, show_default=True, type=click.IntRange(min=1), help="Timed steps per measurement.")
@click.option("--warmup", default=3, show_default=True, type=click.IntRange(min=0))
@click.option("--cuda-graph", is_flag=True, help="Capture the harness step as one CUDA graph (as bench run --cuda-graph).")
@click.option("--compile", "compile_", is_flag=True, hidden=True)
@click.option("--with-sampling", is_flag=True, help="Also measure each --gen filling the bank at each segmenter's size.")
@click.option("--sample-steps", default=BY_NAME["sample_steps"].values["paper"], show_default=True,
              type=click.IntRange(min=1), help="Sampling steps of iterative generators (ddpm) in the sampling rows.")
@click.option("--processes", "--runs-per-gpu", "processes", default=1, show_default=True, type=click.IntRange(min=1),
              help="Measure in K processes at once on the same device; rows give their rates together.")
@click.option("--needs", "needs_file", default=None, hidden=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object: rows, data, machine (bench sweep --estimate "
              "--perf reads it).")
@click.pass_context
def perf_(ctx, grids, profile, settings, segs, gens, size, batch, width, channel_set, loss, gan_size, gan_batch,
          eval_batch, device, data, steps, warmup, cuda_graph, compile_, with_sampling, sample_steps, processes,
          needs_file, as_json) -> None:
    """Rates a run spends its time at: the training step (harness vs bare model), evaluation, generators
    filling the synthetic bank and generators training; and the data path.

    Warm-up steps are never timed (capture_s in --json says how long the CUDA graph took). bench perf --grid
    GRID measures exactly what bench sweep GRID --estimate needs, each row once.
    """
    from bench.sweep import perf as perf_module
    from bench.sweep.estimate import Need

    if compile_:
        raise click.UsageError(COMPILE_REMOVED)
    if cuda_graph and warmup < 1:
        raise click.UsageError("--cuda-graph needs --warmup 1 or more: the capture happens in the warm-up")
    given = {name for name in ctx.params
             if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)}
    flag_only = sorted(given & {"size", "batch", "width", "channel_set", "loss", "gan_size", "gan_batch", "eval_batch",
                                "with_sampling", "sample_steps"})
    if grids and flag_only:
        options = ", ".join("--" + n.replace("channel_set", "channels").replace("_", "-") for n in flag_only)
        raise click.UsageError(f"--grid measures the settings of the grid's runs; {options} would not apply to them: "
                               "give them as the runs' settings, e.g. --set width=0.5 --set batch_size=8")
    if not grids and given & {"profile", "settings"}:
        raise click.UsageError("--profile and --set describe a grid's runs: use them with --grid, or give --width, "
                               "--batch, --size... for the rows of --seg and --gen")
    host = _host(ctx)
    if needs_file is not None:
        needs = [Need.from_row(row) for row in json.loads(needs_file.read_text())]
    elif grids:
        if segs or gens:
            raise click.UsageError("--grid measures what the grid's runs need: drop --seg and --gen")
        needs, grid_data = perf_module.grid_needs(host, list(grids), profile, data, cuda_graph, list(settings))
        data = data or grid_data
    else:
        if not segs and not gens:
            raise BenchError("bench perf: name at least one --seg or --gen, or a --grid")
        needs = perf_module.flag_needs(host, list(segs), list(gens), size, batch, width, channel_set, loss, gan_size,
                                       gan_batch, eval_batch, cuda_graph, with_sampling, sample_steps)
    data = data or "fixture?n=64"
    if processes > 1 and needs_file is None:
        with tempfile.TemporaryDirectory(prefix="bench-perf-") as folder:
            file = Path(folder) / "needs.json"
            file.write_text(json.dumps([n.as_row() for n in needs]))
            result = perf_module.concurrent(file, ["--data", data, "--device", device, "--steps", str(steps),
                                                   "--warmup", str(warmup)], processes)
    else:
        result = perf_module.perf(host, needs, data, device, warmup, steps,
                                  with_data_path=not grids and needs_file is None)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    perf_module.print_table(result, click.echo)


def _register_builtin_groups() -> None:
    from bench.cli import data as data_cli
    from bench.cli import gan as gan_cli
    from bench.cli import sweep as sweep_cli

    gan_cli.register(cli, _host)
    data_cli.register(cli, _host)
    sweep_cli.register(cli, _host)


_register_builtin_groups()


def main() -> None:
    """Console-script entry: plugin commands are added, and BenchErrors print as one line."""
    strict = "--strict-plugins" in sys.argv[1:]
    try:
        get_host(strict=strict).add_commands(cli)
        code = cli.main(standalone_mode=False)
        if isinstance(code, int) and code:  # click returns an Exit's code when not standalone
            sys.exit(code)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except BenchError as exc:
        err.print("[red]error:[/] ", end="")
        err.print(str(exc), markup=False, highlight=False)
        sys.exit(2)
