"""Inter-process locks (``filelock``, which works beyond Linux): one process per run folder, one trainer per
generator cache entry. Each held lock has an owner file beside it (``pid X on HOST since TIME``) that the
refusal and waiting messages quote."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from filelock import FileLock, Timeout

from bench.errors import BenchError, ConfigError
from bench.storage.integrity import unwritable_cache

TIMEOUT_ENV = "BENCH_LOCK_TIMEOUT"
DEFAULT_TIMEOUT_S = 6 * 3600.0
"""How long ``entry_lock`` waits for another process's cache entry: longer than training any generator."""
RUN_LOCK = ".lock"
RUN_OWNER = ".lock.owner"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def owner_line() -> str:
    """Who holds a lock, as its owner file says it: ``pid X on HOST since ISO-TIME``."""
    since = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
    return f"pid {os.getpid()} on {socket.gethostname()} since {since}"


def _holder(owner: Path) -> str:
    try:
        return owner.read_text(encoding="utf-8").strip() or "unknown"
    except (OSError, ValueError):
        return "unknown: no owner file"


def lock_timeout() -> float:
    """``BENCH_LOCK_TIMEOUT`` in seconds (default 6 hours): how long to wait for a lock another process holds."""
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ConfigError(f"{TIMEOUT_ENV}={raw!r}: expected a number of seconds (0 or more), e.g. 21600 for 6 hours")
    return value


@contextlib.contextmanager
def _held(lock: FileLock, owner: Path, remove: Path | None = None) -> Iterator[None]:
    """Hold an acquired ``lock`` with its owner file written; on release the owner file goes, and ``remove`` (the
    lock file, for a lock nobody waits on) goes while the lock is still held."""
    try:
        with contextlib.suppress(OSError):  # only what the messages quote: the lock holds without it
            owner.write_text(owner_line(), encoding="utf-8")
        yield
    finally:
        try:
            owner.unlink(missing_ok=True)
            if remove is not None:
                remove.unlink(missing_ok=True)
        finally:
            lock.release()


@contextlib.contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold the run folder for this process; a second process on the same folder is refused, naming the first.

    The lock lives in the run folder itself (``.lock`` and its owner file ``.lock.owner``), so processes with
    different caches (``BENCH_CACHE_DIR``) still exclude each other. Folders it had to create are removed again
    if the run left nothing in them, so a run that fails leaves nothing in the runs folder.
    """
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot create the run folder ({exc.strerror or exc}); pass a writable --out") \
            from None
    path, owner = folder / RUN_LOCK, folder / RUN_OWNER
    lock = FileLock(str(path))
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise ConfigError(f"{folder}: another bench process ({_holder(owner)}) is running this run now; wait for "
                              "it to end (or stop it), then run the command again to continue from its checkpoint") \
                from None
        with _held(lock, owner, remove=path):
            yield
    finally:
        for made in created:  # deepest first; a folder holding anything (another run's lock too) stays
            try:
                made.rmdir()
            except OSError:
                break


@contextlib.contextmanager
def entry_lock(folder: Path, log: Callable[[str], None] = _stderr) -> Iterator[None]:
    """Hold a cache entry (``<folder>.lock``): one process trains it, the others wait, saying for whom, then load.

    A wait longer than ``BENCH_LOCK_TIMEOUT`` seconds (default 6 hours) ends in an error naming the lock file,
    its holder and how to clear a lock left by a process that no longer runs.
    """
    path = folder.with_name(folder.name + ".lock")
    owner = folder.with_name(folder.name + ".lock.owner")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unwritable_cache(folder.parent, exc) from None
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        timeout, start = lock_timeout(), time.monotonic()
        log(f"waiting for {folder.name}: another bench process ({_holder(owner)}) is making this cache entry; "
            f"this one loads it when done (giving up after {timeout:g} s, {TIMEOUT_ENV})")
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise BenchError(f"{path}: still held by another bench process ({_holder(owner)}) after "
                             f"{time.monotonic() - start:.0f} s of waiting ({TIMEOUT_ENV}={timeout:g}); if that "
                             f"process no longer runs, delete {path} and run the command again (or set "
                             f"{TIMEOUT_ENV} to wait longer)") from None
    with _held(lock, owner):
        yield
