"""Mean-probability ensembles of finished runs with dual-threshold post-processing (Section 5.2)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import bench
from bench.data.prepare import prepare
from bench.errors import BenchError, ConfigError
from bench.evaluate import predict_probabilities, score_probabilities, upsample
from bench.leaderboard import strategy
from bench.plugins import PluginHost
from bench.postprocess import dual_threshold
from bench.records import RESULTS, SCHEMA, data_label, safe_name, environment, write_json
from bench.run import build_segmenter, load_dataset, resolve_device


def _member(path: Path) -> tuple[dict[str, Any], Path]:
    """The record of a finished run folder (or its ``results.json``) and its final checkpoint."""
    folder = path.parent if path.name == RESULTS else path
    try:
        record = json.loads((folder / RESULTS).read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"{folder}: not a finished run ({RESULTS} unreadable: {exc})") from None
    if record.get("run", {}).get("kind") == "ensemble":
        raise ConfigError(f"{folder}: is an ensemble; pass the runs it was built from")
    ckpt = folder / "checkpoints" / "final.pt"
    if not ckpt.exists():
        raise BenchError(f"{ckpt}: final checkpoint missing; the run's weights are needed to ensemble it")
    return record, ckpt


def _common(values: list[Any]) -> Any:
    return values[0] if all(v == values[0] for v in values) else None


def ensemble(
    host: PluginHost,
    runs: list[Path],
    out: Path,
    high: float = 0.8,
    low: float = 0.4,
    device_name: str = "auto",
    save_predictions: bool = False,
) -> dict[str, Any]:
    """Average the members' probabilities at each test image's original size, post-process, score, record."""
    if len(runs) < 2:
        raise ConfigError("bench ensemble: give at least two run folders")
    if not 0.0 <= low <= high <= 1.0:
        raise ConfigError(f"--low {low} / --high {high}: expected 0 <= low <= high <= 1")
    t_start = time.perf_counter()
    members = [_member(Path(p)) for p in runs]
    first = members[0][0]["run"]
    for path, (record, _) in zip(runs[1:], members[1:]):
        for key in ("test", "test_split", "profile", "protocol_version"):
            if record["run"].get(key) != first.get(key):
                raise ConfigError(
                    f"{path}: {key} is {record['run'].get(key)!r} but the first member's ({runs[0]}) is "
                    f"{first.get(key)!r}; ensemble members must share it"
                )
    device = resolve_device(device_name)
    test_ds = load_dataset(host, first["test"], "--test")
    split = test_ds.split(first["test_split"])
    expected = members[0][0]["data_fingerprint"]["test"]
    if split.fingerprint() != expected:
        raise BenchError(f"{first['test']}: the test split changed since the members ran "
                         f"(fingerprint {split.fingerprint()}, recorded {expected})")

    member_probs, sizes = [], None
    for record, ckpt in members:
        run = record["run"]
        model = build_segmenter(host, run)
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        model.to(device)
        h, w = (int(v) for v in run["size"].split("x"))
        prepared = prepare(split, (h, w))
        sizes = prepared.original_sizes
        member_probs.append(predict_probabilities(model, prepared, run["channels"], device,
                                                  run.get("eval_batch_size", 16)).cpu())

    def post(i: int) -> torch.Tensor:
        mean = torch.stack([upsample(p[i], sizes[i]) for p in member_probs]).mean(0)
        return torch.from_numpy(dual_threshold(mean.numpy(), high, low).astype(np.float32))

    segs = [m[0]["run"]["seg"] for m in members]
    strategies = [strategy(m[0]["run"]) for m in members]
    seed = _common([m[0]["run"]["seed"] for m in members])
    label = f"ensemble: {'+'.join(segs)}"
    common_strategy = _common(strategies) or "best per member"
    key = hashlib.sha256("|".join(sorted(str(Path(p).resolve()) for p in runs)).encode()).hexdigest()[:8]
    data = data_label(first["data"], first["data_name"]) if _common([m[0]["run"]["data"] for m in members]) \
        else "mixed-data"
    folder = out / safe_name(data) / safe_name(first["profile"]) / \
        f"ensemble__{safe_name('+'.join(segs))}__{safe_name(common_strategy)}__{key}" / f"seed_{seed if seed is not None else 'mixed'}"
    per_image, summary, histogram = score_probabilities(post, split, 0.5,
                                                        folder / "predictions" if save_predictions else None)
    run = {
        "kind": "ensemble", "seg": label, "loss": "-", "loss_default": "-", "strategy": common_strategy,
        "gen": _common([m[0]["run"]["gen"] for m in members]) or [], "schedule": _common(
            [m[0]["run"]["schedule"] for m in members]) or "per-member",
        "profile": first["profile"], "seed": seed, "data": first["data"] if data != "mixed-data" else "mixed",
        "test": first["test"], "test_split": first["test_split"], "test_split_reason": first.get("test_split_reason"),
        "data_name": first["data_name"], "test_name": first["test_name"], "protocol_version": bench.PROTOCOL_VERSION,
        "high": high, "low": low, "post_processing": "dual-threshold",
        "members": [{"path": str(Path(p).resolve()), "seg": m[0]["run"]["seg"], "strategy": s,
                     "seed": m[0]["run"]["seed"], "size": m[0]["run"]["size"], "channels": m[0]["run"]["channels"],
                     "jaccard": m[0]["summary"]["jaccard"]} for p, m, s in zip(runs, members, strategies)],
    }
    record = {
        "schema": SCHEMA, "status": "finished", "run": run, "summary": summary, "histogram": histogram,
        "per_image": per_image, "env": environment(device),
        "plugins": {p.name: {"distribution": p.distribution, "version": p.version} for p in host.plugins.values()},
        "data_fingerprint": {"test": split.fingerprint()},
        "timings": {"total_s": time.perf_counter() - t_start},
    }
    write_json(folder / "config.json", run)
    write_json(folder / RESULTS, record)
    record["_path"] = str(folder / RESULTS)
    return record
