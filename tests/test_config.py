"""The typed run configuration: every profile field reaches the CLI, the grid parser and the record; identities
group runs by experiment; older records still render; records validate against the packaged schema."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from bench.config import profiles
from bench.config.identity import identity
from bench.config.layers import merge
from bench.config.run import RunOptions, build
from bench.errors import ConfigError
from bench.plugin.host import get_host
from bench.results.records import results_schema
from bench.results.reader import LEGACY_SCHEDULE_USES, load_records
from bench.sweep.runner import from_toml
from conftest import bench_cli, bench_main

LEGACY = Path(__file__).parent / "data" / "legacy"

# A value for every profile field that differs from both profiles', and what the record then holds.
EVERY_FIELD = {
    "data": ("fixture?n=16&n_test=6", "fixture?n=16&n_test=6"),
    "size": ("32x48", "32x48"),
    "channels": ("rgb-hsv-l", "rgb-hsv-l"),
    "batch_size": ("8", 8),
    "lr": ("0.001", 0.001),
    "epochs": ("1", 1),
    "synthetic_epochs": ("1", 1),
    "finetune_epochs": ("1", 1),
    "gan_epochs": ("1", 1),
    "gan_size": ("32x48", "32x48"),
    "gan_batch_size": ("8", 8),
    "gan_lr": ("0.0003", 0.0003),
    "sample_steps": ("3", 3),
    "width": ("0.125", 0.125),
    "threshold": ("0.4", 0.4),
    "eval_batch_size": ("4", 4),
    "curve_every": ("2", 2),
    "curve_split": ("holdout:0.25", "holdout:0.25"),
}


def test_the_table_lists_every_field_once():
    assert set(EVERY_FIELD) == {f.name for f in profiles.FIELDS}, "extend EVERY_FIELD with the new field"
    for f in profiles.FIELDS:
        assert f.help and set(f.values) == set(profiles.PROFILE_NAMES)
        for p in profiles.PROFILE_NAMES:
            assert EVERY_FIELD[f.name][1] != f.values[p], f"{f.name}: pick a test value no profile has"


@pytest.fixture(scope="module")
def every_field_run(tmp_path_factory):
    """One tiny two-phase run with every profile field set on the command line (shared by several tests)."""
    out = tmp_path_factory.mktemp("every-field")
    args = [a for f, (text, _) in EVERY_FIELD.items() for a in (profiles.BY_NAME[f].option, text)]
    proc = bench_cli("run", "--gen", "dcgan,ddpm", "--seg", "unet", "--out", str(out), *args)  # ddpm reads sample_steps
    path = Path(proc.stdout.split("record: ")[1].strip())
    return json.loads(path.read_text()), path


def test_every_field_reaches_the_cli():
    run_help = bench_main("run", "--help").stdout
    gan_help = bench_main("gan", "train", "--help").stdout
    for f in profiles.FIELDS:
        assert f.option in run_help, f"bench run has no {f.option}"
        if f.gan:
            assert f.option in gan_help, f"bench gan train has no {f.option}"


def test_every_field_reaches_the_record(every_field_run):
    record, _ = every_field_run
    for name, (_, value) in EVERY_FIELD.items():
        assert record["run"][name] == value, name
    assert record["runtime"]["n_train"] == 12 and record["runtime"]["device"] == "cpu"  # 4 held out for the curve
    assert record["runtime"]["curve"]["split"] == "holdout" and record["runtime"]["curve"]["n"] == 4
    assert "n_train" not in record["run"] and "device" not in record["run"]  # runtime facts have their own section


def test_every_field_reaches_the_grid_parser(tmp_path):
    lines = [f'{name} = "{text}"' for name, (text, _) in EVERY_FIELD.items()]
    grid = tmp_path / "all.toml"
    grid.write_text("[grid]\ngen = ['none', 'dcgan']\n[run]\n" + "\n".join(lines) + "\n")
    parsed = from_toml(grid)
    assert len(parsed.cells) == 2
    first = merge(parsed.layers(parsed.cells[0]))
    for name, (_, value) in EVERY_FIELD.items():
        assert first[name] == value, name
    grid.write_text("[grid]\nepochs = ['many']\n")
    with pytest.raises(ConfigError, match=r"all.toml \[grid\] epochs: 'many' is not a valid int"):
        from_toml(grid)
    grid.write_text("[grid]\nepoch = [1]\n")
    with pytest.raises(ConfigError, match="unknown option 'epoch'"):
        from_toml(grid)


@pytest.mark.parametrize("args,message", [
    (["--lr", "nan"], "--lr: nan is not a finite number"),
    (["--lr", "-1"], "--lr: must be greater than 0"),
    (["--width", "0"], "--width: must be greater than 0"),
    (["--threshold", "1"], "--threshold: must lie strictly between 0 and 1"),
    (["--size", "40"], "--size: '40' is not a size"),
    (["--curve-split", "holdout:0.9"], "--curve-split: expected scored or holdout:F with 0 < F <= 0.5"),
    (["--seed", "-1"], "-1 is not in the range x>=0"),
])
def test_bad_values_fail_before_anything_runs(args, message, tmp_path):
    proc = bench_main("run", "--out", str(tmp_path / "runs"), *args, check=False)
    assert proc.returncode == 2 and message in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_identity_ignores_the_seed_and_what_the_schedule_does_not_read():
    host = get_host()

    def ident(**kw):
        config = build(host, RunOptions(**kw))
        return identity(config.as_record(), {"train": "t", "test": "s"}, None)["hash"]

    base = ident(seed=0)
    assert ident(seed=1) == base
    assert ident(overrides={"finetune_epochs": 3}) == base  # real-only never reads it
    assert ident(overrides={"eval_batch_size": 3}) == base  # changes no score
    assert ident(overrides={"epochs": 3}) != base
    assert ident(subset=5) != base
    assert ident(overrides={"epochs": 12}) == base  # the quick profile's own value, given explicitly
    assert ident(overrides={"curve_split": "scored"}) == base  # the default curve changes no identity
    assert ident(overrides={"curve_split": "holdout:0.2"}) != base
    assert ident(overrides={"curve_split": "holdout:.2"}) == ident(overrides={"curve_split": "holdout:0.2"})


def test_the_run_folder_carries_the_identity(every_field_run):
    record, path = every_field_run
    config = json.loads((path.parent / "config.json").read_text())
    assert config["identity"] == record["identity"]["hash"]
    assert record["identity"]["settings"]["dcgan generator"] == record["generators"][0]["identity"]


def test_new_and_old_records_validate_against_the_schema(every_field_run):
    schema = results_schema()
    jsonschema.validate(every_field_run[0], schema)
    for path in LEGACY.rglob("results.json"):
        jsonschema.validate(json.loads(path.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**every_field_run[0], "identity": None}, schema)


def test_reading_records_written_before_identities_needs_no_plugin_host():
    """Their identities are computed from what they hold and the legacy schedules' fields: no plugin loads."""
    code = ("import json, sys; from bench.plugin import host; from bench.results.reader import load_records; "
            f"records, _ = load_records(__import__('pathlib').Path({str(LEGACY)!r})); "
            "print(json.dumps([host._HOST is None, sorted(r['identity']['hash'] for r in records)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    no_host, hashes = json.loads(out)
    assert no_host and hashes == sorted(r["identity"]["hash"] for r in load_records(LEGACY)[0])
    # the table is what the installed built-ins say: the identities are those the plugin host would give
    for name, uses in LEGACY_SCHEDULE_USES.items():
        assert tuple(get_host().registry.get("schedules", name).meta.uses) == uses, name


def test_records_written_before_identities_still_render():
    records, warnings = load_records(LEGACY)
    assert not warnings and len(records) == 2
    assert all(len(r["identity"]["hash"]) == 16 for r in records)
    proc = bench_cli("leaderboard", "--runs", str(LEGACY))
    assert "| cdnn3 | 0.6706 (n=1) |" in proc.stdout
    assert "| ensemble: cdnn3+cdnn3+cdnn3 | 0.6726 (n=1) |" in proc.stdout
    # a quality record from before the feature-space metrics: those columns are empty, never invented
    assert ("| dcgan | – | – | – | – | – | – | – | – | 0.7254 | 0.4457 | 0.0448 | 64 | 1 |"
            in proc.stdout)


def test_the_recorded_commit_is_the_source_checkouts_or_none(tmp_path):
    """An installed copy inside some other git repository must not record that repository's commit."""
    import shutil
    import subprocess
    import sys

    from bench.results.records import git_hash

    mine = git_hash()
    assert mine is None or len(mine.removesuffix("+dirty")) == 40
    other = tmp_path / "other"
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    subprocess.run(["git", "-C", str(other), "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q",
                    "--allow-empty", "-m", "x"], check=True)
    shutil.copytree(Path(__file__).resolve().parent.parent / "bench", other / "site" / "bench")
    code = "from bench.results.records import git_hash; print(git_hash())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(other / "site")}, cwd=tmp_path).stdout.strip()
    assert out == "None"
