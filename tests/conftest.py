"""Shared test helpers: an isolated cache, the CLI in a subprocess, and the real ISIC data when present."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def isic_root() -> Path | None:
    """``BENCH_ISIC2017`` or ``../shared/data/isic2017`` beside the project, when it exists."""
    candidates = [os.environ.get("BENCH_ISIC2017"), ROOT.parent / "shared" / "data" / "isic2017"]
    for c in candidates:
        if c and (Path(c) / "ISIC-2017_Validation_Part1_GroundTruth").is_dir():
            return Path(c)
    return None


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session gets its own prepared-data cache, shared across its tests."""
    cache = tmp_path_factory.getbasetemp() / "bench-cache"
    monkeypatch.setenv("BENCH_CACHE_DIR", str(cache))


@pytest.fixture
def isic() -> Path:
    root = isic_root()
    if root is None:
        pytest.skip("real ISIC 2017 data not found: set BENCH_ISIC2017 or place it at ../shared/data/isic2017")
    return root


def bench_main(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``bench ARGS`` through the same entry point in this process (no interpreter start-up, about 3 s less a
    call): for commands that train nothing, such as listings, help and option errors."""
    from unittest import mock

    from click.testing import CliRunner

    from bench.cli.main import main

    with CliRunner().isolation(env={"COLUMNS": "200"}) as (out, err, _), \
            mock.patch.object(sys, "argv", ["bench", *args]):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    proc = subprocess.CompletedProcess(list(args), code, out.getvalue().decode(), err.getvalue().decode())
    if check and code != 0:
        raise AssertionError(f"bench {' '.join(args)} failed ({code}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def bench_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
              check: bool = True) -> subprocess.CompletedProcess:
    """Run ``python -m bench ARGS`` in a subprocess, as a user would run ``bench``."""
    full_env = {**os.environ, **(env or {}), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"bench {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
