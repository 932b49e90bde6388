"""Run folders and records: atomic writes, folder names that parse back, reading records safely."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch

import bench

SCHEMA = 1
RESULTS = "results.json"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` through a temporary file so a crash never leaves half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(state, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def gen_label(generators: list[str]) -> str:
    """Folder and leaderboard label of a generator list: ``none``, ``dcgan``, ``dcgan+lapgan``."""
    return "+".join(generators) if generators else "none"


def data_label(spec: str, name: str) -> str:
    """``fixture`` for a bare name; ``isic2017-<hash of the full spec>`` when it has a root or options."""
    return name if spec == name else f"{name}-{hashlib.sha256(spec.encode()).hexdigest()[:8]}"


def run_dir(out: Path, run: dict[str, Any]) -> Path:
    """``OUT/<data>[-on-<test>]/<profile>/<gen>__<seg>__<schedule>__<loss>[__<overrides>]/seed_<k>``."""
    data = data_label(run["data"], run["data_name"])
    if run["test"] != run["data"]:
        data += "-on-" + data_label(run["test"], run["test_name"])
    parts = [gen_label(run["gen"]), run["seg"], run["schedule"], run["loss"]]
    overrides = run.get("overrides") or {}
    if overrides:
        parts.append("_".join(f"{k}-{v}" for k, v in sorted(overrides.items())))
    if run.get("subset") is not None:
        parts.append(f"subset-{run['subset']}-seed-{run['subset_seed']}")
    if run.get("exclude"):
        parts.append(f"exclude-{run['exclude']['sha256'][:8]}")
    if run.get("weights_sha256"):
        parts.append(f"weights-{run['weights_sha256'][:8]}")
    if run.get("nproc"):
        parts.append(f"nproc-{run['nproc']}")
    leaf = "__".join(safe_name(x) for x in parts)
    return out / safe_name(data) / safe_name(run["profile"]) / leaf / f"seed_{run['seed']}"


def parse_run_dir(path: Path) -> dict[str, Any]:
    """Inverse of :func:`run_dir` for the parts a folder name holds."""
    seed_dir, leaf, profile, data = path.parts[-1], path.parts[-2], path.parts[-3], path.parts[-4]
    gen, seg, schedule, loss, *overrides = leaf.split("__")
    return {"data": data, "profile": profile, "gen": gen, "seg": seg, "schedule": schedule,
            "loss": loss, "overrides": overrides[0] if overrides else "", "seed": int(seed_dir.removeprefix("seed_"))}


def safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.+" else "-" for c in text)


def git_hash() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: torch.device) -> dict[str, Any]:
    """Versions, git hash and device of this run (``env.json``)."""
    import numpy

    env = {
        "skinbench": bench.__version__,
        "protocol_version": bench.PROTOCOL_VERSION,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": str(device),
        "git": git_hash(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def _read_records(root: Path, name: str, problem) -> tuple[list[dict[str, Any]], list[str]]:
    """Every ``name`` JSON file under ``root`` that ``problem(record)`` accepts (returns ``None``), with a
    warning naming each file skipped."""
    records, warnings = [], []
    for path in sorted(root.rglob(name)):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            warnings.append(f"{path}: skipped, unreadable ({exc})")
            continue
        reason = problem(record) if isinstance(record, dict) else "not a JSON object"
        if reason:
            warnings.append(f"{path}: skipped, {reason}")
            continue
        record["_path"] = str(path)
        records.append(record)
    return records, warnings


def _results_problem(record: dict[str, Any]) -> str | None:
    missing = [k for k in ("schema", "run", "summary", "per_image") if k not in record]
    if missing:
        return f"incomplete record (missing {', '.join(missing)})"
    if record.get("status", "finished") != "finished":
        return "run did not finish"
    return None


def load_records(root: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every complete ``results.json`` under ``root``, and a warning for each one skipped."""
    return _read_records(root, RESULTS, _results_problem)

QUALITY = "quality.json"


def load_quality(root: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every generator-quality record under ``root`` (written by ``bench gan quality``), with warnings."""
    return _read_records(root, QUALITY, lambda r: None if r.get("kind") == "generator-quality" and "metrics" in r
                         else "not a complete generator-quality record")
