"""``bench perf``: the rates a run spends its time at (``docs/performance.md``)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Callable

import click

from bench.cli.common import host_of
from bench.config.options import COMPILE_REMOVED
from bench.config.profiles import BY_NAME, PROFILE_NAMES
from bench.errors import BenchError


@click.command(name="perf", short_help="Rates of training, evaluation, sampling.")
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
def perf_command(ctx, grids, profile, settings, segs, gens, size, batch, width, channel_set, loss, gan_size, gan_batch,
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
    host = host_of(ctx)
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
    print_table(result, click.echo)


def print_table(result: dict[str, Any], echo: Callable[[str], None]) -> None:
    """``bench perf`` as markdown: the rows, the synthetic epochs they combine into, the data path."""
    m = result["machine"]
    echo(f"machine: {m.get('gpu') or m['cpu']} ({m['cores']} cores), torch {m['torch']}")
    if result.get("processes", 1) > 1:
        echo(f"{result['processes']} processes at once: rates of all of them together over the span they shared")

    def num(row: dict[str, Any], key: str) -> str:
        return f"{row[key]:.1f}" if row.get(key) else "-"

    def ratio(row: dict[str, Any]) -> str:
        return f"{row['ratio']:.2f}" if row.get("ratio") else "-"

    echo("| component | size | width | channels, loss | batch | step | train img/s | model img/s | ratio | eval img/s | "
         "sample pairs/s | peak MB |")
    echo("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in result["rows"]:
        step = "-"
        if r["kind"] == "step":
            step = f"graph ({r['capture_s']:.1f} s capture)" if r.get("graphed") else "eager"
        size = r["size"] if r["kind"] != "sampling" else f"{r['gan_size']} -> {r['size']}"
        setting = f"{r['channels']}, {r['loss']}" if r["kind"] == "step" else "-"
        echo(f"| {r['component']} | {size} | {r['width']:g} | {setting} | {r['batch'] or '-'} | {step} | "
             f"{num(r, 'train_img_s')} | "
             f"{num(r, 'model_img_s')} | {ratio(r)} | "
             f"{num(r, 'eval_img_s')} | {num(r, 'sample_pairs_s')} | {r['peak_mem_mb']:.0f} |")
    for r in result["rows"]:
        if r.get("graph_error") and r.get("graph"):
            echo(f"{r['component']}: eager step, {r['graph_error']}")
    from bench.sweep.perf import combined

    for c in combined(result["rows"]):
        echo(f"{c['component']} ({c['size']}): a synthetic epoch trains at {c['train_img_s']:.1f} img/s "
             f"(step {c['step_img_s']:.1f} img/s, sampling {c['sample_pairs_s']:.1f} pairs/s)")
    d = result.get("data")
    if d:
        echo(f"data ({d['data']}, {d['n_images']} images at {d['size']}): prepare {d['prepare_img_s']:.0f} img/s, "
             f"load {d['load_s'] * 1000:.1f} ms, naive DataLoader epoch {d['naive_epoch_s']:.2f} s "
             f"({d['naive_workers']} workers): load is {d['load_speedup_vs_naive_epoch']:.0f}x faster")
