"""One run of the protocol, as a sequence of named steps: configure, open the data, check for a finished
record, prepare, obtain generators, train, score, record."""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch.nn.parallel import DistributedDataParallel

from bench.train import checkpoints
from bench.config import run as configuration
from bench.config import file as config_file
from bench.train import distributed
from bench.plugin.build import (build_loss_and_phases, build_segmenter, check_segmenter, curve_holdout_ids, fold_splits,
                                hold_out, load_dataset, resolve_device, seed_everything, select_training)
from bench.plugin.components import Generator, Phase
from bench.config.run import Execution, RunConfig, RunOptions
from bench.data.prepare import Prepared, prepare
from bench.data.source import Dataset, Split
from bench.errors import ConfigError
from bench.scoring.evaluate import curve_point, predict_probabilities, score_probabilities
from bench.storage.integrity import file_digest
from bench.storage.locks import run_lock
from bench.config import identity as identities
from bench.config.identity import generator_identity
from bench.gan.cache import cache_message, code_hash, obtain, plugin_version
from bench.results.plots import run_plots
from bench.plugin.host import PluginHost
from bench.plugin.options import resolve_spec
from bench.storage.atomic import atomic_write_bytes, write_json
from bench.results.records import RESULTS, Scores, environment, plugin_versions, run_dir, run_record
from bench.results.grouping import row_label, strategy
from bench.results.reader import RecordProblem, read_record, run_environment
from bench.train.tracking import Logger, LoggerUnavailable, Loggers, TrackedRun
from bench.plugin.components import Reporter, SilentReporter
from bench.train.engine import Trainer, TrainState

__all__ = ["RunOptions", "execute"]

Log = Callable[[str], None]


@dataclass
class Data:
    """The run's splits (after ``--exclude``/``--subset``) and why the test split was chosen."""

    train: Split
    test: Split
    test_why: str
    train_spec: str
    test_spec: str
    pool: Split | None = None
    """With ``--fold``: the training split the folds are dealt from."""
    curve: Split | None = None
    """With ``--curve-split holdout:F``: the training pairs held out from all training, the curve's images."""

    @property
    def fingerprints(self) -> dict[str, str]:
        return {"train": self.train.fingerprint(), "test": self.test.fingerprint()}

    @property
    def identity_fingerprints(self) -> dict[str, str]:
        """What identity hashes: the data trained and scored on; with folds, the whole split they come from
        (every fold of it is the same experiment)."""
        if self.pool is None:
            return self.fingerprints
        return {"train": self.pool.fingerprint(), "test": self.pool.fingerprint()}


@dataclass
class Context:
    """What the steps of one run share."""

    host: PluginHost
    execution: Execution
    """How the run is carried out (out, device, force, resume, step mode, loggers): never what it trains."""
    config: RunConfig
    device: torch.device
    world: distributed.World
    reporter: Reporter
    log: Log
    folder: Path
    timings: dict[str, float] = field(default_factory=dict)
    runtime: dict[str, Any] = field(default_factory=dict)
    loggers: Loggers | None = None


def execute(host: PluginHost, opts: RunOptions, reporter: Reporter | None = None, log: Log = print,
            world: distributed.World | None = None) -> dict[str, Any]:
    """Run the protocol and return the record; nothing is written under ``out`` unless it succeeds.

    Under torchrun (``world`` of several processes) every rank trains its share of each epoch; rank 0
    alone prepares data and trains generators first, logs, checkpoints, evaluates and writes the record.
    """
    world = world or distributed.World()
    if not world.main:
        reporter, log = SilentReporter(), lambda message: None
    t_start = time.perf_counter()
    config = configuration.build(host, opts, nproc=world.size)
    how = configuration.execution(opts)
    if how.out.exists() and not how.out.is_dir():
        raise ConfigError(f"--out {how.out}: is a file; expected a folder for the run records")
    device = distributed.start(world, resolve_device(how.device))
    ctx = Context(host, how, config, device, world, reporter or SilentReporter(), log, run_dir(how.out, config))
    try:
        with run_lock(ctx.folder) if world.main else contextlib.nullcontext():
            result = _steps(ctx, t_start)
        # Every rank waits for the others before tearing down: a rank that exits while gloo's worker thread
        # still releases its last all_gather aborts in interpreter shutdown ("terminate called without an
        # active exception", seen in about one two-process run in ten).
        distributed.barrier(world)
        return result
    finally:
        distributed.stop(world)


