"""The generator lifecycle: train once per (generator, config, training data, seed), cache, reuse.

A trained generator lives in ``$BENCH_CACHE_DIR/generators/<key>/`` (``state.pt``, tensors only, and
``meta.json``), where ``key`` hashes the generator's name, its resolved configuration, the training
data's fingerprint and the seed. Every run and command that asks for the same generator gets that entry.
"""

from __future__ import annotations

import hashlib
import inspect
import pickle
import warnings
import json
import shutil
import time
import zlib
from pathlib import Path
from typing import Any

import torch

from bench.config.run import GanConfig
from bench.plugin.components import Generator
from bench.config.identity import SAMPLING_KEYS, generator_identity, generator_key, training_config
from bench.data.prepare import CacheWarning, Prepared, cache_root
from bench.data.spec import format_size, parse_spec
from bench.errors import BenchError
from bench.storage.integrity import file_digest, store_entry
from bench.storage.locks import entry_lock
from bench.plugin.host import PluginHost
from bench.plugin.catalog import Component
from bench.plugin.options import name_of, resolve
from bench.plugin.components import Reporter, SilentReporter

def plugin_version(host: PluginHost, name: str) -> str | None:
    """The version of the plugin that registered generator ``name`` (a name or a spec with options)."""
    component = host.registry.get("generators", name_of(name))
    return host.plugins[component.plugin].version if component.plugin in host.plugins else None


def code_hash(host: PluginHost, name: str) -> str | None:
    """A hash of the source that defines generator ``name`` (the module of its factory), so that a changed
    generator is never served from an entry trained by the old code, even at the same plugin version."""
    factory = host.registry.get("generators", name_of(name)).factory
    try:
        source = inspect.getsourcefile(factory)
        if source:
            return file_digest(Path(source))
        return hashlib.blake2b(inspect.getsource(factory).encode(), digest_size=16).hexdigest()
    except (OSError, TypeError):
        return None


def training_seed(name: str, seed: int) -> int:
    """The generator's own RNG seed: depends on its name and the run seed, not on its position in --gen."""
    return zlib.crc32(f"{name}:{seed}".encode())


def to_gan_input(prepared: Prepared, device: torch.device, index: torch.Tensor | None = None) -> torch.Tensor:
    """Real pairs as the GANs see them: 4 channels in [-1, 1] (RGB, and the mask as -1/1); with ``index``,
    only those pairs (picked while still uint8)."""
    images, masks = (prepared.images, prepared.masks) if index is None else (prepared.images[index],
                                                                            prepared.masks[index])
    rgb = images.to(device).float() / 127.5 - 1.0
    mask = masks.to(device).float() * 2.0 - 1.0
    return torch.cat((rgb, mask), 1)


