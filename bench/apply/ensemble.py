"""Mean-probability ensembles of finished runs with dual-threshold post-processing (Section 5.2)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import bench
from bench.plugin.build import build_segmenter, load_dataset, resolve_device
from bench.train.checkpoints import load as load_checkpoint
from bench.data.prepare import prepare
from bench.errors import BenchError, ConfigError
from bench.scoring.evaluate import predict_probabilities, score_probabilities, upsample
from bench.results.grouping import strategy
from bench.plugin.host import PluginHost
from bench.scoring.postprocess import dual_threshold
from bench.config.identity import ensemble_identity
from bench.results.records import RESULTS, SCHEMA, data_label, ensemble_dir, environment, plugin_versions
from bench.results.reader import FinishedRun, load_run
from bench.storage.atomic import write_json


PAPER_HIGH, PAPER_LOW = 0.8, 0.4
"""Section 5.2's dual threshold."""


def _common(values: list[Any]) -> Any:
    return values[0] if all(v == values[0] for v in values) else None


def members_of(paths: list[Path]) -> list[FinishedRun]:
    """The finished runs to ensemble; a run given twice (by the same path, another path to the same folder, or a
    copy with the same identity and seed) is an error naming both paths."""
    members = [load_run(Path(p), "bench ensemble:") for p in paths]
    seen: dict[Any, Path] = {}
    for path, member in zip(paths, members):
        for key in (("folder", member.folder), ("run", member.record["identity"]["hash"], member.run.get("seed"))):
            if key in seen:
                what = "the same run folder" if key[0] == "folder" else "the same run (same identity and seed)"
                raise ConfigError(f"bench ensemble: {path} and {seen[key]} are {what}; give each member once")
            seen[key] = Path(path)
    return members


def ensemble(
    host: PluginHost,
    runs: list[Path],
    out: Path,
    high: float = PAPER_HIGH,
    low: float = PAPER_LOW,
    device_name: str = "auto",
    save_predictions: bool = False,
) -> dict[str, Any]:
    """Average the members' probabilities at each test image's original size, post-process, score, record."""
    if len(runs) < 2:
        raise ConfigError("bench ensemble: give at least two run folders")
    if not 0.0 <= low <= high <= 1.0:
        raise ConfigError(f"--low {low} / --high {high}: expected 0 <= low <= high <= 1")
    t_start = time.perf_counter()
    members = members_of(runs)
    first, first_runtime = members[0].run, members[0].record["runtime"]
    for path, member in zip(runs[1:], members[1:]):
        for section, key in (("run", "test"), ("runtime", "test_split"), ("run", "profile"),
                             ("run", "protocol_version")):
            if member.record[section].get(key) != (first_runtime if section == "runtime" else first).get(key):
                raise ConfigError(
                    f"{path}: {key} is {member.record[section].get(key)!r} but the first member's ({runs[0]}) is "
                    f"{(first_runtime if section == 'runtime' else first).get(key)!r}; ensemble members must share it"
                )
        if member.record["data_fingerprint"].get("test") != members[0].record["data_fingerprint"].get("test"):
            raise ConfigError(f"{path}: scored on other test data than the first member ({runs[0]}); "
                              "ensemble members must share the test split")
    device = resolve_device(device_name)
    test_ds = load_dataset(host, first["test"], "--test")
    split = test_ds.split(first_runtime["test_split"])
    expected = members[0].record["data_fingerprint"]["test"]
    if split.fingerprint() != expected:
        raise BenchError(f"{first['test']}: the test split changed since the members ran "
                         f"(fingerprint {split.fingerprint()}, recorded {expected})")

    member_probs: list[torch.Tensor] = []
    sizes: list[tuple[int, int]] = []
    for member in members:
        run = member.run
        model = build_segmenter(host, run["seg"], run["channels"], run["width"], run.get("weights"))
        model.load_state_dict(load_checkpoint(member.checkpoint)["model"])
        model.to(device)
        h, w = (int(v) for v in run["size"].split("x"))
        prepared = prepare(split, (h, w))
        sizes = prepared.original_sizes
        member_probs.append(predict_probabilities(model, prepared, run["channels"], device,
                                                  run.get("eval_batch_size", 16)).cpu())

    def post(i: int) -> torch.Tensor:
        mean = torch.stack([upsample(p[i], sizes[i]) for p in member_probs]).mean(0)
        return torch.from_numpy(dual_threshold(mean.numpy(), high, low).astype(np.float32))

    segs = [m.run["seg"] for m in members]
    strategies = [strategy(m.run) for m in members]
    seeds = [m.run["seed"] for m in members]
    seed = _common(seeds)
    label = f"ensemble: {'+'.join(segs)}"
    common_strategy = _common(strategies) or "best per member"
    ident = ensemble_identity([m.record["identity"]["hash"] for m in members], seeds, high, low, expected)
    key = hashlib.sha256("|".join(sorted(f"{m.record['identity']['hash']}:{m.run['seed']}" for m in members))
                         .encode()).hexdigest()[:8]
    if (high, low) != (PAPER_HIGH, PAPER_LOW):  # other thresholds are another ensemble: never the same folder
        key += f"__high-{high:g}_low-{low:g}"
    data = data_label(first["data"], first["data_name"]) if _common([m.run["data"] for m in members]) \
        else "mixed-data"
    folder = ensemble_dir(out, data, first["profile"], segs, common_strategy, key, seed)
    per_image, summary, histogram = score_probabilities(post, split, 0.5,
                                                        folder / "predictions" if save_predictions else None)
    run = {
        "kind": "ensemble", "seg": label, "loss": "-", "loss_default": "-", "strategy": common_strategy,
        "gen": _common([m.run["gen"] for m in members]) or [], "schedule": _common(
            [m.run["schedule"] for m in members]) or "per-member",
        "profile": first["profile"], "seed": seed, "data": first["data"] if data != "mixed-data" else "mixed",
        "test": first["test"],
        "data_name": first["data_name"], "test_name": first["test_name"], "protocol_version": bench.PROTOCOL_VERSION,
        "high": high, "low": low, "post_processing": "dual-threshold",
        "members": [{"path": str(m.folder), "identity": m.record["identity"]["hash"], "seg": m.run["seg"],
                     "strategy": s, "seed": m.run["seed"], "size": m.run["size"], "channels": m.run["channels"],
                     "jaccard": m.record["summary"]["jaccard"]} for m, s in zip(members, strategies)],
    }
    record = {
        "schema": SCHEMA, "kind": "ensemble", "status": "finished", "identity": ident, "run": run,
        "runtime": {"device": str(device), "test_split": first_runtime["test_split"],
                    "test_split_reason": first_runtime.get("test_split_reason"), "n_test": len(split)},
        "summary": summary, "histogram": histogram, "per_image": per_image, "env": environment(device),
        "plugins": plugin_versions(host),
        "data_fingerprint": {"test": split.fingerprint()},
        "timings": {"total_s": time.perf_counter() - t_start},
    }
    write_json(folder / "config.json", run)
    write_json(folder / RESULTS, record)
    record["_path"] = str(folder / RESULTS)
    return record
