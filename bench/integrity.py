"""Content checksums for cache entries and checkpoints (BLAKE2b): written with the entry, verified on read."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch


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
