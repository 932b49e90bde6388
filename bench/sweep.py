"""Grids of runs: expand a built-in or TOML grid into ``bench run`` invocations, submit them, report status.

A sweep lives in ``OUT/sweeps/<name>/``: ``sweep.json`` lists every run (its ``bench run`` arguments, its
run folder, its job) and ``jobs/`` holds submitit's scripts and logs. A run is done when its run folder
holds a finished record, so submitting a sweep again submits only what is not done (and unfinished runs
resume from their checkpoints).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench import config as configuration
from bench.config import RunOptions
from bench.errors import ConfigError
from bench.options import cast_setting, split_run_options
from bench.plugins import PluginHost
from bench.records import RESULTS, normalise, run_dir, write_json

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

STRATEGIES = ["none", "dcgan", "lapgan", "dcgan,lapgan"]
TABLE2_SEGMENTERS = [f"cdnn{i}" for i in range(7)]



@dataclass
class Grid:
    """A named list of cells; each cell is a dict of ``bench run`` options, crossed with the seeds."""

    name: str
    cells: list[dict[str, Any]]
    seeds: list[int] = field(default_factory=lambda: [0])
    description: str = ""


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
    return dict(cast_setting(key, value, where) for key, value in values.items())


def from_toml(path: Path) -> Grid:
    """A grid file: ``[grid]`` lists are crossed (``seed`` may be one of them), ``[run]`` is shared by all runs."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"grid {path}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"grid {path}: not valid TOML ({exc})") from None
    unknown = set(data) - {"grid", "run", "description"}
    if unknown or not isinstance(data.get("grid"), dict):
        raise ConfigError(f"grid {path}: expected a [grid] table of lists (and optionally [run] and description); "
                          f"found {', '.join(sorted(data)) or 'nothing'}")
    axes = dict(data["grid"])
    seeds = axes.pop("seed", [0])
    seeds = seeds if isinstance(seeds, list) else [seeds]
    axes = {k: [check_keys({k: x}, f"grid {path} [grid]") for x in (v if isinstance(v, list) else [v])]
            for k, v in axes.items()}
    shared = check_keys(data.get("run", {}), f"grid {path} [run]")
    if not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"grid {path}: seed must be an integer or a list of integers")
    cells = [{**shared, **{k: v for one in combo for k, v in one.items()}} for combo in itertools.product(*axes.values())]
    return Grid(path.stem, cells, seeds, str(data.get("description", "")))


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


def run_arguments(cell: dict[str, Any], seed: int, out: Path, nproc: int) -> list[str]:
    """The ``bench run`` command line of one cell and seed."""
    args = ["run", "--seed", str(seed), "--out", str(out)]
    for key, value in sorted(cell.items()):
        if value is None or value is False:
            continue
        option = "--" + key.replace("_", "-")
        args += [option] if value is True else [option, str(value)]
    if nproc > 1:
        args += ["--nproc", str(nproc)]
    return args


def run_folder(host: PluginHost, cell: dict[str, Any], seed: int, out: Path, nproc: int,
               datasets: dict[str, Any] | None = None) -> tuple[Path, str]:
    """Where ``bench run`` will write this cell's record (the same folder it computes itself), and the identity
    its record must have to count as done."""
    from bench.run import identify, open_data

    own, overrides = split_run_options(cell)
    opts = RunOptions(**{**own, "seed": seed, "out": out, "gen": str(own.get("gen", "none")), "overrides": overrides})
    config = configuration.build(host, opts, nproc=nproc)
    return run_dir(out, config), identify(host, config, open_data(host, config, datasets))["hash"]


def finished(folder: Path, identity: str | None = None) -> bool:
    """Whether ``folder`` holds a finished record (of the run with ``identity``, when given: a record of other
    data or settings is stale, and the run is submitted again; it then refuses, naming what changed)."""
    try:
        record = json.loads((folder / RESULTS).read_text())
        if record.get("status") != "finished":
            return False
        return identity is None or normalise(record)["identity"]["hash"] == identity
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def done(entry: dict[str, Any]) -> bool:
    """Whether a sweep entry's run has a finished record of the same run."""
    return finished(Path(entry["folder"]), entry.get("identity"))


def expand(host: PluginHost, grid: Grid, out: Path, base: dict[str, Any], seeds: list[int] | None,
           nproc: int) -> list[dict[str, Any]]:
    """Every run of the grid: ``{"cell", "seed", "args", "folder"}``, options in ``base`` under each cell's."""
    entries = []
    datasets: dict[str, Any] = {}
    for cell in grid.cells:
        for seed in seeds if seeds is not None else grid.seeds:
            full = {**base, **cell}
            folder, identity = run_folder(host, full, seed, out, nproc, datasets)
            entries.append({"cell": full, "seed": seed, "args": run_arguments(full, seed, out, nproc),
                            "folder": str(folder), "identity": identity})
    return entries


def generator_needs(entry: dict[str, Any]) -> list[str]:
    """Keys naming each generator this run trains or reuses: runs with a common key share that generator."""
    cell = entry["cell"]
    gens = [] if str(cell.get("gen", "none")) == "none" else str(cell["gen"]).split(",")
    shaping = {k: v for k, v in cell.items() if k not in {"gen", "seg", "loss", "schedule", "cuda_graph", "bank_mb", "weights",
                                                          "test", "device", "threshold"}}
    return [json.dumps({"gen": g.strip(), "seed": entry["seed"], **shaping}, sort_keys=True) for g in gens]


def sweep_folder(out: Path, name: str) -> Path:
    return out / "sweeps" / name


