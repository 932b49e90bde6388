"""Records and run folders: the folder layout of runs, ensembles and generator-quality records, and building
records (run and quality records, whole, written once). Reading them back is :mod:`bench.results.reader`.

A record (``results.json``) has these sections: ``run`` (the :class:`bench.config.run.RunConfig`), ``identity``
(the hash of what makes it one experiment, and the settings hashed), ``runtime`` (facts of this execution),
``summary``/``per_image``/``histogram`` (scores), ``history``, ``generators``, ``env``, ``plugins``,
``data_fingerprint`` and ``timings``. Its JSON schema is ``bench/schemas/results.schema.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

import bench
from bench.config import profiles
from bench.config.run import GanConfig, RunConfig
from bench.data.spec import format_size

SCHEMA = 2
"""Record format version: 1 kept runtime facts in ``run`` and had no ``identity``; 2 has both sections."""
RESULTS = "results.json"
QUALITY = "quality.json"


# ------------------------------------------------------------------------------------------ writing


# ------------------------------------------------------------------------------------------ layout


def gen_label(generators: list[str] | tuple[str, ...]) -> str:
    """Folder and leaderboard label of a generator list: ``none``, ``dcgan``, ``dcgan+lapgan``."""
    return "+".join(generators) if generators else "none"


def data_label(spec: str, name: str) -> str:
    """``fixture`` for a bare name; ``isic2017-<hash of the full spec>`` when it has a root or options."""
    return name if spec == name else f"{name}-{hashlib.sha256(spec.encode()).hexdigest()[:8]}"


def safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.+" else "-" for c in text)


def data_folder(data: str, data_name: str, test: str, test_name: str) -> str:
    """``<data>[-on-<test>]``: the first level of the runs folder."""
    label = data_label(data, data_name)
    if test != data:
        label += "-on-" + data_label(test, test_name)
    return safe_name(label)


MAX_LEAF = 200
"""Longest run folder name; longer ones (many overrides) end in a hash of the whole name."""


def run_dir(out: Path, config: RunConfig) -> Path:
    """``OUT/<data>[-on-<test>]/<profile>/<gen>__<seg>__<schedule>__<loss>[__<overrides>...]/seed_<k>``.

    Readable, not authoritative: two runs are the same experiment when their identities match.
    """
    parts = [gen_label(config.gen), config.seg, config.schedule, config.loss]
    named = [(k, v) for k, v in config.overrides if k not in profiles.BY_NAME or profiles.BY_NAME[k].identity]
    if named:  # settings outside identity (eval batch, curve) name no folder: the same run is found again
        parts.append("_".join(f"{k}-{v}" for k, v in named))
    if config.subset is not None:
        parts.append(f"subset-{config.subset}-seed-{config.subset_seed}")
    if config.exclude:
        parts.append(f"exclude-{config.exclude.sha256[:8]}")
    if config.fold:
        parts.append(f"fold-{config.fold[0]}-of-{config.fold[1]}-seed-{config.fold_seed}")
    if config.weights_sha256:
        parts.append(f"weights-{config.weights_sha256[:8]}")
    if config.encoder_weights_sha256:
        parts.append(f"encoder-{config.encoder_weights}-{config.encoder_weights_sha256[:8]}")
    if config.nproc > 1:
        parts.append(f"nproc-{config.nproc}")
    leaf = "__".join(safe_name(x) for x in parts)
    if len(leaf) > MAX_LEAF:  # file systems refuse names over 255 bytes: keep the start readable, hash the rest
        leaf = f"{leaf[:MAX_LEAF - 17]}-{hashlib.sha256(leaf.encode()).hexdigest()[:16]}"
    top = data_folder(config.data, config.data_spec.name, config.test, config.test_spec.name)
    return out / top / safe_name(config.profile) / leaf / f"seed_{config.seed}"


def ensemble_dir(out: Path, data: str, profile: str, segs: list[str], strategy: str, key: str,
                 seed: int | None) -> Path:
    """``OUT/<data>/<profile>/ensemble__<segs>__<strategy>__<members' key>/seed_<k|mixed>``."""
    return out / safe_name(data) / safe_name(profile) / \
        f"ensemble__{safe_name('+'.join(segs))}__{safe_name(strategy)}__{key}" / \
        f"seed_{seed if seed is not None else 'mixed'}"