def _steps(ctx: Context, t_start: float) -> dict[str, Any]:
    config = ctx.config
    seed_everything(config.seed)
    model = build_segmenter(ctx.host, config.seg, config.channels, config.width, config.weights,  # fails fast
                            config.encoder_weights)
    check_segmenter(ctx.host, model, config.seg, config.channels, config.size)
    loss_fn, phases = build_loss_and_phases(ctx.host, config.loss, config.schedule, config)
    logger_names = list(ctx.execution.log)
    for name in logger_names:
        resolve_spec(ctx.host, "loggers", name, "--log")  # an unknown --log, or option, fails before any work
    if ctx.world.main and logger_names:
        ctx.loggers = make_loggers(ctx, logger_names)  # and so does one whose package is missing
    data = open_data(ctx.host, config)
    test_split = f"train ({config.fold[1]} folds, seed {config.fold_seed})" if config.fold else data.test.name
    ctx.runtime.update({"train_split": "train", "test_split": test_split, "test_split_reason": data.test_why})
    for warning in held_out_problems(data):
        ctx.log(f"warning: {warning}")
        ctx.runtime.setdefault("warnings", []).append(warning)
    ident = identify(ctx.host, config, data)
    finished = finished_record(ctx, ident)
    if finished is not None:
        return finished
    with distributed.main_first(ctx.world):
        real, test, gan_real, curve = prepare_data(ctx, data)
        generators, gen_info = obtain_generators(ctx, gan_real)
    network_model, state, history = train(ctx, model, loss_fn, phases, real, curve, generators, ident)
    if not ctx.world.main:
        return {"_path": None, "rank": ctx.world.rank}
    scores = score(ctx, network_model, test, data.test)
    final = ctx.folder / "checkpoints" / checkpoints.FINAL
    checkpoints.save(final, {"model": network_model.state_dict(), **checkpoints.stamp(ident, config.seed)})
    ctx.timings["total_s"] = time.perf_counter() - t_start
    pinned = {"path": f"checkpoints/{checkpoints.FINAL}", "blake2b": file_digest(final)}
    return write_record(ctx, ident, scores, history, gen_info, data, pinned)


def make_loggers(ctx: Context, names: list[str]) -> Loggers:
    """The ``--log`` loggers, made before any work; one whose factory raises is reported and left out, unless
    it raises :class:`LoggerUnavailable` (a package to install): that stops the run, naming the package."""
    made: dict[str, Logger] = {}
    loggers = Loggers({}, ctx.log, curve=curve_kind(ctx.config))
    for name in names:
        resolved = resolve_spec(ctx.host, "loggers", name, "--log")
        component = ctx.host.registry.get("loggers", resolved.spec.name)
        try:
            made[name] = component.factory(**resolved.options)
        except KeyboardInterrupt:
            raise
        except LoggerUnavailable as exc:
            raise ConfigError(f"--log {name}: {exc}") from None
        except BaseException as exc:  # tracking never stops a run, not even a factory raising SystemExit
            loggers.failures[name] = f"factory: {type(exc).__name__}: {exc}"
            ctx.log(f"logger {name!r} from plugin {component.plugin!r} failed to start ({type(exc).__name__}: "
                    f"{exc}); the run goes on without it")
    loggers.active = made
    return loggers


