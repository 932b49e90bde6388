"""``bench sweep GRID --estimate --perf FILE``: the GPU time a grid will take, from ``bench perf --json`` files.

Each run's phases are images to train (epochs x training pairs); each is divided by the measured images/s
of the matching ``bench perf`` row (same component, size, batch, step and processes at once): the
segmenter's own row for real batches, its ``+ GEN samples`` row for synthetic ones (generators alternate
batch by batch), the real row plus half the sampling overhead for mixed ones. Each generator is trained
once per sweep (runs share it), at its ``(GAN training)`` row. Evaluation and data preparation are not
counted. With ``--runs-per-gpu K`` the rows must come from ``bench perf --processes K``: their images/s
are what K runs reach together, so each run gets a K-th of it. A run without its measurement gets no
number, and neither does the total.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import config as configuration
from bench.build import build_loss_and_phases
from bench.config import RunConfig, RunOptions
from bench.data.spec import format_size
from bench.errors import ConfigError
from bench.options import split_run_options
from bench.plugins import PluginHost


@dataclass(frozen=True)
class Need:
    """One measurement a run needs: a ``bench perf`` row."""

    component: str
    size: str
    batch: int
    graph: bool
    sample_steps: int | None = None
    """For a sampling row of an iterative generator: the steps it sampled in (a row at 50 is not one at 10)."""

    def command(self, processes: int) -> str:
        """The ``bench perf`` call that measures it."""
        if self.component.endswith(" (GAN training)"):
            what = f"--gen {self.component.split(' ')[0]}"
        elif " + " in self.component:
            seg, gen = self.component.split(" + ")
            what = f"--seg {seg} --gen {gen.split(' ')[0]} --with-sampling"
        else:
            what = f"--seg {self.component}"
        return (f"bench perf {what} --size {self.size} --batch {self.batch}"
                + (f" --sample-steps {self.sample_steps}" if self.sample_steps else "")
                + (" --cuda-graph" if self.graph else "") + (f" --processes {processes}" if processes > 1 else "")
                + " --device cuda --data DATA --json")


@dataclass
class RunEstimate:
    entry: dict[str, Any]
    images: dict[str, int]
    gan_s: float | None
    train_s: float | None
    missing: list[Need] = field(default_factory=list)

    @property
    def total_s(self) -> float | None:
        return None if self.gan_s is None or self.train_s is None else self.gan_s + self.train_s


def load_rows(paths: list[Path], processes: int) -> dict[Need, float]:
    """Images/s of each measured row of the ``bench perf --json`` files taken with ``processes`` at once."""
    rows: dict[Need, float] = {}
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
            file_rows, file_processes = data["rows"], int(data.get("processes", 1))
        except OSError as exc:
            raise ConfigError(f"--perf {path}: cannot read it ({exc})") from None
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"--perf {path}: not the output of bench perf --json (expected an object with "
                              "'rows')") from None
        if file_processes != processes:
            raise ConfigError(f"--perf {path}: measured with {file_processes} process(es) at once, but "
                              f"--runs-per-gpu is {processes}; measure with bench perf ... --processes {processes}")
        for row in file_rows:
            need = Need(row["component"], row["size"], int(row["batch"]), bool(row.get("cuda_graph", False)),
                        row.get("sample_steps"))
            rows[need] = float(row["train_img_s"])
    return rows


def estimate(host: PluginHost, entries: list[dict[str, Any]], perf_files: list[Path], runs_per_gpu: int = 1
             ) -> list[RunEstimate]:
    """Each run's projected GPU seconds; GAN training counted at the first run that needs the generator."""
    from bench.run import open_data
    from bench.sweep import generator_needs

    rows = load_rows(perf_files, runs_per_gpu)
    datasets: dict[str, Any] = {}
    trained: set[str] = set()
    out = []
    for entry in entries:
        own, overrides = split_run_options(entry["cell"])
        opts = RunOptions(**{**own, "seed": entry["seed"], "gen": str(own.get("gen", "none")),
                             "overrides": overrides})
        config = configuration.build(host, opts)
        if config.nproc > 1 or "--nproc" in entry["args"]:
            raise ConfigError("--estimate: runs with several GPUs each (--gpus-per-job > 1) are not estimated; "
                              "bench perf measures one GPU")
        n_train = len(open_data(host, config, datasets).train)
        _, phases = build_loss_and_phases(host, config.loss, config.schedule, config)
        run = RunEstimate(entry, {"real": 0, "synthetic": 0, "mixed": 0}, 0.0, 0.0)
        for phase in phases:
            run.images[phase.source] += phase.epochs * n_train
        run.train_s = _train_seconds(config, run, rows, runs_per_gpu)
        for g, key in zip(config.gen, generator_needs(entry)):
            if key in trained:
                continue
            trained.add(key)
            assert config.gan_size is not None and config.gan_epochs is not None and config.gan_batch_size
            rate = _rate(rows, Need(f"{g} (GAN training)", format_size(config.gan_size), config.gan_batch_size,
                                    False), run, runs_per_gpu)
            if rate is not None and run.gan_s is not None:
                run.gan_s += config.gan_epochs * n_train / rate
            elif rate is None:
                run.gan_s = None
        out.append(run)
    return out


def _rate(rows: dict[Need, float], need: Need, run: RunEstimate, processes: int) -> float | None:
    """One run's images/s for ``need`` (a K-th of what K runs reach together), or ``None``, noted as missing."""
    if need not in rows:
        if need not in run.missing:
            run.missing.append(need)
        return None
    return rows[need] / processes


def _train_seconds(config: RunConfig, run: RunEstimate, rows: dict[Need, float], processes: int) -> float | None:
    size, batch = format_size(config.size), config.batch_size
    graph = bool(run.entry["cell"].get("cuda_graph", False))
    seconds = 0.0
    real = _rate(rows, Need(config.seg, size, batch, graph), run, processes)
    if run.images["synthetic"] or run.images["mixed"]:
        per_image = [_rate(rows, Need(f"{config.seg} + {g} samples", size, batch, graph,
                                      config.sample_steps if g in config.iterative else None), run, processes)
                     for g in config.gen]
        if real is None or any(r is None for r in per_image):
            return None
        synthetic = sum(1 / r for r in per_image if r) / len(per_image)  # seconds per synthetic image
        seconds += run.images["synthetic"] * synthetic
        seconds += run.images["mixed"] * (1 / real + 0.5 * (synthetic - 1 / real))
    if real is None:
        return None
    return seconds + run.images["real"] / real


def hours(seconds: float) -> str:
    """A duration as people read it: seconds, minutes or hours."""
    if seconds >= 360:
        return f"{seconds / 3600:.2f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"
