"""What every command shares: the consoles, the plugin host (its load warnings printed once), and the
``--overwrite`` rule of the commands that write a file the user names."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console

from bench.errors import ConfigError
from bench.plugin.host import PluginHost, get_host

console = Console(soft_wrap=True, emoji=False)
err = Console(stderr=True, soft_wrap=True, emoji=False)


def host_of(ctx: click.Context) -> PluginHost:
    strict = bool(ctx.find_root().params.get("strict_plugins"))
    host = get_host(strict=strict)
    if not strict:
        for info, message in host.errors():
            err.print("[yellow]warning:[/] ", end="")
            err.print(f"plugin {info.name!r} ({info.distribution or 'unknown distribution'}) skipped: {message}",
                      markup=False, highlight=False)
    return host


def overwrite_option(option: str = "--out", note: str = "", what: str = "") -> Callable[[Any], Any]:
    """The ``--overwrite`` flag of a command that writes ``option``: without it, no file of the user's is replaced."""
    return click.option("--overwrite", is_flag=True,
                        help=f"Replace {what or option + ' if it already exists'} (without it, an existing file is an "
                             f"error){note}.")


def refuse_to_replace(path: Path | None, option: str, overwrite: bool) -> None:
    """Stop before anything is written when ``path`` exists and ``--overwrite`` was not given: a command replaces
    only the files it is told to."""
    if path is not None and not overwrite and (path.exists() or path.is_symlink()):
        raise ConfigError(f"{option} {path}: already exists; pass --overwrite to replace it, or choose another "
                          f"{option}")
