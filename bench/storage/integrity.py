"""Content checksums for cache entries and checkpoints (BLAKE2b): written with the entry, verified on read."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from bench.errors import BenchError


def array_digest(array: np.ndarray) -> str:
    """BLAKE2b of an array's bytes, shape and dtype."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{array.dtype}{array.shape}".encode())
    h.update(np.ascontiguousarray(array).data)
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """BLAKE2b of a file's bytes, read in chunks."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def state_digest(state: Any) -> str:
    """BLAKE2b over a (nested) state: every tensor's bytes, dtype and shape, every other value's ``repr``."""
    h = hashlib.blake2b(digest_size=16)

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            for key in sorted(value, key=str):
                h.update(f"<{key}>".encode())
                visit(value[key])
        elif isinstance(value, (list, tuple)):
            h.update(f"[{len(value)}".encode())
            for item in value:
                visit(item)
        elif torch.is_tensor(value):
            t = value.detach().cpu().contiguous()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(repr(value).encode())

    visit(state)
    return h.hexdigest()


def unwritable_cache(folder: Path, exc: OSError) -> BenchError:
    """One line for a cache entry that could not be written (disk full, read-only): where, and what to do."""
    return BenchError(f"{folder}: cannot write this cache entry ({exc.strerror or exc}); free some space there or "
                      "set BENCH_CACHE_DIR to a writable folder with room")


def store_entry(folder: Path, write: Callable[[Path], None]) -> None:
    """Let ``write(tmp)`` fill a temporary folder beside ``folder``, fsync it, and rename it into place, so that
    readers see a whole entry or none. If another process stored the same entry first, theirs is kept (it is
    the same content: entries are keyed by what they hold). Nothing is left behind on failure."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    except OSError as exc:
        raise unwritable_cache(folder, exc) from None
    try:
        write(tmp)
        fsync_tree(tmp)
        try:
            os.rename(tmp, folder)
        except OSError:  # stored concurrently by another process: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise unwritable_cache(folder, exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def fsync_tree(folder: Path) -> None:
    """fsync every file in ``folder`` and the folder itself, before it is renamed into place."""
    for path in folder.iterdir():
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
