"""`--curve-split`: the training curve says what it is computed on, and can be computed on training pairs held
out from all training instead of the scored (test) images. Real (tiny) training on the fixture."""

import json
from pathlib import Path

import pytest

from bench.config.run import RunOptions, build
from bench.plugin.host import get_host
from bench.results.leaderboard import render
from bench.train.run import execute, open_data
from conftest import bench_main
from test_stats import record
from test_sweep import _perf_file, _step

TINY = "fixture?n=16&n_test=6"
STEPS = {"epochs": 1, "size": "32x48", "width": 0.125}
FORM = "--curve-split: expected scored or holdout:F with 0 < F <= 0.5"


def options(out: Path, seed: int = 0, **overrides) -> RunOptions:
    return RunOptions(seg="cdnn0", data=TINY, out=out, seed=seed, overrides={**STEPS, **overrides})


def run(out: Path, seed: int = 0, **overrides) -> dict:
    return execute(get_host(), options(out, seed, **overrides), log=lambda m: None)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A default run and two seeds of ``holdout:0.2`` (16 training pairs: 3 held out)."""
    out = tmp_path_factory.mktemp("curve-split")
    return {"scored": run(out), "holdout": run(out, curve_split="holdout:.20"),
            "holdout seed 1": run(out, seed=1, curve_split="holdout:0.2"), "out": out}


def test_a_default_run_says_its_curve_is_on_the_scored_split(runs):
    scored = runs["scored"]
    assert scored["runtime"]["curve"] == {"split": "scored", "n": 6, "fraction": None}
    assert scored["runtime"]["n_train"] == 16 and "curve_split" not in scored["run"]
    assert "curve_split" not in scored["identity"]["settings"]  # identities of earlier records are unchanged
    assert all("curve_jaccard" in h and "curve_accuracy" in h and "val_jaccard" not in h for h in scored["history"])


def test_a_holdout_curve_is_on_held_out_training_pairs_that_nothing_trains_on(runs):
    scored, held, other_seed = runs["scored"], runs["holdout"], runs["holdout seed 1"]
    curve = held["runtime"]["curve"]
    assert curve["split"] == "holdout" and curve["n"] == 3 and curve["fraction"] == 0.2
    assert held["runtime"]["n_train"] == 13 and held["run"]["curve_split"] == "holdout:0.2"
    assert held["identity"]["hash"] != scored["identity"]["hash"]
    assert held["data_fingerprint"]["train"] != scored["data_fingerprint"]["train"]
    folder = Path(held["_path"]).parent.parent.name
    assert folder != Path(scored["_path"]).parent.parent.name and "curve_split-holdout-0.2" in folder
    assert other_seed["runtime"]["curve"]["ids"] == curve["ids"]  # chosen by id, not by seed
    assert other_seed["identity"]["hash"] == held["identity"]["hash"]  # two seeds of one experiment
    data = open_data(get_host(), build(get_host(), options(runs["out"], curve_split="holdout:0.2")))
    trained = set(data.train.ids())
    assert len(trained) == 13 and trained.isdisjoint(curve["ids"])
    assert trained | set(curve["ids"]) == {f"fixture_train_{i:05d}" for i in range(16)}


def test_the_leaderboard_says_what_each_rows_curves_are_on(runs, tmp_path):
    board = render([runs["scored"], runs["holdout"]], plots=tmp_path / "plots", links_from=tmp_path)
    assert "computed on the scored split (the test images: for reading, never for choosing an epoch) unless the " \
           "link says held-out pairs" in board
    assert "[curves on 3 held-out training pairs](" in board and "[curves](" in board
    rows = [line.split(" | ")[0] for line in board.splitlines() if line.startswith("| cdnn0")]
    assert "| cdnn0 (curve_split holdout:0.2)" in rows and "| cdnn0 (curve_split scored)" in rows  # named, not hashed


def test_legacy_val_names_and_mixed_rows_still_plot_and_say_so(tmp_path):
    legacy = [{"phase": "real", "source": "real", "epoch": e, "loss": 0.5, "train_accuracy": 0.8,
               "val_accuracy": 0.9, "val_jaccard": 0.6, "images": 10} for e in (1, 2)]
    renamed = [{k.replace("val_", "curve_"): v for k, v in entry.items()} for entry in legacy]
    a, b = record(None, 0, [0.5, 0.6]), record(None, 1, [0.6, 0.7])
    a["history"], b["history"] = legacy, renamed
    b["runtime"] = {"test_split": "test", "curve": {"split": "holdout", "n": 40, "fraction": 0.2}}
    board = render([a, b], plots=tmp_path / "plots", links_from=tmp_path)
    link = board.split("[curves: runs on the scored split and on held-out pairs mixed](")[1].split(")")[0]
    assert (tmp_path / link).stat().st_size > 0
    only_legacy = render([a], plots=tmp_path / "legacy", links_from=tmp_path)
    assert "[curves](" in only_legacy and "computed on the scored split (the test images" in only_legacy


@pytest.mark.parametrize("value", ["holdout", "holdout:0", "holdout:0.6", "holdout:x", "heldout:0.2", "scored:1"])
def test_malformed_curve_splits_are_refused_naming_the_form(value, tmp_path):
    proc = bench_main("run", "--seg", "cdnn0", "--out", str(tmp_path), "--curve-split", value, check=False)
    assert proc.returncode == 2 and FORM in proc.stderr and not tmp_path.joinpath("fixture").exists(), proc.stderr


def test_a_holdout_that_leaves_no_pair_on_a_side_is_refused(tmp_path):
    proc = bench_main("run", "--seg", "cdnn0", "--data", TINY, "--out", str(tmp_path), "--curve-split",
                      "holdout:0.01", check=False)
    assert proc.returncode == 2
    assert "--curve-split holdout:0.01: holds out 0 of the 16 training pairs" in proc.stderr
    assert "expected at least 1 pair on either side" in proc.stderr


def test_the_estimate_prices_curve_points_on_the_held_out_pairs(tmp_path):
    """16 training pairs, 6 test pairs, 3 real-only epochs with a curve point each; eval at 60 img/s.
    Scored: (3 x 6 + 6) / 60 = 0.4 s. holdout:0.5: 8 pairs held out, (3 x 8 + 6) / 60 = 0.5 s."""
    grid = tmp_path / "g.toml"
    grid.write_text('[grid]\ncurve_split = ["scored", "holdout:0.5"]\n[run]\nseg = "cdnn0"\nloss = "bce"\n'
                    'data = "fixture?n=16&n_test=6"\nepochs = 3\nsize = "32x48"\n')
    perf = _perf_file(tmp_path / "perf.json", [_step("bce", 100.0)])
    out = bench_main("sweep", str(grid), "--out", str(tmp_path / "runs"), "--estimate", "--perf", str(perf),
                     "--json").stdout
    runs = {("holdout" in " ".join(r["args"])): r for r in json.loads(out)["runs"]}
    assert runs[False]["eval_s"] == pytest.approx(0.4) and runs[False]["curve_pairs"] == 6
    assert runs[True]["eval_s"] == pytest.approx(0.5) and runs[True]["curve_pairs"] == 8
    assert runs[True]["images"]["real"] == 3 * 8


def test_with_folds_the_curve_comes_out_of_the_training_folds_and_each_fold_scores_all_its_pairs(tmp_path):
    host = get_host()

    def data(**kw):
        opts = options(tmp_path, curve_split=kw.pop("curve_split", "scored"))
        opts.fold = kw.pop("fold", None)
        return open_data(host, build(host, opts))

    whole = data(curve_split="holdout:0.25").curve
    for k in (1, 2):
        plain, held = data(fold=f"{k}/2"), data(fold=f"{k}/2", curve_split="holdout:0.25")
        assert held.test.ids() == plain.test.ids()  # the scored fold keeps every pair
        assert set(held.curve.ids()) == set(whole.ids()) - set(plain.test.ids())  # the same ids, chosen once
        assert set(held.train.ids()) | set(held.curve.ids()) == set(plain.train.ids())
