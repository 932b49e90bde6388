"""The run configuration: what the user asked (:class:`RunOptions`) resolved into one frozen, typed
:class:`RunConfig`, and the identity that says which runs are the same experiment.

A ``RunConfig`` holds parsed values only (sizes as tuples, parsed specs, every protocol number); runtime facts
(device, image counts, parameter count, step settings, resume source) belong to the record's ``runtime``
section. Its :meth:`RunConfig.as_record` is the record's ``run`` section and :func:`identity` hashes what
changes what is trained or scored, seed excluded, so records are grouped by experiment, never by folder name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import bench
from bench.config import profiles
from bench.data.augment import AugmentConfig
from bench.plugin.components import EPOCH_FIELDS, ScheduleMeta, SegmenterMeta
from bench.data import channels
from bench.data.spec import Spec, format_size, parse_size, parse_spec
from bench.errors import ConfigError
from bench.plugin.options import name_of, resolve_spec
from bench.plugin import pretrained


@dataclass
class RunOptions:
    """What the user asked for; ``None`` means "the profile's or the component's default".

    ``overrides`` holds profile fields (:data:`bench.config.profiles.FIELDS`) from the command line, a file or a
    grid; :mod:`bench.config.layers` merges those sources in their order of precedence.
    """

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
    cuda_graph: bool = False
    bank_mb: int | None = None
    log: str | tuple[str, ...] | None = None
    subset: int | None = None
    subset_seed: int = 0
    exclude: str | None = None
    weights: str | None = None
    encoder_weights: str | None = None
    """``--encoder-weights TAG``: the segmenter's published pretrained encoder weights, from a local cache."""
    fold: str | None = None
    fold_seed: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Execution:
    """How a run is carried out, none of which changes what it trains or scores (so none of it is in
    ``RunConfig`` or its identity): where records go, the device, what to keep, restarts, the step's mode."""

    out: Path = Path("runs")
    device: str = "auto"
    save_predictions: bool = False
    force: bool = False
    resume: bool = False
    cuda_graph: bool = False
    bank_mb: int | None = None
    log: tuple[str, ...] = ()
    """``--log`` loggers, by name."""


def execution(opts: RunOptions) -> Execution:
    """The execution part of what the user asked (``--log`` may come as ``a,b`` from a grid or a config file)."""
    logs = opts.log.split(",") if isinstance(opts.log, str) else list(opts.log or ())
    same = {f.name: getattr(opts, f.name) for f in fields(Execution) if f.name not in ("out", "log")}
    return Execution(out=Path(opts.out), log=tuple(n.strip() for n in logs if n.strip()), **same)


#: ``RunOptions`` fields a grid or ``--set`` may give (the others are per invocation, not per run).
GRID_RUN_OPTIONS = tuple(f.name for f in fields(RunOptions)
                         if f.name not in {"seed", "out", "force", "resume", "overrides", "data"})


@dataclass(frozen=True)
class Exclusion:
    """The ``--exclude`` list: the file it came from and the ids (sorted), with their hash."""

    file: str
    ids: tuple[str, ...]

    @property
    def sha256(self) -> str:
        return hashlib.sha256("\n".join(sorted(self.ids)).encode()).hexdigest()

    def as_record(self) -> dict[str, Any]:
        return {"file": self.file, "n_ids": len(self.ids), "sha256": self.sha256}


