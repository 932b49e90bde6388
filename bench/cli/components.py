"""``bench plugins``, ``bench list`` and ``bench describe``: what is installed and what it does."""

from __future__ import annotations

import json

import click

from bench.cli.common import console, host_of
from bench.errors import BenchError
from bench.plugin.host import get_host
from bench.plugin.catalog import KINDS


@click.command(short_help="Installed plugins and what they registered.")
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


@click.command(name="list", short_help="Components of one kind, by name pattern.")
@click.argument("kind", type=click.Choice(KINDS + tuple(k[:-1] for k in KINDS)))
@click.argument("pattern", required=False)
@click.pass_context
def list_components(ctx: click.Context, kind: str, pattern: str | None) -> None:
    """Components of KIND, optionally filtered by a wildcard PATTERN (e.g. 'cdnn*')."""
    from bench.plugin.listing import list_lines

    for line in list_lines(host_of(ctx).registry, kind, pattern):
        console.print(line, markup=False, highlight=False)


@click.command(short_help="One component: options, reference, layers.")
@click.argument("name")
@click.pass_context
def describe(ctx: click.Context, name: str) -> None:
    """One component's description, defaults, reference and (for networks) layers and parameters."""
    from bench.plugin.describe import describe_component

    host = host_of(ctx)
    found = host.registry.find(name.split(":", 1)[0])
    if not found:
        from bench.plugin.catalog import unknown_message

        everything = sorted({n for kind in KINDS for n in host.registry.names(kind)})
        raise BenchError(unknown_message("component", name, everything))
    for component in found:
        console.print(describe_component(component, name.split(":", 1)[1] if ":" in name else None),
                      highlight=False, markup=False)
