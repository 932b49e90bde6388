"""Ensemble thresholds chosen on images they do not score (cross-fitted folds, another split), and disjoint
ensembles (members of different seeds) as several units of one leaderboard cell with an interval."""

import json
from pathlib import Path

import numpy as np
import pytest

from bench.apply.ensemble import ensemble
from bench.apply.thresholds import GRID, Tuning
from bench.config.run import RunOptions
from bench.plugin.host import get_host
from bench.train.run import execute
from conftest import bench_main
from test_predict import Plugin

DATA = "fixture?n=16&n_test=9"


def tiny(out: Path, gen: str, seed: int) -> Path:
    opts = RunOptions(gen=gen, seg="darker", data=DATA, seed=seed, out=out,
                      overrides={"epochs": 1, "synthetic_epochs": 1, "finetune_epochs": 1})
    return Path(execute(get_host(), opts, log=lambda m: None)["_path"]).parent


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Real-only and ellipses (two-phase, no GAN to train) runs of seeds 0-3 of a segmenter whose probability maps
    have real boundaries that differ by seed whatever training does (so thresholds matter)."""
    host = get_host()
    host.add_plugin(Plugin(), "tuning-test", "test", None)
    out = tmp_path_factory.mktemp("tuning") / "runs"
    yield out, {gen: [tiny(out, gen, seed) for seed in range(4)] for gen in ("none", "ellipses")}
    host.remove_plugin("tuning-test")


def test_cross_fitted_thresholds_score_each_image_at_the_pair_chosen_without_it(members, tmp_path):
    _, runs = members
    host = get_host()
    two = runs["none"][:2]
    fixed = {pair: ensemble(host, two, tmp_path / "fixed", *pair, device_name="cpu") for pair in GRID}
    scores = {pair: {row["id"]: row["jaccard"] for row in rec["per_image"]} for pair, rec in fixed.items()}
    assert len({round(float(np.mean(list(v.values()))), 6) for v in scores.values()}) > 5  # thresholds matter here
    proc = bench_main("ensemble", *map(str, two), "--out", str(tmp_path / "tuned"), "--tune", "folds:3")
    assert "thresholds cross-fitted on 3 folds" in proc.stdout
    record = json.loads(Path(proc.stdout.split("record: ")[1].strip()).read_text())
    tuning = record["run"]["tuning"]
    assert tuning["method"] == "cross-fitted" and tuning["folds"] == 3 and len(tuning["per_fold"]) == 3
    folds = tuning["image_folds"]
    assert sorted(folds) == sorted(scores[GRID[0]]) and sorted(set(folds.values())) == [0, 1, 2]
    for k, pair in enumerate(tuning["per_fold"]):
        others = [i for i, f in folds.items() if f != k]
        means = [np.mean([scores[p][i] for i in others]) for p in GRID]
        assert tuple(pair) == GRID[int(np.argmax(means))]  # the best pair on the other folds, never on fold k
    for row in record["per_image"]:
        assert row["jaccard"] == pytest.approx(scores[tuple(tuning["per_fold"][folds[row["id"]]])][row["id"]])
    everywhere = [np.mean(list(scores[p].values())) for p in GRID]
    assert (record["run"]["high"], record["run"]["low"]) == GRID[int(np.argmax(everywhere))]  # what predict uses
    assert record["identity"]["settings"]["thresholds"] == "folds:3 seed 0"
    assert "tuned-folds-3-seed-0" in proc.stdout
    again = bench_main("ensemble", *map(str, two), "--out", str(tmp_path / "tuned"), "--tune", "folds:3",
                      "--tune-seed", "1")
    assert json.loads(Path(again.stdout.split("record: ")[1].strip()).read_text())["identity"]["hash"] \
        != record["identity"]["hash"]


def test_tuning_is_refused_on_the_scored_split_and_with_explicit_thresholds(members, tmp_path):
    _, runs = members
    two = list(map(str, runs["none"][:2]))
    for args, message in ((["--tune", "split:test"], "that is the split the members score"),
                          (["--tune", "folds:1"], "expected folds:K (K >= 2"),
                          (["--tune", "folds:3", "--low", "0.3"], "give either --tune or the thresholds"),
                          (["--tune", "folds:99"], "expected 2 to 9 folds for 9 scored images"),
                          (["--tune", "split:train"], "the members trained on it"),
                          (["--tune", "folds:abc"], "--tune folds:abc: expected folds:K"),
                          (["--tune", "folds:3", "--tune-seed", "-1"], "Invalid value for '--tune-seed'"),
                          (["--tune-seed", "2"], "give --tune folds:K too"),
                          (["--groups", "0"], "Invalid value for '--groups'")):
        proc = bench_main("ensemble", *two, "--out", str(tmp_path), *args, check=False)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_tuning_on_another_split_scores_the_members_split_at_the_pair_found_there(members, tmp_path):
    _, runs = members
    host = get_host()
    two = runs["none"][:2]
    record = ensemble(host, two, tmp_path, device_name="cpu", tuning=Tuning(split="val"))
    tuning = record["run"]["tuning"]
    assert tuning["method"] == "split" and tuning["split"] == "val" and tuning["n_images"] == 9
    fixed = ensemble(host, two, tmp_path / "fixed", *tuning["final"], device_name="cpu")
    assert [r["jaccard"] for r in record["per_image"]] == [r["jaccard"] for r in fixed["per_image"]]
    assert record["runtime"]["test_split"] == "test"


def test_disjoint_ensembles_are_units_of_one_cell_with_a_paired_interval(members, tmp_path):
    out, runs = members
    board_runs = tmp_path / "board"
    for gen in ("none", "ellipses"):
        proc = bench_main("ensemble", *map(str, runs[gen]), "--groups", "2", "--out", str(board_runs))
        assert proc.stdout.count("record: ") == 2
    records = [json.loads(p.read_text()) for p in board_runs.rglob("results.json")]
    assert sorted(r["identity"]["settings"]["member seeds"] for r in records) == ["0+1", "0+1", "2+3", "2+3"]
    board = bench_main("leaderboard", "--runs", str(board_runs)).stdout
    row = next(line for line in board.splitlines() if line.startswith("| ensemble: darker+darker |"))
    assert row.count("(n=2)") == 2, board  # two units in each cell, not four one-seed cells
    comparison = next(line for line in board.splitlines() if line.startswith("| ensemble: darker+darker | ellipses |"))
    assert "| 2 paired |" in comparison  # the units pair on their member seeds: an interval, not "one seed"
    bench_main("ensemble", *map(str, runs["ellipses"]), "--out", str(board_runs))  # all four: another design
    bench_main("ensemble", *map(str, runs["ellipses"]), "--groups", "2", "--tune", "folds:3", "--out", str(board_runs))
    board = bench_main("leaderboard", "--runs", str(board_runs)).stdout
    cells = [line for line in board.splitlines() if line.startswith("| ensemble: darker+darker")
             and "(n=" in line and "members" not in line]
    assert any(line.count("(n=2)") == 2 for line in cells), board  # the untuned pair of units stays one cell each
    assert "member seeds 0+1 " not in board and "member seeds 0+1)" not in board, board
    overlapping = bench_main("ensemble", *map(str, runs["none"][1:3]), "--out", str(board_runs))
    assert "record: " in overlapping.stdout
    board = bench_main("leaderboard", "--runs", str(board_runs)).stdout
    assert "member seeds 1+2" in board  # shares seeds with both others: not an independent unit, labelled apart


def test_groups_refuse_seed_overlap_and_uneven_designs(members, tmp_path):
    _, runs = members
    mixed = [runs["none"][0], runs["none"][1], runs["ellipses"][2], runs["ellipses"][3]]
    proc = bench_main("ensemble", *map(str, mixed), "--groups", "2", "--out", str(tmp_path), check=False)
    assert proc.returncode == 2 and "holds other experiments than ensemble 1" in proc.stderr
    proc = bench_main("ensemble", *map(str, runs["none"][:3]), "--groups", "2", "--out", str(tmp_path), check=False)
    assert proc.returncode == 2 and "cannot be dealt into 2 ensembles" in proc.stderr
