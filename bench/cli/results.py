"""``bench leaderboard``, ``bench results``, ``bench claims``, ``bench scalability`` and ``bench report``: tables,
data, verdicts, curves and a one-file HTML report from records."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from bench.cli.common import overwrite_option, refuse_to_replace, err, host_of
from bench.errors import BenchError


@click.command(short_help="Markdown leaderboards from run records.")
@click.option("--runs", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--out", default=None, type=click.Path(path_type=Path), help="Write the markdown here too.")
@click.option("--metric", default="jaccard", show_default=True,
              type=click.Choice(["jaccard", "dice", "threshold_jaccard", "accuracy", "sensitivity", "specificity"]))
@click.option("--plots", is_flag=True,
              help="Draw every row's histogram and training curves as PNGs in OUT's folder (OUT-stem_plots/) and link them.")
@click.option("--baseline", "baselines", multiple=True, metavar="COLUMN",
              help="Column every strategy is compared with (repeatable); default: 'real only' and, when run, "
                   "'real only (matched steps)'.")
@click.option("--pool-environments", is_flag=True,
              help="Pool runs of one experiment from different environments (device, precision, torch version) "
                   "into one cell; by default each environment is its own cell.")
@click.option("--format", "fmt", default="md", show_default=True, type=click.Choice(["md", "csv", "json"]),
              help="md: the markdown board; csv, json: its cells as numbers, a row per (table, row, column, "
                   "baseline) (README.md, 'Results as data'; generator-quality tables are markdown only). With "
                   "--out, csv and json are written there only.")
@overwrite_option(note="; the plots folder beside it is the leaderboard's own and is always redrawn")
def leaderboard(runs: Path, out: Path | None, metric: str, plots: bool, baselines: tuple[str, ...],
                pool_environments: bool, fmt: str, overwrite: bool) -> None:
    """Markdown leaderboards (Table 2 style) from the records under RUNS."""
    from bench.results.grouping import BASELINES
    from bench.results.leaderboard import render, render_quality
    from bench.results.reader import load_quality, load_records
    from bench.storage.atomic import atomic_write_bytes

    if not runs.is_dir():
        raise BenchError(f"--runs {runs}: folder not found; expected the --out folder of `bench run`")
    if fmt != "md":
        if plots:
            raise BenchError(f"--plots draws the markdown board's figures; it does not go with --format {fmt}")
        _board_data(runs, out, metric, baselines or BASELINES, pool_environments, fmt, overwrite)
        return
    records, warnings = load_records(runs, metric)
    quality, quality_warnings = load_quality(runs)
    for w in warnings + quality_warnings:
        err.print("[yellow]warning:[/] ", end="")
        err.print(w, markup=False, highlight=False)
    if plots and not out:
        raise BenchError("--plots needs --out FILE.md: the plots are written beside it and linked from it")
    if out is not None and out.is_dir():
        raise BenchError(f"--out {out}: is a folder; expected a markdown file name such as {out / 'leaderboard.md'}")
    refuse_to_replace(out, "--out", overwrite)
    plot_dir = out.parent / f"{out.stem}_plots" if plots and out else None
    text = render(records, metric, plot_dir, out.parent if out else None, baselines or BASELINES, pool_environments)
    if quality:
        text = text.rstrip("\n") + "\n\n" + render_quality(quality)
    if out:
        atomic_write_bytes(out, text.encode())
    click.echo(text)


def _warn(warnings: list[str]) -> None:
    for w in warnings:
        err.print("[yellow]warning:[/] ", end="")
        err.print(w, markup=False, highlight=False)


def _check_out(out: Path | None, overwrite: bool, example: str) -> None:
    if out is not None and out.is_dir():
        raise BenchError(f"--out {out}: is a folder; expected a file name such as {out / example}")
    refuse_to_replace(out, "--out", overwrite)


def _board_data(runs: Path, out: Path | None, metric: str, baselines: tuple[str, ...], pool_environments: bool,
                fmt: str, overwrite: bool) -> None:
    """``bench leaderboard --format csv|json``: the board's cells as data (``results/export.board_table``)."""
    from bench.results.export import board_table, write
    from bench.results.reader import load_records

    _check_out(out, overwrite, f"leaderboard.{fmt}")
    records, warnings = load_records(runs, metric)
    _warn(warnings)
    text = write(board_table(records, metric, baselines, pool_environments), fmt, out)
    if text is not None:
        click.echo(text, nl=False)


