"""``bench sweep GRID --estimate --perf FILE``: the GPU time a grid will take, from ``bench perf --json`` rows.

A run is priced as it spends its time: each real epoch at its segmenter's step row (same segmenter, size,
channels, loss, batch, width and step mode); each synthetic epoch at the same step plus the bank's refill,
the generator's calls at its sampling row (same generator, output size, width and sampling steps, resized to
the segmenter's size); a mixed epoch at the step plus half those refills; every point of the training curve
(``--curve-every``) and the final prediction at the step row's evaluation rate; and each generator's training,
once per sweep, at its GAN training row (generator, size, batch, width). :func:`needs` lists exactly the rows a
grid needs, which ``bench perf --grid`` measures. With ``--runs-per-gpu K`` the rows must come from ``bench perf
--processes K``: their rates are what K runs reach together, so each run gets a K-th. A run without a
measurement gets no number, and neither does the total; data preparation and scoring at the original image
sizes (host work, seconds) are not counted.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.train import bank as synthetic_bank
from bench.config import run as configuration
from bench.plugin.build import build_loss_and_phases
from bench.config.run import RunConfig
from bench.data.spec import format_size
from bench.errors import ConfigError
from bench.config.layers import run_options
from bench.plugin.host import PluginHost

PERF_SCHEMA = 2
"""2: rows are keyed by every setting that changes a rate (kind, width, channels, loss, GAN size, eval batch);
sampling is measured apart from the step. Files of schema 1 priced runs from rows of other settings."""


@dataclass(frozen=True)
class Need:
    """One measurement a run needs: a ``bench perf`` row, keyed by everything that changes its rate."""

    kind: str
    """``step`` (a segmenter's training step and its evaluation), ``sampling`` (a generator filling the bank)
    or ``gan`` (a generator's training)."""
    name: str
    size: str
    """The segmenter's input size (step, and the size sampled pairs are resized to), or the GAN's size."""
    batch: int = 0
    width: float = 1.0
    channels: str | None = None
    loss: str | None = None
    graph: bool = False
    eval_batch: int | None = None
    gan_size: str | None = None
    sample_steps: int | None = None

    @property
    def component(self) -> str:
        """The row's label in tables."""
        if self.kind == "gan":
            return f"{self.name} (GAN training)"
        if self.kind == "sampling":
            return f"{self.name} samples"
        return self.name

    def describe(self) -> str:
        """One line naming the row and the settings it is measured at."""
        parts = {"step": ["size", "channels", "loss", "batch", "width", "graph", "eval_batch"],
                 "sampling": ["gan_size", "size", "width", "sample_steps"],
                 "gan": ["size", "batch", "width"]}[self.kind]
        shown = [f"{k} {getattr(self, k)}" for k in parts if getattr(self, k) not in (None, False)]
        return f"{self.component}: {', '.join(shown)}"

    def as_row(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items()}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Need:
        """The need a ``bench perf`` row measured (``KeyError`` when it names no kind)."""
        if row.get("kind") not in ("step", "sampling", "gan"):
            raise KeyError("kind")
        return cls(**{f: row.get(f) for f in cls.__dataclass_fields__ if f in row})  # type: ignore[arg-type]


RATES = {"step": ("train_img_s", "eval_img_s"), "sampling": ("sample_pairs_s", "draw"), "gan": ("train_img_s",)}
"""What the estimate reads of each kind of row."""


@dataclass
class RunPlan:
    """What one run of a grid will do, counted: images per source, curve points, the rows it needs."""

    entry: dict[str, Any]
    config: RunConfig
    n_train: int
    n_test: int
    images: dict[str, int]
    curve_points: int
    step: Need
    sampling: list[Need]
    gans: list[tuple[str, Need]]
    """``(generator key, need)``: runs with one key share one trained generator."""
    needs_per_epoch: dict[str, list[int]]
    """Pairs each generator gives per epoch of a synthetic or mixed phase."""
    n_curve: int = 0
    """Pairs each point of the training curve predicts: the held-out ones (``--curve-split holdout:F``), else the
    scored split's."""

    @property
    def needs(self) -> list[Need]:
        return [self.step, *self.sampling, *(n for _, n in self.gans)]


@dataclass
class RunEstimate:
    plan: RunPlan
    gan_s: float | None
    train_s: float | None
    eval_s: float | None
    missing: list[Need] = field(default_factory=list)

    @property
    def entry(self) -> dict[str, Any]:
        return self.plan.entry

    @property
    def images(self) -> dict[str, int]:
        return self.plan.images

    @property
    def total_s(self) -> float | None:
        parts = (self.gan_s, self.train_s, self.eval_s)
        return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)


def curve_points(epochs: list[int], every: int) -> int:
    """Points of the training curve over phases of ``epochs``: every ``every``-th epoch of each and its last."""
    return sum(e // every + (1 if e % every else 0) for e in epochs if e > 0)


def plan(host: PluginHost, entries: list[dict[str, Any]]) -> list[RunPlan]:
    """Each sweep entry's run, counted from its resolved configuration and its data."""
    from bench.train.run import open_data
    from bench.sweep.runner import generator_needs

    datasets: dict[str, Any] = {}
    plans = []
    for entry in entries:
        config = configuration.build(host, run_options(entry["cell"], seed=entry["seed"]))
        if config.nproc > 1 or "--nproc" in entry["args"]:
            raise ConfigError("--estimate: runs with several GPUs each (--gpus-per-job > 1) are not estimated; "
                              "bench perf measures one GPU")
        data = open_data(host, config, datasets)
        n_train, n_test = len(data.train), len(data.test)
        n_curve = len(data.curve) if data.curve is not None else n_test
        _, phases = build_loss_and_phases(host, config.loss, config.schedule, config)
        images = {"real": 0, "synthetic": 0, "mixed": 0}
        per_epoch: dict[str, list[int]] = {}
        batches = [min(config.batch_size, n_train - s) for s in range(0, n_train, config.batch_size)]
        for phase in phases:
            images[phase.source] += phase.epochs * n_train
            if phase.source != "real":
                per_epoch[phase.source] = synthetic_bank.epoch_needs(phase.source, batches, len(config.gen))
        size, graph = format_size(config.size), bool(entry["cell"].get("cuda_graph", False))
        step = Need("step", config.seg, size, config.batch_size, config.width, config.channels, config.loss, graph,
                    config.eval_batch_size)
        sampling = [Need("sampling", g, size, 0, config.width, gan_size=format_size(config.gan_size),
                         sample_steps=config.sample_steps if g in config.iterative else None)
                    for g in config.gen] if config.gan_size else []
        gans = [(key, Need("gan", g, format_size(config.gan_size), config.gan_batch_size or 0, config.width))
                for g, key in zip(config.gen, generator_needs(entry))] if config.gan_size else []
        plans.append(RunPlan(entry, config, n_train, n_test, images,
                             curve_points([p.epochs for p in phases], config.curve_every), step, sampling, gans,
                             per_epoch, n_curve))
    return plans


def needs(plans: list[RunPlan]) -> list[Need]:
    """Every row the runs need, each once, in a stable order (steps, sampling, GAN training)."""
    seen: dict[Need, None] = {}
    for kind in ("step", "sampling", "gan"):
        for p in plans:
            for need in p.needs:
                if need.kind == kind:
                    seen.setdefault(need)
    return list(seen)


ROW_TYPES: dict[str, tuple[type, ...]] = {
    "kind": (str,), "name": (str,), "size": (str,), "batch": (int,), "width": (int, float),
    "channels": (str, type(None)), "loss": (str, type(None)), "graph": (bool,), "eval_batch": (int, type(None)),
    "gan_size": (str, type(None)), "sample_steps": (int, type(None)),
}
"""The type of each key of a ``bench perf`` row that keys a :class:`Need` (``kind``, ``name``, ``size`` required)."""


def _need_of(row: Any) -> Need:
    """The need ``row`` measured, or a ValueError saying what is wrong with it: a hand-edited file is refused whole."""
    if not isinstance(row, dict):
        raise ValueError(f"is a {type(row).__name__}, not an object")
    if row.get("kind") not in RATES:
        raise ValueError(f"has kind {row.get('kind')!r}; expected one of {', '.join(RATES)}")
    missing = [k for k in ("name", "size") if k not in row]
    if missing:
        raise ValueError(f"has no {' or '.join(missing)}")
    for key, types in ROW_TYPES.items():
        value = row.get(key)
        if key in row and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
                           or (isinstance(value, float) and not math.isfinite(value))):
            expected = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ValueError(f"has {key} {value!r}; expected {expected}")
    return Need.from_row(row)


MIN_RATE = 1e-6
"""The slowest rate a measurement may report (images or pairs per second): below it, a row is not a measurement
(and an estimate from it would be infinite)."""


def _rate(value: Any) -> bool:
    """Whether ``value`` is a measured rate: a finite number (not a bool) of at least :data:`MIN_RATE`."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value)) and float(value) >= MIN_RATE
    except OverflowError:  # an integer too large for a float
        return False


def load_rows(paths: list[Path], processes: int) -> dict[Need, dict[str, Any]]:
    """The rows of the ``bench perf --json`` files taken with ``processes`` at once, by what they measured."""
    rows: dict[Need, dict[str, Any]] = {}
    origin: dict[Need, str] = {}
    again = "measure again with bench perf --grid GRID --json"
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"--perf {path}: cannot read it ({exc})") from None
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict) or "rows" not in data:
            raise ConfigError(f"--perf {path}: not the output of bench perf --json (expected an object with "
                              "'rows')")
        schema = data.get("schema", 1)
        if schema != PERF_SCHEMA:
            if isinstance(schema, int) and schema > PERF_SCHEMA:
                raise ConfigError(f"--perf {path}: written by a newer bench perf (schema {schema}; this version reads "
                                  f"{PERF_SCHEMA}); upgrade skinbench or measure again with this version")
            raise ConfigError(f"--perf {path}: written by an older bench perf (schema {schema}), whose "
                              "rows left out settings that change a rate (width, channels, GAN size); measure "
                              "again with this version (bench perf --grid GRID --json)")
        file_rows, file_processes = data["rows"], data.get("processes", 1)
        if not isinstance(file_processes, int) or isinstance(file_processes, bool) or file_processes < 1:
            raise ConfigError(f"--perf {path}: processes is {file_processes!r}; expected a positive integer "
                              f"(the --processes it was measured with); {again}")
        if file_processes != processes:
            raise ConfigError(f"--perf {path}: measured with {file_processes} process(es) at once, but "
                              f"--runs-per-gpu is {processes}; measure with bench perf ... --processes {processes}")
        if not isinstance(file_rows, list):  # an empty list is a file that measured nothing: every need is listed
            raise ConfigError(f"--perf {path}: 'rows' is a {type(file_rows).__name__}; expected a list of bench perf "
                              f"rows; {again}")
        for i, row in enumerate(file_rows):
            try:
                need = _need_of(row)
            except ValueError as exc:
                raise ConfigError(f"--perf {path}: row {i + 1} is not a bench perf row (it {exc}); {again}") from None
            missing = [k for k in RATES[need.kind] if not _rate(row.get(k))]
            if missing:
                raise ConfigError(f"--perf {path}: row {i + 1} ({need.component}) has no finite "
                                  f"{' or '.join(missing)} of at least {MIN_RATE:g} per second; {again}")
            if need in rows:
                raise ConfigError(f"--perf {path}: row {i + 1} ({need.describe()}) is measured in "
                                  f"{origin[need]} too; give each measurement once")
            rows[need] = row
            origin[need] = f"{path} (row {i + 1})"
    return rows


def machine_of(paths: list[Path]) -> dict[str, Any]:
    """The machine the first ``--perf`` file was measured on (``{}`` when it does not say)."""
    try:
        return dict(json.loads(Path(paths[0]).read_text()).get("machine") or {})
    except (OSError, ValueError, AttributeError, IndexError, TypeError):
        return {}


def estimate(host: PluginHost, entries: list[dict[str, Any]], perf_files: list[Path], runs_per_gpu: int = 1
             ) -> list[RunEstimate]:
    """Each run's projected GPU seconds; GAN training counted at the first run that needs the generator."""
    rows = load_rows(perf_files, runs_per_gpu)
    trained: set[str] = set()
    out = []
    for p in plan(host, entries):
        run = RunEstimate(p, 0.0, None, None)

        def row(need: Need) -> dict[str, Any] | None:
            if need not in rows:
                if need not in run.missing:
                    run.missing.append(need)
                return None
            return rows[need]

        step = row(p.step)
        samplers = [row(n) for n in p.sampling]
        if step is not None:
            eval_rate = step["eval_img_s"] / runs_per_gpu
            run.eval_s = (p.curve_points * p.n_curve + p.n_test) / eval_rate  # the curve, and the final prediction
            if all(s is not None for s in samplers):
                run.train_s = _train_seconds(p, step, [s for s in samplers if s is not None], runs_per_gpu)
        for key, need in p.gans:
            if key in trained:
                continue
            trained.add(key)
            gan = row(need)
            if gan is None:
                run.gan_s = None
            elif run.gan_s is not None:
                assert p.config.gan_epochs is not None
                run.gan_s += p.config.gan_epochs * p.n_train / (gan["train_img_s"] / runs_per_gpu)
        out.append(run)
    return out


def _train_seconds(p: RunPlan, step: dict[str, Any], samplers: list[dict[str, Any]], processes: int) -> float:
    """Segmenter training: every image at the step's rate, and each synthetic or mixed epoch's bank refills
    (whole calls of ``draw`` pairs per generator, as the bank makes them)."""
    seconds = sum(p.images.values()) / (step["train_img_s"] / processes)
    for source, per_epoch in p.needs_per_epoch.items():
        epochs = p.images[source] // max(p.n_train, 1)
        for need, sampler in zip(per_epoch, samplers):
            draw = min(sampler["draw"], need) if need else sampler["draw"]  # a ring smaller than a call draws less
            calls = math.ceil(need / draw) if need else 0
            seconds += epochs * calls * draw / (sampler["sample_pairs_s"] / processes)
    return seconds


def hours(seconds: float) -> str:
    """A duration as people read it: seconds, minutes or hours."""
    if seconds >= 360:
        return f"{seconds / 3600:.2f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"
