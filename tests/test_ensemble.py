"""`bench ensemble`: finished runs at their own sizes, averaged, post-processed, scored, recorded, ranked."""

import json
import os
from pathlib import Path

from conftest import bench_cli
from test_run import TINY, check_record, record_of


def test_ensemble_of_two_quick_runs(tmp_path):
    out = tmp_path / "runs"
    paths = [record_of(bench_cli("run", "--seg", seg, "--profile", "quick", "--out", str(out), *TINY))[1]
             for seg in ("cdnn1", "cdnn5")]
    proc = bench_cli("ensemble", *[str(Path(p).parent) for p in paths], "--out", str(out), "--low", "0.3")
    record, path = record_of(proc)
    check_record(record, 6)
    run = record["run"]
    assert run["kind"] == "ensemble" and run["seg"] == "ensemble: cdnn1+cdnn5"
    assert [m["seg"] for m in run["members"]] == ["cdnn1", "cdnn5"]
    assert run["low"] == 0.3 and run["high"] == 0.8
    paper = record_of(bench_cli("ensemble", *[str(Path(p).parent) for p in paths], "--out", str(out)))[1]
    assert Path(paper).parent.parent != Path(path).parent.parent  # other thresholds never replace a record
    assert json.loads(Path(path).read_text())["run"]["low"] == 0.3 and "low-0.3" in path
    board = bench_cli("leaderboard", "--runs", str(out)).stdout
    rows = [l for l in board.splitlines() if l.startswith("| ")]
    assert any(l.startswith("| ensemble: cdnn1+cdnn5 (low 0.3) |") for l in rows)
    assert any(l.startswith("| ensemble: cdnn1+cdnn5 (low 0.4) |") for l in rows)
    assert any(l.startswith("| cdnn1 |") for l in rows) and any(l.startswith("| cdnn5 |") for l in rows)


def test_cdnn3_and_cdnn4_train_at_their_sizes_from_one_source_and_ensemble(tmp_path):
    out = tmp_path / "runs"
    cache = tmp_path / "cache"
    env = {"BENCH_CACHE_DIR": str(cache)}
    common = ["--profile", "paper", "--data", "fixture?n=4&n_test=2", "--epochs", "1", "--width", "0.125",
              "--out", str(out)]
    r3, p3 = record_of(bench_cli("run", "--seg", "cdnn3", *common, env=env))
    r4, p4 = record_of(bench_cli("run", "--seg", "cdnn4", *common, env=env))
    assert r3["run"]["size"] == "96x128" and r4["run"]["size"] == "384x512"
    assert r3["run"]["channels"] == r4["run"]["channels"] == "rgb-hsv-l"
    assert r3["data_fingerprint"] == r4["data_fingerprint"]
    sizes = sorted(json.loads((d / "meta.json").read_text())["size"][0] for d in (cache / "prepared").iterdir())
    assert sizes == [96, 96, 384, 384]  # train and test split, once per size
    record, _ = record_of(bench_cli("ensemble", str(Path(p3).parent), str(Path(p4).parent), "--out", str(out), env=env))
    check_record(record, 2)
    assert [m["size"] for m in record["run"]["members"]] == ["96x128", "384x512"]
    assert len(os.listdir(cache / "prepared")) == 4  # the ensemble reused the prepared test splits


def test_ensemble_refuses_members_scored_on_different_data(tmp_path):
    out = tmp_path / "runs"
    a = record_of(bench_cli("run", "--seg", "cdnn1", "--out", str(out), *TINY))[1]
    b = record_of(bench_cli("run", "--seg", "cdnn1", "--out", str(out), *TINY[:1], "fixture?n=16&n_test=5",
                            *TINY[2:]))[1]
    proc = bench_cli("ensemble", str(Path(a).parent), str(Path(b).parent), "--out", str(out), check=False)
    assert proc.returncode == 2 and "must share it" in proc.stderr