@click.command("results", short_help="Run records as CSV, JSON or Parquet.")
@click.option("--runs", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", default="csv", show_default=True, type=click.Choice(["csv", "json", "parquet"]),
              help="parquet needs --out and pyarrow (pip install pyarrow) or fastparquet.")
@click.option("--out", default=None, type=click.Path(path_type=Path),
              help="Write the table here (default: csv and json to standard output).")
@click.option("--per-image", is_flag=True, help="A row per (run, test image): the per-image scores and the run's key.")
@overwrite_option()
def results_command(runs: Path, fmt: str, out: Path | None, per_image: bool, overwrite: bool) -> None:
    """The records under RUNS as data: a row per run or ensemble that the leaderboard counts (settings, identity,
    data, environment, scores, timings; README.md, 'Results as data')."""
    from bench.results.export import image_table, parquet_engine, run_table, write
    from bench.results.reader import load_records

    if not runs.is_dir():
        raise BenchError(f"--runs {runs}: folder not found; expected the --out folder of `bench run`")
    if fmt == "parquet":
        if out is None:
            raise BenchError("--format parquet writes a binary file: give --out FILE.parquet")
        parquet_engine()
    _check_out(out, overwrite, f"results.{fmt}")
    records, warnings = load_records(runs, "jaccard")
    _warn(warnings)
    if not records:
        err.print(f"[yellow]warning:[/] no finished runs under {runs}", highlight=False)
    table = image_table(records) if per_image else run_table(records)
    text = write(table, fmt, out)
    if text is not None:
        click.echo(text, nl=False)
    else:
        err.print(f"{len(table.rows)} rows: {out}", markup=False, highlight=False)


