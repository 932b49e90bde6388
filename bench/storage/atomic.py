"""Atomic file writes: a reader sees the old file or the whole new one, never a part; on failure nothing is
left behind and the error names the path and what to do."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from bench.errors import BenchError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_save`)."""
    atomic_save(path, lambda tmp: tmp.write_bytes(data))


def write_json(path: Path, obj: Any) -> None:
    """``obj`` as indented JSON, written atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def atomic_save(path: Path, write: Callable[[Path], Any]) -> None:
    """Let ``write(tmp)`` fill a temporary file beside ``path``, flush and fsync it, then rename it over ``path``:
    readers see the old file or the whole new one, never a part; on failure nothing is left behind."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise _unwritable(path, exc) from None
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _unwritable(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _unwritable(path: Path, exc: OSError) -> BenchError:
    """One line for a write that failed (disk full, read-only, no permission): the path and what to do."""
    return BenchError(f"{path}: cannot write it ({exc.strerror or exc}); free some space or choose a writable "
                      "folder (--out, or BENCH_CACHE_DIR for caches); what was there before is unchanged")
