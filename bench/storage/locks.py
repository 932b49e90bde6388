"""Inter-process locks (``filelock``, which works beyond Linux): one process per run folder, one trainer per
generator cache entry."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from bench.storage.paths import cache_root
from bench.errors import ConfigError
from bench.storage.integrity import unwritable_cache


@contextlib.contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold the run folder for this process; a second process on the same folder is refused, naming the first.

    The lock file lives in the cache (``locks/``), not under ``--out``, so that a run that fails leaves
    nothing in the runs folder.
    """
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:20]
    path = cache_root() / "locks" / f"{key}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unwritable_cache(path.parent, exc) from None
    owner = path.with_suffix(".owner")
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = owner.read_text().strip() if owner.exists() else "unknown"
        raise ConfigError(f"{folder}: another bench process ({holder}) is running this run now; wait for it to "
                          "end (or stop it), then run the command again to continue from its checkpoint") from None
    try:
        owner.write_text(f"pid {os.getpid()} on {socket.gethostname()}")
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


@contextlib.contextmanager
def entry_lock(folder: Path) -> Iterator[None]:
    """Wait for exclusive use of a cache entry (``<folder>.lock``): one process trains, the others then load."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder.with_name(folder.name + ".lock"))):
        yield
