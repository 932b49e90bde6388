"""``NAME?key=value`` options for every component kind: declared in metadata, typed, checked before any work,
passed to the factory, and written once in a canonical form that records and identities hold."""

import subprocess
import sys

import pytest
import torch

from bench.api import ConfigError, Logger, Option, OptionsMeta, Phase, ScheduleMeta, SegmenterMeta, hookimpl
from bench.config.run import RunOptions, build, generator_config
from bench.config.identity import generator_key
from bench.gan.cache import build_generator

RECEIVED: dict[str, dict] = {}


class Tiny(torch.nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, 1, 1)

    def forward(self, x):
        return self.conv(x)


class OptionsPlugin:
    """One component of each kind, each declaring options and remembering what its factory received."""

    @hookimpl
    def bench_register_segmenters(self, register):
        def tinyseg(in_channels, width=1.0, **options):
            RECEIVED["segmenter"] = options
            return Tiny(in_channels)

        register("tinyseg", tinyseg, meta=SegmenterMeta(size="16x16", channels="rgb", loss="focal", options={
            "depth": 3, "dropout": 0.1, "bias": True, "mode": Option("a", choices=("a", "b"), help="which"),
            "limit": Option(None, type=int)}))

    @hookimpl
    def bench_register_losses(self, register):
        def focal(gamma=2.0):
            RECEIVED["loss"] = {"gamma": gamma}
            return lambda logits, target: torch.nn.functional.binary_cross_entropy_with_logits(logits, target)

        register("focal", focal, meta=OptionsMeta({"gamma": 2.0}))

    @hookimpl
    def bench_register_schedules(self, register):
        def warm(config, warmup=1):
            RECEIVED["schedule"] = {"warmup": warmup}
            return [Phase("real", "real", config.epochs)]

        register("warm", warm, meta=ScheduleMeta(needs_generator=False, uses=("epochs",), options={"warmup": 1}))

    @hookimpl
    def bench_register_loggers(self, register):
        class Quiet(Logger):
            def __init__(self, prefix="run"):
                RECEIVED["logger"] = {"prefix": prefix}

            def start(self, run):
                pass

            def log_epoch(self, step, metrics, phase):
                RECEIVED.setdefault("epochs", []).append(step)

            def finish(self, summary, artefacts):
                pass

        register("quiet", Quiet, meta=OptionsMeta({"prefix": "run"}))


@pytest.fixture
def options_plugin(bench_register):
    RECEIVED.clear()
    bench_register(OptionsPlugin(), name="options-plugin")


def test_declared_options_arrive_typed_and_the_spec_is_canonical(options_plugin, bench_host, bench_cache):
    from bench.plugin.build import build_loss, build_segmenter

    build_segmenter(bench_host, "tinyseg?depth=05&dropout=.5&bias=no&mode=b&limit=7", "rgb", 1.0)
    assert RECEIVED["segmenter"] == {"depth": 5, "dropout": 0.5, "bias": False, "mode": "b", "limit": 7}
    assert type(RECEIVED["segmenter"]["dropout"]) is float and type(RECEIVED["segmenter"]["depth"]) is int
    build_loss(bench_host, "focal?gamma=3")
    assert RECEIVED["loss"] == {"gamma": 3.0} and type(RECEIVED["loss"]["gamma"]) is float

    one = build(bench_host, RunOptions(seg="tinyseg?mode=b&depth=05", loss="focal?gamma=3",
                                       schedule="warm?warmup=2", data="fixture?n=8"))
    two = build(bench_host, RunOptions(seg="tinyseg?depth=5&mode=b", loss="focal?gamma=3.0",
                                       schedule="warm?warmup=02", data="fixture?n=8"))
    assert one.seg == two.seg == "tinyseg?depth=5&mode=b"
    assert one.loss == two.loss == "focal?gamma=3.0"
    assert one.schedule == two.schedule == "warm?warmup=2"
    assert one.as_record() == two.as_record()