def run_job(args: list[str]) -> str:
    """What a submitted job executes: ``bench ARGS`` in a fresh interpreter; raises if the run fails."""
    subprocess.run([sys.executable, "-m", "bench", *args], check=True)
    return args[args.index("--out") + 1]


@dataclass
class ExecutorOptions:
    kind: str = "local"
    parallel: int = 1
    partition: str | None = None
    gpus_per_job: int = 1
    cpus_per_job: int | None = None
    time_min: int = 24 * 60


def parse_time(text: str) -> int:
    """SLURM-style ``--time``: ``MM``, ``MM:SS``, ``HH:MM:SS`` or ``D-HH[:MM[:SS]]``; returns whole minutes."""
    try:
        days, rest = (text.split("-", 1) if "-" in text else ("0", text))
        parts = [int(p) for p in rest.split(":")]
        if "-" in text and len(parts) <= 3:
            hours, minutes, seconds = (parts + [0, 0])[:3]
        elif len(parts) in (1, 2):
            hours, minutes, seconds = 0, parts[0], (parts[1] if len(parts) == 2 else 0)
        elif len(parts) == 3:
            hours, minutes, seconds = parts
        else:
            raise ValueError
        total = int(days) * 24 * 60 + hours * 60 + minutes + (1 if seconds > 0 else 0)
    except ValueError:
        total = 0
    if total <= 0:
        raise ConfigError(f"--time {text!r}: expected a positive time as MM, HH:MM:SS or D-HH:MM")
    return total


def _submitit():
    try:
        import submitit
    except ImportError:
        raise ConfigError("bench sweep submits through submitit, which is not installed; "
                          "pip install 'skinbench[slurm]' (or pip install submitit)") from None
    return submitit


def submit(entries: list[dict[str, Any]], folder: Path, options: ExecutorOptions,
           log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Submit the runs that are not done; return the entries with their ``job`` filled in.

    slurm: every job is queued at once; a run that shares a generator with an earlier run of the sweep
    waits for it (``afterany``), so each generator trains once and later runs load it from the cache.
    local: at most ``parallel`` jobs at a time on this machine, in order; this call returns when all end.
    """
    submitit = _submitit()
    jobs_dir = folder / "jobs"
    if options.kind == "slurm":
        try:
            executor = submitit.AutoExecutor(folder=jobs_dir, cluster="slurm")
        except RuntimeError as exc:  # no srun/sbatch on this machine
            raise ConfigError(f"--executor slurm: {exc} Submit from a machine of the cluster (its login "
                              "node), or use --executor local") from None
        params: dict[str, Any] = {"timeout_min": options.time_min, "gpus_per_node": options.gpus_per_job,
                                  "tasks_per_node": 1, "nodes": 1, "name": "bench"}
        if options.partition:
            params["slurm_partition"] = options.partition
        if options.cpus_per_job:
            params["cpus_per_task"] = options.cpus_per_job
        executor.update_parameters(**params)
    elif options.kind == "local":
        executor = submitit.LocalExecutor(folder=jobs_dir)
        executor.update_parameters(timeout_min=options.time_min)
    else:
        raise ConfigError(f"--executor {options.kind!r}: expected local or slurm")

    save(folder, entries)
    leaders: dict[str, str] = {}
    running: list[Any] = []
    for entry in entries:
        if done(entry):
            entry["job"] = None
            continue
        if options.kind == "slurm":
            after = sorted({leaders[k] for k in generator_needs(entry) if k in leaders})
            executor.update_parameters(
                slurm_additional_parameters={"dependency": "afterany:" + ":".join(after)} if after else {})
        else:
            while len([j for j in running if not j.done()]) >= options.parallel:
                time.sleep(1.0)
        job = executor.submit(run_job, entry["args"])
        running.append(job)
        for key in generator_needs(entry):
            leaders.setdefault(key, str(job.job_id))
        entry["job"] = {"executor": options.kind, "id": str(job.job_id),
                        "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr)}
        log(f"submitted {' '.join(entry['args'][1:])} as job {job.job_id}")
        save(folder, entries)
    save(folder, entries)
    if options.kind == "local":
        for job in running:
            while not job.done():
                time.sleep(1.0)
    return entries


def save(folder: Path, entries: list[dict[str, Any]]) -> None:
    write_json(folder / "sweep.json", {"schema": 1, "runs": entries})


def load(folder: Path) -> list[dict[str, Any]]:
    path = folder / "sweep.json"
    try:
        return json.loads(path.read_text())["runs"]
    except OSError:
        raise ConfigError(f"no sweep at {folder} (expected {path}); start one with bench sweep GRID") from None
    except (ValueError, KeyError):
        raise ConfigError(f"{path} is not a sweep file (expected JSON with a 'runs' list)") from None


def state_of(entry: dict[str, Any]) -> tuple[str, str | None]:
    """``(state, detail)``: done, running, pending, failed (detail: the log to read) or not submitted."""
    if done(entry):
        return "done", None
    job = entry.get("job")
    if not job:
        return "not submitted", None
    folder = Path(job["stderr"]).parent
    result = folder / f"{job['id']}_0_result.pkl"
    if result.exists():  # the job ended: with an error, or without writing the record it should have
        return "failed", job["stderr"]
    if job["executor"] == "slurm":
        submitit = _submitit()
        slurm_state = submitit.SlurmJob(folder, job["id"]).state
        if slurm_state in {"RUNNING", "COMPLETING", "CONFIGURING"}:
            return "running", None
        if slurm_state in {"PENDING", "REQUEUED", "SUSPENDED", "UNKNOWN"}:
            return "pending", None
        return "failed", job["stderr"]
    try:
        os.kill(int(job["id"]), 0)
        return "running", None
    except (OSError, ValueError):
        return "failed", job["stderr"]
