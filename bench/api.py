"""The public API for plugin authors: everything a plugin imports comes from here.

    from bench.api import hookimpl, Generator, SegmenterMeta

The names below are stable across minor versions; the modules they live in are not part of the contract.
"""

from __future__ import annotations

from bench.plugin.components import (
    EpochCallback,
    Generator,
    GeneratorMeta,
    OptionsMeta,
    Phase,
    ScheduleMeta,
    SegmenterMeta,
    move_optimizer_state,
)
from bench.plugin.options import Option
from bench.config.run import RunConfig
from bench.data.layout import match_pairs
from bench.data.source import Dataset, FileSplit, Pair, Split
from bench.data.spec import format_size, parse_size
from bench.errors import BenchError, ConfigError, DataError, UnknownComponentError
from bench.plugin.hookspecs import hookimpl, hookspec
from bench.train.tracking import Logger, LoggerUnavailable, TrackedRun

__all__ = [
    "BenchError",
    "ConfigError",
    "DataError",
    "Dataset",
    "EpochCallback",
    "FileSplit",
    "Generator",
    "GeneratorMeta",
    "Logger",
    "LoggerUnavailable",
    "Option",
    "OptionsMeta",
    "Pair",
    "Phase",
    "RunConfig",
    "ScheduleMeta",
    "SegmenterMeta",
    "TrackedRun",
    "Split",
    "UnknownComponentError",
    "format_size",
    "hookimpl",
    "match_pairs",
    "hookspec",
    "move_optimizer_state",
    "parse_size",
]