@pytest.mark.parametrize("kind,options,message", [
    ("seg", {"seg": "tinyseg?depht=3"},
     "--seg tinyseg?depht=3: segmenter 'tinyseg' has no option 'depht'; it declares: bias (bool), depth (int), "
     "dropout (float), limit (int), mode (str)"),
    ("seg-type", {"seg": "tinyseg?depth=3.5"}, "option depth='3.5' is not an int; expected a whole number"),
    ("seg-bool", {"seg": "tinyseg?bias=maybe"}, "option bias='maybe' is not a bool; expected true or false"),
    ("seg-choice", {"seg": "tinyseg?mode=c"}, "option mode=c is not allowed; expected one of a, b"),
    ("loss", {"seg": "tinyseg", "loss": "focal?alpha=1"},
     "--loss focal?alpha=1: loss 'focal' has no option 'alpha'; it declares: gamma (float)"),
    ("schedule", {"seg": "tinyseg", "schedule": "warm?steps=1"},
     "--schedule warm?steps=1: schedule 'warm' has no option 'steps'; it declares: warmup (int)"),
    ("gen", {"seg": "tinyseg", "gen": "dcgan?z_dim=3"},
     "--gen dcgan?z_dim=3: generator 'dcgan' has no option 'z_dim'; it declares: real_label (float)"),
    ("builtin-seg", {"seg": "cdnn3?depth=3"}, "--seg cdnn3?depth=3: segmenter 'cdnn3' has no option 'depth'; "
                                               "it declares no options"),
    ("builtin-loss", {"seg": "unet", "loss": "bce?gamma=2"}, "loss 'bce' has no option 'gamma'; it declares no options"),
])
def test_an_undeclared_or_mistyped_option_is_one_line_naming_the_declared_ones(options_plugin, bench_host, kind,
                                                                                 options, message):
    with pytest.raises(ConfigError) as info:
        build(bench_host, RunOptions(data="fixture?n=8", **options))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_refuses_an_undeclared_option_before_any_work(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--seg", "unet?levels=3", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == ("error: --seg unet?levels=3: segmenter 'unet' has no option "
                                                    "'levels'; it declares: depth (int)")
    assert not any(tmp_path.iterdir())


def test_logger_and_dataset_options_are_checked_and_typed(options_plugin, bench_host, bench_run):
    from bench.plugin.build import load_dataset

    with pytest.raises(ConfigError, match="dataset 'fixture' has no option 'count'; it declares: "):
        load_dataset(bench_host, "fixture?count=3", "--data")
    with pytest.raises(ConfigError, match="dataset 'isic2017' has no option 'fast'; it declares no options"):
        load_dataset(bench_host, "isic2017:/nowhere?fast=1", "--data")
    with pytest.raises(ConfigError, match="--data fixture:foo: the fixture is made in code and takes no folder"):
        load_dataset(bench_host, "fixture:foo?n=16", "--data")
    record = bench_run(seg="unet", log="quiet?prefix=abc")
    assert RECEIVED["logger"] == {"prefix": "abc"} and RECEIVED["epochs"]
    assert record["summary"]["jaccard"] >= 0
    with pytest.raises(ConfigError, match="logger 'quiet' has no option 'prefx'; it declares: prefix"):
        bench_run(seg="unet", log="quiet?prefx=abc")


def test_generator_options_reach_the_factory_and_name_their_own_cache_entry(bench_host):
    from bench.plugin.options import resolve_spec

    spec = resolve_spec(bench_host, "generators", "dcgan?real_label=.8", "--gen").text
    assert spec == "dcgan?real_label=0.8"
    plain = generator_config("dcgan", (16, 16), 0.25, 2e-4, 1, 2)
    smoothed = generator_config(spec, (16, 16), 0.25, 2e-4, 1, 2)
    assert "options" not in plain  # a generator without options keeps the cache key it always had
    assert smoothed["name"] == "dcgan" and smoothed["options"] == {"real_label": "0.8"}
    assert generator_key(plain, "data", 0, "1", "code") != generator_key(smoothed, "data", 0, "1", "code")
    component = bench_host.registry.get("generators", "dcgan")
    assert build_generator(component, smoothed, 0).real_label == 0.8
    assert build_generator(component, plain, 0).real_label == 0.9


