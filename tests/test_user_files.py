"""Nothing of the user's is lost and messages say what is true (issue 27): no command replaces a file it did not
write unless told to (--overwrite), quality records are kept per reference run, a one-seed cell shows no standard
deviation, and bench predict reads every image training reads and names what it passes over."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import bench_main

TINY = ["--data", "fixture?n=16&n_test=6", "--seg", "unet", "--epochs", "1"]
GAN_TINY = ["--data", "fixture?n=16&n_test=6", "--gan-epochs", "1"]


def record_path(proc) -> Path:
    return Path(proc.stdout.split("record: ")[-1].strip())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two real-data runs that differ in their epochs (so in identity) and one that trained on DCGAN pairs."""
    root = tmp_path_factory.mktemp("user-files")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BENCH_CACHE_DIR", str(root / "cache"))
        out = root / "runs"
        real = record_path(bench_main("run", *TINY, "--out", str(out))).parent
        other = record_path(bench_main("run", *TINY[:-1], "2", "--out", str(out))).parent
        gan = record_path(bench_main("run", *TINY, "--gen", "dcgan", "--gan-epochs", "1", "--synthetic-epochs", "1",
                                     "--finetune-epochs", "1", "--out", str(out))).parent
        yield root, out, real, other, gan


def refused(proc, path: Path) -> None:
    """A one-line error (exit 2) that names ``path`` and --overwrite."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "--overwrite" in lines[0], proc.stderr


def test_a_file_the_command_did_not_write_is_replaced_only_with_overwrite(runs, tmp_path):
    _, out, real, _, _ = runs
    targets = {
        "export": ["export", str(real), "--format", "torchscript", "--out"],
        "gan sample": ["gan", "sample", "--gen", "dcgan", *GAN_TINY, "--out"],
        "data check": ["data", "check", "fixture?n=16&n_test=6", "--exclude-out"],
        "leaderboard": ["leaderboard", "--runs", str(out), "--plots", "--out"],
        "claims": ["claims", "--runs", str(out), "--out"],
        "scalability": ["scalability", "--runs", str(out), "--out"],
    }
    for name, args in targets.items():
        mine = tmp_path / f"{name.replace(' ', '-')}.{'png' if name == 'gan sample' else 'md'}"
        mine.write_text("the user's own file")
        refused(bench_main(*args, str(mine), check=False), mine)
        assert mine.read_text() == "the user's own file", name
    assert not list(tmp_path.glob("*_plots")), "nothing is written before the refusal, plots neither"
    for name in ("export", "leaderboard"):
        mine = tmp_path / f"{name}.md"
        bench_main(*targets[name], str(mine), "--overwrite")
        assert mine.read_bytes() != b"the user's own file", name
    fresh = tmp_path / "new" / "board.md"  # a file that is not there needs no flag
    bench_main("leaderboard", "--runs", str(out), "--out", str(fresh))
    assert fresh.read_text().startswith("# skinbench leaderboard")


def test_predict_never_replaces_masks_already_in_out(runs, tmp_path):
    _, _, real, _, _ = runs
    images, masks = tmp_path / "images", tmp_path / "ground-truth"
    images.mkdir()
    masks.mkdir()
    rgb = (np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8)
    for i in range(2):
        Image.fromarray(rgb).save(images / f"ISIC_000000{i}.jpg")
    truth = np.zeros((30, 40), np.uint8)
    truth[10:20, 10:30] = 255
    Image.fromarray(truth).save(masks / "ISIC_0000001_segmentation.png")  # ISIC's name for the ground truth
    before = (masks / "ISIC_0000001_segmentation.png").read_bytes()
    proc = bench_main("predict", str(real), "--images", str(images), "--out", str(masks), check=False)
    refused(proc, masks)
    assert "ISIC_0000001_segmentation.png" in proc.stderr
    assert sorted(p.name for p in masks.iterdir()) == ["ISIC_0000001_segmentation.png"]  # nothing written
    assert (masks / "ISIC_0000001_segmentation.png").read_bytes() == before
    proc = bench_main("predict", str(real), "--images", str(images), "--out", str(masks), "--overwrite")
    assert "wrote 2 masks" in proc.stdout and len(list(masks.iterdir())) == 2


def test_quality_records_are_kept_per_reference_and_a_generated_data_reference_is_refused(runs, tmp_path):
    root, _, real, other, gan = runs
    out = tmp_path / "runs"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BENCH_CACHE_DIR", str(root / "cache"))
        proc = bench_main("gan", "quality", "--gen", "dcgan", *GAN_TINY, "--n", "4", "--reference", str(gan),
                          "--out", str(out), check=False)
        assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
            f"error: --reference {gan} trained on generated data (gen dcgan); pass a real-data run (gen none)"]
        assert not out.exists()
        paths = []
        for reference in (real, other):
            proc = bench_main("gan", "quality", "--gen", "dcgan", *GAN_TINY, "--n", "4", "--n-features", "12",
                              "--reference", str(reference), "--out", str(out))
            paths.append(record_path(proc))
        unreferenced = record_path(bench_main("gan", "quality", "--gen", "dcgan", *GAN_TINY, "--n", "4",
                                              "--out", str(out)))
    hashes = [json.loads((r / "results.json").read_text())["identity"]["hash"][:8] for r in (real, other)]
    assert [p.name for p in paths] == [f"quality-ref-{h}.json" for h in hashes] and unreferenced.name == "quality.json"
    assert all(p.exists() for p in paths) and paths[0].parent == paths[1].parent == unreferenced.parent
    record = json.loads(paths[0].read_text())
    entry = Path(record["generator"]["checkpoint"]).parent
    assert {f"quality-ref-{h}.json" for h in hashes} | {"quality.json"} <= {p.name for p in entry.iterdir()}
    board = bench_main("leaderboard", "--runs", str(out)).stdout
    assert len([line for line in board.splitlines() if line.startswith("| dcgan")]) == 3, board


def test_a_one_seed_cell_shows_no_standard_deviation(runs):
    _, out, _, _, _ = runs
    board = bench_main("leaderboard", "--runs", str(out)).stdout
    rows = [line for line in board.splitlines() if "(n=1)" in line]  # every cell here is one seed's
    assert rows and not any("±" in line for line in rows), board
    assert re.search(r"\| \d\.\d{4} \(n=1\) \|", board), board


def test_predict_reads_every_image_training_reads_and_names_the_files_it_passes_over(runs, tmp_path):
    _, _, real, _, _ = runs
    images = tmp_path / "photos"
    images.mkdir()
    rgb = (np.random.default_rng(1).random((24, 32, 3)) * 255).astype(np.uint8)
    for name in ("a.bmp", "b.tif", "c.TIFF", "d.png"):
        Image.fromarray(rgb).save(images / name)
    (images / "e.webp").write_bytes(b"a format training does not read")
    (images / "notes.txt").write_text("not an image")
    out = tmp_path / "masks"
    proc = bench_main("predict", str(real), "--images", str(images), "--out", str(out))
    assert f"wrote 4 masks to {out}; skipped 2 files that are not images" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == [f"{s}_segmentation.png" for s in "abcd"]
    named = [line for line in proc.stderr.splitlines() if line.startswith("skipped ")]
    assert named == ["skipped 2 files that are not images (JPEG, PNG, BMP or TIFF): e.webp, notes.txt"]
    shutil.rmtree(out)
    for name in ("a.bmp", "b.tif", "c.TIFF", "d.png"):
        (images / name).unlink()
    proc = bench_main("predict", str(real), "--images", str(images), "--out", str(out), check=False)
    assert proc.returncode == 2 and "no images found; found only e.webp, notes.txt" in proc.stderr
    assert "bmp, jpeg, jpg, png, tif or tiff" in proc.stderr
