"""``bench plugins --available``: registry entries whose distribution is not installed."""

from __future__ import annotations

import importlib.metadata as md
from typing import Any

import bench_registry


def installed_distributions() -> set[str]:
    return {_norm(d.metadata["Name"]) for d in md.distributions() if d.metadata["Name"]}


def not_installed() -> list[dict[str, Any]]:
    have = installed_distributions()
    return [e for e in bench_registry.entries() if _norm(e["package"]) not in have]


def _norm(name: str) -> str:
    """PEP 503 normalisation, so ``Bench_Elastic`` and ``bench-elastic`` are one package."""
    return "-".join(name.lower().replace("_", "-").replace(".", "-").split("-"))