def open_data(host: PluginHost, config: RunConfig, datasets: dict[str, Dataset] | None = None) -> Data:
    """The training split (after ``--exclude``, the curve's held-out pairs and ``--subset``), the split scored
    and, with ``--curve-split holdout:F``, the curve's pairs.

    The held-out ids are chosen from the training split after ``--exclude`` (:func:`curve_holdout_ids`), so the
    same images are held out whatever the seed, subset or folds; with ``--fold`` those of them in the training
    folds are held out, and the scored fold keeps every pair. ``datasets`` caches opened datasets by spec (a
    sweep opens each once, so its fingerprints are computed once).
    """
    datasets = {} if datasets is None else datasets
    for spec, option in ((config.data, "--data"), (config.test, "--test")):
        if spec not in datasets:
            datasets[spec] = load_dataset(host, spec, option)
    train_ds, test_ds = datasets[config.data], datasets[config.test]
    if "train" not in train_ds.splits:
        raise ConfigError(f"--data {config.data}: has no 'train' split to train on (it has: "
                          f"{', '.join(train_ds.splits) or 'none'}). A flat images/ + masks/ folder can only be "
                          "scored (--test folder:ROOT); to train on one, arrange it as ROOT/train/{images,masks} "
                          "and ROOT/test/{images,masks} (or ROOT/val/...)")
    source = select_training(train_ds.split("train"), config.exclude, None, None)
    fraction = config.curve_holdout
    held = curve_holdout_ids(source, fraction) if fraction is not None else frozenset()
    if config.fold is not None:
        k, n = config.fold
        pool = select_training(source, None, config.subset, config.subset_seed)
        rest, scored = fold_splits(pool, config.fold, config.fold_seed or 0)
        rest, curve = hold_out(rest, held, config.curve_split, f"pairs in the training folds of --fold {k}/{n}") \
            if fraction is not None else (rest, None)
        why = f"fold {k} of {n} of the training split (folds dealt by seed {config.fold_seed}), from --fold"
        return Data(rest, scored, why, train_ds.spec, train_ds.spec, pool=pool, curve=curve)
    train, curve = hold_out(source, held, config.curve_split, "training pairs") \
        if fraction is not None else (source, None)
    train = select_training(train, None, config.subset, config.subset_seed)
    test_name, test_why = test_ds.test_split()
    return Data(train, test_ds.split(test_name), test_why, train_ds.spec, test_ds.spec, curve=curve)


def held_out_problems(data: Data) -> list[str]:
    """Why the scored images may not be held out from training: the same split (by content), or images of the
    training split's ids (ISIC ids name the same image across releases). The run goes on; its record keeps
    the warning, since scores on trained images measure fit, not generalisation."""
    if data.pool is not None:
        return []
    if data.train.fingerprint() == data.test.fingerprint():
        return [f"the scored split ({data.test_spec}, {data.test.name}) has the same content as the training split "
                f"({data.train_spec}): its scores measure fit, not generalisation"]
    shared = sorted(set(data.train.ids()) & set(data.test.ids()))
    if shared:
        return [f"{len(shared)} of the {len(data.test)} scored images have ids of training images ({', '.join(shared[:3])}"
                f"{', ...' if len(shared) > 3 else ''}): scores on them measure fit, not generalisation"]
    return []


def identify(host: PluginHost, config: RunConfig, data: Data) -> dict[str, Any]:
    """The run's identity: its settings, the data's fingerprints and each generator's seedless identity."""
    fingerprints = data.identity_fingerprints
    gen_ids = [generator_identity(config.generator_config(g), fingerprints["train"], plugin_version(host, g),
                                  code_hash(host, g)) for g in config.gen]
    return identities.identity(config.as_record(), fingerprints, gen_ids or None)


def finished_record(ctx: Context, ident: dict[str, Any]) -> dict[str, Any] | None:
    """The finished record of this very run (same identity and seed), or ``None`` to run it.

    A finished record of a different run in the same folder is an error, unless ``--force`` replaces it.
    """
    path = ctx.folder / RESULTS
    if path.exists() and not ctx.execution.force:
        try:
            record = read_record(path)
        except RecordProblem as exc:
            raise ConfigError(f"{path}: cannot be used ({exc.reason}); use --force to run it again") from None
        before = record["identity"]
        if before["hash"] == ident["hash"] and record["run"].get("seed") == ctx.config.seed:
            ctx.log(f"already finished: {path} (use --force to run it again)")
            return record
        shown = "; ".join(list(identities.changed(before["settings"], ident["settings"]))[:5])
        raise ConfigError(f"{path} holds a finished run with a different configuration or data ({shown}); "
                          "use --force to replace it or --out for another runs folder")
    if ctx.execution.force and ctx.folder.exists() and ctx.world.main:
        shutil.rmtree(ctx.folder / "checkpoints", ignore_errors=True)
        path.unlink(missing_ok=True)
    distributed.barrier(ctx.world)
    return None


def prepare_data(ctx: Context, data: Data) -> tuple[Prepared, Prepared, Prepared | None, Prepared]:
    """Decode and resize the splits once (cached): training pairs on the device, test pairs, GAN pairs, and the
    pairs the training curve is computed on (the held-out ones, else the test pairs), at the training size."""
    config, t0 = ctx.config, time.perf_counter()
    real = prepare(data.train, config.size).to(ctx.device)
    test = prepare(data.test, config.size)
    gan_real = prepare(data.train, config.gan_size) if config.gan_size else None
    curve = prepare(data.curve, config.size) if data.curve is not None else test
    ctx.timings["prepare_s"] = time.perf_counter() - t0
    ctx.runtime.update({"n_train": len(real), "n_test": len(test), "curve": curve_record(config, data, len(curve))})
    ctx.log(f"data: {len(real)} training pairs from {data.train_spec}; scoring on {len(test)} pairs of "
            f"{data.test_spec} ({data.test_why}); {describe_curve(ctx.runtime['curve'])}")
    return real, test, gan_real, curve


