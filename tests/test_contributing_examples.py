"""CONTRIBUTING.md's example code runs as written: the W&B logger, against a stand-in ``wandb``, in a tiny run."""

import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def example(name: str) -> str:
    """The python block between ``<!-- NAME-example`` and ``<!-- /NAME-example -->`` in CONTRIBUTING.md."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    found = re.search(rf"<!-- {re.escape(name)}-example[^>]*-->\s*```python\n(.*?)```\s*<!-- /{re.escape(name)}-example -->",
                      text, re.S)
    assert found, f"no example {name!r} in CONTRIBUTING.md"
    return found.group(1)


class FakeWandb(types.ModuleType):
    """What the example uses of ``wandb``: ``init`` returns a run whose calls are recorded in ``calls``."""

    def __init__(self) -> None:
        super().__init__("wandb")
        self.calls: list[tuple] = []
        fake = self

        class Run:
            def __init__(self, id):
                self.id, self.summary = id, {}

            def log(self, data, step=None):
                fake.calls.append(("log", dict(data), step))

            def log_artifact(self, artifact):
                fake.calls.append(("log_artifact", artifact.name, artifact.type, list(artifact.files)))

            def finish(self):
                fake.calls.append(("finish", dict(self.summary)))

        class Image:
            def __init__(self, path):
                self.path = path

        class Artifact:
            def __init__(self, name, type):
                self.name, self.type, self.files = name, type, []

            def add_file(self, path):
                self.files.append(path)

        self.Image, self.Artifact, self._run = Image, Artifact, Run

    def init(self, **kwargs):
        self.calls.append(("init", kwargs))
        return self._run(kwargs["id"])


@pytest.fixture
def wandb_example(bench_register, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    module = types.ModuleType("bench_wandb_example")
    exec(compile(example("wandb"), "CONTRIBUTING.md (wandb-example)", "exec"), module.__dict__)
    bench_register(module, name="wandb-example")
    return fake


def test_the_wandb_logger_example_logs_epochs_then_summary_plots_and_record_at_the_last_step(bench_run, wandb_example):
    record = bench_run(seg="cdnn0", log="wandb", overrides={"epochs": 2})
    assert record["runtime"]["loggers"] == {"used": ["wandb"], "failed": {}}
    calls = wandb_example.calls
    assert [c[0] for c in calls] == ["init", "log", "log", "log", "log_artifact", "finish"]

    init = calls[0][1]
    assert init["id"] == f"{record['identity']['hash']}-seed-0" and init["resume"] == "allow"
    assert init["config"]["seg"] == "cdnn0" and init["config"]["epochs"] == 2 and init["project"] == "skinbench"
    assert {"segmenter=cdnn0", "strategy=real only", "seed=0", f"identity={record['identity']['hash']}"} \
        <= set(init["tags"])

    epochs = calls[1:3]
    assert [c[2] for c in epochs] == [1, 2]
    assert all({"train/loss", "train/accuracy", "curve/jaccard_scored", "curve/seconds"} <= set(c[1]) for c in epochs)
    assert epochs[1][1]["train/loss"] == pytest.approx(record["history"][-1]["loss"])

    _, last, step = calls[3]
    assert step == 2  # the summary and the plots at the last epoch's step
    assert last["summary/jaccard"] == pytest.approx(record["summary"]["jaccard"])
    assert {k for k in last if k.startswith("plots/")} == {f"plots/{Path(p).stem}" for p in record["plots"]}
    assert calls[4][2] == "skinbench-record" and calls[4][3] == [record["_path"]]
    assert calls[5][1]["summary/jaccard"] == last["summary/jaccard"]


def test_the_wandb_logger_example_without_wandb_stops_the_run_before_any_work(bench_run, bench_register, monkeypatch):
    from bench.errors import ConfigError

    monkeypatch.setitem(sys.modules, "wandb", None)
    module = types.ModuleType("bench_wandb_example")
    exec(compile(example("wandb"), "CONTRIBUTING.md (wandb-example)", "exec"), module.__dict__)
    bench_register(module, name="wandb-example")
    with pytest.raises(ConfigError, match=r"^--log wandb: wandb is not installed: pip install wandb$"):
        bench_run(seg="cdnn0", log="wandb")
