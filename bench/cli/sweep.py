"""``bench sweep GRID`` (expand and submit a grid of runs) and ``bench sweep status NAME``."""

from __future__ import annotations

import shlex
from collections import Counter
from pathlib import Path

import click

from bench.cli.common import host_of
from bench.config.file import check_seed

from bench.errors import ConfigError
from bench.config.layers import Layer
from bench.config.options import parse_settings


class _SweepGroup(click.Group):
    """``bench sweep GRID ...`` starts a sweep; ``bench sweep status ...`` and ``bench sweep grids`` are commands."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["start", *args]
        return super().resolve_command(ctx, args)


@click.group(cls=_SweepGroup, short_help="Grids of runs, locally or on SLURM.")
def sweep() -> None:
    """Grids of runs (table2, table3, scalability, or a TOML file) on this machine or on SLURM (submitit).

    bench sweep GRID [options] submits the runs that are not done; bench sweep status NAME reports them.
    """

@sweep.command("start", hidden=True, short_help="Submit a grid's runs that are not done.")
@click.argument("grid")
@click.option("--seeds", default=None, help="Comma-separated seeds, e.g. 0,1,2 (default: the grid's, or 0).")
@click.option("--executor", type=click.Choice(["local", "slurm"]), default="local", show_default=True)
@click.option("--out", default="runs", show_default=True, type=click.Path(path_type=Path), help="Runs folder.")
@click.option("--data", default=None, help="Training dataset of every run, e.g. isic2017:/data/isic2017.")
@click.option("--profile", default=None, help="Profile of every run (default: the grid's, or quick).")
@click.option("--device", default=None, help="Device of every run (auto, cpu, cuda).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Any bench run option for every run, e.g. --set epochs=100 (repeatable).")
@click.option("--name", default=None, help="Sweep name (default: the grid's); its state is OUT/sweeps/NAME.")
@click.option("--parallel", default=None, type=click.IntRange(min=1),
              help="local: runs at a time on this machine [default: --runs-per-gpu per visible GPU, or "
                   "--runs-per-gpu without a GPU].")
@click.option("--runs-per-gpu", default=1, show_default=True, type=click.IntRange(min=1),
              help="Runs sharing one GPU at once: local, K per visible GPU; slurm, K runs per job.")
@click.option("--slurm-partition", default=None, help="slurm: partition to queue in.")
@click.option("--gpus-per-job", default=1, show_default=True, type=click.IntRange(min=0),
              help="GPUs per run; more than 1 trains with DDP (bench run --nproc).")
@click.option("--cpus-per-job", default=None, type=click.IntRange(min=1), help="slurm: CPUs per run.")
@click.option("--time", "time_", default="24:00:00", show_default=True, help="Time limit per run.")
@click.option("--dry-run", is_flag=True, help="Print the runs and what is done; submit nothing.")
@click.option("--estimate", is_flag=True,
              help="Print the projected GPU time of every run and of the grid (from --perf); submit nothing.")
@click.option("--perf", "perf_files", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="bench perf --json output to estimate from (repeatable: e.g. segmenters and GANs apart).")
@click.option("--json", "as_json", is_flag=True, help="--estimate: one JSON object (runs, total_s, todo_s).")
@click.pass_context
def start(ctx, grid, seeds, executor, out, data, profile, device, settings, name, parallel, runs_per_gpu,
          slurm_partition, gpus_per_job, cpus_per_job, time_, dry_run, estimate, perf_files, as_json) -> None:
    """Expand GRID into runs and submit those without a finished record."""
    from bench.sweep import executors as ex
    from bench.sweep import runner as sw

    spec = sw.load_grid(grid)
    seed_list = None
    if seeds:
        expected = f"--seeds {seeds!r}: expected integers separated by commas, e.g. 0,1,2"
        try:
            seed_list = [check_seed(int(s), f"--seeds {seeds!r}") for s in seeds.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(expected) from None
        if not seed_list:
            raise ConfigError(expected)
    given = {k: v for k, v in {"data": data, "profile": profile, "device": device}.items() if v is not None}
    command_line = Layer("the command line", {**sw.check_keys(given, "bench sweep"), **parse_settings(settings)})
    if estimate and not perf_files:
        raise ConfigError("--estimate needs --perf FILE: the output of bench perf --json on the GPU the grid "
                          "will run on (docs/performance.md)")
    options = ex.ExecutorOptions(kind=executor, parallel=parallel, runs_per_gpu=runs_per_gpu,
                                 partition=slurm_partition,
                                 gpus_per_job=gpus_per_job, cpus_per_job=cpus_per_job,
                                 time_min=ex.parse_time(time_))
    nproc = gpus_per_job if gpus_per_job > 1 else 1
    folder = sw.sweep_folder(out, name or spec.name)
    entries = sw.expand(host_of(ctx), spec, out, command_line, seed_list, nproc, folder)
    done = sum(sw.done(e) for e in entries)
    if not (estimate and as_json):
        click.echo(f"sweep {name or spec.name}: {len(entries)} runs, {done} already done; state in {folder}")
    if estimate:
        again = " ".join([f"--grid {shlex.quote(grid)}",
                          *(f"--{k} {shlex.quote(v)}" for k, v in (("data", data), ("profile", profile))
                            if v is not None), *(f"--set {shlex.quote(x)}" for x in settings)])
        _estimate(host_of(ctx), entries, list(perf_files), runs_per_gpu, again, as_json)
        return
    if dry_run:
        for e in entries:
            mark = "done" if sw.done(e) else ("stale" if sw.finished(Path(e["folder"])) else "todo")
            click.echo(f"  [{mark}] bench {shlex.join(e['command'])}")
        return
    ex.submit(entries, folder, options, log=click.echo)
    if executor == "local":
        _report(sw, folder)
    else:
        click.echo(f"queued; follow it with: bench sweep status {name or spec.name} --out {out}")

@sweep.command("status", short_help="Done, running, pending and failed runs.")
@click.argument("name")
@click.option("--out", default="runs", show_default=True, type=click.Path(path_type=Path), help="Runs folder.")
def status(name: str, out: Path) -> None:
    """Done / running / pending / failed runs of sweep NAME (or a sweep folder), with each failure's log."""
    from bench.sweep import runner as sw

    folder = Path(name) if (Path(name) / "sweep.json").exists() else sw.sweep_folder(out, name)
    _report(sw, folder)