def curve_kind(config: RunConfig) -> str:
    """``holdout`` or ``scored``: what the run's training curve is computed on."""
    return "scored" if config.curve_holdout is None else "holdout"


def curve_record(config: RunConfig, data: Data, n: int) -> dict[str, Any]:
    """``runtime.curve``: what the training curve saw, so that no reader takes a curve on the test images for a
    validation curve: the split, its number of pairs, the fraction held out and the held-out ids."""
    out: dict[str, Any] = {"split": curve_kind(config), "n": n, "fraction": config.curve_holdout}
    if data.curve is not None:
        out["ids"] = sorted(data.curve.ids())
    return out


def describe_curve(curve: dict[str, Any]) -> str:
    """The run's log line on its curve: held-out pairs, or the scored split with the warning it needs."""
    if curve["split"] == "holdout":
        return f"training curve on {curve['n']} held-out training pairs (never trained on)"
    return "training curve on the scored split (the test images: for reading, never for choosing an epoch)"


def obtain_generators(ctx: Context, gan_real: Prepared | None) -> tuple[list[Generator], list[dict[str, Any]]]:
    """Each generator of ``--gen``, from the cache or trained now (and cached)."""
    seed_everything(ctx.config.seed)
    generators, infos, t0 = [], [], time.perf_counter()
    for name in ctx.config.gen:
        assert gan_real is not None  # a run with generators always has a generator size
        gen, info = obtain(ctx.host, ctx.config.generator_config(name), gan_real, ctx.config.seed, ctx.device,
                           ctx.reporter)
        ctx.log(cache_message(info))
        generators.append(gen)
        infos.append(info)
    ctx.timings["gan_train_s"] = time.perf_counter() - t0
    return generators, infos


