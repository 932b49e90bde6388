"""One run of the protocol: resolve components, prepare data, train generators and segmenter, score, record."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

import bench
from bench import distributed, profiles
from bench.augment import AugmentConfig
from bench.components import Generator
from bench.data import channels
from bench.data.prepare import prepare
from bench.data.source import Dataset, Split, SubsetSplit
from bench.data.spec import format_size, parse_size, parse_spec
from bench.errors import BenchError, ConfigError
from bench.generators import cache_message, generator_config
from bench.generators import obtain as obtain_generator
from bench.evaluate import curve_point, predict_probabilities, score_probabilities
from bench.plots import run_plots
from bench.plugins import PluginHost
from bench.registry import singular
from bench.records import RESULTS, SCHEMA, environment, run_dir, save_checkpoint, write_json
from bench.train import Reporter, SilentReporter, Trainer, TrainState


@dataclass
class RunOptions:
    """What the user asked for; ``None`` means "the profile's or the component's default"."""

    gen: str = "none"
    seg: str = "unet"
    loss: str | None = None
    schedule: str | None = None
    data: str | None = None
    test: str | None = None
    profile: str = "quick"
    seed: int = 0
    out: Path = Path("runs")
    device: str = "auto"
    save_predictions: bool = False
    force: bool = False
    resume: bool = False
    compile: bool = False
    subset: int | None = None
    subset_seed: int = 0
    exclude: str | None = None
    weights: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"--device: {name!r} is not a device; expected auto, cpu, cuda or cuda:N")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_dataset(host: PluginHost, text: str, option: str) -> Dataset:
    spec = parse_spec(text, option)
    component = host.registry.get("datasets", spec.name)
    return component.factory(spec.arg, **spec.options)


def resolve(host: PluginHost, opts: RunOptions, excluded: list[str] | None = None) -> dict[str, Any]:
    """Every value the run will use, with the defaults filled in: the record's ``run`` section."""
    seg_spec = parse_spec(opts.seg, "--seg")
    seg = host.registry.get("segmenters", seg_spec.name)
    gens = [] if opts.gen.strip().lower() == "none" else [g.strip() for g in opts.gen.split(",") if g.strip()]
    if not gens and opts.gen.strip().lower() != "none":
        raise ConfigError("--gen: expected a generator name, a comma-separated list, or none")
    for g in gens:
        host.registry.get("generators", g)
    schedule = opts.schedule or ("two-phase" if gens else "real-only")
    sched = host.registry.get("schedules", schedule)
    if sched.defaults.get("needs_generator") and not gens:
        raise ConfigError(f"--schedule {schedule} needs a generator; pass --gen NAME, or use --schedule real-only")
    if not sched.defaults.get("needs_generator", True) and gens:
        raise ConfigError(f"--schedule {schedule} uses no generator; drop --gen or choose --schedule two-phase")
    loss = opts.loss or seg.defaults.get("loss", "bce")
    host.registry.get("losses", loss)
    prof = profiles.resolve(opts.profile, opts.overrides)
    size = parse_size(prof["size"] or seg.defaults.get("size", "192x256"))
    channel_set = prof["channels"] or seg.defaults.get("channels", "rgb")
    channels.channel_count(channel_set)
    data = opts.data or prof["data"]
    if opts.subset is not None and opts.subset < 1:
        raise ConfigError(f"--subset: must be at least 1, got {opts.subset}")
    weights_sha = None
    if opts.weights:
        path = Path(opts.weights).expanduser()
        if not path.is_file():
            raise ConfigError(f"--weights {opts.weights}: file not found; expected a local weights file")
        weights_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return {
        "gen": gens, "seg": opts.seg, "loss": loss, "loss_default": seg.defaults.get("loss"), "schedule": schedule, "profile": opts.profile,
        "seed": opts.seed, "data": data, "test": opts.test or data,
        "size": format_size(size), "channels": channel_set,
        "gan_size": format_size(parse_size(prof["gan_size"], "--gan-size")) if gens else None,
        "batch_size": prof["batch_size"], "lr": prof["lr"], "optimizer": "adam",
        "epochs": prof["epochs"], "synthetic_epochs": prof["synthetic_epochs"],
        "finetune_epochs": prof["finetune_epochs"], "gan_epochs": prof["gan_epochs"] if gens else None,
        "gan_batch_size": prof["gan_batch_size"] if gens else None, "gan_lr": prof["gan_lr"] if gens else None,
        "width": prof["width"], "threshold": prof["threshold"], "eval_batch_size": prof["eval_batch_size"],
        "augment": AugmentConfig().as_dict(), "protocol_version": bench.PROTOCOL_VERSION,
        "weights": str(Path(opts.weights).expanduser().resolve()) if opts.weights else None,
        "weights_sha256": weights_sha,
        "subset": opts.subset, "subset_seed": opts.subset_seed if opts.subset is not None else None,
        "exclude": {"file": str(Path(opts.exclude).resolve()), "n_ids": len(excluded),
                    "sha256": hashlib.sha256("\n".join(sorted(excluded)).encode()).hexdigest()} if excluded else None,
        "overrides": {k: v for k, v in sorted(opts.overrides.items()) if v is not None},
        "data_name": parse_spec(data).name, "test_name": parse_spec(opts.test or data, "--test").name,
    }


