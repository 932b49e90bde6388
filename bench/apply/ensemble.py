"""Mean-probability ensembles of finished runs with dual-threshold post-processing (Section 5.2)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, Callable

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
from bench.scoring.metrics import summarise
from bench.scoring.postprocess import dual_threshold
from bench.apply.thresholds import GRID, Tuning, best_pair, cross_fit, description, grid_confusions, tuned_rows
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


def groups_of(paths: list[Path], groups: int) -> list[list[Path]]:
    """``paths`` dealt into ``groups`` ensembles of equal size by seed (sorted by seed, then identity): each
    group must hold the same experiments (identities), and no seed may be in two groups, so that the ensembles
    are independent replicates of one design (a leaderboard cell with several units and an interval)."""
    if groups < 1 or len(paths) % groups or len(paths) // groups < 2:
        raise ConfigError(f"--groups {groups}: {len(paths)} runs cannot be dealt into {groups} ensembles of at "
                          "least two members each")
    members = members_of(paths)
    order = sorted(range(len(paths)), key=lambda i: (str(members[i].run.get("seed")),
                                                    members[i].record["identity"]["hash"]))
    size = len(paths) // groups
    dealt = [order[g * size:(g + 1) * size] for g in range(groups)]
    design = sorted(members[i].record["identity"]["hash"] for i in dealt[0])
    seen: dict[Any, int] = {}
    for g, group in enumerate(dealt):
        if sorted(members[i].record["identity"]["hash"] for i in group) != design:
            raise ConfigError(f"--groups {groups}: ensemble {g + 1} (runs {', '.join(str(paths[i]) for i in group)}) "
                              "holds other experiments than ensemble 1; give every experiment once per seed group")
        for i in group:
            seed = members[i].run.get("seed")
            if seen.get(seed, g) != g:
                raise ConfigError(f"--groups {groups}: seed {seed} is in ensembles {seen[seed] + 1} and {g + 1}; "
                                  "disjoint ensembles need members of different seeds")
            seen[seed] = g
    return [[paths[i] for i in group] for group in dealt]


def _probabilities(host: PluginHost, members: list[FinishedRun], split: Any, device: torch.device
                   ) -> tuple[list[torch.Tensor], list[tuple[int, int]]]:
    """Each member's probabilities on ``split`` at its own size (on the CPU), and the images' original sizes."""
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
    return member_probs, sizes


def _mean_map(member_probs: list[torch.Tensor], sizes: list[tuple[int, int]]) -> Callable[[int], torch.Tensor]:
    """Image ``i``'s mean probability over the members, at its original size."""
    return lambda i: torch.stack([upsample(p[i], sizes[i]) for p in member_probs]).mean(0)


