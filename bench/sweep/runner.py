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

from bench.config import run as configuration
from bench.config.run import RunOptions
from bench.errors import ConfigError
from bench.config.layers import Layer, merge, run_options
from bench.config.options import cast_setting
from bench.plugin.host import PluginHost
from bench.results.records import RecordProblem, read_record, run_dir
from bench.storage.atomic import atomic_write_bytes, write_json

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

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
    if not isinstance(data.get("run", {}), dict):
        raise ConfigError(f"grid {path}: [run] must be a table of settings")
    shared = check_keys(data.get("run", {}), f"grid {path} [run]")
    if "seed" in data.get("run", {}):
        raise ConfigError(f"grid {path}: seed belongs in [grid] (seed = [0, 1, 2]), not in [run]")
    both = sorted(set(shared) & {k.replace("-", "_") for k in axes})
    if both:
        raise ConfigError(f"grid {path}: {', '.join(both)} in both [grid] and [run]; keep each setting in one of them")
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"grid {path}: seed must be an integer or a list of integers")
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
                                                          "test", "device", "threshold"}}
    return [json.dumps({"gen": g.strip(), "seed": entry["seed"], **shaping}, sort_keys=True) for g in gens]


def sweep_folder(out: Path, name: str) -> Path:
    return out / "sweeps" / name


def run_job(args: list[str]) -> str:
    """What a submitted job executes: ``bench ARGS`` in a fresh interpreter; raises if the run fails."""
    subprocess.run([sys.executable, "-m", "bench", *args], check=True)
    return args[args.index("--out") + 1]


def run_pack(runs: list[list[str]]) -> list[str]:
    """What a packed SLURM job executes: its runs at once on the job's GPU; raises naming the runs that failed."""
    procs = [subprocess.Popen([sys.executable, "-m", "bench", *args]) for args in runs]
    codes = [proc.wait() for proc in procs]
    failed = [" ".join(args[1:]) for args, code in zip(runs, codes) if code != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(runs)} runs of this job failed: " + "; ".join(failed))
    return [args[args.index("--out") + 1] for args in runs]


@dataclass
class ExecutorOptions:
    kind: str = "local"
    parallel: int | None = None
    """local: runs at a time (default: ``runs_per_gpu`` per visible GPU, or ``runs_per_gpu`` without one)."""
    runs_per_gpu: int = 1
    partition: str | None = None
    gpus_per_job: int = 1
    cpus_per_job: int | None = None
    time_min: int = 24 * 60


def visible_gpus() -> list[str]:
    """The GPUs this machine lets runs use, as ``CUDA_VISIBLE_DEVICES`` entries (none without CUDA)."""
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:  # a broken driver counts as no GPU: the runs then say why themselves
        count = 0
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return listed[:count] if listed else [str(i) for i in range(count)]


def local_slots(options: ExecutorOptions, gpus: list[str]) -> list[str | None]:
    """One entry per run that may execute at once: the GPU it is pinned to (``None``: no GPU)."""
    per_device: list[str | None] = [g for g in gpus for _ in range(options.runs_per_gpu)]
    per_device = per_device or [None] * options.runs_per_gpu
    n = options.parallel or len(per_device)
    return [per_device[i % len(per_device)] for i in range(n)]


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
        raise ConfigError("--executor slurm submits through submitit, which is not installed; "
                          "pip install 'skinbench[slurm]' (or pip install submitit). The local executor "
                          "needs nothing more") from None
    return submitit


