"""Figures (Figs. 5, 7, 8, 9) are valid PNGs linked from the markdown; scalability numbers by hand."""

import json

import pytest
from PIL import Image

from bench.results.leaderboard import render
from bench.results.plots import run_plots, training_curves
from bench.results.scalability import equivalent_images
from bench.results.scalability import render as render_scalability
from conftest import bench_cli
from test_stats import record

REAL = [(500, 0.60), (1000, 0.70), (1500, 0.75), (2000, 0.80)]


def history(phases=(("synthetic", 3), ("real", 4))):
    entries = []
    for phase, epochs in phases:
        for e in range(epochs):
            entries.append({"phase": phase, "source": phase, "epoch": e + 1, "loss": 0.5, "train_accuracy": 0.8,
                            "val_accuracy": 0.85 + 0.01 * e, "val_jaccard": 0.6 + 0.02 * e, "images": 10})
    return entries


def sized(gen, seed, n, jaccard):
    r = record(gen, seed, [jaccard, jaccard], seg="cdnn0")
    r["run"]["n_train"] = n  # the shape of a record written before runtime facts had their own section
    return r


def is_png(path):
    with Image.open(path) as im:
        return im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100


def test_equivalent_real_images_are_read_off_the_real_only_curve():
    assert equivalent_images(REAL, 0.65) == (pytest.approx(750.0), "")
    assert equivalent_images(REAL, 0.70) == (pytest.approx(1000.0), "")
    assert equivalent_images(REAL, 0.775) == (pytest.approx(1750.0), "")
    assert equivalent_images(REAL, 0.85) == (None, ">")
    assert equivalent_images(REAL, 0.50) == (None, "<")


def test_scalability_table_gains_and_figure(tmp_path):
    records = [sized(None, s, n, j + 0.01 * s) for n, j in REAL for s in (0, 1)]
    records += [sized("dcgan", 0, 500, 0.655), sized("dcgan", 0, 2000, 0.90), sized("lapgan", 0, 1000, 0.58)]
    text = render_scalability(records, "cdnn0", tmp_path / "plots", tmp_path)
    assert "| 500 | 0.6050 ± 0.0071 (n=2) | 0.6550 (n=1) | – |" in text
    # real-only means are 0.605, 0.705, 0.755, 0.805: 0.655 lies halfway from 500 to 1000 images
    assert "| 500 | +250 | – |" in text
    assert "| 2000 | > +0 | – |" in text and "| 1000 | – | < -500 |" in text
    figure = next((tmp_path / "plots").glob("*.png"))
    assert is_png(figure) and f"]({figure.relative_to(tmp_path).as_posix()})" in text


def test_scalability_never_pools_curves_of_different_settings():
    records = [sized(None, 0, n, j) for n, j in REAL] + [sized(None, 1, 500, 0.70)]
    for r in records:
        r["run"]["epochs"] = 400
    records[-1]["run"]["epochs"] = 800  # another experiment at the same size: not another seed of the first
    text = render_scalability(records, "cdnn0")
    assert "| training images | real only (epochs 400) | real only (epochs 800) |" in text
    assert "| 500 | 0.6000 (n=1) | 0.7000 (n=1) |" in text and "n=2" not in text


def test_per_run_plots_and_training_curves_mark_the_phase_boundary(tmp_path):
    r = record("dcgan", 0, [0.2, 0.5, 0.9])
    r["history"] = history()  # a record from before --curve-split: val_ names, the scored split
    names = run_plots(r, tmp_path)
    assert names == ["jaccard_histogram.png", "training_curves.png"]
    assert all(is_png(tmp_path / n) for n in names)
    assert training_curves([[{"phase": "real", "epoch": 1, "loss": 0.3}]], "old record", tmp_path / "x.png") is None


def test_leaderboard_links_each_rows_plots(tmp_path):
    records = [record(None, 0, [0.5, 0.6, 0.7]), record("dcgan", 0, [0.6, 0.7, 0.8])]
    for r in records:
        r["history"] = history()
    text = render(records, plots=tmp_path / "board_plots", links_from=tmp_path)
    links = [part.split(")")[0] for part in text.split("](")[1:]]
    assert len(links) == 4 and all(is_png(tmp_path / link) for link in links)
    assert "[curves](board_plots/fixture-quick/unet-dcgan-curves.png)" in text


@pytest.mark.slow
def test_a_run_draws_its_figures_and_the_cli_links_them(tmp_path):
    from test_run import TINY

    out = tmp_path / "runs"
    proc = bench_cli("run", "--seg", "unet", "--out", str(out), *TINY)
    path = proc.stdout.split("record: ")[1].strip()
    rec = json.loads(open(path).read())
    assert rec["plots"] == ["plots/jaccard_histogram.png", "plots/training_curves.png"]
    assert all("curve_jaccard" in h and "train_accuracy" in h for h in rec["history"])
    bench_cli("leaderboard", "--runs", str(out), "--out", str(tmp_path / "lb.md"), "--plots")
    written = (tmp_path / "lb.md").read_text()
    link = written.split("[histogram](")[1].split(")")[0]
    assert link.startswith("lb_plots/") and is_png(tmp_path / link)
    no_out = bench_cli("leaderboard", "--runs", str(out), "--plots", check=False)
    assert no_out.returncode == 2 and "--plots needs --out" in no_out.stderr


@pytest.mark.slow
def test_bench_scalability_runs_what_is_missing_then_renders(tmp_path):
    args = ["scalability", "--runs", str(tmp_path / "runs"), "--seg", "unet", "--data", "fixture?n=24&n_test=6",
            "--sizes", "8,all", "--gens", "none;dcgan", "--set", "epochs=1", "--set", "gan_epochs=1",
            "--set", "synthetic_epochs=1", "--set", "finetune_epochs=1", "--out", str(tmp_path / "scal.md")]
    proc = bench_cli(*args, "--run")
    assert len(list((tmp_path / "runs").rglob("results.json"))) == 4
    for n in (8, 24):
        assert f"\n| {n} | " in proc.stdout
    assert "Equivalent extra real images" in proc.stdout
    assert is_png(next((tmp_path / "scal_plots").glob("*.png")))
    again = bench_cli(*args, "--run", "--overwrite")
    assert again.stderr.count("already finished") == 4 and again.stdout == proc.stdout
