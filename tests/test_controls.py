"""Controls and cross-validation: the compute-matched real-only schedule, the ellipses generator, and --fold
runs pooled as seeds. Real (tiny) training on the fixture."""

import json
from pathlib import Path

import pytest
import torch

from bench.config.run import RunOptions
from bench.plugin.host import get_host
from bench.train.run import execute
from conftest import bench_main

TINY = "fixture?n=16&n_test=6"
STEPS = {"synthetic_epochs": 2, "finetune_epochs": 1, "size": "32x48", "width": 0.125, "gan_size": "32x48"}


def run(out: Path, **kw) -> dict:
    overrides = {**STEPS, **kw.pop("overrides", {})}
    opts = RunOptions(seg="cdnn0", data=TINY, out=out, overrides=overrides, **kw)
    return execute(get_host(), opts, log=lambda m: None)


def test_matched_real_only_takes_as_many_steps_as_two_phase(tmp_path):
    matched = run(tmp_path, schedule="real-only-matched")
    ellipses = run(tmp_path, gen="ellipses")
    real = [(h["phase"], h["epoch"]) for h in matched["history"]]
    assert real == [("real", 1), ("real", 2), ("real", 3)]  # synthetic_epochs + finetune_epochs, all on real data
    assert [h["phase"] for h in ellipses["history"]] == ["synthetic", "synthetic", "real"]
    assert matched["identity"]["settings"]["synthetic_epochs"] == 2  # the epochs it matches are its identity
    text = bench_main("leaderboard", "--runs", str(tmp_path)).stdout
    assert "| segmenter | real only (matched steps) | ellipses |" in text
    assert "Difference from `real only (matched steps)`" in text


def test_ellipses_samples_are_skin_and_ellipse_pairs():
    component = get_host().registry.get("generators", "ellipses")
    gen = component.factory((48, 64))
    pairs = gen.sample(8, rng=torch.Generator().manual_seed(0))
    assert pairs.shape == (8, 4, 48, 64) and pairs.min() >= -1 and pairs.max() <= 1
    mask = pairs[:, 3] > 0
    assert set(pairs[:, 3].unique().tolist()) == {-1.0, 1.0}
    area = mask.float().mean(dim=(1, 2))
    assert (area > 0.005).all() and (area < 0.6).all()
    lesion = pairs[:, :3].mean(1)[mask].mean()
    skin = pairs[:, :3].mean(1)[~mask].mean()
    assert lesion < skin  # a darker lesion on lighter skin
    again = gen.sample(8, rng=torch.Generator().manual_seed(0))
    assert torch.equal(pairs, again) and gen.state_dict() == {}


def test_folds_score_every_training_image_once_and_pool_as_a_seed(tmp_path):
    records = [run(tmp_path, fold=f"{k}/2", overrides={"epochs": 1}) for k in (1, 2)]
    held = [{row["id"] for row in r["per_image"]} for r in records]
    assert held[0].isdisjoint(held[1]) and len(held[0] | held[1]) == 16
    assert records[0]["identity"]["hash"] == records[1]["identity"]["hash"]  # one experiment, two folds
    assert records[0]["runtime"]["n_train"] == 8 and records[0]["run"]["fold"] == "1/2"
    assert records[0]["data_fingerprint"] != records[1]["data_fingerprint"]
    text = bench_main("leaderboard", "--runs", str(tmp_path)).stdout
    assert "(n=1)" in text and "count as one seed" in text and "`train (2 folds, seed 0)` split" in text
    again = run(tmp_path / "again", fold="1/2", overrides={"epochs": 1})
    assert {row["id"] for row in again["per_image"]} == held[0]  # the same seed deals the same folds
    jsonschema = pytest.importorskip("jsonschema")
    from bench.results.records import results_schema

    jsonschema.validate(json.loads(Path(records[1]["_path"]).read_text()), results_schema())


@pytest.mark.parametrize("args,message", [
    (["--fold", "3/2"], "--fold 3/2: expected 1 <= K <= N and N >= 2"),
    (["--fold", "a"], "--fold a: expected K/N"),
    (["--fold", "1/2", "--test", "fixture"], "--fold 1/2 scores the held-out fold of the training data; drop --test"),
    (["--fold", "1/40"], "--fold 1/40: the training split has only 16 pairs, fewer than 40 folds"),
])
def test_fold_errors_name_the_option(args, message):
    proc = bench_main("run", "--seg", "cdnn0", "--data", TINY, "--epochs", "1", *args, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


def test_a_grid_can_sweep_the_folds(tmp_path):
    grid = tmp_path / "folds.toml"
    grid.write_text('[grid]\nfold = ["1/2", "2/2"]\nseed = [0]\n[run]\nseg = "cdnn0"\ndata = "fixture?n=16&n_test=6"\n')
    proc = bench_main("sweep", str(grid), "--dry-run", "--out", str(tmp_path / "runs"))
    text = proc.stdout + proc.stderr
    assert "--fold 1/2" in text and "--fold 2/2" in text and "2 runs, 0 already done" in text
