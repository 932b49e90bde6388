"""Reading records: the one reader of run and ensemble records (:func:`read_record`), every record under a folder
(:func:`load_records`: one per run, whole fold sets, sound scores), finished runs with their pinned weights
(:func:`load_run`), generator-quality records, and older records in the current shape (:func:`normalise`,
without the plugin host)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.config.identity import RUNTIME_KEYS, ensemble_identity, generator_identity, identity
from bench.errors import BenchError, ConfigError
from bench.results.records import QUALITY, RESULTS, SCHEMA
from bench.scoring.metrics import HISTOGRAM_EDGES
from bench.storage.integrity import file_digest


@dataclass
class FinishedRun:
    """A finished run folder: its (normalised) record and its final weights."""

    folder: Path
    record: dict[str, Any]
    checkpoint: Path

    @property
    def run(self) -> dict[str, Any]:
        return self.record["run"]


class RecordProblem(BenchError):
    """A ``results.json`` that cannot be used: unreadable, not finished, malformed, or of a newer schema."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def read_record(path: Path) -> dict[str, Any]:
    """The record at ``path`` (a ``results.json`` or the folder holding one), checked and in the current shape:
    the one way every command reads a run's or an ensemble's record (``_path`` says where it was).

    Raises :class:`RecordProblem` naming the file and the reason for anything a table, a comparison or a rerun
    could not trust: unreadable JSON, a run that did not finish, a field missing or of the wrong type, a schema
    newer than this version reads.
    """
    file = path if path.name == RESULTS else path / RESULTS
    try:
        record = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise RecordProblem(file, f"unreadable ({exc})") from None
    reason = _results_problem(record) if isinstance(record, dict) else "not a JSON object"
    if reason:
        raise RecordProblem(file, reason)
    record = normalise(record)
    n_train = (record.get("runtime") or {}).get("n_train")
    if n_train is not None and not (isinstance(n_train, int) and not isinstance(n_train, bool) and n_train > 0):
        raise RecordProblem(file, f"malformed record (runtime.n_train {n_train!r}: expected a positive integer)")
    record["_path"] = str(file)
    return record


def load_run(path: Path, option: str = "run folder") -> FinishedRun:
    """The finished run in ``path`` (its folder or its ``results.json``); a clear error for anything else."""
    folder = path.parent if path.name == RESULTS else path
    try:
        record = read_record(folder)
    except RecordProblem as exc:
        raise BenchError(f"{option} {folder}: not a finished run ({exc.reason})") from None
    if record.get("run", {}).get("kind") == "ensemble":
        raise ConfigError(f"{option} {folder}: is an ensemble; pass the runs it was built from")
    ckpt = folder / "checkpoints" / "final.pt"
    if not ckpt.exists():
        raise BenchError(f"{ckpt}: final checkpoint missing; the run's weights are needed")
    recorded = (record.get("checkpoint") or {}).get("blake2b")
    if recorded is not None and file_digest(ckpt) != recorded:
        raise BenchError(f"{ckpt}: not the weights {folder / RESULTS} describes (their checksum differs from the "
                         "record's): the folder holds another run's or an edited final.pt; run it again with --force")
    return FinishedRun(folder.resolve(), record, ckpt)


def normalise(record: dict[str, Any]) -> dict[str, Any]:
    """A record of any schema in the current shape: runtime facts in ``runtime``, an ``identity`` present.

    Records written before identities existed get one computed from what they hold, the same way.
    """
    run = record.get("run", {})
    if "runtime" not in record:
        record["runtime"] = {k: run[k] for k in RUNTIME_KEYS if k in run}
    if "identity" not in record:
        if run.get("kind") == "ensemble":
            members = [{k: m.get(k) for k in ("seg", "strategy", "size", "channels")} for m in run.get("members", [])]
            record["identity"] = ensemble_identity(members, [m.get("seed") for m in run.get("members", [])],
                                                   run.get("high"), run.get("low"),
                                                   (record.get("data_fingerprint") or {}).get("test"))
        else:

            if "schedule_uses" not in run and run.get("schedule"):
                run["schedule_uses"] = _schedule_uses(run["schedule"])
            train = str((record.get("data_fingerprint") or {}).get("train"))
            gens = [g.get("identity") or generator_identity(g.get("config", {}), train, g.get("plugin_version"))
                    for g in record.get("generators") or []]
            record["identity"] = identity(run, record.get("data_fingerprint"), gens or None)
    return record


LEGACY_SCHEDULE_USES: dict[str, tuple[str, ...]] = {
    "real-only": ("epochs",), "two-phase": ("synthetic_epochs", "finetune_epochs"),
    "real-only-matched": ("synthetic_epochs", "finetune_epochs"), "mixed": ("epochs",),
}
"""The epoch settings the built-in schedules read when records did not yet store ``schedule_uses``: a fact of
those records, so that reading them needs no plugin host."""


