"""Hook specifications of skinbench (pluggy project and entry-point group ``bench``).

Registration works by callback, as in ``llm``: the core passes a ``register`` function and owns the
registry, so a plugin never touches global state and every component knows which plugin made it.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

hookspec = pluggy.HookspecMarker("bench")
hookimpl = pluggy.HookimplMarker("bench")

Register = Callable[..., Any]


@hookspec
def bench_register_generators(register: Register) -> None:
    """Register generators: ``register(name, factory, description=..., defaults=..., reference=...)``.

    ``factory(size=(H, W), **options)`` returns a :class:`bench.components.Generator` that learns
    4-channel image+mask pairs and samples them. ``--gen NAME`` selects it.
    """


@hookspec
def bench_register_segmenters(register: Register) -> None:
    """Register segmenters: ``factory(in_channels, **options)`` returns a ``torch.nn.Module``.

    The module maps ``(B, in_channels, H, W)`` to logits ``(B, 1, H, W)``. ``defaults`` must give
    ``size`` (``"HxW"``), ``channels`` (a channel-set name) and ``loss`` (a loss name).
    """


@hookspec
def bench_register_losses(register: Register) -> None:
    """Register losses: ``factory(**options)`` returns ``loss(logits, target) -> scalar tensor``."""


@hookspec
def bench_register_schedules(register: Register) -> None:
    """Register schedules: ``factory(profile)`` returns the list of :class:`bench.components.Phase`."""


@hookspec
def bench_register_datasets(register: Register) -> None:
    """Register datasets: ``factory(arg, **options)`` returns a :class:`bench.data.source.Dataset`.

    ``--data NAME:ARG?key=value`` passes ``ARG`` (e.g. a root folder) and the options.
    """


@hookspec
def bench_register_commands(cli: Any) -> None:
    """Add subcommands to the ``bench`` click group (``cli`` is a ``click.Group``)."""
