"""skinbench: a plugin-based benchmark harness for GAN data augmentation in skin-lesion segmentation."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("skinbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

PROTOCOL_VERSION = 1
"""Bumped whenever a change makes new scores incomparable with old ones; leaderboards never mix versions."""
