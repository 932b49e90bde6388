"""Meta-tests, as datasette has: every hook is documented and exercised here, one test per hook.

Each ``test_hook_<name>`` registers a small real plugin for one test through ``bench.testing``'s
``bench_register`` fixture and checks that the harness uses what it registered.
"""

import inspect
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner

from bench.plugin import hookspecs
from bench.api import Generator, Logger, Phase, ScheduleMeta, SegmenterMeta
from bench.data.source import Dataset
from bench.plugin.hookspecs import hookimpl

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("bench_"))


def test_every_hook_has_a_docstring_and_is_documented_for_plugin_authors():
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    assert HOOKS
    for name in HOOKS:
        assert inspect.getdoc(getattr(hookspecs, name)), f"hook {name} has no docstring"
        assert f"`{name}(" in contributing, f"hook {name} is not documented in CONTRIBUTING.md"


def test_every_hook_has_a_test():
    tests = {name for name, _ in inspect.getmembers(__import__(__name__), inspect.isfunction)}
    for name in HOOKS:
        assert f"test_hook_{name}" in tests, f"hook {name} has no test_hook_{name}"


class MemoryGenerator(Generator):
    """Returns horizontally flipped real pairs: enough to exercise the generator contract."""

    cacheable = False

    def __init__(self, size):
        self.size, self.data = size, None

    def fit(self, data, *, epochs, batch_size, rng, on_epoch=None):
        self.data = data
        return {}

    def sample(self, n, *, rng):
        idx = torch.randint(len(self.data), (n,), generator=rng, device=rng.device)
        return self.data[idx.to(self.data.device)].flip(-1)

    def to(self, device):
        return self

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_hook_bench_register_generators(bench_register, bench_run):
    class Plugin:
        @hookimpl
        def bench_register_generators(self, register):
            register("flipped", lambda size, **kw: MemoryGenerator(size), description="flipped real pairs")

    bench_register(Plugin(), name="flip-plugin")
    record = bench_run(gen="flipped", seg="unet")
    assert record["generators"][0]["name"] == "flipped" and record["generators"][0]["plugin"] == "flip-plugin"
    assert [h["phase"] for h in record["history"]] == ["synthetic", "real"]


def test_hook_bench_register_segmenters(bench_register, bench_run):
    class Plugin:
        @hookimpl
        def bench_register_segmenters(self, register):
            register("tiny", lambda in_channels, width=1.0: torch.nn.Conv2d(in_channels, 1, 3, padding=1),
                     defaults={"size": "32x48", "channels": "rgb-hsv-l", "loss": "mse"})

    bench_register(Plugin(), name="tiny-plugin")
    record = bench_run(seg="tiny")
    assert record["runtime"]["seg_parameters"] == 7 * 9 + 1
    assert record["run"]["loss"] == "mse" and record["run"]["channels"] == "rgb-hsv-l"


def test_hook_bench_register_losses(bench_register, bench_run):
    calls = []

    def l1(logits, target):
        calls.append(1)
        return (torch.sigmoid(logits) - target).abs().mean()

    class Plugin:
        @hookimpl
        def bench_register_losses(self, register):
            register("l1", lambda: l1, description="mean absolute error")

    bench_register(Plugin(), name="l1-plugin")
    record = bench_run(seg="unet", loss="l1")
    assert record["run"]["loss"] == "l1" and calls


def test_hook_bench_register_schedules(bench_register, bench_run):
    class Plugin:
        @hookimpl
        def bench_register_schedules(self, register):
            register("real-twice", lambda profile: [Phase("warm", "real", 1), Phase("main", "real", 2)],
                     defaults={"needs_generator": False})

    bench_register(Plugin(), name="schedule-plugin")
    record = bench_run(seg="unet", schedule="real-twice")
    assert [h["phase"] for h in record["history"]] == ["warm", "main", "main"]


def test_hook_bench_register_datasets(bench_register, bench_run, bench_host):
    fixture = bench_host.registry.get("datasets", "fixture").factory

    class Plugin:
        @hookimpl
        def bench_register_datasets(self, register):
            def small(arg=None, **options):
                base = fixture(None, n="12", n_test="4", size="40x56", seed=arg or "7")
                return Dataset("small", f"small:{arg}", base.splits)

            register("small", small, description="a re-seeded fixture")

    bench_register(Plugin(), name="dataset-plugin")
    record = bench_run(seg="unet", data="small:3")
    assert record["run"]["data"] == "small:3" and record["runtime"]["n_train"] == 12
    assert record["summary"]["n_images"] == 4


