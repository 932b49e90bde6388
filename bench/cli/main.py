"""The ``bench`` command group and its entry point: every command lives in a module of ``bench.cli`` by what it
does (``run``; ``components``: plugins, list, describe; ``results``: leaderboard, results, claims, scalability;
``apply``: ensemble, predict, export; ``perf``; the ``data``, ``gan`` and ``sweep`` groups) and is added here;
plugins add theirs through ``bench_register_commands``."""

from __future__ import annotations

import sys

import click

from bench.cli import apply, components, data, gan, perf, results, run, sweep
from bench.cli.common import err
from bench.errors import BenchError
from bench.plugin.host import get_host


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--strict-plugins", is_flag=True, help="Make any plugin fault (import error, raising hook) fatal.")
@click.version_option(package_name="skinbench", prog_name="bench")
def cli(strict_plugins: bool) -> None:
    """skinbench: GAN data augmentation for skin-lesion segmentation, one command per experiment."""


for command in (run.run, components.plugins, components.list_components, components.describe, apply.ensemble_command,
                results.leaderboard, results.results_command, results.claims, results.scalability,
                results.report_command, apply.predict_command, apply.export_command, perf.perf_command, data.data,
                gan.gan, sweep.sweep):
    cli.add_command(command)


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