@dataclass(frozen=True)
class RunConfig:
    """Every value a run uses, parsed and checked, defaults filled in; nothing that is a runtime fact.

    Profile fields are attributes (``config.epochs``); ``config["epochs"]`` works too, for schedules
    written against the earlier dict.
    """

    gen: tuple[str, ...]
    seg: str
    seg_spec: Spec
    loss: str
    loss_default: str
    schedule: str
    schedule_uses: tuple[str, ...]
    profile: str
    seed: int
    data: str
    data_spec: Spec
    test: str
    test_spec: Spec
    size: tuple[int, int]
    channels: str
    gan_size: tuple[int, int] | None
    batch_size: int
    lr: float
    epochs: int
    synthetic_epochs: int
    finetune_epochs: int
    gan_epochs: int | None
    gan_batch_size: int | None
    gan_lr: float | None
    sample_steps: int | None
    """DDIM steps for the run's iterative generators (``iterative``); ``None`` when it has none."""
    width: float
    threshold: float
    eval_batch_size: int
    curve_every: int = 1
    """Epochs between two points of the training curve (and the last of each phase); not part of identity."""
    curve_split: str = "scored"
    """What the curve is computed on: ``scored`` (the scored split) or ``holdout:F`` (training pairs held out
    from all training, so part of identity); see :attr:`curve_holdout`."""
    augment: AugmentConfig = AugmentConfig()
    optimizer: str = "adam"
    protocol_version: int = bench.PROTOCOL_VERSION
    weights: str | None = None
    weights_sha256: str | None = None
    encoder_weights: str | None = None
    """The ``--encoder-weights`` tag (``imagenet``); with it, the file found and its SHA-256, which identity holds."""
    encoder_weights_sha256: str | None = None
    encoder_weights_file: str | None = None
    subset: int | None = None
    subset_seed: int | None = None
    exclude: Exclusion | None = None
    fold: tuple[int, int] | None = None
    """``(k, n)``: train on the other ``n - 1`` folds of the training split, score fold ``k`` (1-based)."""
    fold_seed: int | None = None
    nproc: int = 1
    overrides: tuple[tuple[str, Any], ...] = ()
    """The profile settings that differ from the profile's (and the segmenter's) defaults: they name the folder."""
    iterative: tuple[str, ...] = ()
    """The generators of ``gen`` that sample in ``sample_steps`` steps (their metadata says so)."""

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    @property
    def curve_holdout(self) -> float | None:
        """The fraction of the training split held out for the curve (``holdout:F``), or ``None`` (``scored``)."""
        return profiles.parse_curve_split(self.curve_split)

    def as_record(self) -> dict[str, Any]:
        """The record's ``run`` section: JSON values, the same keys records have always had (``curve_split`` only
        when it holds pairs out: a curve on the scored split changes nothing trained, and no identity; the
        ``encoder_weights`` keys only with ``--encoder-weights``, so that other runs keep their identity)."""
        settings = {f.name: format_size(v) if isinstance(v, tuple) else v
                    for f in profiles.FIELDS for v in [getattr(self, f.name)]
                    if not (f.name == "sample_steps" and v is None) and not (f.name == "curve_split" and v == "scored")}
        return {
            "gen": list(self.gen), "seg": self.seg, "loss": self.loss, "loss_default": self.loss_default,
            "schedule": self.schedule, "profile": self.profile, "seed": self.seed, **settings, "test": self.test,
            "optimizer": self.optimizer, "augment": self.augment.as_dict(), "protocol_version": self.protocol_version,
            "weights": self.weights, "weights_sha256": self.weights_sha256,
            **({"encoder_weights": self.encoder_weights, "encoder_weights_sha256": self.encoder_weights_sha256,
                "encoder_weights_file": self.encoder_weights_file} if self.encoder_weights else {}),
            "subset": self.subset, "subset_seed": self.subset_seed,
            "exclude": self.exclude.as_record() if self.exclude else None,
            **({"fold": f"{self.fold[0]}/{self.fold[1]}", "fold_seed": self.fold_seed} if self.fold else {}),
            "nproc": self.nproc, "schedule_uses": list(self.schedule_uses),
            "overrides": dict(self.overrides),
            "data_name": self.data_spec.name, "test_name": self.test_spec.name,
        }

    def generator_config(self, name: str) -> dict[str, Any]:
        """The values that shape generator ``name`` when this run trains it (its cache key's config)."""
        return generator_config(name, self.gan_size, self.width, self.gan_lr, self.gan_epochs, self.gan_batch_size,
                                self.sample_steps if name in self.iterative else None)


@dataclass(frozen=True)
class GanConfig:
    """What ``bench gan`` trains: one generator resolved from the same settings table as a run (its ``gan``
    fields and ``data``), so that a run and ``bench gan`` with equal settings share one cache entry."""

    gen: str
    profile: str
    seed: int
    data: str
    data_spec: Spec
    gan_size: tuple[int, int]
    width: float
    gan_lr: float
    gan_epochs: int
    gan_batch_size: int
    sample_steps: int | None
    """``None`` unless the generator is iterative."""
    overrides: tuple[tuple[str, Any], ...] = ()
    """The ``gan`` settings that differ from the profile's: they name the quality record's folder."""

    def generator_config(self) -> dict[str, Any]:
        """The generator's cache-key configuration, as a run with these settings computes it."""
        return generator_config(self.gen, self.gan_size, self.width, self.gan_lr, self.gan_epochs,
                                self.gan_batch_size, self.sample_steps)