def test_hook_bench_register_loggers(bench_register, bench_run):
    seen = []

    class Memory(Logger):
        def start(self, run):
            seen.append(("start", run.run_id))

        def log_epoch(self, step, metrics, phase):
            seen.append(("epoch", step, round(metrics["train/loss"], 6)))

        def finish(self, summary, artefacts):
            seen.append(("finish", summary["jaccard"]))

    class Plugin:
        @hookimpl
        def bench_register_loggers(self, register):
            register("memory", Memory, description="keeps what it is told")

    bench_register(Plugin(), name="logger-plugin")
    record = bench_run(seg="cdnn0", log="memory")
    assert seen[0] == ("start", f"{record['identity']['hash']}-seed-0")
    assert seen[1] == ("epoch", 1, round(record["history"][0]["loss"], 6))
    assert seen[-1] == ("finish", record["summary"]["jaccard"]) and record["runtime"]["loggers"]["used"] == ["memory"]


def test_hook_bench_register_commands(bench_register, bench_host):
    class Plugin:
        @hookimpl
        def bench_register_commands(self, cli):
            @cli.command()
            @click.argument("who")
            def greet(who):
                click.echo(f"hello {who}")

    bench_register(Plugin(), name="command-plugin")
    group = click.Group("bench")
    bench_host.add_commands(group)
    result = CliRunner().invoke(group, ["greet", "skin"])
    assert result.exit_code == 0 and result.output == "hello skin\n"


@pytest.mark.parametrize("kind,kwargs,message", [
    ("segmenters", {}, "SegmenterMeta needs size, channels, loss; missing size, channels, loss"),
    ("segmenters", {"defaults": {"size": "big", "channels": "rgb", "loss": "bce"}}, "'big' is not a size"),
    ("segmenters", {"defaults": {"size": "32x32", "channels": "cmyk", "loss": "bce"}}, "cmyk"),
    ("schedules", {"defaults": {"needs_generator": "yes"}}, "needs_generator must be True or False"),
    ("schedules", {"meta": ScheduleMeta(needs_generator=False), "defaults": None}, None),
    ("generators", {"meta": SegmenterMeta(size="32x32", channels="rgb", loss="bce")}, "meta must be a GeneratorMeta"),
])
def test_registration_checks_each_kinds_metadata(bench_register, kind, kwargs, message):
    class Plugin:
        pass

    def hook(register):
        register("checked", lambda *a, **kw: None, **kwargs)

    setattr(Plugin, f"bench_register_{kind}", staticmethod(hookimpl(hook)))
    if message is None:
        bench_register(Plugin(), name="meta-plugin")
        return
    with pytest.raises(RuntimeError) as info:
        bench_register(Plugin(), name="meta-plugin")
    text = str(info.value)
    assert "plugin 'meta-plugin' registered" in text and "'checked' with invalid metadata" in text and message in text


def test_an_invalid_component_is_refused_alone_and_the_rest_of_its_hook_call_is_registered(bench_register, bench_host):
    from bench.errors import PluginError
    from bench.plugin.host import PluginHost

    ok = {"size": "32x32", "channels": "rgb", "loss": "bce"}

    class Plugin:
        @hookimpl
        def bench_register_segmenters(self, register):
            register("mixed-valid-first", lambda **kw: None, defaults=ok)
            register("mixed-invalid", lambda **kw: None, defaults={**ok, "size": "big"})
            register("mixed-uncallable", 42, defaults=ok)
            register("mixed-valid-last", lambda **kw: None, defaults=ok)

    with pytest.raises(RuntimeError) as info:
        bench_register(Plugin(), name="mixed-plugin")
    assert "'mixed-invalid' with invalid metadata" in str(info.value) and "'big' is not a size" in str(info.value)
    assert "'mixed-uncallable' with a factory that is not callable (int)" in str(info.value)
    assert bench_host.registry.names("segmenters", "mixed-*") == ["mixed-valid-first", "mixed-valid-last"]
    assert bench_host.plugins["mixed-plugin"].registered == {"segmenters": ["mixed-valid-first", "mixed-valid-last"]}
    assert len(bench_host.plugins["mixed-plugin"].errors) == 2

    strict = PluginHost(strict=True)
    with pytest.raises(PluginError, match="'mixed-invalid' with invalid metadata.*--strict-plugins"):
        strict.add_plugin(Plugin(), "mixed-plugin")
