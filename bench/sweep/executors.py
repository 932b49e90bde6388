"""Executors of a sweep: its runs as local subprocesses (K per GPU) or SLURM jobs (submitit, K runs per job), in
an order that trains each shared generator once, and the state of each run (done, running, pending, failed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench.errors import ConfigError
from bench.sweep.runner import done, generator_needs, save


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
