"""Grids of runs: built-in and TOML grids, each run resolved once (folder, identity, cell file), the sweep's state.

A sweep lives in ``OUT/sweeps/<name>/``: ``sweep.json`` lists every run (its ``bench run`` arguments, its
run folder, its job), ``cells/`` each run's resolved settings and ``jobs/`` the logs (``executors`` submits). A run is done when its run folder
holds a finished record, so submitting a sweep again submits only what is not done (and unfinished runs
resume from their checkpoints).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench.config import run as configuration
from bench.config.run import RunOptions
from bench.errors import ConfigError
from bench.config.file import read_toml
from bench.config.layers import Layer, merge, run_options
from bench.config.options import cast_setting, unique_keys
from bench.plugin.host import PluginHost
from bench.plugin.options import resolve_spec
from bench.results.records import run_dir
from bench.results.reader import RecordProblem, read_record
from bench.storage.atomic import atomic_write_bytes, write_json


STRATEGIES = ["none", "dcgan", "lapgan", "dcgan,lapgan"]
TABLE2_SEGMENTERS = [f"cdnn{i}" for i in range(7)]



@dataclass
class Grid:
    """A named list of cells, crossed with the seeds: each cell is the ``bench run`` settings its axes give,
    ``shared`` what every run takes (a grid file's ``[run]`` table)."""

    name: str
    cells: list[dict[str, Any]]
    seeds: list[int] = field(default_factory=lambda: [0])
    description: str = ""
    shared: dict[str, Any] = field(default_factory=dict)

    def layers(self, cell: dict[str, Any]) -> list[Layer]:
        """The grid's layers of the configuration pipeline for ``cell``: ``[run]``, then the cell's axes, which
        no later layer (``bench sweep --set``) may change."""
        return [Layer(f"grid {self.name} [run]", dict(self.shared)),
                Layer(f"grid {self.name} [grid]", dict(cell), frozenset(cell))]


def table2() -> Grid:
    """The paper's Table 2: CDNN0-6 trained on real data only; all but CDNN4 also with each GAN strategy."""
    cells = [{"seg": seg, "gen": gen} for seg in TABLE2_SEGMENTERS for gen in STRATEGIES
             if seg != "cdnn4" or gen == "none"]
    return Grid("table2", cells, description=table2.__doc__ or "")


def table3() -> Grid:
    """The paper's Table 3: U-Net with the BCE loss (Eq. 6) and the Tanimoto loss (Eq. 1), each strategy."""
    cells = [{"seg": "unet", "loss": loss, "gen": gen} for loss in ("bce", "tanimoto") for gen in STRATEGIES]
    return Grid("table3", cells, description=table3.__doc__ or "")


def scalability() -> Grid:
    """Figs. 8 and 9: CDNN0 on 500, 1000, 1500 and all training images, real only and with each single GAN."""
    cells = [{"seg": "cdnn0", "gen": gen, **({"subset": n} if n else {})}
             for n in (500, 1000, 1500, None) for gen in ("none", "dcgan", "lapgan")]
    return Grid("scalability", cells, description=scalability.__doc__ or "")


BUILT_IN: dict[str, Callable[[], Grid]] = {"table2": table2, "table3": table3, "scalability": scalability}


def check_keys(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Grid values with normalised keys, each cast to its option's type (errors name ``where``)."""
    unique_keys(values, where)
    return dict(cast_setting(key, value, where) for key, value in values.items())


def from_toml(path: Path) -> Grid:
    """A grid file: ``[grid]`` lists are crossed (``seed`` may be one of them), ``[run]`` is shared by all runs."""
    data = read_toml(path, f"grid {path}")
    unknown = set(data) - {"grid", "run", "description"}
    if unknown or not isinstance(data.get("grid"), dict):
        raise ConfigError(f"grid {path}: expected a [grid] table of lists (and optionally [run] and description); "
                          f"found {', '.join(sorted(data)) or 'nothing'}")
    unique_keys(data["grid"], f"grid {path} [grid]")
    axes = dict(data["grid"])
    seeds = axes.pop("seed", [0])
    seeds = seeds if isinstance(seeds, list) else [seeds]
    axes = {k: [check_keys({k: x}, f"grid {path} [grid]") for x in (v if isinstance(v, list) else [v])]
            for k, v in axes.items()}
    for key, values in axes.items():  # one value twice would run one cell twice (one of them refused by its lock)
        cast = [next(iter(v.values())) for v in values]
        twice = [x for i, x in enumerate(cast) if x in cast[:i]]
        if twice:
            raise ConfigError(f"grid {path} [grid] {key}: {twice[0]!r} is listed twice (as the same value); list "
                              "each value once")
    if not isinstance(data.get("run", {}), dict):
        raise ConfigError(f"grid {path}: [run] must be a table of settings")
    shared = check_keys(data.get("run", {}), f"grid {path} [run]")
    if "seed" in data.get("run", {}):
        raise ConfigError(f"grid {path}: seed belongs in [grid] (seed = [0, 1, 2]), not in [run]")
    both = sorted(set(shared) & {k.replace("-", "_") for k in axes})
    if both:
        raise ConfigError(f"grid {path}: {', '.join(both)} in both [grid] and [run]; keep each setting in one of them")
    from bench.config.file import check_seed

    seeds = [check_seed(s, f"grid {path} [grid]") for s in seeds]
    cells = [{k: v for one in combo for k, v in one.items()} for combo in itertools.product(*axes.values())]
    return Grid(path.stem, cells, seeds, str(data.get("description", "")), shared)


def load_grid(text: str) -> Grid:
    """A built-in grid by name, or a TOML file by path."""
    if text in BUILT_IN:
        return BUILT_IN[text]()
    path = Path(text).expanduser()
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"grid {text}: file not found")
        return from_toml(path)
    raise ConfigError(f"unknown grid {text!r}; expected one of {', '.join(BUILT_IN)} or a .toml file")


def command(settings: dict[str, Any], seed: int, out: Path, nproc: int) -> list[str]:
    """The ``bench run`` command line equivalent to one run's settings, for people to read and rerun by hand
    (the sweep's own runs read their cell file instead)."""
    args = ["run", "--seed", str(seed), "--out", str(out)]
    for key, value in sorted(settings.items()):
        if value is None or value is False:
            continue
        option = "--" + key.replace("_", "-")
        args += [option] if value is True else [option, str(value)]
    if nproc > 1:
        args += ["--nproc", str(nproc)]
    return args


def resolve_run(host: PluginHost, settings: dict[str, Any], seed: int, out: Path, nproc: int,
                datasets: dict[str, Any] | None = None) -> tuple[Path, str, dict[str, Any]]:
    """One run of a sweep, resolved once: where ``bench run`` will write its record (the folder it computes
    itself), the identity that record must have to count as done, and its cell file's settings (every value
    resolved, as a run's ``config.toml``), which the child reads with ``bench run --config``."""
    from bench.config.file import resolved
    from bench.train.run import identify, open_data

    opts = run_options(settings, seed=seed, out=out)
    config = configuration.build(host, opts, nproc=nproc)
    for name in configuration.execution(opts).log:  # a bad logger spec stops the sweep, not each of its runs
        resolve_spec(host, "loggers", name, "--log")
    ident = identify(host, config, open_data(host, config, datasets))["hash"]
    return run_dir(out, config), ident, resolved(config, configuration.execution(opts))


def finished(folder: Path, identity: str | None = None) -> bool:
    """Whether ``folder`` holds a finished record (of the run with ``identity``, when given: a record of other
    data or settings is stale, and the run is submitted again; it then refuses, naming what changed)."""
    try:
        record = read_record(folder)
    except RecordProblem:
        return False
    return identity is None or record["identity"]["hash"] == identity


def done(entry: dict[str, Any]) -> bool:
    """Whether a sweep entry's run has a finished record of the same run."""
    return finished(Path(entry["folder"]), entry.get("identity"))


def expand(host: PluginHost, grid: Grid, out: Path, command_line: Layer, seeds: list[int] | None,
           nproc: int, folder: Path) -> list[dict[str, Any]]:
    """Every run of the grid: ``{"cell", "seed", "settings", "args", "folder", "identity"}``. A run's settings are
    the grid's layers under ``command_line`` (``bench sweep --set/--data/--profile/--device``), which may not
    change a key the grid varies; ``args`` runs it from its cell file under ``folder/cells``."""
    entries: list[dict[str, Any]] = []
    datasets: dict[str, Any] = {}
    for cell in grid.cells:
        for seed in seeds if seeds is not None else grid.seeds:
            full = merge([*grid.layers(cell), command_line])
            run_folder, identity, settings = resolve_run(host, full, seed, out, nproc, datasets)
            twin = next((e for e in entries if e["folder"] == str(run_folder)), None)
            if twin is not None:
                raise ConfigError(f"the grid names one run twice: {twin['cell']} and {full} (seed {seed}) are the "
                                  f"same run ({run_folder}); drop one of the two values")
            cell_file = folder / "cells" / f"run_{len(entries)}.toml"
            args = ["run", "--config", str(cell_file), "--out", str(out)] + (["--nproc", str(nproc)] if nproc > 1 else [])
            entries.append({"cell": full, "seed": seed, "settings": settings, "args": args,
                            "command": command(full, seed, out, nproc), "folder": str(run_folder),
                            "identity": identity})
    return entries


def write_cells(entries: list[dict[str, Any]]) -> None:
    """Each run's cell file (its resolved settings, as ``bench run --config`` reads them), written whole."""
    from bench.config.file import dumps

    for entry in entries:
        if "settings" in entry:
            atomic_write_bytes(Path(entry["args"][entry["args"].index("--config") + 1]),
                               dumps(entry["settings"], f"bench sweep cell: {' '.join(entry['command'])}").encode())


def generator_needs(entry: dict[str, Any]) -> list[str]:
    """Keys naming each generator this run trains or reuses: runs with a common key share that generator."""
    cell = entry["cell"]
    gens = [] if str(cell.get("gen", "none")) == "none" else str(cell["gen"]).split(",")
    shaping = {k: v for k, v in cell.items() if k not in {"gen", "seg", "loss", "schedule", "cuda_graph", "bank_mb", "log", "weights",
                                                          "encoder_weights", "test", "device", "threshold"}}
    return [json.dumps({"gen": g.strip(), "seed": entry["seed"], **shaping}, sort_keys=True) for g in gens]


def sweep_folder(out: Path, name: str) -> Path:
    return out / "sweeps" / name


def save(folder: Path, entries: list[dict[str, Any]]) -> None:
    write_cells(entries)
    write_json(folder / "sweep.json", {"schema": 1, "runs": entries})


def load(folder: Path) -> list[dict[str, Any]]:
    path = folder / "sweep.json"
    try:
        return json.loads(path.read_text())["runs"]
    except OSError:
        raise ConfigError(f"no sweep at {folder} (expected {path}); start one with bench sweep GRID") from None
    except (ValueError, KeyError):
        raise ConfigError(f"{path} is not a sweep file (expected JSON with a 'runs' list)") from None


def scalability_runs(seg: str, data: str | None, profile: str, seeds: list[int], sizes: list[int | None],
                     gens: list[str], settings: dict[str, Any], out: Path) -> list[RunOptions]:
    """The runs of Figs. 8 and 9 (``bench scalability --run``): ``seg`` on each training-set size (``None``: all)
    with each generator strategy and seed, in that order; runs already finished answer from their record.
    ``--set`` may not change what the figure varies (the segmenter, generator, training-set size, seed)."""
    runs = []
    for n in sizes:
        for gen in gens:
            given = {"seg": seg, "gen": gen, "subset": n, "profile": profile, **({"data": data} if data else {})}
            fixed = Layer("bench scalability", {k: v for k, v in given.items() if v is not None}, frozenset(given),
                          verb="sets with its own options")
            runs += [run_options(merge([fixed, Layer("--set", dict(settings))]), seed=seed, out=out) for seed in seeds]
    return runs