def quality_path(out: Path, config: GanConfig, reference: str | None = None) -> Path:
    """``OUT/<data>/<profile>/gan-<gen>[__<overrides>]/seed_<k>/quality[-ref-<hash8>].json``: one record per
    reference run (its identity hash's first 8 characters), so measuring against another one keeps the first."""
    named = ["_".join(f"{k}-{v}" for k, v in config.overrides)] if config.overrides else []
    leaf = "__".join(safe_name(x) for x in [f"gan-{config.gen}"] + named)
    name = QUALITY if reference is None else QUALITY.replace(".json", f"-ref-{safe_name(reference[:8])}.json")
    return out / safe_name(data_label(config.data, config.data_spec.name)) / safe_name(config.profile) / leaf / \
        f"seed_{config.seed}" / name


# ------------------------------------------------------------------------------------------ building


def git_hash() -> str | None:
    """The commit of the checkout this package runs from, ``+dirty`` when tracked files differ from it; ``None``
    for an installed copy (a git repository around an installed copy, say a home folder, is not its source)."""
    package = Path(__file__).resolve().parent.parent  # bench/, two levels up from bench/results/records.py

    def git(*args: str) -> str | None:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, cwd=package, check=False)
        return out.stdout.strip() if out.returncode == 0 else None

    try:
        top = git("rev-parse", "--show-toplevel")
        if not top or Path(top).resolve() != package.parent:
            return None
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return None if not head else head + ("+dirty" if dirty else "")
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


def plugin_versions(host: Any) -> dict[str, dict[str, str | None]]:
    """Every loaded plugin's distribution and version, for the record."""
    return {p.name: {"distribution": p.distribution, "version": p.version} for p in host.plugins.values()}


def run_record(config: RunConfig, ident: dict[str, Any], runtime: dict[str, Any], scores: Scores,
               history: list[dict[str, Any]], generators: list[dict[str, Any]], env: dict[str, Any],
               plugins: dict[str, Any], fingerprints: dict[str, str], timings: dict[str, float],
               components: dict[str, Any], plots: list[str], checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The ``results.json`` of a finished run, whole: nothing is added to it afterwards. ``checkpoint`` pins the
    final weights it describes (their path in the run folder and checksum), which every reader verifies."""
    return {
        "schema": SCHEMA, "kind": "run", "status": "finished", "identity": ident, "run": config.as_record(),
        "runtime": runtime, "summary": scores.summary, "histogram": scores.histogram, "per_image": scores.per_image,
        "history": history, "generators": generators, "env": env, "plugins": plugins,
        "data_fingerprint": fingerprints, "timings": timings, "components": components, "plots": plots,
        "checkpoint": checkpoint,
    }


@dataclass
class Scores:
    """What scoring a split gives: the summary, the per-image scores and the Jaccard histogram."""

    per_image: list[dict[str, Any]]
    summary: dict[str, Any]
    histogram: dict[str, Any]


def quality_record(generator: dict[str, Any], config: GanConfig, metrics: dict[str, Any], env: dict[str, Any]
                   ) -> dict[str, Any]:
    """The record of ``bench gan quality``, whole: the generator (its cache entry's facts), the setting, the metrics."""
    return {
        "schema": SCHEMA, "kind": "generator-quality", "status": "finished",
        "generator": {k: generator[k] for k in ("name", "plugin", "plugin_version", "key", "identity", "checkpoint",
                                                  "config")},
        "run": {"gen": [config.gen], "data": config.data, "data_name": config.data_spec.name, "profile": config.profile,
                "seed": config.seed, "gan_size": format_size(config.gan_size), "overrides": dict(config.overrides)},
        "metrics": metrics, "env": env,
    }


def results_schema() -> dict[str, Any]:
    """The JSON schema of ``results.json`` (runs and ensembles, every schema version)."""
    return json.loads(resources.files("bench").joinpath("schemas/results.schema.json").read_text())
