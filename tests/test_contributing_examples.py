"""CONTRIBUTING.md's example code runs as written: the W&B logger, against a stand-in ``wandb``, in a tiny run; the
contract checks, against a small plugin; and its table of profiles holds the values of the code."""

import re
import sys
import types
from pathlib import Path

import pytest

from bench.api import GeneratorMeta, Phase, ScheduleMeta, SegmenterMeta, hookimpl
from test_contract_checks import FromRandom, Tiny, Toy, bce

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


class MyPlugin:
    """What the contract-check example tests: ``mygan``, ``myseg``, ``myloss`` and ``myschedule``, correct (or with a
    ``gan`` that samples from Python's random instead of ``rng``)."""

    def __init__(self, gan: type) -> None:
        self.gan = gan

    @hookimpl
    def bench_register_generators(self, register):
        register("mygan", lambda size, width=1.0, lr=0.0, seed=0: self.gan(size, seed), meta=GeneratorMeta(size="32x32"))

    @hookimpl
    def bench_register_segmenters(self, register):
        register("myseg", lambda in_channels, width=1.0: Tiny(in_channels, width),
                 meta=SegmenterMeta(size="64x64", channels="rgb", loss="bce"))

    @hookimpl
    def bench_register_losses(self, register):
        register("myloss", lambda: bce)

    @hookimpl
    def bench_register_schedules(self, register):
        register("myschedule", lambda c: [Phase("synthetic", "synthetic", c.synthetic_epochs),
                                          Phase("real", "real", c.finetune_epochs)],
                 meta=ScheduleMeta(needs_generator=True, uses=("synthetic_epochs", "finetune_epochs")))


def contract_tests(bench_register, gan: type) -> dict:
    """The test functions of the contract-check example, with ``MyPlugin(gan)`` registered."""
    bench_register(MyPlugin(gan), name="mygan-example")
    module = types.ModuleType("test_mygan_example")
    exec(compile(example("contract"), "CONTRIBUTING.md (contract-example)", "exec"), module.__dict__)
    return {name: fn for name, fn in vars(module).items() if name.startswith("test_")}


def test_the_contract_check_example_passes_on_a_plugin_that_keeps_the_contracts(bench_register):
    tests = contract_tests(bench_register, Toy)
    assert sorted(tests) == ["test_mygan_keeps_the_generator_contract", "test_myloss_keeps_the_loss_contract",
                             "test_myschedule_keeps_the_schedule_contract", "test_myseg_keeps_the_segmenter_contract"]
    for test in tests.values():
        test()


def test_the_contract_check_example_fails_on_a_generator_that_ignores_rng(bench_register):
    from bench.testing import ContractError

    tests = contract_tests(bench_register, FromRandom)
    with pytest.raises(ContractError, match=r"^generator 'mygan' from plugin 'mygan-example': sample\(5\) twice with "
                                            r"rng seeded alike returned different pairs"):
        tests["test_mygan_keeps_the_generator_contract"]()


def test_the_profiles_table_holds_the_values_of_the_code():
    from bench.config.profiles import FIELDS

    text = (ROOT / "CONTRIBUTING.md").read_text()
    found = re.search(r"<!-- profiles-table[^>]*-->\n(.*?)<!-- /profiles-table -->", text, re.S)
    assert found, "no profiles table in CONTRIBUTING.md"
    rows = {}
    for line in found.group(1).strip().splitlines()[2:]:
        name, quick, paper = [cell.strip() for cell in line.strip().strip("|").split("|")][:3]
        rows[name] = (quick, paper)

    def shown(value: object) -> str:
        return "the segmenter's own" if value is None else f"`{value}`"

    assert rows == {f"`{f.name}` (`{f.option}`)": (shown(f.values["quick"]), shown(f.values["paper"]))
                    for f in FIELDS}