@sweep.command("grids", short_help="The built-in grids and their runs per seed.")
def grids() -> None:
    """The built-in grids and their runs per seed."""
    from bench.sweep import runner as sw

    for key, make in sw.BUILT_IN.items():
        g = make()
        click.echo(f"{key:<12} {len(g.cells):>3} runs per seed  {g.description}")


def _estimate(host, entries, perf_files: list[Path], runs_per_gpu: int, again: str, as_json: bool = False) -> None:
    import json

    from bench.sweep import estimate as est
    from bench.sweep import runner as sw

    runs = est.estimate(host, entries, perf_files, runs_per_gpu)
    if as_json:
        complete = not any(r.missing for r in runs)
        click.echo(json.dumps({
            "runs": [{"args": r.entry["command"], "done": sw.done(r.entry), "images": r.images,
                      "curve_points": r.plan.curve_points, "curve_pairs": r.plan.n_curve, "gan_s": r.gan_s, "train_s": r.train_s, "eval_s": r.eval_s,
                      "total_s": r.total_s} for r in runs],
            "runs_per_gpu": runs_per_gpu,
            "total_s": sum(r.total_s or 0.0 for r in runs) / runs_per_gpu if complete else None,
            "todo_s": sum(r.total_s or 0.0 for r in runs if not sw.done(r.entry)) / runs_per_gpu if complete else None,
            "missing": [n.describe() for n in sorted({n for r in runs for n in r.missing},
                                                     key=lambda n: (n.kind, n.name, n.size))]}, indent=2))
        if not complete:
            raise click.exceptions.Exit(1)
        return
    keys = sorted({k for e in entries for k in e["cell"] if len({str(x["cell"].get(k)) for x in entries}) > 1})
    click.echo("| run | real img | synthetic img | mixed img | curve points | GAN training | segmenter | "
               "evaluation | total |")
    click.echo("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in runs:
        label = " ".join([f"{k}={r.entry['cell'].get(k)}" for k in keys] + [f"seed={r.entry['seed']}"])
        cells = [("-" if x == 0 else est.hours(x)) if x is not None else "not measured"
                 for x in (r.gan_s, r.train_s, r.eval_s, r.total_s)]
        click.echo(f"| {label}{' (done)' if sw.done(r.entry) else ''} | {r.images['real']:,} | "
                   f"{r.images['synthetic']:,} | {r.images['mixed']:,} | {r.plan.curve_points} | {' | '.join(cells)} |")
    missing = sorted({need for r in runs for need in r.missing}, key=lambda n: (n.kind, n.name, n.size))
    if missing:
        click.echo(f"\nno total: {len(missing)} measurement(s) missing from --perf:")
        for need in missing:
            click.echo(f"  {need.describe()}")
        click.echo(f"measure exactly what this grid needs with: bench perf {again}"
                   + (f" --processes {runs_per_gpu}" if runs_per_gpu > 1 else "") + " --device cuda --json > FILE")
        raise click.exceptions.Exit(1)
    # K runs share a GPU: each takes its own (shared-card) time above, and the card serves K of them at once
    total = sum(r.total_s or 0.0 for r in runs) / runs_per_gpu
    todo = sum(r.total_s or 0.0 for r in runs if not sw.done(r.entry)) / runs_per_gpu
    curve = sum(r.eval_s or 0.0 for r in runs) / runs_per_gpu
    machine = est.machine_of(perf_files)
    click.echo(f"\ntotal: {est.hours(total)} of {'GPU' if machine.get('gpu') else 'device'} time for {len(runs)} runs"
               + (f", {runs_per_gpu} at once per GPU (each run's own time above is as it shares the card)"
                  if runs_per_gpu > 1 else "")
               + f" ({est.hours(todo)} for the runs not done; evaluation {est.hours(curve)}, "
               f"{100 * curve / max(total, 1e-9):.1f}%); data preparation and scoring at original sizes not counted; "
               f"measured on {machine.get('gpu') or machine.get('cpu', 'an unknown machine')}")


def _report(sw, folder: Path) -> None:
    entries = sw.load(folder)
    from bench.sweep.executors import state_of

    states = [state_of(e) for e in entries]
    counts = Counter(state for state, _ in states)
    order = ["done", "running", "pending", "failed", "not submitted"]
    click.echo(", ".join(f"{counts[s]} {s}" for s in order if counts[s]) + f" (of {len(entries)})")
    for entry, (state, log) in zip(entries, states):
        if state == "failed":
            click.echo(f"  failed: bench {' '.join(entry['args'])}\n    log: {log}")
    if counts["failed"]:
        raise click.exceptions.Exit(1)
