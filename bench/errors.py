"""Errors a user can act on: each names the file, option or component at fault and the expected form."""

from __future__ import annotations


class BenchError(Exception):
    """Base class: the CLI prints these as one clear message instead of a traceback."""


class UnknownComponentError(BenchError):
    """A name that no plugin registered; the message lists close matches and the valid names."""


class PluginError(BenchError):
    """A plugin failed to import, a hook raised, or two plugins registered one name."""


class DataError(BenchError):
    """A dataset file or layout that does not meet the expectation; the message names the file."""


class ConfigError(BenchError):
    """An option value that cannot be used; the message names the option and the expected form."""


class TrainingError(BenchError):
    """Training could not continue (e.g. a non-finite loss); the message names phase and step."""
