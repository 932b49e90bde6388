"""Training checkpoints: saved atomically, stamped with the run's identity and seed, refused on resume when
the run they belong to is not the run being continued."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from bench.config import changed
from bench.errors import ConfigError
from bench.records import atomic_save

LATEST = "latest.pt"
FINAL = "final.pt"


def stamp(ident: dict[str, Any], seed: int) -> dict[str, str]:
    """What a checkpoint carries to say which run it belongs to."""
    return {"identity": ident["hash"], "settings": json.dumps(ident["settings"], sort_keys=True), "seed": str(seed)}


def save(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` through a temporary file so a crash never leaves half a checkpoint."""
    atomic_save(path, lambda tmp: torch.save(state, tmp))


def load(path: Path) -> dict[str, Any]:
    """A checkpoint's tensors and values (``weights_only``: nothing in it is executed)."""
    return torch.load(path, map_location="cpu", weights_only=True)


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
