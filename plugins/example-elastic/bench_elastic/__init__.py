"""bench-elastic: elastically deformed real pairs as a skinbench generator."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bench-elastic")  # written once, in pyproject.toml
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0"