def train(ctx: Context, model: torch.nn.Module, loss_fn: Any, phases: list[Phase], real: Prepared, curve: Prepared,
          generators: list[Generator], ident: dict[str, Any]
          ) -> tuple[torch.nn.Module, TrainState, list[dict[str, Any]]]:
    """Train through the schedule's phases, checkpointing every epoch and resuming from the last one; the
    training curve is computed on ``curve`` (the held-out pairs, or the scored split)."""
    config, device, world = ctx.config, ctx.device, ctx.world
    model = model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    ctx.runtime["seg_parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    network: torch.nn.Module = model
    if world.distributed:
        network = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    state = TrainState(model, torch.optim.Adam(model.parameters(), lr=config.lr))
    latest = ctx.folder / "checkpoints" / checkpoints.LATEST
    mark = checkpoints.stamp(ident, config.seed)

    def checkpoint(st: TrainState, rngs: dict[str, torch.Generator]) -> None:
        rank_rngs = distributed.gather(world, {name: g.get_state() for name, g in rngs.items()})
        if world.main:
            extra = {"rank_rng": rank_rngs} if world.distributed else {}
            checkpoints.save(latest, {**st.state_dict(rngs), **mark, **extra})
            if ctx.loggers is not None and st.history:
                entry = st.history[-1]
                ctx.loggers.call("log_epoch", len(st.history), ctx.loggers.epoch_metrics(entry), entry["phase"])

    curve_on_device = curve.to(device)

    def validate(m: torch.nn.Module) -> dict[str, float]:
        return curve_point(m, curve_on_device, config.channels, device, config.eval_batch_size)

    trainer = Trainer(state, loss_fn, config.channels, config.size, config.batch_size, device, config.seed,
                      reporter=ctx.reporter, on_epoch_end=checkpoint, validate=validate if world.main else None,
                      network=network, world=world, cuda_graph=ctx.execution.cuda_graph, bank_mb=ctx.execution.bank_mb,
                      curve_every=config.curve_every)
    if latest.exists():
        saved = checkpoints.load(latest)
        checkpoints.check_resumable(saved, mark, latest)
        state.load_state_dict(saved, trainer.rngs)
        if world.distributed:
            for name, g in trainer.rngs.items():
                g.set_state(saved["rank_rng"][world.rank][name])
        ctx.runtime["resumed_from"] = {"phase": phases[min(state.phase_index, len(phases) - 1)].name,
                                       "phase_index": state.phase_index, "epoch": state.epoch}
        ctx.log(f"resuming from {latest}: phase {state.phase_index + 1} of {len(phases)}, "
                f"{state.epoch} epochs done in it")
    elif ctx.execution.resume:
        ctx.log(f"nothing to resume in {ctx.folder}; starting from the beginning")
    if ctx.loggers is not None:
        ctx.loggers.call("start", TrackedRun(f"{ident['hash']}-seed-{config.seed}", ctx.folder,
                                             config_file.resolved(config, ctx.execution), latest.exists(),
                                             len(state.history), tracking_tags(ctx, ident, trainer)))
    t0 = time.perf_counter()
    history = trainer.run(phases, real, generators)
    ctx.timings["train_s"] = time.perf_counter() - t0
    ctx.runtime["step"] = trainer.step_info()
    if trainer.bank is not None:
        ctx.runtime["bank"] = trainer.bank.info()
    return model, state, history


def tracking_tags(ctx: Context, ident: dict[str, Any], trainer: Trainer) -> dict[str, str]:
    """:attr:`TrackedRun.tags`: the run's identity and seed, and the leaderboard's labels of its row, column and
    environment, computed as the leaderboard computes them from the record."""
    run = ctx.config.as_record()
    facts = {"env": {"device": str(ctx.device), "torch": torch.__version__}, "runtime": {"step": trainer.step_info()}}
    return {"identity": ident["hash"], "seed": str(ctx.config.seed), "segmenter": row_label(run),
            "strategy": strategy(run), "environment": run_environment(facts)}


def score(ctx: Context, model: torch.nn.Module, test: Prepared, split: Split) -> Scores:
    """Predict the test split and score every image at its original size."""
    t0 = time.perf_counter()
    probs = predict_probabilities(model, test, ctx.config.channels, ctx.device, ctx.config.eval_batch_size)
    per_image, summary, histogram = score_probabilities(
        probs, split, ctx.config.threshold, ctx.folder / "predictions" if ctx.execution.save_predictions else None)
    ctx.timings["evaluate_s"] = time.perf_counter() - t0
    return Scores(per_image, summary, histogram)


def write_record(ctx: Context, ident: dict[str, Any], scores: Scores, history: list[dict[str, Any]],
                 gen_info: list[dict[str, Any]], data: Data, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Write ``config.json``, ``env.json``, the plots and, last, ``results.json``; return the record."""
    env = environment(ctx.device)
    host, config = ctx.host, ctx.config
    components = {
        "segmenter": host.provenance("segmenters", config.seg_spec.name),
        "loss": host.provenance("losses", config.loss), "schedule": host.provenance("schedules", config.schedule),
        "generators": [host.provenance("generators", g) for g in config.gen],
        "data": host.provenance("datasets", config.data_spec.name),
        "test": host.provenance("datasets", config.test_spec.name),
    }
    drawn = {"run": config.as_record(), "runtime": ctx.runtime, "per_image": scores.per_image, "history": history}
    plots = [f"plots/{name}" for name in run_plots(drawn, ctx.folder / "plots")]
    if ctx.loggers is not None:
        ctx.runtime["loggers"] = ctx.loggers.report()
    runtime = {"device": str(ctx.device), **ctx.runtime}
    record = run_record(config, ident, runtime, scores, history, gen_info, env, plugin_versions(host),
                        data.fingerprints, ctx.timings, components, plots, checkpoint)
    write_json(ctx.folder / "config.json", {**ctx.config.as_record(), "identity": ident["hash"]})
    atomic_write_bytes(ctx.folder / config_file.FILE_NAME, config_file.dumps(
        config_file.resolved(ctx.config, ctx.execution),
        f"The resolved configuration of this run (identity {ident['hash']}); "
        f"bench run --config {config_file.FILE_NAME} runs it again.").encode())
    write_json(ctx.folder / "env.json", env)
    write_json(ctx.folder / RESULTS, record)
    if ctx.loggers is not None:  # given the record as written; one failing here is then recorded too
        ctx.loggers.call("finish", scores.summary, [ctx.folder / p for p in plots] + [ctx.folder / RESULTS])
        if ctx.loggers.report() != runtime["loggers"]:
            record["runtime"]["loggers"] = ctx.loggers.report()
            write_json(ctx.folder / RESULTS, record)
    record["_path"] = str(ctx.folder / RESULTS)
    return record