@click.command(short_help="A verdict on each of the paper's claims.")
@click.option("--runs", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--out", default=None, type=click.Path(path_type=Path), help="Write the markdown here too.")
@click.option("--metric", default="jaccard", show_default=True,
              type=click.Choice(["jaccard", "dice", "threshold_jaccard", "accuracy", "sensitivity", "specificity"]))
@overwrite_option()
def claims(runs: Path, out: Path | None, metric: str, overwrite: bool) -> None:
    """A verdict on each claim of the paper (supported, contradicted, not resolvable, not run) from RUNS."""
    from bench.results.claims import render
    from bench.results.reader import load_records
    from bench.storage.atomic import atomic_write_bytes

    if not runs.is_dir():
        raise BenchError(f"--runs {runs}: folder not found; expected the --out folder of `bench run`")
    if out is not None and out.is_dir():
        raise BenchError(f"--out {out}: is a folder; expected a markdown file name such as {out / 'claims.md'}")
    refuse_to_replace(out, "--out", overwrite)
    records, warnings = load_records(runs, metric)
    for w in warnings:
        err.print("[yellow]warning:[/] ", end="")
        err.print(w, markup=False, highlight=False)
    text = render(records, metric)
    if out:
        atomic_write_bytes(out, text.encode())
    click.echo(text)


@click.command(short_help="Figs. 8/9: Jaccard vs real training images.")
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
@overwrite_option(note="; the plots folder beside it is the command's own and is always redrawn")
@click.pass_context
def scalability(ctx, runs: Path, seg: str, out: Path | None, run_missing: bool, data: str | None, profile: str,
                seeds: str, sizes: str, gens: str, settings: tuple[str, ...], overwrite: bool) -> None:
    """Figs. 8 and 9: Jaccard against the number of real training images, and each GAN's worth in real images."""
    from bench.results.reader import load_records
    from bench.storage.atomic import atomic_write_bytes
    from bench.results.scalability import render

    if out is not None and out.is_dir():
        raise BenchError(f"--out {out}: is a folder; expected a markdown file name such as {out / 'scalability.md'}")
    refuse_to_replace(out, "--out", overwrite)

    if run_missing:
        from bench.cli.progress import RichReporter
        from bench.config.options import parse_settings
        from bench.sweep.runner import scalability_runs
        from bench.train.run import execute

        try:
            seed_list = [int(x) for x in seeds.split(",") if x.strip()]
            size_list = [None if x.strip() == "all" else int(x) for x in sizes.split(",") if x.strip()]
        except ValueError:
            raise BenchError("--seeds and --sizes: expected integers separated by commas (sizes may include all)")
        from bench.config.file import check_seed

        seed_list = [check_seed(s, "--seeds") for s in seed_list]
        gen_list = [g.strip().replace("+", ",") for g in gens.replace(";", ",").split(",") if g.strip()]
        host = host_of(ctx)
        for opts in scalability_runs(seg, data, profile, seed_list, size_list, gen_list, parse_settings(settings), runs):
            with RichReporter(err) as reporter:
                execute(host, opts, reporter, log=lambda m: err.print(m, markup=False, highlight=False))
    if not runs.is_dir():
        raise BenchError(f"--runs {runs}: folder not found; expected the --out folder of `bench run`")
    records, warnings = load_records(runs, "jaccard")
    for w in warnings:
        err.print("[yellow]warning:[/] ", end="")
        err.print(w, markup=False, highlight=False)
    text = render(records, seg, out.parent / f"{out.stem}_plots" if out else None, out.parent if out else None)
    if out:
        atomic_write_bytes(out, text.encode())
    click.echo(text)


@click.command("report", short_help="One self-contained HTML report of records.")
@click.option("--runs", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The HTML file to write.")
@click.option("--metric", default="jaccard", show_default=True,
              type=click.Choice(["jaccard", "dice", "threshold_jaccard", "accuracy", "sensitivity", "specificity"]))
@click.option("--gallery", "gallery", default=6, show_default=True, type=click.IntRange(min=0),
              help="Worst test images shown per cell in the failure gallery (0: none).")
@click.option("--reproducible", is_flag=True,
              help="Leave out when and by which skinbench version and commit the report was rendered, so that the "
                   "same records always render the same file (committed reports).")
@overwrite_option()
@click.pass_context
def report_command(ctx, runs: Path, out: Path, metric: str, gallery: int, reproducible: bool,
                   overwrite: bool) -> None:
    """One HTML file from the records under RUNS, readable offline: the leaderboard's tables with a forest plot per
    difference table, Fig. 7 histograms and training curves, the claims' verdicts and a failure gallery (each
    cell's worst test images with truth and prediction drawn over them)."""
    import datetime
    import functools

    import bench
    from bench.results.reader import load_quality, load_records
    from bench.results.records import git_hash
    from bench.results.report import render_report
    from bench.storage.atomic import atomic_write_bytes

    if not runs.is_dir():
        raise BenchError(f"--runs {runs}: folder not found; expected the --out folder of `bench run`")
    _check_out(out, overwrite, "report.html")
    records, warnings = load_records(runs, metric)
    quality, quality_warnings = load_quality(runs)
    _warn(warnings + quality_warnings)
    host = functools.cache(lambda: host_of(ctx))
    made = None if reproducible else {
        "version": bench.__version__, "commit": git_hash() or "not a source checkout",
        "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    text = render_report(runs, records, quality, warnings + quality_warnings, metric, gallery, host,
                         _recompute(host), made)
    atomic_write_bytes(out, text.encode())
    err.print(f"report: {out} ({len(text.encode()) / 1e6:.1f} MB, {len(records)} records)", markup=False,
              highlight=False)


def _recompute(host: Callable[[], Any]) -> Callable[[dict[str, Any], list[Any]], list[Any]]:
    """The gallery's masks from a run's (or ensemble's) weights, as ``bench predict`` computes them on the CPU; the
    last few networks loaded are kept."""
    from bench.apply.predict import load_predictor, probabilities, to_mask
    from bench.plugin.build import resolve_device

    device = resolve_device("cpu")
    loaded: dict[Path, Any] = {}

    def masks(record: dict[str, Any], images: list[Any]) -> list[Any]:
        folder = Path(record["_path"]).parent
        if folder not in loaded:
            if len(loaded) >= 4:
                loaded.pop(next(iter(loaded)))
            loaded[folder] = load_predictor(host(), folder, device)
        predictor = loaded[folder]
        return [to_mask(predictor, p) for p in probabilities(predictor, images, device, "none")]

    return masks
