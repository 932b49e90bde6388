"""Experiment tracking: ``--log NAME`` hands a run's configuration, epochs, summary and plots to loggers.

A logger is a plugin component (kind ``loggers``) whose factory returns a :class:`Logger`. Its run is named by
the run's identity and seed, so a resumed run continues the same tracked run. A logger that raises is
reported once and dropped: tracking never stops training or changes what is trained (each logger gets its own
copies of what it is told, so mutating them changes nothing of the run's record).

Metric names say what each number is: ``train/...`` for what an epoch measured on the batches it trained on
(``train/loss``, ``train/accuracy``, ``train/images``, ``train/images_per_s``), ``curve/jaccard_<split>`` and
``curve/accuracy_<split>`` for a point of the training curve, ``<split>`` being ``scored`` (the scored split:
the test images, never for choosing an epoch) or ``holdout`` (training pairs held out by ``--curve-split``),
``curve/seconds`` for what that point cost; a summary's scores are ``summary/...`` for the logger to name.

A logger whose factory raises :class:`LoggerUnavailable` (what it needs is not installed) stops the run before
any work, naming what to install: asking for a tracker that cannot track is a wrong option, not a tracking failure.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench.errors import ConfigError
from bench.scoring.evaluate import CURVE_KEYS, LEGACY_CURVE_KEYS


class LoggerUnavailable(ConfigError):
    """Raised by a logger's factory when what it needs is missing (``pip install "skinbench[mlflow]"``): the run
    stops before any work with this one-line message, instead of going on untracked."""


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
    tags: dict[str, str] = field(default_factory=dict)
    """What names the run, as text for a tracker's tags: ``identity`` (its hash), ``seed``, ``segmenter`` and
    ``strategy`` (the leaderboard's row and column labels) and ``environment`` (device type, precision, torch
    version, as the leaderboard separates cells: ``cpu fp32, torch 2.14``)."""


class Logger(ABC):
    """Receives a run's progress; every method may raise without harming the run."""

    @abstractmethod
    def start(self, run: TrackedRun) -> None:
        """A run (or its resumed attempt) begins: record its configuration."""

    @abstractmethod
    def log_epoch(self, step: int, metrics: dict[str, float], phase: str) -> None:
        """Epoch ``step`` (counted over all phases, from 1) ended with ``metrics``: ``train/...`` and, on an epoch
        with a curve point, ``curve/...`` (the module's docstring lists the names)."""

    @abstractmethod
    def finish(self, summary: dict[str, Any], artefacts: list[Path]) -> None:
        """The run finished: its summary scores, and its files: the plots (``plots/*.png``) and, last, the record
        (``results.json``, already written)."""


class Loggers:
    """The run's loggers, each dropped at its first failure (reported through ``log``)."""

    def __init__(self, named: dict[str, Logger], log: Callable[[str], None], curve: str = "scored") -> None:
        """``curve``: what the run's training curve is computed on (``scored`` or ``holdout``), which its metric
        names say."""
        self.active, self.log, self.curve = dict(named), log, curve
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

    def report(self) -> dict[str, Any]:
        """What the record says of the loggers (``runtime.loggers``): those in use and why the others failed."""
        return {"used": sorted(self.active), "failed": dict(self.failures)}

    def epoch_metrics(self, entry: dict[str, Any]) -> dict[str, float]:
        """A history entry's numbers under the names loggers are given (``train/loss``, ``curve/jaccard_scored``):
        a curve point never reads as a validation score (legacy ``val_`` names included)."""
        names = {"train_accuracy": "train/accuracy", "curve_s": "curve/seconds"}
        for metric in CURVE_KEYS:
            names[CURVE_KEYS[metric]] = names[LEGACY_CURVE_KEYS[metric]] = f"curve/{metric}_{self.curve}"
        return {names.get(k, f"train/{k}"): float(v) for k, v in entry.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch"}
