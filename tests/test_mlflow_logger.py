"""The built-in ``mlflow`` logger: a tiny real run read back from its tracking store, a resume continuing the same
MLflow run, a store that fails mid-run, and the one-line error when mlflow is not installed."""

import json
import sys
from pathlib import Path

import pytest

import bench_plugins.mlflow_logger as mlflow_logger
from bench.api import Logger, hookimpl
from bench.errors import UnknownComponentError
from bench.results.reader import load_records, run_environment
from conftest import bench_main

INSTALL = 'pip install "skinbench[mlflow]"'


@pytest.fixture
def with_mlflow_logger(bench_host, bench_register, monkeypatch, tmp_path):
    """The ``mlflow`` logger in the host (registered here until its entry point is installed), and an environment
    without any MLflow setting of the developer's, in ``tmp_path`` (where ``./mlruns`` goes)."""
    monkeypatch.chdir(tmp_path)
    try:
        bench_host.registry.get("loggers", "mlflow")
    except UnknownComponentError:
        bench_register(mlflow_logger, name="mlflow")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.setenv(name, "")  # recorded, so that what the logger sets is undone after the test
        monkeypatch.delenv(name)


@pytest.fixture
def client_for(with_mlflow_logger):
    pytest.importorskip("mlflow", reason=f"mlflow is not installed ({INSTALL})")
    from mlflow.tracking import MlflowClient

    def client(uri):
        return MlflowClient(tracking_uri=uri)

    return client


def only_run(client, experiment="skinbench"):
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def steps(client, run, key):
    return [m.step for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)]


def test_a_run_logs_params_metrics_summary_tags_and_artefacts_to_the_file_store_mlruns(bench_run, client_for,
                                                                                     tmp_path):
    record = bench_run(seg="cdnn0", log="mlflow", overrides={"epochs": 2})
    folder = Path(record["_path"]).parent
    assert record["runtime"]["loggers"] == {"used": ["mlflow"], "failed": {}}
    client = client_for((tmp_path / "mlruns").as_uri())  # ./mlruns, outside the runs folder
    run = only_run(client)
    assert run.info.status == "FINISHED" and run.info.run_name == f"{folder.parent.name}/{folder.name}"

    params = run.data.params
    assert params["seg"] == "cdnn0" and params["epochs"] == "2" and params["seed"] == "0" and params["log"] == "mlflow"
    assert params["profile"] == "quick" and params["gen"] == "none"

    assert steps(client, run, "train/loss") == [1, 2] and steps(client, run, "train/images_per_s") == [1, 2]
    assert steps(client, run, "curve/jaccard_scored") == [1, 2] and steps(client, run, "curve/accuracy_scored") == [1, 2]
    assert "curve/seconds" in run.data.metrics
    assert not any(key.startswith("val") or "/" not in key or "holdout" in key for key in run.data.metrics)
    [loss] = [m for m in client.get_metric_history(run.info.run_id, "train/loss") if m.step == 2]
    assert loss.value == pytest.approx(record["history"][-1]["loss"])
    assert steps(client, run, "summary/jaccard") == [2]  # at the last epoch's step, not at step 0
    assert run.data.metrics["summary/jaccard"] == pytest.approx(record["summary"]["jaccard"])

    tags = run.data.tags
    assert tags["skinbench.run_id"] == f"{record['identity']['hash']}-seed-0"
    assert tags["skinbench.identity"] == record["identity"]["hash"] and tags["skinbench.seed"] == "0"
    assert tags["skinbench.segmenter"] == "cdnn0" and tags["skinbench.strategy"] == "real only"
    assert tags["skinbench.environment"] == run_environment(record)  # as the leaderboard names it

    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"plots", "results.json"}
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id, "plots")) == sorted(record["plots"])
    logged = client.download_artifacts(run.info.run_id, "results.json", str(tmp_path))
    assert json.loads(Path(logged).read_text()) == json.loads(Path(record["_path"]).read_text())
    records, warnings = load_records(tmp_path / "runs")
    assert len(records) == 1 and not warnings  # the artifact's copy is never read as a second record


class Interrupter(Logger):
    """Stops the first attempt as Ctrl-C would, once epoch 2 is checkpointed (and logged by the loggers before it)."""

    interrupted = False

    def start(self, run):
        pass

    def log_epoch(self, step, metrics, phase):
        if step == 2 and not Interrupter.interrupted:
            Interrupter.interrupted = True
            raise KeyboardInterrupt

    def finish(self, summary, artefacts):
        pass


class InterruptPlugin:
    @hookimpl
    def bench_register_loggers(self, register):
        register("interrupter", Interrupter)


def test_a_resumed_run_continues_the_same_mlflow_run_in_the_store_mlflow_tracking_uri_names(
        bench_run, bench_register, client_for, tmp_path, monkeypatch):
    store = (tmp_path / "store").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "resume-test")
    bench_register(InterruptPlugin(), name="interrupt-test")
    Interrupter.interrupted = False
    with pytest.raises(KeyboardInterrupt):
        bench_run(seg="cdnn0", log="mlflow,interrupter", overrides={"epochs": 3})
    client = client_for(store)
    first = only_run(client, "resume-test")
    assert first.info.status == "RUNNING" and steps(client, first, "train/loss") == [1, 2]

    record = bench_run(seg="cdnn0", log="mlflow,interrupter", overrides={"epochs": 3})
    assert record["runtime"]["resumed_from"]["epoch"] == 2
    run = only_run(client, "resume-test")
    assert run.info.run_id == first.info.run_id and run.info.status == "FINISHED"
    assert steps(client, run, "train/loss") == [1, 2, 3] and steps(client, run, "curve/jaccard_scored") == [1, 2, 3]
    assert steps(client, run, "summary/jaccard") == [3]
    assert run.data.params["epochs"] == "3"
    assert not (tmp_path / "mlruns").exists()  # MLFLOW_TRACKING_URI was the store


def test_a_store_failing_mid_run_is_reported_and_the_run_goes_on(bench_run, client_for, tmp_path, monkeypatch):
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "not-a-folder" / "mlruns").as_uri())
    record = bench_run(seg="cdnn0", log="mlflow")
    assert record["status"] == "finished"
    assert record["runtime"]["loggers"]["used"] == [] and record["runtime"]["loggers"]["failed"]["mlflow"]


@pytest.mark.parametrize("logger, modules, extra", [("mlflow", ["mlflow"], "mlflow"),
                                                    ("tensorboard", ["torch.utils.tensorboard"], "tensorboard")])
def test_a_logger_whose_package_is_missing_stops_the_run_before_any_work_naming_the_extra(
        with_mlflow_logger, tmp_path, monkeypatch, logger, modules, extra):
    for name in [m for m in sys.modules if any(m == p or m.startswith(p + ".") for p in modules)] + modules:
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    out = tmp_path / "runs"
    proc = bench_main("run", "--seg", "cdnn0", "--log", logger, "--data", "fixture?n=16&n_test=6&size=48x64",
                      "--epochs", "1", "--out", str(out), check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0] == f'error: --log {logger}: {extra} is not installed: pip install "skinbench[{extra}]"'
    assert not list(out.rglob("*.pt")) and not list(out.rglob("results.json"))