def test_a_segmenter_option_changes_the_network_and_the_run_identity(bench_run):
    deep = bench_run(seg="unet")
    shallow = bench_run(seg="unet?depth=02")
    assert shallow["run"]["seg"] == "unet?depth=2"
    assert shallow["identity"]["hash"] != deep["identity"]["hash"]
    assert shallow["runtime"]["seg_parameters"] < deep["runtime"]["seg_parameters"]


def test_a_bad_declaration_is_refused_at_registration_naming_the_plugin(bench_register):
    class Bad:
        @hookimpl
        def bench_register_losses(self, register):
            register("listy", lambda **kw: None, meta=OptionsMeta({"sizes": [1, 2]}))

    with pytest.raises(RuntimeError, match="bench_register_losses raised: TypeError: option 'sizes': Option: type must be one of bool, int, float, str"):
        bench_register(Bad(), name="bad-options")


def test_an_option_at_its_declared_default_is_the_run_without_it(options_plugin, bench_host):
    plain = build(bench_host, RunOptions(seg="tinyseg", gen="dcgan", data="fixture?n=8"))
    spelled = build(bench_host, RunOptions(seg="tinyseg?depth=3&mode=a&bias=true", gen="dcgan?real_label=0.90",
                                           data="fixture?n=8&seed=0"))
    assert (spelled.seg, spelled.gen, spelled.data) == ("tinyseg", ("dcgan",), "fixture?n=8")
    assert spelled.as_record() == plain.as_record()
    assert spelled.generator_config("dcgan") == plain.generator_config(spelled.gen[0])


@pytest.mark.parametrize("options,message", [
    ({"seg": "unet?depth=3&depth=4"}, "--seg: option 'depth' is given twice in 'unet?depth=3&depth=4'; give it once"),
    ({"data": "fixture?n=16&n=17"}, "--data: option 'n' is given twice"),
    ({"seg": "unet:foo"}, "--seg unet:foo: segmenter 'unet' takes no argument (':foo')"),
    ({"loss": "bce:foo"}, "--loss bce:foo: loss 'bce' takes no argument (':foo')"),
    ({"schedule": "real-only:x"}, "--schedule real-only:x: schedule 'real-only' takes no argument"),
    ({"gen": "ellipses:foo"}, "--gen ellipses:foo: generator 'ellipses' takes no argument"),
    ({"gen": "none?x=1"}, "--gen none?x=1: none (no generator) takes no options"),
    ({"seg": "unet?depth=1_0"}, "option depth='1_0' is not an int"),
    ({"seg": "unet?depth=\u0663"}, "is not an int"),
    ({"seg": "smp:Unet:resnet18?decoder_attention_type=scse"},
     "segmenter 'smp' has no option 'decoder_attention_type'; it declares no options"),
])
def test_repeated_keys_stray_arguments_and_loose_numbers_are_refused(bench_host, options, message):
    options = {k: v.encode().decode("unicode_escape") for k, v in options.items()}
    with pytest.raises(ConfigError) as info:
        build(bench_host, RunOptions(**{"data": "fixture?n=8", **options}))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_grid_naming_one_run_twice_is_refused(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\nseg = ["unet?depth=3", "unet?depth=03"]\n[run]\ndata = "fixture?n=16&n_test=6"\n'
                    'epochs = 1\n')
    proc = subprocess.run([sys.executable, "-m", "bench", "sweep", str(grid), "--out", str(tmp_path / "runs"),
                           "--dry-run"], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "the grid names one run twice" in proc.stderr
    logs = tmp_path / "logs.toml"
    logs.write_text('[grid]\nseed = [0]\n[run]\nseg = "unet"\ndata = "fixture?n=16&n_test=6"\nlog = "tensorboard?x=1"\n')
    proc = subprocess.run([sys.executable, "-m", "bench", "sweep", str(logs), "--out", str(tmp_path / "runs"),
                           "--dry-run"], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "logger 'tensorboard' has no option 'x'" in proc.stderr
