"""The one configuration pipeline: defaults < profile < ``--config`` file < grid < command line.

Every source of settings gives a :class:`Layer`: ``bench run`` options and profile fields, keys normalised and
values cast (:func:`bench.config.options.cast_setting`), with the place it came from. :func:`merge` lays them in
that order, a later layer replacing an earlier one's value; :func:`run_options` turns the result into the
:class:`~bench.config.run.RunOptions` that :func:`bench.config.run.build` resolves against the profile and the
components' defaults (the first two layers). A value one layer sets and a later one may not change (a grid's
axis under ``--set``) is an error naming both, never a silent choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

from bench.config import profiles
from bench.config.run import RunOptions
from bench.errors import ConfigError


@dataclass(frozen=True)
class Layer:
    """Settings from one source: ``source`` names it in errors (``--config run.toml``, ``the command line``)."""

    source: str
    values: dict[str, Any] = field(default_factory=dict)
    fixed: frozenset[str] = frozenset()
    """Keys a later layer may not change (a grid's axes: the sweep would run one cell twice)."""
    verb: str = "varies"
    """What this layer does with its fixed keys, for the error: a grid *varies* them."""


def merge(layers: Iterable[Layer]) -> dict[str, Any]:
    """The settings of ``layers``, later ones winning; an error when a later layer changes a fixed key."""
    out: dict[str, Any] = {}
    fixed: dict[str, Layer] = {}
    for layer in layers:
        for key, value in layer.values.items():
            if key in fixed and value != out.get(key):
                raise ConfigError(f"{layer.source} sets {key} = {value!r}, which {fixed[key].source} "
                                  f"{fixed[key].verb}; drop it from {layer.source}")
            out[key] = value
        fixed.update({k: layer for k in layer.fixed})
    return out


#: Settings of one invocation rather than of a run: never read from a file or a grid.
INVOCATION = ("out", "force", "resume")


def run_options(settings: dict[str, Any], seed: int = 0, out: Path | str = Path("runs"), force: bool = False,
                resume: bool = False) -> RunOptions:
    """``RunOptions`` from merged settings: run options by name, profile fields as overrides (``data`` its own)."""
    own = {f.name for f in fields(RunOptions)} - {"overrides", *INVOCATION}
    unknown = set(settings) - own - set(profiles.BY_NAME)
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(sorted(unknown))}")
    values = {k: v for k, v in settings.items() if k in own and k != "data"}
    values.setdefault("seed", seed)
    overrides = {k: v for k, v in settings.items() if k in profiles.BY_NAME and k != "data"}
    return RunOptions(**values, data=settings.get("data"), out=Path(out), force=force, resume=resume,
                      overrides=overrides)
