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
    """Register generators: ``register(name, factory, description=..., meta=GeneratorMeta(...), reference=...)``.

    The harness calls ``factory(size=(H, W), width=..., lr=..., seed=..., **options)``; it returns a
    :class:`bench.api.Generator` that learns 4-channel image+mask pairs and samples them. ``--gen NAME``
    selects it; ``--gen NAME?key=value`` passes the options ``GeneratorMeta(options=...)`` declares, typed.
    """


@hookspec
def bench_register_segmenters(register: Register) -> None:
    """Register segmenters: ``register(name, factory, meta=SegmenterMeta(size=, channels=, loss=), ...)``.

    The harness calls ``factory(in_channels=C, width=..., [spec=ARG], [weights=PATH], [encoder_weights=TAG],
    **options)`` (``ARG`` and
    the options from ``--seg NAME:ARG?key=value``, checked against ``SegmenterMeta(options=...)`` and typed); it
    returns a ``torch.nn.Module`` mapping
    ``(B, C, H, W)`` to logits ``(B, 1, H, W)``. The metadata is required: the input size (``"HxW"``), the
    channel set and the default loss.
    """


@hookspec
def bench_register_losses(register: Register) -> None:
    """Register losses: the harness calls ``factory(**options)`` (from ``--loss NAME?key=value``, declared in
    ``OptionsMeta``); it returns ``loss(logits, target) -> scalar tensor``."""


@hookspec
def bench_register_schedules(register: Register) -> None:
    """Register schedules: ``register(name, factory, meta=ScheduleMeta(needs_generator=..., uses=...), ...)``.

    The harness calls ``factory(config, **options)`` (options declared in ``ScheduleMeta(options=...)``) with the run's :class:`bench.api.RunConfig`; it returns the list
    of :class:`bench.api.Phase` (``config.epochs``, ``config.synthetic_epochs``, ... give their lengths).
    """


@hookspec
def bench_register_datasets(register: Register) -> None:
    """Register datasets: the harness calls ``factory(arg, **options)``; it returns a :class:`bench.api.Dataset`.

    ``--data NAME:ARG?key=value`` passes ``ARG`` (e.g. a root folder) and the options ``OptionsMeta`` declares, typed.
    """


@hookspec
def bench_register_loggers(register: Register) -> None:
    """Register experiment loggers: the harness calls ``factory(**options)``; it returns a :class:`bench.api.Logger`.

    ``bench run --log NAME[?key=value]`` (comma-separated for several) sends it the run's configuration, each epoch's
    metrics, the summary and the plots; a logger that raises is reported and dropped, never stopping training.
    """


@hookspec
def bench_register_commands(cli: Any) -> None:
    """Add subcommands to the ``bench`` click group (``cli`` is a ``click.Group``)."""
