"""DistributedDataParallel on the CPU: 2 gloo processes train one run; rank 0 records; resume works."""

import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.train.distributed import World, shard
from conftest import bench_cli
from test_run import check_record, record_of

ARGS = ["run", "--seg", "unet", "--profile", "quick", "--data", "fixture?n=45&n_test=6", "--epochs", "4",
        "--batch-size", "8"]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    proc = bench_cli(*ARGS, "--nproc", "2", "--out", str(out))
    return proc, out


def test_two_gloo_processes_train_one_run_and_rank_0_writes_the_record(two_process_run):
    proc, out = two_process_run
    record, path = record_of(proc)
    check_record(record, 6)
    assert record["run"]["nproc"] == 2 and "nproc-2" in path
    assert proc.stdout.count("record:") == 1  # one process speaks for the run
    assert len(list(out.rglob("results.json"))) == 1 and len(list(out.rglob("latest.pt"))) == 1
    assert [h["epoch"] for h in record["history"]] == [1, 2, 3, 4]
    assert all("curve_jaccard" in h for h in record["history"])


def test_one_and_two_processes_see_the_same_images_per_epoch(two_process_run, tmp_path):
    two, _ = record_of(two_process_run[0])
    one, _ = record_of(bench_cli(*ARGS, "--out", str(tmp_path)))
    assert one["run"]["nproc"] == 1
    assert [h["images"] for h in one["history"]] == [h["images"] for h in two["history"]] == [45] * 4


def test_each_rank_takes_a_disjoint_share_and_the_same_number_of_steps():
    order = torch.randperm(45, generator=torch.Generator().manual_seed(0))
    shares = [shard(order, 8, World(rank, 2)) for rank in range(2)]
    assert len(shares[0]) == len(shares[1]) == 3  # ceil(ceil(45 / 2) / 8)
    seen = torch.cat([idx for share in shares for idx in share])
    assert sorted(seen.tolist()) == list(range(45))
    assert all(1 <= len(idx) <= 8 for share in shares for idx in share)
    one = shard(order, 8, World())
    assert [len(idx) for idx in one] == [8, 8, 8, 8, 8, 5] and torch.equal(torch.cat(one), order)


def kill_every_process_of(marker: str) -> None:
    """SIGKILL every process whose command line holds ``marker`` (torchrun starts its workers in new sessions)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    os.kill(int(entry.name), signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finding the worker processes needs /proc")
def test_a_killed_two_process_run_resumes_to_the_same_scores(two_process_run, tmp_path):
    whole, _ = record_of(two_process_run[0])
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "bench", *ARGS, "--nproc", "2", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, killed_at = time.monotonic() + 600, None
    try:
        while time.monotonic() < deadline and proc.poll() is None and killed_at is None:
            for path in glob.glob(str(out / "**" / "latest.pt"), recursive=True):
                state = torch.load(path, weights_only=True)
                if 1 <= state["epoch"] < 4:
                    kill_every_process_of(str(out))
                    proc.wait()
                    killed_at = state["epoch"]
                    break
            time.sleep(0.02)
    finally:
        kill_every_process_of(str(out))
    assert killed_at is not None, "the run finished or stalled before it could be killed"
    assert not list(out.rglob("results.json"))
    resumed_proc = bench_cli(*ARGS, "--nproc", "2", "--out", str(out))
    assert "resuming from" in resumed_proc.stderr
    resumed, _ = record_of(resumed_proc)
    assert resumed["runtime"]["resumed_from"]["epoch"] >= 1
    assert [r["jaccard"] for r in resumed["per_image"]] == [r["jaccard"] for r in whole["per_image"]]
    assert resumed["history"][-1]["loss"] == whole["history"][-1]["loss"]