def build_gan(host: Any, gen: str, profile: str, seed: int, overrides: dict[str, Any]) -> GanConfig:
    """Resolve ``bench gan``'s options (``data`` and the ``gan`` fields) against the profile."""
    gen = resolve_spec(host, "generators", gen, "--gen").text
    prof = profiles.resolve(profile, overrides)
    defaults = profiles.PROFILES[profile]
    named = tuple(sorted((f.name, prof[f.name]) for f in profiles.GAN_FIELDS if prof[f.name] != defaults[f.name]))
    data = resolve_spec(host, "datasets", prof["data"], "--data").text
    return GanConfig(gen=gen, profile=profile, seed=seed, data=data, data_spec=parse_spec(data, "--data"),
                     gan_size=parse_size(prof["gan_size"], "--gan-size"), width=prof["width"], gan_lr=prof["gan_lr"],
                     gan_epochs=prof["gan_epochs"], gan_batch_size=prof["gan_batch_size"],
                     sample_steps=prof["sample_steps"] if iterative_generators(host, (gen,)) else None,
                     overrides=named)


def generator_config(name: str, size: tuple[int, int] | None, width: float, lr: float | None, epochs: int | None,
                     batch_size: int | None, sample_steps: int | None = None) -> dict[str, Any]:
    """The values that shape a trained generator and its samples (shared by runs and ``bench gan``);
    ``sample_steps`` only for an iterative generator, ``options`` only when the spec ``name`` gives some (GAN
    configurations stay as they always were). ``name`` is a canonical spec (``dcgan?real_label=0.8``)."""
    spec = parse_spec(name, "--gen")
    config: dict[str, Any] = {"name": spec.name, "size": format_size(size) if size else None, "width": width,
                              "lr": lr, "epochs": epochs, "batch_size": batch_size}
    if spec.options:
        config["options"] = dict(spec.options)
    if sample_steps is not None:
        config["sample_steps"] = sample_steps
    return config


RESOLVED_APART = ("data", "size", "channels", "gan_size", "gan_epochs", "gan_batch_size", "gan_lr", "sample_steps")
"""Profile settings ``build`` resolves itself (parsed, defaulted by the segmenter, ``None`` when the run has no
use for them); every other setting of the table reaches ``RunConfig`` as the profile (or an override) gives it."""


def changed_settings(config: RunConfig, seg_meta: SegmenterMeta) -> tuple[tuple[str, Any], ...]:
    """The profile settings ``config`` uses whose values differ from what its profile (and, for size and channels,
    its segmenter) gives anyway, ``data`` aside: what names a run's folder, however the values were given (typed
    on the command line, read from a file or a grid), so that one run has one folder. A setting the run does
    not use (a GAN setting of a real-only run, an epoch count its schedule does not read) names nothing."""
    defaults = dict(profiles.PROFILES[config.profile])
    defaults["size"] = format_size(parse_size(defaults["size"] or seg_meta.size, "size"))
    defaults["channels"] = defaults["channels"] or seg_meta.channels
    named = []
    for f in profiles.FIELDS:
        value = getattr(config, f.name)
        value = format_size(value) if isinstance(value, tuple) else value
        if f.name == "data" or value is None or (f.name in EPOCH_FIELDS and f.name not in config.schedule_uses):
            continue
        if value != defaults[f.name]:
            named.append((f.name, value))
    return tuple(sorted(named))


def iterative_generators(host: Any, gens: tuple[str, ...]) -> tuple[str, ...]:
    """Those of ``gens`` whose metadata says they sample in a chosen number of steps."""
    return tuple(g for g in gens if getattr(host.registry.get("generators", name_of(g)).meta, "iterative", False))



def read_exclude(path: str) -> Exclusion:
    """Image ids, one per line (blank lines and ``#`` comments ignored), from the ``--exclude`` file."""
    file = Path(path).expanduser()
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--exclude {path}: cannot read it ({exc}); expected a text file of image ids") from None
    ids = [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]
    return Exclusion(str(file.resolve()), tuple(sorted(set(ids))))


