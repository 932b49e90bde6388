"""Resume after a crash: SIGKILL mid-phase, continue, same scores; refusals; non-finite losses."""

import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.train import checkpoints
from bench.errors import TrainingError
from bench.plugin.hookspecs import hookimpl
from conftest import bench_cli
from test_run import check_record, record_of

ARGS = ["run", "--gen", "dcgan", "--seg", "unet", "--profile", "quick", "--data", "fixture?n=160&n_test=8",
        "--gan-epochs", "2", "--synthetic-epochs", "2", "--finetune-epochs", "6"]


def kill_in_second_phase(out: Path, env: dict[str, str]) -> dict:
    """Start the run, SIGKILL it once a checkpoint says phase 2 has 2 epochs done, return that checkpoint."""
    proc = subprocess.Popen([sys.executable, "-m", "bench", *ARGS, "--out", str(out)], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            for path in glob.glob(str(out / "**" / "latest.pt"), recursive=True):
                state = torch.load(path, weights_only=True)
                if state["phase_index"] == 1 and state["epoch"] >= 2:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    return state
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
    pytest.fail("the run finished or stalled before it could be killed in its second phase")


def test_sigkill_in_the_second_phase_then_resume_scores_like_an_uninterrupted_run(tmp_path):
    env = {"BENCH_CACHE_DIR": str(tmp_path / "cache")}
    whole, _ = record_of(bench_cli(*ARGS, "--out", str(tmp_path / "whole"), env=env))
    state = kill_in_second_phase(tmp_path / "killed", env)
    assert not list((tmp_path / "killed").rglob("results.json"))  # nothing recorded for the dead run
    assert 2 <= state["epoch"] < 6
    proc = bench_cli(*ARGS, "--out", str(tmp_path / "killed"), "--resume", env=env)
    assert "resuming from" in proc.stderr
    resumed, _ = record_of(proc)
    check_record(resumed, 8)
    assert resumed["runtime"]["resumed_from"]["phase"] == "real"
    assert [r["jaccard"] for r in resumed["per_image"]] == [r["jaccard"] for r in whole["per_image"]]
    assert resumed["summary"] == whole["summary"]
    assert resumed["history"][-1]["loss"] == whole["history"][-1]["loss"]
    again = bench_cli(*ARGS, "--out", str(tmp_path / "killed"), env=env)
    assert "already finished" in again.stderr  # a finished run is not redone


def test_resume_with_another_configuration_or_data_is_refused_unless_forced(tmp_path):
    from test_data import write_pairs

    write_pairs(tmp_path / "data" / "train" / "images", tmp_path / "data" / "train" / "masks", 8, size=(32, 48))
    write_pairs(tmp_path / "data" / "test" / "images", tmp_path / "data" / "test" / "masks", 3, size=(32, 48))
    args = ["run", "--seg", "unet", "--data", f"folder:{tmp_path / 'data'}", "--epochs", "2", "--out", str(tmp_path / "r")]
    record, path = record_of(bench_cli(*args))
    folder = Path(path).parent
    (folder / "results.json").unlink()  # as if the run had died after its last checkpoint
    checkpoint = folder / "checkpoints" / "latest.pt"
    saved = checkpoints.load(checkpoint)  # rewritten with checkpoints.save: a valid checkpoint of another run
    checkpoints.save(checkpoint, dict(saved, seed="5"))
    proc = bench_cli(*args, check=False)
    assert proc.returncode == 2 and "cannot resume" in proc.stderr and "seed: 5 -> 0" in proc.stderr
    settings = json.loads(saved["settings"])
    checkpoints.save(checkpoint, dict(saved, identity="0" * 16, settings=json.dumps({**settings, "lr": 0.1})))
    proc = bench_cli(*args, check=False)
    assert proc.returncode == 2 and "lr: 0.1 -> 0.0003" in proc.stderr
    checkpoints.save(checkpoint, saved)
    mask = tmp_path / "data" / "train" / "masks" / "ISIC_0000003_segmentation.png"
    mask.write_bytes((tmp_path / "data" / "train" / "masks" / "ISIC_0000004_segmentation.png").read_bytes())
    proc = bench_cli(*args, check=False)
    assert proc.returncode == 2 and "train data: " in proc.stderr
    forced, _ = record_of(bench_cli(*args, "--force"))
    assert "resumed_from" not in forced["runtime"]
    assert forced["data_fingerprint"]["train"] != record["data_fingerprint"]["train"]


def test_non_finite_loss_stops_naming_phase_and_step_and_keeps_the_last_checkpoint(bench_register, bench_run):
    calls = {"n": 0}

    def fragile(logits, target):
        calls["n"] += logits.shape[-1] == 64  # training steps at the run's 48x64 (not the loss check before it)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        return loss * float("nan") if calls["n"] == 6 else loss  # epoch 2, step 3 (3 steps per epoch)

    class Plugin:
        @hookimpl
        def bench_register_losses(self, register):
            register("fragile", lambda: fragile)

    bench_register(Plugin(), name="fragile-plugin")
    with pytest.raises(TrainingError, match=r"non-finite loss \(nan\) in phase 'real', epoch 2, step 3 of 1?[0-9]"):
        bench_run(seg="unet", loss="fragile", data="fixture?n=40&n_test=4", overrides={"epochs": 3})
    checkpoints = glob.glob(str(Path(os.environ["BENCH_CACHE_DIR"]).parent / "runs" / "**" / "latest.pt"),
                            recursive=True)
    assert len(checkpoints) == 1
    state = torch.load(checkpoints[0], weights_only=True)
    assert (state["phase_index"], state["epoch"]) == (0, 1)
    assert not glob.glob(str(Path(checkpoints[0]).parents[1] / "results.json"))


def test_resume_flag_without_a_checkpoint_starts_fresh(tmp_path):
    proc = bench_cli("run", "--seg", "unet", "--epochs", "1", "--data", "fixture?n=16&n_test=4", "--resume",
                     "--out", str(tmp_path))
    assert "nothing to resume" in proc.stderr and "record:" in proc.stdout


