"""Where skinbench keeps its caches (prepared data, trained generators, locks)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``BENCH_CACHE_DIR``, or ``~/.cache/skinbench``."""
    return Path(os.environ.get("BENCH_CACHE_DIR") or Path.home() / ".cache" / "skinbench")