def _schedule_uses(schedule: str) -> list[str] | None:
    """The epoch settings a legacy record's schedule read: the built-ins' from :data:`LEGACY_SCHEDULE_USES`;
    ``None`` (every epoch setting counts) for a third-party schedule, so that reading needs no plugin host."""
    return list(LEGACY_SCHEDULE_USES[schedule]) if schedule in LEGACY_SCHEDULE_USES else None


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
    """Why a ``results.json`` cannot be shown (``None`` when it can): every field a table reads, with its type."""
    if record.get("status", "finished") != "finished":
        return "run did not finish"
    schema = record.get("schema")
    if not (isinstance(schema, int) and not isinstance(schema, bool)) and "schema" in record:
        return f"malformed record (schema {schema!r}: expected an integer, 1 to {SCHEMA})"
    if isinstance(schema, int) and schema > SCHEMA:
        return (f"written by a newer skinbench (record schema {schema}; this version reads up to {SCHEMA}): "
                "upgrade skinbench to read it")
    missing = [k for k in ("schema", "run", "summary", "per_image", "histogram") if k not in record]
    if missing:
        return f"incomplete record (missing {', '.join(missing)})"
    run, summary, histogram = record["run"], record["summary"], record["histogram"]
    if not isinstance(run, dict) or not isinstance(summary, dict) or not isinstance(histogram, dict):
        return "malformed record (run, summary and histogram must be objects)"
    bad = [f"run.{k}" for k in ("seg", "profile", "data", "test") if not isinstance(run.get(k), str)]
    bad += [f"summary.{k}" for k in ("jaccard", "dice", "threshold_jaccard", "accuracy", "sensitivity",
                                     "specificity", "below_0.6", "below_0.7")
            if (k == "jaccard" or k in summary) and not _number(summary.get(k))]
    bad += [] if isinstance(summary.get("n_images"), int) else ["summary.n_images"]
    counts = histogram.get("counts")
    if not (isinstance(counts, list) and all(isinstance(c, int) for c in counts)):
        bad.append("histogram.counts")
    per_image = record["per_image"]
    if not (isinstance(per_image, list) and per_image and all(
            isinstance(r, dict) and isinstance(r.get("id"), str) and _number(r.get("jaccard")) for r in per_image)):
        bad.append("per_image")
    if not isinstance(run.get("gen", []), list) or not isinstance(record.get("history", []), list):
        bad.append("run.gen" if not isinstance(run.get("gen", []), list) else "history")
    if bad:
        return f"malformed record ({', '.join(bad)} missing or of the wrong type)"
    return _disagreement(summary, per_image, histogram)


SUMMARY_TOLERANCE = 1e-6
"""How far a summary score may lie from the mean of its per-image scores (both are written from one array)."""


