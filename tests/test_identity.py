"""Runs are grouped by identity: the leaderboard never averages different experiments, ensembles are identified
by their members, a finished record answers only for the same run."""

import json
from pathlib import Path

import pytest

from bench.config.run import RunOptions
from bench.apply.ensemble import ensemble
from bench.errors import ConfigError
from bench.plugin.host import get_host
from bench.train.run import execute
from conftest import bench_cli

TINY = "fixture?n=16&n_test=6"


def tiny(out: Path, seed: int = 0, epochs: int = 1, **kw) -> Path:
    opts = RunOptions(gen="none", seg="unet", data=TINY, seed=seed, out=out,
                      overrides={"epochs": epochs, **kw.pop("overrides", {})}, **kw)
    return Path(execute(get_host(), opts, log=lambda m: None)["_path"]).parent


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Real-only U-Net runs that differ in seed, in epochs and in --subset (the pooling the issue found)."""
    out = tmp_path_factory.mktemp("identity") / "runs"
    return out, {
        "e1s0": tiny(out), "e1s1": tiny(out, seed=1), "e2s0": tiny(out, epochs=2),
        "sub": tiny(out, subset=8),
    }


def test_leaderboard_never_averages_different_settings(runs):
    out, _ = runs
    text = bench_cli("leaderboard", "--runs", str(out)).stdout
    rows = [line for line in text.splitlines() if line.startswith("| unet")]
    table = [r for r in rows if "(n=" in r]
    assert len(table) == 3, text
    assert any(r.startswith("| unet (epochs 1, subset all) |") and "(n=2)" in r for r in table)
    assert any(r.startswith("| unet (epochs 2, subset all) |") and "(n=1)" in r for r in table)
    assert any(r.startswith("| unet (epochs 1, subset 8 (seed 0)) |") and "(n=1)" in r for r in table)


def test_same_settings_other_seed_share_an_identity(runs):
    _, folders = runs
    ident = {k: json.loads((f / "results.json").read_text())["identity"]["hash"] for k, f in folders.items()}
    assert ident["e1s0"] == ident["e1s1"]
    assert len({ident["e1s0"], ident["e2s0"], ident["sub"]}) == 3


def test_a_finished_record_answers_only_for_the_same_run(runs, tmp_path):
    out, folders = runs
    again = bench_cli("run", "--seg", "unet", "--data", TINY, "--epochs", "1", "--out", str(out))
    assert "already finished" in again.stderr
    record = json.loads((folders["e1s0"] / "results.json").read_text())
    record["identity"] = {**record["identity"], "hash": "0" * 16,
                          "settings": {**record["identity"]["settings"], "train data": "elsewhere"}}
    copy = tmp_path / "runs"
    target = copy / folders["e1s0"].relative_to(out)
    target.mkdir(parents=True)
    (target / "results.json").write_text(json.dumps(record))
    proc = bench_cli("run", "--seg", "unet", "--data", TINY, "--epochs", "1", "--out", str(copy), check=False)
    assert proc.returncode == 2 and "holds a finished run with a different configuration or data" in proc.stderr
    assert "train data: 'elsewhere'" in proc.stderr


@pytest.mark.parametrize("change,reason", [
    ({"status": "running"}, "run did not finish"),
    ({"per_image": []}, "per_image missing or of the wrong type"),
    ({"schema": 99}, "written by a newer skinbench (record schema 99"),
    ({"schema": 99.0}, "schema 99.0: expected an integer"),
])
def test_a_record_no_reader_can_trust_is_refused_by_every_reader(runs, tmp_path, change, reason):
    """One reader: bench run refuses to call it finished, the leaderboard skips it saying why, a sweep does not
    count it as done, bench predict names the reason."""
    out, folders = runs
    copy = tmp_path / "runs"
    target = copy / folders["e1s0"].relative_to(out)
    target.mkdir(parents=True)
    record = {**json.loads((folders["e1s0"] / "results.json").read_text()), **change}
    (target / "results.json").write_text(json.dumps(record))
    proc = bench_cli("run", "--seg", "unet", "--data", TINY, "--epochs", "1", "--out", str(copy), check=False)
    assert proc.returncode == 2 and reason in proc.stderr and "--force" in proc.stderr
    board = bench_cli("leaderboard", "--runs", str(copy), check=False)
    assert "skipped, " in board.stderr and reason in board.stderr
    from bench.sweep.runner import finished

    assert not finished(target)
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 150, 120)).save(tmp_path / "lesion.jpg")
    predict = bench_cli("predict", str(target), "--images", str(tmp_path), "--out", str(tmp_path / "masks"), check=False)
    assert predict.returncode != 0 and reason in predict.stderr


def test_ensembles_are_identified_by_their_members(runs, tmp_path):
    out, f = runs
    host = get_host()
    with pytest.raises(ConfigError, match="are the same run folder"):
        ensemble(host, [f["e1s0"], f["e1s0"]], tmp_path, device_name="cpu")
    with pytest.raises(ConfigError, match="are the same run folder"):
        ensemble(host, [f["e1s0"], f["e1s0"] / "results.json"], tmp_path, device_name="cpu")
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("results.json", "checkpoints"):
        src = f["e1s0"] / name
        (copy / name).symlink_to(src, target_is_directory=src.is_dir())
    with pytest.raises(ConfigError, match="same identity and seed"):
        ensemble(host, [f["e1s0"], copy], tmp_path, device_name="cpu")
    a = ensemble(host, [f["e1s0"], f["e1s1"]], out, device_name="cpu")
    b = ensemble(host, [f["e1s1"], f["e1s0"]], out, device_name="cpu")  # the same members, another order
    assert a["_path"] == b["_path"] and a["identity"] == b["identity"]
    c = ensemble(host, [f["e1s0"], f["e2s0"]], out, device_name="cpu")
    assert c["identity"]["hash"] != a["identity"]["hash"]
    text = bench_cli("leaderboard", "--runs", str(out)).stdout
    rows = [line for line in text.splitlines() if line.startswith("| ensemble: unet+unet") and "(n=" in line]
    assert len(rows) == 1 and rows[0].count("(n=1)") == 2, text  # two different ensembles, two columns
    assert "real only (members " in text