def parse_fold(text: str) -> tuple[int, int]:
    """``K/N`` (``1 <= K <= N``, ``N >= 2``) -> ``(K, N)``; the error names ``--fold`` and the expected form."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"--fold {text}: expected K/N, e.g. 1/5 (fold K of N, counted from 1)") from None
    if n < 2 or not 1 <= k <= n:
        raise ConfigError(f"--fold {text}: expected 1 <= K <= N and N >= 2, e.g. 1/5")
    return k, n


def build(host: Any, opts: RunOptions, nproc: int = 1) -> RunConfig:
    """Resolve ``opts`` against the profile and the components' metadata; every error names its option."""
    seg_resolved = resolve_spec(host, "segmenters", opts.seg, "--seg")
    seg_spec = seg_resolved.spec
    seg = host.registry.get("segmenters", seg_spec.name)
    seg_meta: SegmenterMeta = seg.meta
    text = opts.gen.strip()
    given = () if text.lower() == "none" else tuple(g.strip() for g in text.split(",") if g.strip())
    if any(name_of(g).lower() == "none" for g in given):
        raise ConfigError(f"--gen {text}: none (no generator) takes no options and joins no list; pass --gen none")
    if not given and text.lower() != "none":
        raise ConfigError("--gen: expected a generator name, a comma-separated list, or none")
    gens = tuple(resolve_spec(host, "generators", g, "--gen").text for g in given)
    schedule = resolve_spec(host, "schedules", opts.schedule or ("two-phase" if gens else "real-only"),
                            "--schedule").text
    sched_meta: ScheduleMeta = host.registry.get("schedules", name_of(schedule)).meta
    if sched_meta.needs_generator and not gens:
        raise ConfigError(f"--schedule {schedule} needs a generator; pass --gen NAME, or use --schedule real-only")
    if not sched_meta.needs_generator and gens:
        raise ConfigError(f"--schedule {schedule} uses no generator; drop --gen or choose --schedule two-phase")
    loss = resolve_spec(host, "losses", opts.loss or seg_meta.loss, "--loss").text
    overrides = dict(opts.overrides)
    if opts.data is not None:
        overrides["data"] = opts.data
    prof = profiles.resolve(opts.profile, overrides)
    size = parse_size(prof["size"] or seg_meta.size, "--size")
    channel_set = prof["channels"] or seg_meta.channels
    try:
        channels.channel_count(channel_set)
    except ConfigError as exc:
        raise ConfigError(f"--channels: {str(exc).split(': ', 1)[-1]}") from None
    if opts.seed < 0:
        raise ConfigError(f"--seed: must be 0 or more, got {opts.seed}")
    if opts.subset is not None and opts.subset < 1:
        raise ConfigError(f"--subset: must be at least 1, got {opts.subset}")
    weights_sha = weights = None
    if opts.weights:
        path = Path(opts.weights).expanduser()
        if not path.is_file():
            raise ConfigError(f"--weights {opts.weights}: file not found; expected a local weights file")
        weights, weights_sha = str(path.resolve()), hashlib.sha256(path.read_bytes()).hexdigest()
    if opts.encoder_weights is not None and not opts.encoder_weights.strip():
        raise ConfigError("--encoder-weights: empty; expected a tag such as imagenet (or leave the option out to "
                          "start from random weights)")
    if opts.weights and opts.encoder_weights:
        raise ConfigError(f"--weights {opts.weights} and --encoder-weights {opts.encoder_weights} both set the "
                          "encoder's weights (a local file, or published pretrained ones); keep one of them")
    encoder = pretrained.resolve(host, seg_spec, opts.encoder_weights) if opts.encoder_weights else None
    exclude = read_exclude(opts.exclude) if opts.exclude else None
    data = resolve_spec(host, "datasets", prof["data"], "--data").text
    fold = parse_fold(opts.fold) if opts.fold else None
    if fold and opts.test:
        raise ConfigError(f"--fold {opts.fold} scores the held-out fold of the training data; drop --test {opts.test}")
    if opts.fold_seed < 0:
        raise ConfigError(f"--fold-seed: must be 0 or more, got {opts.fold_seed}")
    test = resolve_spec(host, "datasets", opts.test, "--test").text if opts.test else data
    iterative = iterative_generators(host, gens)
    config = RunConfig(
        gen=gens, seg=seg_resolved.text, seg_spec=seg_spec, loss=loss, loss_default=seg_meta.loss, schedule=schedule,
        schedule_uses=sched_meta.uses or EPOCH_FIELDS, profile=opts.profile, seed=opts.seed,
        data=data, data_spec=parse_spec(data, "--data"), test=test, test_spec=parse_spec(test, "--test"),
        size=size, channels=channel_set,
        gan_size=parse_size(prof["gan_size"], "--gan-size") if gens else None,
        gan_epochs=prof["gan_epochs"] if gens else None, gan_batch_size=prof["gan_batch_size"] if gens else None,
        gan_lr=prof["gan_lr"] if gens else None, sample_steps=prof["sample_steps"] if iterative else None,
        **{name: prof[name] for name in profiles.BY_NAME if name not in RESOLVED_APART},
        iterative=iterative, weights=weights, weights_sha256=weights_sha,
        encoder_weights=encoder.tag if encoder else None, encoder_weights_sha256=encoder.sha256 if encoder else None,
        encoder_weights_file=encoder.file if encoder else None,
        subset=opts.subset, subset_seed=opts.subset_seed if opts.subset is not None else None,
        exclude=exclude, fold=fold, fold_seed=opts.fold_seed if fold else None, nproc=nproc,
    )
    return replace(config, overrides=changed_settings(config, seg_meta))