def build_generator(component: Component, config: dict[str, Any], seed: int) -> Generator:
    """Generator ``component`` for ``config`` (size, width, lr), its weights initialised from ``seed``."""
    h, w = (int(v) for v in config["size"].split("x"))
    try:
        with torch.random.fork_rng(devices=[]):  # a factory that seeds torch must not move the run's RNG
            sampling = {k: config[k] for k in SAMPLING_KEYS if config.get(k) is not None}
            options = resolve("generator", component.name, component.meta, config.get("options") or {},
                              f"--gen {component.name}")
            gen = component.factory(size=(h, w), width=config["width"], lr=config["lr"], seed=seed, **sampling,
                                    **options)
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(f"generator {component.name!r} from plugin {component.plugin!r} failed to build: "
                         f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(gen, Generator):
        raise BenchError(f"generator {component.name!r} from plugin {component.plugin!r}: its factory returned "
                         f"{type(gen).__name__}, not a bench.api.Generator")
    return gen


def generator_for(host: PluginHost, spec: str, config: dict[str, Any], seed: int) -> Generator:
    """Generator ``spec`` (``NAME[?key=value]``) for ``config`` (size, width, lr), the spec's options with it."""
    parsed = parse_spec(spec, "--gen")
    options = {"options": dict(parsed.options)} if parsed.options else {}
    return build_generator(host.registry.get("generators", parsed.name), {**config, **options}, seed)


def obtain(
    host: PluginHost,
    config: dict[str, Any],
    real: Prepared,
    seed: int,
    device: torch.device,
    reporter: Reporter | None = None,
) -> tuple[Generator, dict[str, Any]]:
    """The trained generator for ``config`` on ``real`` with ``seed``: from the cache, or trained and cached."""
    reporter = reporter or SilentReporter()
    name = config["name"]
    component = host.registry.get("generators", name)
    version, code = plugin_version(host, name), code_hash(host, name)
    key = generator_key(config, real.fingerprint, seed, version, code)
    folder = cache_root() / "generators" / key
    gen = build_generator(component, config, seed)
    info = {"name": name, "plugin": component.plugin, "plugin_version": version, "key": key,
            "identity": generator_identity(config, real.fingerprint, version, code), "code": code,
            "checkpoint": str(folder / "state.pt"), "config": config}
    if not gen.cacheable:
        return _train(gen, component, info, config, real, seed, device, reporter, None)
    with entry_lock(folder):  # runs of a sweep that need the same generator: one trains, the others wait and load
        return _train(gen, component, info, config, real, seed, device, reporter, folder)


def _train(gen: Generator, component: Component, info: dict[str, Any], config: dict[str, Any], real: Prepared,
           seed: int, device: torch.device, reporter: Reporter, folder: Path | None) -> tuple[Generator, dict[str, Any]]:
    """Load the cached entry in ``folder`` if there is one; otherwise train (and store when ``folder``)."""
    name = config["name"]
    if folder is not None and (folder / "meta.json").exists():
        try:
            meta = json.loads((folder / "meta.json").read_text())
            if not isinstance(meta, dict):
                raise ValueError(f"meta.json holds {type(meta).__name__}, not an object")
            if meta["key"] != info["key"] or meta["seed"] != seed:  # another entry's files copied or moved here
                raise ValueError(f"its meta.json is of entry {meta['key']} at seed {meta['seed']}, not of this "
                                 f"entry ({info['key']}, seed {seed})")
            if file_digest(folder / "state.pt") != meta["checksum"]:
                raise ValueError("state.pt does not match its checksum")
            gen.load_state_dict(torch.load(folder / "state.pt", map_location="cpu", weights_only=True))
            info.update(cache="hit", final_losses=meta.get("final_losses"), train_s=meta.get("train_s"))
            return gen.to(device), info
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
            warnings.warn(f"generator cache entry {folder} is damaged ({type(exc).__name__}: {exc}); "
                          "training the generator again", CacheWarning, stacklevel=2)
            shutil.rmtree(folder, ignore_errors=True)
            gen = build_generator(component, config, seed)  # a partial load may have changed it

    gen.to(device)
    rng = torch.Generator(device=device).manual_seed(training_seed(name, seed))
    t0 = time.perf_counter()
    reporter.start_phase(f"gan:{name}", config["epochs"], 1)
    last = gen.fit(to_gan_input(real, device), epochs=config["epochs"], batch_size=config["batch_size"], rng=rng,
                   on_epoch=_EpochRate(reporter, f"gan:{name}", len(real), config["batch_size"], t0))
    reporter.end_phase()
    train_s = time.perf_counter() - t0
    if folder is None:
        info.update(cache="off", checkpoint=None, final_losses=last, train_s=train_s)
        return gen, info
    meta = {"key": info["key"], "config": training_config(config), "data_fingerprint": real.fingerprint, "n_train": len(real),
            "seed": seed, "plugin": info["plugin"], "plugin_version": info["plugin_version"],
            "final_losses": last, "train_s": train_s, "size": format_size(gen.size)}
    _store(folder, gen.state_dict(), meta)
    info.update(cache="miss", final_losses=last, train_s=train_s)
    return gen, info


class _EpochRate:
    """A generator's ``on_epoch``: reports each epoch's loss and its rate, the real images of the epoch's full
    batches (as ``bench perf`` counts a GAN's training) over the seconds since the previous epoch ended."""

    def __init__(self, reporter: Reporter, phase: str, n: int, batch_size: int, start: float) -> None:
        self.reporter, self.phase, self.last = reporter, phase, start
        self.images = (n // batch_size) * batch_size or n

    def __call__(self, epoch: int, losses: dict[str, float]) -> None:
        now = time.perf_counter()
        rate, self.last = self.images / max(now - self.last, 1e-9), now
        self.reporter.advance(1, self.images)
        self.reporter.end_epoch(self.phase, epoch, sum(losses.values()), rate)


def _store(folder: Path, state: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write the entry into a temporary folder, then rename it into place (atomic for readers)."""
    def write(tmp: Path) -> None:
        torch.save(state, tmp / "state.pt")
        (tmp / "meta.json").write_text(json.dumps({**meta, "checksum": file_digest(tmp / "state.pt")}, indent=2))

    store_entry(folder, write)


def entry_folder(info: dict[str, Any]) -> Path | None:
    """The cache entry of a generator, or ``None`` for one that is not cached."""
    return Path(info["checkpoint"]).parent if info.get("checkpoint") else None


def cache_message(info: dict[str, Any]) -> str:
    """One line for the user: where the generator came from."""
    if info["cache"] == "hit":
        return f"generator {info['name']}: reused from cache ({info['checkpoint']})"
    if info["cache"] == "miss":
        return f"generator {info['name']}: trained and cached ({info['checkpoint']})"
    return f"generator {info['name']}: fitted for this run (nothing learnt to cache)"


def trained(host: PluginHost, config: GanConfig, device: torch.device, reporter: Reporter | None = None,
            log: Any = print) -> tuple[Generator, dict[str, Any], Prepared]:
    """``bench gan``'s generator: the cached (or newly trained) one ``config`` names, its cache entry's facts, and
    the prepared training pairs it learnt from."""
    from bench.data.prepare import prepare
    from bench.plugin.build import load_dataset

    real = prepare(load_dataset(host, config.data, "--data").split("train"), config.gan_size)
    g, info = obtain(host, config.generator_config(), real, config.seed, device, reporter)
    log(cache_message(info))
    return g, info, real