def execute(host: PluginHost, opts: RunOptions, reporter: Reporter | None = None, log=print,
            world: distributed.World | None = None) -> dict[str, Any]:
    """Run the protocol and return the record; nothing is written under ``out`` unless it succeeds.

    Under torchrun (``world`` of several processes) every rank trains its share of each epoch; rank 0
    alone prepares data and trains generators first, logs, checkpoints, evaluates and writes the record.
    """
    world = world or distributed.World()
    if not world.main:
        reporter, log = SilentReporter(), lambda message: None
    reporter = reporter or SilentReporter()
    t_start = time.perf_counter()
    excluded = read_exclude(opts.exclude) if opts.exclude else None
    run = resolve(host, opts, excluded)
    device = distributed.start(world, resolve_device(opts.device))
    try:
        return _execute(host, opts, run, excluded, device, world, reporter, log, t_start)
    finally:
        distributed.stop(world)


def _execute(host: PluginHost, opts: RunOptions, run: dict[str, Any], excluded: list[str] | None,
             device: torch.device, world: distributed.World, reporter: Reporter, log, t_start: float) -> dict[str, Any]:
    run["device"] = str(device)
    if world.distributed:
        run["nproc"] = world.size
    folder = run_dir(Path(opts.out), run)
    if (folder / RESULTS).exists() and not opts.force:
        record = json.loads((folder / RESULTS).read_text())
        now = json.loads(json.dumps(run))  # compare as recorded: tuples become lists
        differ = [k for k in sorted(now) if k != "device" and now[k] != record.get("run", {}).get(k)]
        if differ:
            shown = "; ".join(f"{k}: recorded {record['run'].get(k)!r}, now {now[k]!r}" for k in differ[:5])
            raise ConfigError(f"{folder / RESULTS} holds a finished run with a different configuration ({shown}); "
                              "use --force to replace it or --out for another runs folder")
        log(f"already finished: {folder / RESULTS} (use --force to run it again)")
        record["_path"] = str(folder / RESULTS)
        return record
    if opts.force and folder.exists() and world.main:
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)
        (folder / RESULTS).unlink(missing_ok=True)
    distributed.barrier(world)

    size, gan_size = parse_size(run["size"]), parse_size(run["gan_size"]) if run["gan_size"] else None
    timings: dict[str, float] = {}
    seed_everything(opts.seed)
    model = build_segmenter(host, run)  # before any data work: a component that cannot be built fails fast

    if not world.main:
        distributed.barrier(world)  # rank 0 fills the data and generator caches first; the others then read them
    t0 = time.perf_counter()
    train_ds = load_dataset(host, run["data"], "--data")
    test_ds = load_dataset(host, run["test"], "--test") if opts.test else train_ds
    train_split = select_training(train_ds.split("train"), run, excluded)
    test_name, test_why = test_ds.test_split()
    test_split = test_ds.split(test_name)
    real = prepare(train_split, size).to(device)
    test = prepare(test_split, size)
    gan_real = prepare(train_split, gan_size) if gan_size else None
    timings["prepare_s"] = time.perf_counter() - t0
    run.update({"train_split": "train", "n_train": len(real), "test_split": test_name,
                "test_split_reason": test_why, "n_test": len(test)})
    log(f"data: {len(real)} training pairs from {train_ds.spec}; scoring on {len(test)} pairs of "
        f"{test_ds.spec} ({test_why})")

    seed_everything(opts.seed)
    generators: list[Generator] = []
    gen_info = []
    t0 = time.perf_counter()
    for name in run["gen"]:
        gen, info = obtain_generator(host, generator_config(name, run), gan_real, opts.seed, device, reporter)
        log(cache_message(info))
        generators.append(gen)
        gen_info.append(info)
    timings["gan_train_s"] = time.perf_counter() - t0
    if world.main:
        distributed.barrier(world)

    model = model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    run["seg_parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    network = model
    if world.distributed:
        network = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    loss_fn = _build(host.registry.get("losses", run["loss"]))
    phases = _build(host.registry.get("schedules", run["schedule"]), run)
    state = TrainState(model, torch.optim.Adam(model.parameters(), lr=run["lr"]))
    ckpt_dir = folder / "checkpoints"
    identity = {
        "run": json.dumps(json.loads(json.dumps({k: v for k, v in run.items() if k != "device"})), sort_keys=True),
        "data_fingerprint": json.dumps({"train": train_split.fingerprint(), "test": test_split.fingerprint()}),
        "generators": json.dumps([info.get("key") for info in gen_info]),
    }

    def checkpoint(st: TrainState, rngs: dict[str, torch.Generator]) -> None:
        rank_rngs = distributed.gather(world, {name: g.get_state() for name, g in rngs.items()})
        if world.main:
            extra = {"rank_rng": rank_rngs} if world.distributed else {}
            save_checkpoint(ckpt_dir / "latest.pt", {**st.state_dict(rngs), **identity, **extra})

    test_on_device = test.to(device)

    def validate(m: torch.nn.Module) -> dict[str, float]:
        return curve_point(m, test_on_device, run["channels"], device, run["eval_batch_size"])

    trainer = Trainer(state, loss_fn, run["channels"], size, run["batch_size"], device, opts.seed,
                      reporter=reporter, on_epoch_end=checkpoint, validate=validate if world.main else None,
                      network=network, world=world)
    if opts.compile:
        trainer.enable_compile()
    if (ckpt_dir / "latest.pt").exists():
        saved = torch.load(ckpt_dir / "latest.pt", map_location="cpu", weights_only=True)
        _check_resumable(saved, identity, ckpt_dir / "latest.pt")
        state.load_state_dict(saved, trainer.rngs)
        if world.distributed:
            for name, g in trainer.rngs.items():
                g.set_state(saved["rank_rng"][world.rank][name])
        run["resumed_from"] = {"phase": phases[min(state.phase_index, len(phases) - 1)].name,
                               "phase_index": state.phase_index, "epoch": state.epoch}
        log(f"resuming from {ckpt_dir / 'latest.pt'}: phase {state.phase_index + 1} of {len(phases)}, "
            f"{state.epoch} epochs done in it")
    elif opts.resume:
        log(f"nothing to resume in {folder}; starting from the beginning")
    t0 = time.perf_counter()
    history = trainer.run(phases, real, generators)
    timings["train_s"] = time.perf_counter() - t0
    run["step"] = {"amp": "bf16" if trainer.amp else "fp32", "channels_last": trainer.channels_last,
                   "compile": opts.compile, "compiled": opts.compile and trainer.compile_error is None,
                   "compile_error": trainer.compile_error}
    if not world.main:
        return {"_path": None, "rank": world.rank}

    t0 = time.perf_counter()
    probs = predict_probabilities(model, test, run["channels"], device, run["eval_batch_size"])
    per_image, summary, histogram = score_probabilities(
        probs, test_split, run["threshold"], folder / "predictions" if opts.save_predictions else None
    )
    timings["evaluate_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_start
    save_checkpoint(ckpt_dir / "final.pt", {"model": model.state_dict()})

    env = environment(device)
    record = {
        "schema": SCHEMA,
        "status": "finished",
        "run": run,
        "summary": summary,
        "histogram": histogram,
        "per_image": per_image,
        "history": history,
        "generators": gen_info,
        "env": env,
        "plugins": {p.name: {"distribution": p.distribution, "version": p.version} for p in host.plugins.values()},
        "data_fingerprint": {"train": train_split.fingerprint(), "test": test_split.fingerprint()},
        "timings": timings,
    }
    record["plots"] = [f"plots/{name}" for name in run_plots(record, folder / "plots")]
    write_json(folder / "config.json", run)
    write_json(folder / "env.json", env)
    write_json(folder / RESULTS, record)
    record["_path"] = str(folder / RESULTS)
    return record


def read_exclude(path: str) -> list[str]:
    """Image ids, one per line (blank lines and ``#`` comments ignored), from the ``--exclude`` file."""
    file = Path(path).expanduser()
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"--exclude {path}: cannot read it ({exc}); expected a text file of image ids") from None
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def select_training(split: Split, run: dict[str, Any], excluded: list[str] | None) -> Split:
    """Apply ``--exclude`` (drop listed ids) then ``--subset`` (a seeded random subset) to the training split."""
    if excluded:
        ids = split.ids()
        unknown = sorted(set(excluded) - set(ids))
        if unknown:
            raise ConfigError(f"--exclude {run['exclude']['file']}: id {unknown[0]!r} is not in the training split"
                              + (f" (nor {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
        drop = set(excluded)
        split = SubsetSplit(split, [i for i, image in enumerate(ids) if image not in drop],
                            f"exclude:{run['exclude']['sha256']}")
    if run.get("subset") is not None:
        n = run["subset"]
        if n > len(split):
            raise ConfigError(f"--subset {n}: the training split has only {len(split)} pairs")
        rng = np.random.default_rng(run["subset_seed"])
        chosen = sorted(int(i) for i in rng.choice(len(split), size=n, replace=False))
        split = SubsetSplit(split, chosen, f"subset:{n}:{run['subset_seed']}")
    return split


def _check_resumable(saved: dict[str, Any], identity: dict[str, str], path: Path) -> None:
    """Refuse to continue a checkpoint made with another configuration, data or generator."""
    problems = []
    before, now = json.loads(saved.get("run", "{}")), json.loads(identity["run"])
    for key in sorted(set(before) | set(now)):
        if key != "resumed_from" and before.get(key) != now.get(key):
            problems.append(f"{key}: checkpoint {before.get(key)!r}, now {now.get(key)!r}")
    if saved.get("data_fingerprint") != identity["data_fingerprint"]:
        problems.append(f"data fingerprint: checkpoint {saved.get('data_fingerprint')}, now {identity['data_fingerprint']}")
    if saved.get("generators") != identity["generators"]:
        problems.append(f"generators: checkpoint {saved.get('generators')}, now {identity['generators']}")
    if problems:
        raise ConfigError(f"{path}: cannot resume, the run differs ({'; '.join(problems[:5])}); "
                          "use --force to start it afresh")


def build_segmenter(host: PluginHost, run: dict[str, Any]) -> torch.nn.Module:
    """The segmenter a run (or its record's ``run`` section) describes, freshly initialised."""
    seg_spec = parse_spec(run["seg"], "--seg")
    seg = host.registry.get("segmenters", seg_spec.name)
    extra = {"spec": seg_spec.arg} if seg_spec.arg is not None else {}
    if run.get("weights"):
        extra["weights"] = run["weights"]
    return _build(seg, in_channels=channels.channel_count(run["channels"]), width=run["width"],
                  **extra, **seg_spec.options)


def _build(component, *args, **kwargs):
    """Call a component's factory; a factory that raises fails the run naming the plugin."""
    try:
        return component.factory(*args, **kwargs)
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(
            f"{singular(component.kind)} {component.name!r} from plugin {component.plugin!r} failed to build: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
