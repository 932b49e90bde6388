"""The example plugin package, installed with pip like any third-party package, works end to end."""

import os
import shutil
import subprocess
import sys
import json

import pytest

from conftest import ROOT, bench_cli
from test_run import record_of

PACKAGE = ROOT / "plugins" / "example-elastic"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("src") / PACKAGE.name  # build outside the checkout: no build/ left there
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, capture_output=True, timeout=300)
    return {"PYTHONPATH": str(target)}


def test_pip_installed_plugin_is_listed(installed):
    plugins = {p["name"]: p for p in json.loads(bench_cli("plugins", "--json", env=installed).stdout)}
    assert plugins["elastic"]["distribution"] == "bench-elastic"
    assert plugins["elastic"]["registered"] == {"generators": ["elastic"]}
    assert "bench-elastic" not in bench_cli("plugins", "--available", env=installed).stdout


def test_pip_installed_plugin_runs_the_protocol(installed, tmp_path):
    proc = bench_cli("run", "--gen", "elastic", "--seg", "unet", "--profile", "quick", "--out", str(tmp_path),
                     "--data", "fixture?n=32&n_test=8", "--synthetic-epochs", "2", "--finetune-epochs", "2",
                     env=installed)
    record, path = record_of(proc)
    assert record["run"]["gen"] == ["elastic"] and record["plugins"]["elastic"]["distribution"] == "bench-elastic"
    assert "elastic__unet__two-phase__bce" in path
    board = bench_cli("leaderboard", "--runs", str(tmp_path), env=installed).stdout
    assert "| segmenter | elastic |" in board


def test_the_example_package_tests_pass_with_bench_testing(installed, tmp_path):
    env = {**os.environ, **installed}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PACKAGE / "tests")],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 passed" in proc.stdout
