"""Command-line options and ``--set``/grid values generated from the profile fields table."""

from __future__ import annotations

import typing
from typing import Any, Callable, Iterable

import click

from bench.config import profiles
from bench.config.run import GRID_RUN_OPTIONS, RunOptions
from bench.errors import ConfigError

COMPILE_REMOVED = ("--compile was removed: torch.compile of the segmenter made the training step slower than eager "
                   "on an H200 (docs/performance.md). Use --cuda-graph (grid or --set key cuda_graph = true), "
                   "which captures the whole step as one CUDA graph")

_CLICK_TYPES: dict[type, Any] = {int: click.INT, float: click.FLOAT, str: click.STRING}


def _validate(f: profiles.Field) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        return f.cast(value)

    return callback


def field_options(fields: Iterable[profiles.Field]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding one ``--option`` per field (default ``None``: the profile's value), checked on parse."""
    fields = list(fields)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for f in reversed(fields):
            defaults = ", ".join(f"{p} {f.values[p] if f.values[p] is not None else 'own'}"
                                 for p in profiles.PROFILE_NAMES)
            fn = click.option(f.option, f.name, default=None, type=_CLICK_TYPES[f.type], metavar=f.metavar,
                              callback=_validate(f), help=f"{f.help} [profiles: {defaults}]")(fn)
        return fn

    return decorate


def _option_types() -> dict[str, type]:
    """The type each grid-settable ``RunOptions`` field takes (``int | None`` -> ``int``)."""
    hints = typing.get_type_hints(RunOptions)
    out = {}
    for name in GRID_RUN_OPTIONS:
        args = [a for a in typing.get_args(hints[name]) if a is not type(None)] or [hints[name]]
        out[name] = args[0]
    return out


OPTION_TYPES: dict[str, type] = _option_types()
GRID_KEYS: tuple[str, ...] = GRID_RUN_OPTIONS + tuple(f.name for f in profiles.FIELDS)
"""Every key a grid file, ``bench sweep --set`` or ``bench scalability --set`` accepts."""


def cast_setting(key: str, value: Any, where: str) -> tuple[str, Any]:
    """``(normalised key, value cast to its type)`` for a grid or ``--set`` value; errors name ``where``."""
    norm = key.replace("-", "_")
    if norm == "compile":
        raise ConfigError(f"{where}: {COMPILE_REMOVED}")
    if norm in profiles.BY_NAME:
        return norm, profiles.BY_NAME[norm].cast(value, f"{where} {key}")
    if norm not in OPTION_TYPES:
        raise ConfigError(f"{where}: unknown option {key!r}; expected bench run options such as "
                          f"{', '.join(sorted(GRID_KEYS))}")
    kind = OPTION_TYPES[norm]
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return norm, value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError(f"{where} {key}: {value!r} is not true or false")
        return norm, value
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where} {key}: {value!r} is not an integer")
        try:
            return norm, int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} {key}: {value!r} is not an integer") from None
    return norm, str(value)


def unique_keys(keys: Iterable[str], where: str) -> None:
    """Refuse two spellings of one setting (``batch_size`` and ``batch-size``): one value would silently win."""
    seen: dict[str, str] = {}
    for key in keys:
        norm = key.replace("-", "_")
        if norm in seen:
            raise ConfigError(f"{where}: {seen[norm]!r} and {key!r} are the same setting; keep one of them")
        seen[norm] = key


def parse_settings(pairs: Iterable[str], where: str = "--set") -> dict[str, Any]:
    """``KEY=VALUE`` pairs as typed values."""
    out = {}
    unique_keys([pair.partition("=")[0].strip() for pair in pairs], where)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{where} {pair!r}: expected KEY=VALUE, e.g. {where} epochs=100")
        norm, cast = cast_setting(key.strip(), value.strip(), where)
        out[norm] = cast
    return out
