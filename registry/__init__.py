"""The index of published skinbench plugin packages (import name ``bench_registry``).

One JSON file per package in ``entries/``, each validated against ``schema.json`` by the test suite;
``bench plugins --available`` lists the indexed packages that are not installed.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def entries() -> list[dict[str, Any]]:
    """Every entry of the index, sorted by name."""
    folder = resources.files(__name__) / "entries"
    out = [json.loads(item.read_text(encoding="utf-8")) for item in folder.iterdir() if item.name.endswith(".json")]
    return sorted(out, key=lambda e: e["name"])


def schema() -> dict[str, Any]:
    return json.loads((resources.files(__name__) / "schema.json").read_text(encoding="utf-8"))
