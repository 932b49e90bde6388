"""Plugins load through entry points; faults are reported, strict mode is fatal, the allow-list works."""

import json
import textwrap
from pathlib import Path

from conftest import bench_cli

BUILTINS = {"cdnn", "datasets", "dcgan", "lapgan", "losses", "schedules", "unet"}


def make_distribution(site: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> Path:
    """A minimal installed distribution (dist-info + modules) in ``site``, found via PYTHONPATH."""
    info = site / f"{dist}-0.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(
        "[bench]\n" + "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    )
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    return site


def env_with(site: Path, **extra: str) -> dict[str, str]:
    return {"PYTHONPATH": str(site), **extra}


def plugins_json(env=None):
    return {p["name"]: p for p in json.loads(bench_cli("plugins", "--json", env=env).stdout)}


def test_builtins_register_through_entry_points():
    found = plugins_json()
    assert BUILTINS <= set(found)
    assert found["unet"]["distribution"] == "skinbench"
    assert found["unet"]["version"]
    assert found["unet"]["registered"] == {"segmenters": ["unet"]}
    assert found["losses"]["registered"]["losses"] == ["tanimoto", "jaccard", "mse", "bce"]
    assert set(found["datasets"]["registered"]["datasets"]) == {"isic2017", "isic2018", "ham10000", "ph2", "folder",
                                                                          "fixture"}
    assert "bench_register_segmenters" in found["unet"]["hooks"]


GOOD = """
    from bench.plugin.hookspecs import hookimpl
    @hookimpl
    def bench_register_losses(register):
        register("l1demo", lambda: (lambda logits, target: (logits.sigmoid() - target).abs().mean()),
                 description="demo loss")
"""


def test_third_party_plugin_registers_and_is_listed(tmp_path):
    site = make_distribution(tmp_path, "bench-demo", {"demo_plugin": GOOD}, {"demo": "demo_plugin"})
    found = plugins_json(env_with(site))
    assert found["demo"]["distribution"] == "bench-demo"
    assert found["demo"]["version"] == "0.3"
    assert found["demo"]["registered"] == {"losses": ["l1demo"]}
    listed = bench_cli("list", "losses", env=env_with(site)).stdout
    assert "l1demo" in listed and "demo loss" in listed


def test_import_error_is_reported_and_skipped_unless_strict(tmp_path):
    site = make_distribution(tmp_path, "bench-broken", {"broken_plugin": "import not_a_module_xyz\n"},
                             {"broken": "broken_plugin"})
    found = plugins_json(env_with(site))
    assert "ModuleNotFoundError" in found["broken"]["errors"][0]
    assert found["broken"]["distribution"] == "bench-broken"
    listed = bench_cli("list", "segmenters", env=env_with(site))
    assert "unet" in listed.stdout
    assert "broken" in listed.stderr and "bench-broken" in listed.stderr
    strict = bench_cli("--strict-plugins", "list", "segmenters", env=env_with(site), check=False)
    assert strict.returncode != 0
    assert "broken" in strict.stderr and "not_a_module_xyz" in strict.stderr


def test_raising_hook_is_reported_and_other_hooks_still_register(tmp_path):
    source = GOOD + """
    @hookimpl
    def bench_register_segmenters(register):
        raise RuntimeError("segmenter table missing")
    """
    site = make_distribution(tmp_path, "bench-half", {"half_plugin": source}, {"half": "half_plugin"})
    found = plugins_json(env_with(site))
    assert found["half"]["registered"] == {"losses": ["l1demo"]}
    assert "segmenter table missing" in found["half"]["errors"][0]


def test_name_clash_between_third_party_plugins_names_both(tmp_path):
    clash = """
    from bench.api import hookimpl
    @hookimpl
    def bench_register_segmenters(register):
        register("shared", lambda in_channels, **kw: None, description="one of two",
                 defaults={"size": "32x32", "channels": "rgb", "loss": "bce"})
    """
    site = make_distribution(tmp_path, "bench-clash", {"clash_a": clash, "clash_b": clash},
                             {"clash-a": "clash_a", "clash-b": "clash_b"})
    found = plugins_json(env_with(site))
    for plugin in ("clash-a", "clash-b"):  # both plugins report the clash, naming each other
        assert "'clash-a' and 'clash-b'" in found[plugin]["errors"][0]
    proc = bench_cli("run", "--seg", "shared", env=env_with(site), check=False)
    assert proc.returncode != 0
    assert "more than one plugin" in proc.stderr and "'clash-a'" in proc.stderr


def test_allow_list_limits_what_loads(tmp_path):
    site = make_distribution(tmp_path, "bench-demo", {"demo_plugin": GOOD}, {"demo": "demo_plugin"})
    everything = plugins_json(env_with(site))
    only_builtins = plugins_json(env_with(site, BENCH_LOAD_PLUGINS="skinbench"))
    assert set(only_builtins) == {n for n, p in everything.items() if p["distribution"] == "skinbench"}
    assert BUILTINS <= set(only_builtins) and "demo" in everything
    only_demo = plugins_json(env_with(site, BENCH_LOAD_PLUGINS="bench-demo,losses"))
    assert set(only_demo) == {"demo", "losses"}


def test_plugin_can_add_a_command(tmp_path):
    source = """
    import click
    from bench.plugin.hookspecs import hookimpl
    @hookimpl
    def bench_register_commands(cli):
        @cli.command()
        def hello():
            click.echo("hello from a plugin")
    """
    site = make_distribution(tmp_path, "bench-cmd", {"cmd_plugin": source}, {"cmd": "cmd_plugin"})
    assert bench_cli("hello", env=env_with(site)).stdout.strip() == "hello from a plugin"


def test_a_factory_that_raises_fails_the_run_naming_the_plugin(tmp_path):
    source = """
    from bench.plugin.hookspecs import hookimpl
    def build(in_channels, **kw):
        raise RuntimeError("weights table corrupt")
    @hookimpl
    def bench_register_segmenters(register):
        register("boom", build, defaults={"size": "32x32", "channels": "rgb", "loss": "bce"})
    """
    site = make_distribution(tmp_path / "site", "bench-boom", {"boom_plugin": source}, {"boom": "boom_plugin"})
    proc = bench_cli("run", "--seg", "boom", "--out", str(tmp_path / "runs"), env=env_with(site), check=False)
    assert proc.returncode == 2
    assert "segmenter 'boom' from plugin 'boom' failed to build: RuntimeError: weights table corrupt" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_leaderboard_skips_incomplete_and_unfinished_records(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "results.json").write_text(json.dumps({"schema": 1, "run": {}}))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_text(json.dumps({"schema": 1, "run": {}, "summary": {}, "per_image": [],
                                                              "status": "running"}))
    proc = bench_cli("leaderboard", "--runs", str(tmp_path))
    assert "a/results.json: skipped, incomplete record (missing summary, per_image, histogram)" in proc.stderr
    assert "b/results.json: skipped, run did not finish" in proc.stderr
    assert "No finished runs found." in proc.stdout