def ensemble(
    host: PluginHost,
    runs: list[Path],
    out: Path,
    high: float = PAPER_HIGH,
    low: float = PAPER_LOW,
    device_name: str = "auto",
    save_predictions: bool = False,
    tuning: Tuning | None = None,
) -> dict[str, Any]:
    """Average the members' probabilities at each test image's original size, post-process, score, record.

    With ``tuning`` the dual thresholds are chosen on images other than the ones each is scored on
    (:mod:`bench.apply.thresholds`) instead of being ``high``/``low``."""
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
    tune_split = None
    if tuning is not None and tuning.split is not None:
        if tuning.split == first_runtime["test_split"]:
            raise ConfigError(f"--tune split:{tuning.split}: that is the split the members score; choose on "
                              "another split, or cross-fit with --tune folds:K")
        if any(m.run["data"] == first["test"] and m.record["runtime"].get("train_split") == tuning.split
               for m in members):
            raise ConfigError(f"--tune split:{tuning.split}: the members trained on it, so thresholds chosen there "
                              "fit their training images; choose on a split no member trained on, or cross-fit with "
                              "--tune folds:K")
        tune_split = test_ds.split(tuning.split)

    member_probs, sizes = _probabilities(host, members, split, device)
    mean = _mean_map(member_probs, sizes)
    tuned: dict[str, Any] | None = None
    if tuning is not None and tuning.folds:
        confusions = grid_confusions(mean, split)
        per_pair, chosen, fold = cross_fit(confusions, tuning.folds, tuning.seed)
        final = best_pair(confusions, list(range(len(confusions))))
        tuned = description(tuning, chosen, final, len(confusions), dict(zip(split.ids(), fold)))
        high, low = GRID[final]
    elif tune_split is not None:
        assert tuning is not None
        tune_confusions = grid_confusions(_mean_map(*_probabilities(host, members, tune_split, device)), tune_split)
        final = best_pair(tune_confusions, list(range(len(tune_confusions))))
        tuned = description(tuning, [final], final, len(tune_confusions))
        high, low = GRID[final]

    segs = [m.run["seg"] for m in members]
    strategies = [strategy(m.run) for m in members]
    seeds = [m.run["seed"] for m in members]
    seed = _common(seeds)
    label = f"ensemble: {'+'.join(segs)}"
    common_strategy = _common(strategies) or "best per member"
    ident = ensemble_identity([m.record["identity"]["hash"] for m in members], seeds, high, low, expected,
                              tuning.label if tuning is not None else None)
    key = hashlib.sha256("|".join(sorted(f"{m.record['identity']['hash']}:{m.run['seed']}" for m in members))
                         .encode()).hexdigest()[:8]
    if tuning is not None:  # tuned thresholds are another ensemble than any fixed pair: never the same folder
        key += f"__tuned-{tuning.label.replace(':', '-').replace(' ', '-')}"
    elif (high, low) != (PAPER_HIGH, PAPER_LOW):  # other thresholds are another ensemble: never the same folder
        key += f"__high-{high:g}_low-{low:g}"
    data = data_label(first["data"], first["data_name"]) if _common([m.run["data"] for m in members]) \
        else "mixed-data"
    folder = ensemble_dir(out, data, first["profile"], segs, common_strategy, key, seed)
    predictions = folder / "predictions" if save_predictions else None
    if tuning is not None and tuning.folds:
        per_image = tuned_rows(split.ids(), confusions, per_pair)
        summary, histogram = summarise(per_image)
        if predictions is not None:
            _write_masks(predictions, split.ids(), lambda i: dual_threshold(mean(i).numpy(), *GRID[per_pair[i]]))
    else:
        def post(i: int) -> torch.Tensor:
            return torch.from_numpy(dual_threshold(mean(i).numpy(), high, low).astype(np.float32))

        per_image, summary, histogram = score_probabilities(post, split, 0.5, predictions)
    run = {
        "kind": "ensemble", "seg": label, "loss": "-", "loss_default": "-", "strategy": common_strategy,
        "gen": _common([m.run["gen"] for m in members]) or [], "schedule": _common(
            [m.run["schedule"] for m in members]) or "per-member",
        "profile": first["profile"], "seed": seed, "data": first["data"] if data != "mixed-data" else "mixed",
        "test": first["test"],
        "data_name": first["data_name"], "test_name": first["test_name"], "protocol_version": bench.PROTOCOL_VERSION,
        "high": high, "low": low, "post_processing": "dual-threshold", **({"tuning": tuned} if tuned else {}),
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


def ensembles(host: PluginHost, runs: list[Path], out: Path, groups: int = 1, **options: Any) -> list[dict[str, Any]]:
    """One ensemble of ``runs``, or ``groups`` disjoint ensembles of them (:func:`groups_of`), each recorded."""
    return [ensemble(host, group, out, **options) for group in (groups_of(runs, groups) if groups > 1 else [runs])]


def _write_masks(folder: Path, ids: list[str], mask: Callable[[int], np.ndarray]) -> None:
    """``<id>_segmentation.png`` (0/255) for every image, as :func:`score_probabilities` writes them."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, image_id in enumerate(ids):
        Image.fromarray(mask(i).astype(np.uint8) * 255).save(folder / f"{image_id}_segmentation.png")
