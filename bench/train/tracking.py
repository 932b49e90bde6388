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
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench.scoring.evaluate import CURVE_KEYS, LEGACY_CURVE_KEYS


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
        """Epoch ``step`` (counted over all phases, from 1) ended with ``metrics``: ``train/...`` and, on an epoch
        with a curve point, ``curve/...`` (the module's docstring lists the names)."""

    @abstractmethod
    def finish(self, summary: dict[str, Any], artefacts: list[Path]) -> None:
        """The run finished: its summary scores and its plots."""


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

    def epoch_metrics(self, entry: dict[str, Any]) -> dict[str, float]:
        """A history entry's numbers under the names loggers are given (``train/loss``, ``curve/jaccard_scored``):
        a curve point never reads as a validation score (legacy ``val_`` names included)."""
        names = {"train_accuracy": "train/accuracy", "curve_s": "curve/seconds"}
        for metric in CURVE_KEYS:
            names[CURVE_KEYS[metric]] = names[LEGACY_CURVE_KEYS[metric]] = f"curve/{metric}_{self.curve}"
        return {names.get(k, f"train/{k}"): float(v) for k, v in entry.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch"}
