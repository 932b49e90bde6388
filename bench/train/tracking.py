"""Experiment tracking: ``--log NAME`` hands a run's configuration, epochs, summary and plots to loggers.

A logger is a plugin component (kind ``loggers``) whose factory returns a :class:`Logger`. Its run is named by
the run's identity and seed, so a resumed run continues the same tracked run. A logger that raises is
reported once and dropped: tracking never stops training or changes what is trained (each logger gets its own
copies of what it is told, so mutating them changes nothing of the run's record).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class TrackedRun:
    """What a logger is told when a run starts."""

    run_id: str
    """``<identity>-seed-<k>``: the same for every attempt of one run (a resume included)."""
    folder: Path
    """The run folder (files a logger writes belong under it, e.g. ``folder / "tensorboard"``)."""
    config: dict[str, Any]
    """The resolved configuration (``config.toml``'s keys)."""
    resumed: bool
    """Whether this attempt continues from a checkpoint."""
    start_step: int
    """Epochs already trained (the next epoch logged is ``start_step + 1``)."""


class Logger(ABC):
    """Receives a run's progress; every method may raise without harming the run."""

    @abstractmethod
    def start(self, run: TrackedRun) -> None:
        """A run (or its resumed attempt) begins: record its configuration."""

    @abstractmethod
    def log_epoch(self, step: int, metrics: dict[str, float], phase: str) -> None:
        """Epoch ``step`` (counted over all phases, from 1) ended with ``metrics`` (loss, accuracy, validation)."""

    @abstractmethod
    def finish(self, summary: dict[str, Any], artefacts: list[Path]) -> None:
        """The run finished: its summary scores and its plots."""


class Loggers:
    """The run's loggers, each dropped at its first failure (reported through ``log``)."""

    def __init__(self, named: dict[str, Logger], log: Callable[[str], None]) -> None:
        self.active, self.log = dict(named), log
        self.failures: dict[str, str] = {}

    def call(self, method: str, *args: Any) -> None:
        """Call ``method`` on each logger with its own deep copies of ``args`` (the record stays the run's)."""
        for name, logger in list(self.active.items()):
            copies = copy.deepcopy(args)
            try:
                getattr(logger, method)(*copies)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # a tracking failure must never stop training, nor end the process
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                self.failures[name] = f"{method}: {reason}"
                del self.active[name]
                self.log(f"logger {name!r} failed in {method} ({reason}); the run goes on without it")

    def epoch_metrics(self, entry: dict[str, Any]) -> dict[str, float]:
        return {k: float(v) for k, v in entry.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in {"epoch"}}