def _disagreement(summary: dict[str, Any], per_image: list[dict[str, Any]], histogram: dict[str, Any]) -> str | None:
    """Why a record's summary and per-image scores cannot both be right (an edited or spliced record, a score
    that is not a number): tables average per-image scores and scalability reads the summary, so a record where
    they differ is refused, and a NaN never reads as an unresolved comparison."""
    for key, value in summary.items():
        if _number(value) and not math.isfinite(value):
            return f"non-finite score (summary.{key} is {value})"
    for row in per_image:
        bad = [k for k, v in row.items() if _number(v) and not math.isfinite(v)]
        if bad:
            return f"non-finite score (per_image {row['id']}: {bad[0]} is {row[bad[0]]})"
    if summary["n_images"] != len(per_image):
        return f"summary and per-image scores disagree (n_images {summary['n_images']}, {len(per_image)} per-image rows)"
    jac = np.array([float(r["jaccard"]) for r in per_image])
    for key, cut in (("below_0.6", 0.6), ("below_0.7", 0.7)):
        if key in summary and summary[key] != int(np.count_nonzero(jac < cut)):
            return (f"summary and per-image scores disagree (summary.{key} {summary[key]!r}, "
                    f"{int(np.count_nonzero(jac < cut))} per-image scores below {cut})")
    edges = histogram.get("edges") or list(HISTOGRAM_EDGES)
    if isinstance(edges, list) and len(edges) == len(histogram["counts"]) + 1 and all(_number(e) for e in edges):
        counts = np.histogram(jac, bins=np.asarray(edges, dtype=float))[0].tolist()
        if counts != histogram["counts"]:
            return f"histogram and per-image scores disagree (histogram.counts {histogram['counts']}, per-image {counts})"
    else:
        return "malformed record (histogram.edges do not bound histogram.counts)"
    for key in ("jaccard", "dice", "threshold_jaccard"):
        values = [r.get(key) for r in per_image]
        if key in summary and all(_number(v) for v in values):
            mean = math.fsum(float(v) for v in values if v is not None) / len(values)
            if not abs(mean - summary[key]) <= SUMMARY_TOLERANCE:
                return (f"summary and per-image scores disagree (summary.{key} {summary[key]!r}, mean of per-image "
                        f"{key} {mean!r})")
    return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_records(root: Path, metric: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Every complete ``results.json`` under ``root`` (read by :func:`read_record`), and a warning naming each
    file skipped and why; with ``metric``, records whose per-image scores lack it are skipped too."""
    records, warnings = [], []
    for path in sorted(root.rglob(RESULTS)):
        try:
            record = read_record(path)
        except RecordProblem as exc:
            warnings.append(f"{exc.path}: skipped, {exc.reason}")
            continue
        if metric is not None and not all(_number(r.get(metric)) for r in record["per_image"]):
            warnings.append(f"{record['_path']}: skipped, its per-image scores have no {metric}")
            continue
        records.append(record)
    records, repeated = _one_per_run(records)
    records, partial = _whole_fold_sets(records)
    return records, warnings + repeated + partial


def run_environment(record: dict[str, Any]) -> str:
    """What of a run's environment can change its scores: device type, precision of the step, torch version
    (``cuda bf16, torch 2.11``). A record that predates the step's precision ran fp32 on a CPU."""
    device, precision, torch_version = environment_facts(record)
    return f"{device} {precision}, torch {torch_version}"


def environment_facts(record: dict[str, Any]) -> tuple[str, str, str]:
    """:func:`run_environment`'s parts: device type, precision of the step, torch ``major.minor``."""
    env = record.get("env") or {}
    device = str(env.get("device") or "unknown").split(":")[0]
    step = (record.get("runtime") or {}).get("step") or {}
    precision = step.get("amp") or ("fp32" if device == "cpu" else "unknown precision")
    torch_version = ".".join(str(env.get("torch") or "unknown").split("+")[0].split(".")[:2])
    return device, precision, torch_version


def _replicate(record: dict[str, Any]) -> tuple[str, str, str | None, str | None, str]:
    """What makes a record one replicate: its identity, its seed (an ensemble's member seeds), its fold, its
    profile (tables keep profiles apart, so equal runs under two profiles are one in each table) and its
    environment (a seed rerun on another device is another measurement, in another cell)."""
    run = record["run"]
    seed = "+".join(sorted(str(m.get("seed")) for m in run.get("members", []))) if run.get("kind") == "ensemble" \
        else str(run.get("seed"))
    return record["identity"]["hash"], seed, run.get("fold"), run.get("profile"), run_environment(record)


def _one_per_run(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """One record per (identity, seed, fold): a copied runs folder must not count a seed twice in a table, a
    histogram or a curve. The first by path is kept; each other copy is named."""
    kept: dict[tuple, dict[str, Any]] = {}
    warnings = []
    for record in records:
        key = _replicate(record)
        if key in kept:
            warnings.append(f"{record['_path']}: skipped, the same run (identity {key[0]}, seed {key[1]}"
                            f"{', fold ' + key[2] if key[2] else ''}) as {kept[key]['_path']}")
        else:
            kept[key] = record
    return list(kept.values()), warnings


def _whole_fold_sets(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Cross-validated seeds only when every fold ran: a seed with folds missing scores part of the images and
    would count as a full seed. Its records are named and left out until the other folds have run."""
    folds: dict[tuple[str, str, str | None], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if record["run"].get("fold"):
            ident, seed, _, profile, env = _replicate(record)
            folds[(ident, seed, f"{profile} {env}")].append(record)
    dropped: set[int] = set()
    warnings = []
    for (ident, seed, _), members in sorted(folds.items(), key=lambda item: str(item[0])):
        n = {str(r["run"]["fold"]).split("/")[1] for r in members}
        have = sorted(int(str(r["run"]["fold"]).split("/")[0]) for r in members)
        total = int(next(iter(n))) if len(n) == 1 else 0
        if len(n) != 1 or have != list(range(1, total + 1)):
            dropped |= {id(r) for r in members}
            warnings.append(f"identity {ident}, seed {seed}: skipped, folds {', '.join(str(r['run']['fold']) for r in members)}"
                            f" of an incomplete cross-validation ({', '.join(sorted(r['_path'] for r in members))}); "
                            "run the missing folds (--fold K/N) to count this seed")
    return [r for r in records if id(r) not in dropped], warnings


def load_quality(root: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every generator-quality record under ``root`` (written by ``bench gan quality``: ``quality.json``, and
    ``quality-ref-<hash8>.json`` when measured against a reference run), with warnings."""
    def problem(record: dict[str, Any]) -> str | None:
        return None if record.get("kind") == "generator-quality" and "metrics" in record \
            else "not a complete generator-quality record"

    records, warnings = [], []
    for name in (QUALITY, QUALITY.replace(".json", "-ref-*.json")):
        found, problems = _read_records(root, name, problem)
        records += found
        warnings += problems
    return records, warnings