def submit(entries: list[dict[str, Any]], folder: Path, options: ExecutorOptions,
           log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Submit the runs that are not done; return the entries with their ``job`` filled in.

    slurm: every job is queued at once, ``runs_per_gpu`` runs packed per job; a job whose runs share a
    generator with an earlier job's run waits for it (``afterany``), so each generator trains once and later
    runs load it from the cache. local: subprocesses on this machine, ``runs_per_gpu`` per GPU, a run that
    needs a generator another run is training started after it; this call returns when all end.
    """
    if options.runs_per_gpu > 1 and options.gpus_per_job > 1:
        raise ConfigError(f"--runs-per-gpu {options.runs_per_gpu} with --gpus-per-job {options.gpus_per_job}: "
                          "a DDP run uses whole GPUs; pack single-GPU runs (--gpus-per-job 1) instead")
    if options.kind == "slurm":
        return _submit_slurm(entries, folder, options, log)
    if options.kind == "local":
        return _submit_local(entries, folder, local_slots(options, visible_gpus()), log)
    raise ConfigError(f"--executor {options.kind!r}: expected local or slurm")


def packs(entries: list[dict[str, Any]], k: int) -> list[list[dict[str, Any]]]:
    """Runs grouped ``k`` per job: with ``k > 1``, the runs that train a generator (or need none) first, the
    runs that reuse one after, so that a job rarely waits on a generator trained inside itself."""
    if k == 1:
        return [[e] for e in entries]
    seen: set[str] = set()
    first: list[dict[str, Any]] = []
    later: list[dict[str, Any]] = []
    for entry in entries:
        keys = generator_needs(entry)
        (later if keys and all(key in seen for key in keys) else first).append(entry)
        seen.update(keys)
    ordered = first + later
    return [ordered[i:i + k] for i in range(0, len(ordered), k)]


def _submit_slurm(entries: list[dict[str, Any]], folder: Path, options: ExecutorOptions,
                  log: Callable[[str], None]) -> list[dict[str, Any]]:
    submitit = _submitit()
    try:
        executor = submitit.AutoExecutor(folder=folder / "jobs", cluster="slurm")
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
    save(folder, entries)
    leaders: dict[str, str] = {}
    for entry in entries:
        if done(entry):
            entry["job"] = None
    for pack in packs([e for e in entries if not done(e)], options.runs_per_gpu):
        needs = {key for entry in pack for key in generator_needs(entry)}
        after = sorted({leaders[k] for k in needs if k in leaders})
        executor.update_parameters(
            slurm_additional_parameters={"dependency": "afterany:" + ":".join(after)} if after else {})
        if len(pack) == 1:
            job = executor.submit(run_job, pack[0]["args"])
        else:
            job = executor.submit(run_pack, [entry["args"] for entry in pack])
        for key in needs:
            leaders.setdefault(key, str(job.job_id))
        for entry in pack:
            entry["job"] = {"executor": "slurm", "id": str(job.job_id), "stdout": str(job.paths.stdout),
                            "stderr": str(job.paths.stderr), "runs_in_job": len(pack)}
            log(f"submitted {' '.join(entry['args'][1:])} as job {job.job_id}")
        save(folder, entries)
    save(folder, entries)
    return entries


def _submit_local(entries: list[dict[str, Any]], folder: Path, slots: list[str | None],
                  log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Run the entries as ``bench`` subprocesses, one per free slot (pinned to the slot's GPU), in order,
    except that a run waits while the run that first needs one of its generators is still running."""
    jobs_dir = folder / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        if done(entry):
            entry["job"] = None
    pending = [i for i, e in enumerate(entries) if not done(e)]
    leader_of: dict[str, int] = {}
    for i in pending:
        for key in generator_needs(entries[i]):
            leader_of.setdefault(key, i)
    running: dict[int, tuple[subprocess.Popen, int]] = {}
    finished_runs: set[int] = set()
    free = list(range(len(slots)))
    save(folder, entries)
    try:
        while pending or running:
            for i, (proc, slot) in list(running.items()):
                code = proc.poll()
                if code is not None:
                    Path(entries[i]["job"]["rc"]).write_text(str(code))
                    del running[i]
                    finished_runs.add(i)
                    free.append(slot)
            ready = [i for i in pending
                     if all(leader_of[k] in finished_runs or leader_of[k] == i for k in generator_needs(entries[i]))]
            while free and ready:
                i = ready.pop(0)
                pending.remove(i)
                slot = free.pop(0)
                running[i] = (_start_local(entries[i], jobs_dir, i, slots[slot]), slot)
                log(f"submitted {' '.join(entries[i]['args'][1:])} as job {entries[i]['job']['id']}"
                    + (f" on GPU {slots[slot]}" if slots[slot] is not None else ""))
                save(folder, entries)
            time.sleep(0.2)
    except KeyboardInterrupt:
        for proc, _ in running.values():
            proc.terminate()
        raise
    save(folder, entries)
    return entries


def _start_local(entry: dict[str, Any], jobs_dir: Path, index: int, gpu: str | None) -> subprocess.Popen:
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    out, err = jobs_dir / f"run_{index}.out", jobs_dir / f"run_{index}.err"
    rc = jobs_dir / f"run_{index}.rc"
    rc.unlink(missing_ok=True)
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "bench", *entry["args"]], stdout=stdout, stderr=stderr,
                                env=env)
    entry["job"] = {"executor": "local", "id": str(proc.pid), "stdout": str(out), "stderr": str(err), "rc": str(rc),
                    "gpu": gpu}
    return proc


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


def state_of(entry: dict[str, Any]) -> tuple[str, str | None]:
    """``(state, detail)``: done, running, pending, failed (detail: the log to read) or not submitted."""
    if done(entry):
        return "done", None
    job = entry.get("job")
    if not job:
        return "not submitted", None
    if job["executor"] == "local" and "rc" in job:
        if Path(job["rc"]).exists():  # it ended: with an error, or without writing the record it should have
            return "failed", job["stderr"]
        try:
            os.kill(int(job["id"]), 0)
            return "running", None
        except (OSError, ValueError):  # gone without an exit code: the sweep that ran it was stopped
            return "failed", job["stderr"]
    folder = Path(job["stderr"]).parent
    result = folder / f"{job['id']}_0_result.pkl"
    if result.exists():  # a submitit job that ended: with an error, or without writing its record
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
