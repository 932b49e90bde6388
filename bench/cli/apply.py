"""``bench ensemble``, ``bench predict`` and ``bench export``: finished runs applied."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.common import err, host_of, overwrite_option, refuse_to_replace
from bench.errors import ConfigError


@click.command(name="ensemble", short_help="Ensemble finished runs; score and record it.")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", default="runs", show_default=True, type=click.Path(path_type=Path), help="Runs folder.")
@click.option("--high", default=0.8, show_default=True, type=float, help="Threshold that finds the lesion centre.")
@click.option("--low", default=0.4, show_default=True, type=float, help="Threshold of the final mask.")
@click.option("--tune", metavar="folds:K|split:NAME", default=None,
              help="Choose --high/--low from a grid on images the ensemble is not scored on: folds:K cross-fits on "
                   "K folds of the scored images (each fold uses the pair best on the others); split:NAME chooses on "
                   "another split of the test dataset.")
@click.option("--tune-seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seed of the folds of --tune folds:K.")
@click.option("--groups", default=1, show_default=True, type=click.IntRange(min=1),
              help="Deal RUN_DIRS by seed into this many disjoint ensembles of the same experiments (each recorded; "
                   "the leaderboard then has several units per ensemble cell, and an interval).")
@click.option("--device", default="auto", show_default=True)
@click.option("--save-predictions", is_flag=True, help="Write predictions/<id>_segmentation.png (0/255).")
@click.pass_context
def ensemble_command(ctx: click.Context, run_dirs, out, high, low, tune, tune_seed, groups, device,
                     save_predictions) -> None:
    """Ensemble finished runs: mean probability, dual threshold, scored."""
    from bench.apply.ensemble import ensembles
    from bench.apply.thresholds import parse_tuning

    given = {p for p in ("high", "low", "tune_seed")
             if ctx.get_parameter_source(p) is not click.core.ParameterSource.DEFAULT}
    if tune is not None and given & {"high", "low"}:
        raise ConfigError("--tune chooses --high and --low; give either --tune or the thresholds")
    if tune is None and "tune_seed" in given:
        raise ConfigError("--tune-seed seeds the folds of --tune folds:K; give --tune folds:K too")
    tuning = parse_tuning(tune, tune_seed) if tune is not None else None
    for record in ensembles(host_of(ctx), list(run_dirs), out, groups, high=high, low=low, device_name=device,
                            save_predictions=save_predictions, tuning=tuning):
        s, run = record["summary"], record["run"]
        chosen = run.get("tuning")
        if chosen:
            how = (f"thresholds cross-fitted on {chosen['folds']} folds: "
                   + ", ".join(f"({h:g}, {lo:g})" for h, lo in chosen["per_fold"]) if chosen["method"] == "cross-fitted"
                   else f"thresholds chosen on split {chosen['split']}")
            click.echo(f"{how}; predict uses ({run['high']:g}, {run['low']:g})")
        click.echo(f"jaccard {s['jaccard']:.4f}  dice {s['dice']:.4f}  threshold-jaccard {s['threshold_jaccard']:.4f}  "
                   f"({s['n_images']} images, {s['below_0.6']} below 0.6, {s['below_0.7']} below 0.7)")
        click.echo(f"record: {record['_path']}")


@click.command(name="predict", short_help="Segment new images with a trained run.")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--images", required=True,
              help="A folder of images (JPEG, PNG, BMP, TIFF), or a glob such as 'photos/*.jpg'.")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Folder for <id>_segmentation.png (0/255, each image's own size).")
@click.option("--tta", type=click.Choice(["none", "flip"]), default="none", show_default=True,
              help="flip: average the probabilities of the four horizontal/vertical flips.")
@click.option("--probabilities", "write_probabilities", is_flag=True,
              help="Also write <id>_probability.png (probability x 255).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--batch-size", default=None, type=click.IntRange(min=1),
              help="Images per forward pass [default: the run's eval batch size].")
@overwrite_option(what="masks (and probabilities) already in --out")
@click.pass_context
def predict_command(ctx, source, images, out, tta, write_probabilities, device, batch_size, overwrite) -> None:
    """Segment images without masks with a trained run (RUN_DIR) or an ensemble (its folder or results.json).

    Each image goes through the run's own preprocessing (resize to its size, channel set), threshold and,
    for an ensemble, its dual-threshold post-processing; masks are written at the image's original size.
    Unreadable images are named and skipped (exit code 1 after the others are written); so are files of other
    kinds (exit code 0). Masks already in --out are an error unless --overwrite is given.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from bench.apply import predict as prediction
    from bench.plugin.build import resolve_device

    paths, passed_over = prediction.find_images(images)
    if passed_over:
        err.print(prediction.passed_over_message(passed_over), markup=False, highlight=False)
    prediction.refuse_existing(paths, out, write_probabilities, overwrite)
    dev = resolve_device(device)
    predictor = prediction.load_predictor(host_of(ctx), source, dev)
    err.print(f"{predictor.describe()}; {len(paths)} images", markup=False, highlight=False)
    with Progress(TextColumn("predict"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err,
                  transient=True) as progress:
        task = progress.add_task("predict", total=len(paths))
        written, skipped = prediction.predict(predictor, paths, out, dev, batch_size or predictor.batch_size, tta,
                                              write_probabilities, lambda n: progress.advance(task, n), overwrite)
    for path, reason in skipped:
        err.print(f"skipped {path}: {reason}", markup=False, highlight=False)
    not_read = [f"{len(skipped)} unreadable image{'s' if len(skipped) != 1 else ''}"] if skipped else []
    if passed_over:
        not_read.append(f"{len(passed_over)} file{'s' if len(passed_over) != 1 else ''} that "
                        + ("are not images" if len(passed_over) != 1 else "is not an image"))
    click.echo(f"wrote {len(written)} mask{'s' if len(written) != 1 else ''} to {out}"
               + (f"; skipped {' and '.join(not_read)}" if not_read else ""))
    if skipped:
        raise click.exceptions.Exit(1)


@click.command(name="export", short_help="Export a run as TorchScript or ONNX.")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["torchscript", "onnx"]), required=True,
              help="torchscript (torch.jit.load; deprecated in recent PyTorch, still loads) or onnx "
                   "(onnxruntime; pip install 'skinbench[export]').")
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False), help="The file to write.")
@overwrite_option()
@click.pass_context
def export_command(ctx, run_dir, fmt, out, overwrite) -> None:
    """Export a finished run as one file: RGB uint8 images in, probabilities out.

    \b
    Input  rgb: uint8 (B, 3, H, W), RGB, the image resized to the run's HxW (Pillow's bilinear, antialiased).
    Output probability: float32 (B, 1, H, W); the channel conversion (HSV, L*, Lab) happens inside.
    Mask: the probabilities upsampled to the image's size with torch's bilinear (interpolate, align_corners=False;
    not Pillow's resize), > the run's threshold. README.md has the whole recipe; done so, the mask is bench predict's.
    TorchScript: torch.jit.load(FILE)(rgb). ONNX: onnxruntime.InferenceSession(FILE).run(None, {"rgb": x}).
    The file's metadata (skinbench.json in TorchScript, metadata_props in ONNX) names size, channels,
    threshold and the run's identity; bench predict applies a run with all of this done for you.
    An existing OUT is an error unless --overwrite is given.
    """
    from bench.apply import export as exporting

    refuse_to_replace(out, "--out", overwrite)
    meta = exporting.export(host_of(ctx), run_dir, fmt, out)
    click.echo(f"wrote {out} ({fmt}, {meta['seg']} at {meta['size']}, channels {meta['channels']}, "
               f"threshold {meta['threshold']:g})")
    click.echo(exporting.usage(meta, fmt).replace("FILE", repr(str(out))))
