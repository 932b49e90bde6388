"""Training checkpoints: saved atomically, stamped with the run's identity and seed, refused on resume when
the run they belong to is not the run being continued."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch

from bench.config.identity import changed
from bench.errors import BenchError, ConfigError
from bench.storage.integrity import state_digest
from bench.storage.atomic import atomic_save

LATEST = "latest.pt"
FINAL = "final.pt"


def stamp(ident: dict[str, Any], seed: int) -> dict[str, str]:
    """What a checkpoint carries to say which run it belongs to."""
    return {"identity": ident["hash"], "settings": json.dumps(ident["settings"], sort_keys=True), "seed": str(seed)}


def save(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` through a temporary file (fsync, rename) so a crash never leaves half a checkpoint; the
    state carries a checksum of its own contents, verified by :func:`load`."""
    atomic_save(path, lambda tmp: torch.save({**state, "checksum": state_digest(state)}, tmp))


def load(path: Path) -> dict[str, Any]:
    """A checkpoint's tensors and values (``weights_only``: nothing in it is executed), checked against its
    checksum; a truncated or damaged file is an error naming it and what to do."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
        raise BenchError(f"{path}: damaged checkpoint, it cannot be read ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}); delete it to start that run afresh "
                         "(bench run ... --force does)") from None
    if not isinstance(state, dict):
        raise BenchError(f"{path}: not a skinbench checkpoint; delete it or use --force")
    saved = state.pop("checksum", None)
    if saved is not None and saved != state_digest(state):
        raise BenchError(f"{path}: damaged checkpoint, its contents do not match their checksum; delete it to "
                         "start that run afresh (bench run ... --force does)")
    return state


def check_resumable(saved: dict[str, Any], now: dict[str, str], path: Path) -> None:
    """Refuse to continue a checkpoint made by another run: other settings, data, generators or seed."""
    if "identity" not in saved:
        raise ConfigError(f"{path}: cannot resume a checkpoint written by an older skinbench (it has no run "
                          "identity); use --force to start the run afresh")
    problems = []
    if saved["identity"] != now["identity"]:
        problems += list(changed(json.loads(saved["settings"]), json.loads(now["settings"])))
    if saved.get("seed") != now["seed"]:
        problems.append(f"seed: {saved.get('seed')} -> {now['seed']}")
    if problems:
        raise ConfigError(f"{path}: cannot resume, the run differs from the checkpoint's "
                          f"({'; '.join(problems[:5])}); use --force to start it afresh")
