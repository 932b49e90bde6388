"""Identities: which runs, ensembles and trained generators are the same experiment, by content.

A run's identity hashes the settings that change what is trained or scored (seed excluded), the data's
fingerprints and each generator's seedless identity; an ensemble's, its members' identities, thresholds and
test data; a generator's cache key, its training configuration, data, seed, plugin version and source. Every
identity (what decides that two things are the same experiment or the same trained generator) is computed
here; content checksums of files live in ``bench.storage.integrity``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterator, Mapping

from bench.config import profiles
from bench.plugin.components import EPOCH_FIELDS


#: Record keys that never enter identity: the seed, names of things whose content is hashed instead, and
#: values that change neither training nor scores.
_NOT_IDENTITY = {"seed", "profile", "data", "test", "data_name", "test_name", "weights", "overrides",
                 "loss_default", "schedule_uses", "encoder_weights_sha256", "encoder_weights_file"} | \
    {f.name for f in profiles.FIELDS if not f.identity}
RUNTIME_KEYS = ("device", "train_split", "n_train", "test_split", "test_split_reason", "n_test",
                 "seg_parameters", "step", "resumed_from")


def settings(run: Mapping[str, Any], fingerprints: Mapping[str, Any] | None,
             generator_ids: list[str] | None) -> dict[str, Any]:
    """The flat settings an identity hashes, from a record's ``run`` section (new or old) and the content
    hashes: train/test data fingerprints and each generator's seedless identity.

    Epoch settings the schedule does not read are left out (a real-only run does not use ``finetune_epochs``).
    """
    uses = set(run.get("schedule_uses") or EPOCH_FIELDS)
    out: dict[str, Any] = {}
    for key, value in run.items():
        if key in _NOT_IDENTITY or key in RUNTIME_KEYS or key == "kind" or (key in EPOCH_FIELDS and key not in uses):
            continue
        if key == "gen":
            value = "+".join(value) if value else "none"
        elif key == "subset":
            value = "all" if value is None else f"{value} (seed {run.get('subset_seed')})"
        elif key == "exclude":
            value = value["sha256"][:12] if value else "none"
        elif key == "weights_sha256":
            key, value = "weights", value[:12] if value else "none"
        elif key == "encoder_weights":  # the tag and the file's content: another file under one tag is another run
            value = f"{value} {str(run.get('encoder_weights_sha256'))[:12]}"
        elif key == "augment":
            value = json.dumps(value, sort_keys=True)
        elif key == "fold":  # every fold of one split is the same experiment: the fold number is like a seed
            key, value = "folds", f"{str(value).split('/')[1]} (seed {run.get('fold_seed')})"
        if key not in ("subset_seed", "fold_seed"):
            out[key] = value
    out.setdefault("nproc", 1)
    fingerprints = fingerprints or {}
    out["train data"] = fingerprints.get("train")
    out["test data"] = fingerprints.get("test")
    for name, gid in zip(run.get("gen") or [], generator_ids or []):
        out[f"{name} generator"] = gid
    return out


def digest(values: Mapping[str, Any]) -> str:
    """A stable 16-hex-digit hash of JSON-able ``values``."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def identity(run: Mapping[str, Any], fingerprints: Mapping[str, Any] | None,
             generator_ids: list[str] | None) -> dict[str, Any]:
    """``{"hash": ..., "settings": {...}}``: runs with the same hash differ at most in their seed."""
    flat = settings(run, fingerprints, generator_ids)
    return {"hash": digest(flat), "settings": flat}


def changed(before: Mapping[str, Any], now: Mapping[str, Any]) -> Iterator[str]:
    """``key: before -> now`` for every setting that differs between two identities' settings."""
    for key in sorted(set(before) | set(now)):
        if before.get(key) != now.get(key):
            yield f"{key}: {before.get(key)!r} -> {now.get(key)!r}"


GENERATOR_CACHE_VERSION = 3
"""3: keys include the hash of the generator's source, entries a checksum of their weights (2 had neither)."""


SAMPLING_KEYS = ("sample_steps",)
"""Configuration keys that change how a trained generator samples, not what it learns: in the run's identity,
not in the cache key (a DDPM trained once serves every number of DDIM steps)."""


def training_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` without its sampling keys: what the cache key and the entry's ``meta.json`` hold."""
    return {k: v for k, v in config.items() if k not in SAMPLING_KEYS}


def generator_key(config: dict[str, Any], fingerprint: str, seed: int, plugin_version: str | None,
                  code: str | None = None) -> str:
    """The cache key: the generator's training configuration, training data, seed, plugin version and source."""
    text = json.dumps({"config": training_config(config), "data": fingerprint, "seed": seed, "plugin_version": plugin_version,
                       "code": code, "cache_version": GENERATOR_CACHE_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def generator_identity(config: dict[str, Any], fingerprint: str, plugin_version: str | None,
                       code: str | None = None) -> str:
    """The cache key without the seed: what a run's identity includes (seeds are compared separately)."""
    text = json.dumps({"config": config, "data": fingerprint, "plugin_version": plugin_version, "code": code,
                       "cache_version": GENERATOR_CACHE_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def ensemble_identity(members: list[Any], seeds: list[Any], high: Any, low: Any, test: Any,
                      tuning: str | None = None) -> dict[str, Any]:
    """An ensemble's identity: its members' identities (as a multiset), the thresholds and the test data.

    Thresholds chosen by ``tuning`` (``folds:5 seed 0``, ``split:val``) are the choice, not the pair it found:
    ``high`` and ``low`` read ``tuned`` and the choice is a setting of its own."""
    if tuning is not None:
        high, low = "tuned", "tuned"
    chosen = {"thresholds": tuning} if tuning is not None else {}
    return {"hash": digest({"members": sorted(json.dumps(m, sort_keys=True) for m in members),
                            "high": high, "low": low, "test data": test, **chosen}),
            "settings": {"members": digest({"m": sorted(json.dumps(m, sort_keys=True) for m in members)})[:8],
                         "member seeds": "+".join(str(s) for s in sorted(seeds, key=str)),
                         "high": high, "low": low, **chosen, "test data": test}}
