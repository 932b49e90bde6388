"""What every command shares: the consoles and the plugin host (its load warnings printed once)."""

from __future__ import annotations

import click
from rich.console import Console

from bench.plugin.host import PluginHost, get_host

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def host_of(ctx: click.Context) -> PluginHost:
    strict = bool(ctx.find_root().params.get("strict_plugins"))
    host = get_host(strict=strict)
    if not strict:
        for info, message in host.errors():
            err.print("[yellow]warning:[/] ", end="")
            err.print(f"plugin {info.name!r} ({info.distribution or 'unknown distribution'}) skipped: {message}",
                      markup=False, highlight=False)
    return host
