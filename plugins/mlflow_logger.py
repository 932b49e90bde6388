"""The ``mlflow`` logger: a run's settings, epoch metrics, summary, tags, plots and record in an MLflow tracking store.

Where: ``MLFLOW_TRACKING_URI`` when it is set (a server, ``sqlite:///...``, a folder), else the file store
``./mlruns`` in the working directory, MLflow's own place for it: every run started there goes to one store, to
compare in ``mlflow ui`` run from there, and the store stays outside the runs folder, whose ``results.json`` files
are the records (the copy logged as an artifact must not be read as a second one). MLflow 3 refuses file stores
unless ``MLFLOW_ALLOW_FILE_STORE=true``; this logger sets that for a file store when it is not set at all. The
experiment is ``MLFLOW_EXPERIMENT_NAME`` or ``skinbench``; each run is named by its folder
(``GEN__SEG__SCHEDULE__LOSS/seed_K``).

What, as the TensorBoard logger: the resolved settings as params; ``train/...`` every epoch and ``curve/jaccard_scored``
or ``curve/jaccard_holdout`` (and accuracy, ``curve/seconds``) on the epochs with a curve point, at step = epoch
(counted over all phases); ``summary/...`` at the last epoch's step; the plots (under ``plots/``) and
``results.json`` as artifacts; tags ``skinbench.run_id``, ``skinbench.identity``, ``skinbench.seed``,
``skinbench.strategy``, ``skinbench.segmenter``, ``skinbench.environment``. A resumed run continues the latest
MLflow run tagged with its ``run_id`` in the same store (a run started again with ``--force`` is a new MLflow
run); the first attempt's params stand, params it lacked are added. Needs ``mlflow-skinny`` or ``mlflow``
(``pip install "skinbench[mlflow]"``); without it ``--log mlflow`` stops the run before any work.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench.api import Logger, LoggerUnavailable, OptionsMeta, TrackedRun, hookimpl

INSTALL = 'pip install "skinbench[mlflow]"'
EXPERIMENT = "skinbench"
RUN_TAG = "skinbench.run_id"
BATCH = 100
"""MLflow takes at most 100 params (and 1000 metrics) in one ``log_batch``."""


SERVER_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                   "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
"""Retries and timeout (seconds) for a tracking server when the user has not set MLflow's own variables."""


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the file store ``./mlruns``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or (Path.cwd() / "mlruns").as_uri()


def is_file_store(uri: str) -> bool:
    """A ``file:`` URI or a plain path (``C:\\...`` included), which MLflow opens as a file store."""
    scheme = urlparse(uri).scheme
    return scheme == "file" or len(scheme) <= 1 and uri != "databricks"


def artifact_folder(path: Path, folder: Path) -> str | None:
    """Where a run's file goes among the artifacts: its folder within the run folder (``plots``), else the top."""
    try:
        where = path.resolve().parent.relative_to(folder.resolve())
    except ValueError:
        return None
    return where.as_posix() if where.parts else None


class MLflowLogger(Logger):
    """Logs to an MLflow tracking store through ``MlflowClient`` (no process-wide active run)."""

    def __init__(self) -> None:
        try:
            from mlflow.entities import Metric, Param, RunTag
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            missing = getattr(exc, "name", None) in ("mlflow", "mlflow.entities", "mlflow.tracking")
            reason = "mlflow is not installed" if missing else f"mlflow cannot be imported ({exc})"
            raise LoggerUnavailable(f"{reason}: {INSTALL}") from None
        self._client_class, self._metric, self._param, self._tag = MlflowClient, Metric, Param, RunTag
        self.client: Any = None
        self.run_id: str | None = None
        """The MLflow run's id (not skinbench's ``TrackedRun.run_id``, which is its tag)."""
        self.folder = Path()
        self.step = 0
        """The last epoch logged: where the summary goes."""

    def start(self, run: TrackedRun) -> None:
        self.step, self.folder = run.start_step, run.folder
        uri = tracking_uri()
        if is_file_store(uri) and "MLFLOW_ALLOW_FILE_STORE" not in os.environ:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        if uri.startswith(("http://", "https://")):  # a server that does not answer is dropped in seconds, not
            for name, value in SERVER_DEFAULTS.items():  # after MLflow's minutes of retries (unless the user set them)
                os.environ.setdefault(name, value)
        self.client = self._client_class(tracking_uri=uri)
        experiment = self._experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT)
        tags = {RUN_TAG: run.run_id, **{f"skinbench.{k}": str(v) for k, v in run.tags.items()}}
        found = self.client.search_runs([experiment], filter_string=f"tags.`{RUN_TAG}` = '{run.run_id}'",
                                        order_by=["attributes.start_time DESC"], max_results=1) if run.resumed else []
        if found:  # the attempt this one resumes: continue its MLflow run
            self.run_id = found[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            logged = found[0].data.params
        else:
            self.run_id = self.client.create_run(experiment, run_name=f"{run.folder.parent.name}/{run.folder.name}",
                                                 tags=tags).info.run_id
            logged = {}
        params = [self._param(str(k), str(v)) for k, v in run.config.items() if str(k) not in logged]
        for i in range(0, len(params), BATCH):
            self.client.log_batch(self.run_id, params=params[i:i + BATCH])
        self.client.log_batch(self.run_id, tags=[self._tag(k, v) for k, v in tags.items()])

    def log_epoch(self, step: int, metrics: dict[str, float], phase: str) -> None:
        self._metrics(metrics, step)
        self.step = max(self.step, step)

    def finish(self, summary: dict[str, Any], artefacts: list[Path]) -> None:
        self._metrics({f"summary/{k}": v for k, v in summary.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}, self.step)
        for path in artefacts:
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path), artifact_folder(path, self.folder))
        self.client.set_terminated(self.run_id, status="FINISHED")

    def _metrics(self, metrics: dict[str, Any], step: int) -> None:
        now = int(time.time() * 1000)
        if metrics:
            self.client.log_batch(self.run_id, metrics=[self._metric(k, float(v), now, step)
                                                        for k, v in metrics.items()])

    def _experiment(self, name: str) -> str:
        """The experiment's id, created if needed (another process of a sweep may create it at the same time)."""
        found = self.client.get_experiment_by_name(name)
        if found is None:
            try:
                return str(self.client.create_experiment(name))
            except Exception:
                found = self.client.get_experiment_by_name(name)
                if found is None:
                    raise
        return str(found.experiment_id)


@hookimpl
def bench_register_loggers(register):
    register("mlflow", MLflowLogger, description="MLflow tracking: ./mlruns, or MLFLOW_TRACKING_URI "
             '(pip install "skinbench[mlflow]")', meta=OptionsMeta())
