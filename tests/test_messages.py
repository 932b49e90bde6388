"""What the CLI prints while it works: a rate once it is measured and nothing before (never ``- img/s``), and
each skipped file named once."""

import io
import re

import numpy as np
from PIL import Image
from rich.console import Console

from bench.cli.progress import RichReporter
from conftest import bench_main
from test_data import write_pairs


def rendered(drive) -> str:
    """What a :class:`RichReporter` shows once ``drive(reporter)`` has run (its final render, as in a log)."""
    out = io.StringIO()
    with RichReporter(Console(file=out, width=160)) as reporter:
        drive(reporter)
    return out.getvalue()


def test_a_phase_shows_its_rate_once_known_and_no_placeholder_before():
    before = rendered(lambda r: r.start_phase("gan:dcgan", 3, 1))
    assert "epoch 0/3" in before and "img/s" not in before and "loss" not in before and " - " not in before

    def gan(r):  # GAN training reports whole epochs: no advance() between them
        r.start_phase("gan:dcgan", 3, 1)
        r.end_epoch("gan:dcgan", 1, 1.25, 0.0)  # a reporter that cannot time its epoch: nothing, not a dash
        r.end_epoch("gan:dcgan", 2, 1.5, 41.7)
    text = rendered(gan)
    assert "2/3 epoch 2/3 loss 1.5000 42 img/s" in text and "- img/s" not in text
    slow = rendered(lambda r: (r.start_phase("gan:lapgan", 1, 1), r.end_epoch("gan:lapgan", 1, 2.0, 0.43)))
    assert "0.43 img/s" in slow  # not "0 img/s"

    def segmenter(r):  # the training engine advances each step: the epoch's end adds none
        r.start_phase("real", 2, 4)
        for _ in range(4):
            r.advance(1, 16)
        r.end_epoch("real", 1, 0.5, 640.2)
    assert "4/8 epoch 1/2 loss 0.5000 640 img/s" in rendered(segmenter)


def test_gan_training_shows_images_per_second(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))  # trained here, never found in a cache
    proc = bench_main("gan", "train", "--gen", "dcgan", "--gan-epochs", "2", "--data", "fixture?n=16&n_test=6",
                      "--device", "cpu")
    assert '"cache": "miss"' in proc.stdout
    assert re.search(r"gan:dcgan .* 2/2 epoch 2/2 loss \d+\.\d{4} \d+(\.\d+)? img/s", proc.stderr), proc.stderr
    assert "- img/s" not in proc.stderr


def test_data_check_of_a_split_with_only_bad_pairs_prints_no_placeholder(tmp_path):
    write_pairs(tmp_path / "images", tmp_path / "masks", 2, size=(24, 32), prefix="IMG")
    for mask in (tmp_path / "masks").iterdir():
        Image.fromarray(np.full((24, 32), 7, np.uint8)).save(mask)
    proc = bench_main("data", "check", f"folder:{tmp_path}", check=False)
    assert proc.returncode == 1 and "  all: 2 pairs, 2 bad\n" in proc.stdout, proc.stdout
    assert "sizes (HxW) -" not in proc.stdout
