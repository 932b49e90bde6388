"""Experiment tracking: the logger hook, its failure isolation, the same tracked run across a resume, TensorBoard."""

import json
from pathlib import Path

import pytest

from bench.api import Logger, hookimpl


class Recorder(Logger):
    calls: list = []

    def start(self, run):
        self.calls.append(("start", run))

    def log_epoch(self, step, metrics, phase):
        self.calls.append(("epoch", step, metrics, phase))

    def finish(self, summary, artefacts):
        self.calls.append(("finish", summary, artefacts))


class Broken(Logger):
    def start(self, run):
        pass

    def log_epoch(self, step, metrics, phase):
        raise ConnectionError("tracking server unreachable")

    def finish(self, summary, artefacts):
        raise AssertionError("never called after its failure")


class FailsLast(Logger):
    def start(self, run):
        pass

    def log_epoch(self, step, metrics, phase):
        pass

    def finish(self, summary, artefacts):
        raise OSError("disk full")


class Plugin:
    @hookimpl
    def bench_register_loggers(self, register):
        register("recorder", Recorder)
        register("broken", Broken)
        register("fails-last", FailsLast)
        register("unbuildable", lambda: 1 / 0)


@pytest.fixture
def loggers(bench_register):
    Recorder.calls = []
    bench_register(Plugin(), name="tracking-test")
    return Recorder.calls


def test_a_logger_gets_config_epochs_summary_and_plots_and_failures_never_stop_training(bench_run, loggers):
    record = bench_run(seg="cdnn0", log="broken,recorder,unbuildable,fails-last", overrides={"epochs": 2})
    assert record["status"] == "finished"
    kinds = [c[0] for c in loggers]
    assert kinds == ["start", "epoch", "epoch", "finish"]
    run = loggers[0][1]
    assert run.run_id == f"{record['identity']['hash']}-seed-0" and not run.resumed and run.start_step == 0
    assert run.config["seg"] == "cdnn0" and run.config["epochs"] == 2 and run.config["log"].startswith("broken")
    assert [c[1] for c in loggers[1:3]] == [1, 2] and loggers[1][3] == "real"
    assert {"train/loss", "train/accuracy", "curve/jaccard_scored", "curve/accuracy_scored"} <= set(loggers[1][2])
    assert not any(name.startswith("val") or "/" not in name for name in loggers[1][2])
    assert loggers[3][1]["jaccard"] == record["summary"]["jaccard"] and all(Path(p).exists() for p in loggers[3][2])
    assert [Path(p).name for p in loggers[3][2]][-1] == "results.json"  # the record, written before finish
    assert [f"plots/{Path(p).name}" for p in loggers[3][2][:-1]] == record["plots"]
    failed = record["runtime"]["loggers"]["failed"]
    assert "ConnectionError" in failed["broken"] and "ZeroDivisionError" in failed["unbuildable"]
    assert failed["fails-last"] == "finish: OSError: disk full"  # a failure in finish is in the record too
    assert record["runtime"]["loggers"]["used"] == ["recorder"]
    assert json.loads(Path(record["_path"]).read_text())["runtime"]["loggers"] == record["runtime"]["loggers"]

    Path(record["_path"]).unlink()  # as if the process died after its last checkpoint: the rerun resumes it
    again = bench_run(seg="cdnn0", log="recorder", overrides={"epochs": 2})
    resumed = [c for c in loggers if c[0] == "start"][-1][1]
    assert resumed.run_id == run.run_id and resumed.resumed and resumed.start_step == 2
    assert again["summary"]["jaccard"] == record["summary"]["jaccard"]


def test_an_unknown_logger_fails_before_any_work(bench_run):
    from bench.errors import UnknownComponentError

    with pytest.raises(UnknownComponentError, match="tensorbored"):
        bench_run(seg="cdnn0", log="tensorbored")


def test_tensorboard_logger_writes_events_in_the_run_folder(bench_run):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'skinbench[tensorboard]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    record = bench_run(seg="cdnn0", log="tensorboard", overrides={"epochs": 2, "curve_split": "holdout:0.25"})
    events = EventAccumulator(str(Path(record["_path"]).parent / "tensorboard")).Reload()
    scalars = events.Tags()["scalars"]
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]
    assert [e.step for e in events.Scalars("curve/jaccard_holdout")] == [1, 2] and "curve/accuracy_holdout" in scalars
    assert not any(tag.startswith(("val", "curve/jaccard_scored")) for tag in scalars)
    assert [e.step for e in events.Scalars("summary/jaccard")] == [2]  # after the epochs, not at step 0
    assert all(e.step == 2 for tag in events.Tags()["images"] for e in events.Images(tag)) and events.Tags()["images"]
