"""`--subset`, `--exclude` and `bench data check`."""


import numpy as np
from PIL import Image

from conftest import bench_cli, bench_main
from test_data import write_pairs
from test_run import TINY, record_of


def test_subset_is_reproducible_and_trains_the_generator_on_it(tmp_path):
    env = {"BENCH_CACHE_DIR": str(tmp_path / "cache")}
    args = ["run", "--gen", "dcgan", "--seg", "unet", *TINY, "--subset", "6", "--subset-seed", "3"]
    a, path = record_of(bench_cli(*args, "--out", str(tmp_path / "a"), env=env))
    b, _ = record_of(bench_cli(*args, "--out", str(tmp_path / "b"), env=env))
    other, _ = record_of(bench_cli(*args[:-1], "4", "--out", str(tmp_path / "a"), env=env))
    assert a["runtime"]["n_train"] == 6 and a["run"]["subset"] == 6 and a["run"]["subset_seed"] == 3
    assert a["data_fingerprint"]["train"] == b["data_fingerprint"]["train"] != other["data_fingerprint"]["train"]
    assert b["generators"][0]["cache"] == "hit" and other["generators"][0]["cache"] == "miss"
    assert "subset-6-seed-3" in path


def test_exclude_drops_listed_ids_and_records_their_hash(tmp_path):
    ids = tmp_path / "non-dermoscopic.txt"
    ids.write_text("# ids to drop\nfixture_train_00001\n\nfixture_train_00004  # a clinical photo\n")
    record, path = record_of(bench_cli("run", "--seg", "unet", *TINY, "--exclude", str(ids), "--out", str(tmp_path)))
    assert record["runtime"]["n_train"] == 14 and record["run"]["exclude"]["n_ids"] == 2
    assert len(record["run"]["exclude"]["sha256"]) == 64 and "exclude-" in path
    ids.write_text("ISIC_9999999\n")
    proc = bench_cli("run", "--seg", "unet", *TINY, "--exclude", str(ids), "--out", str(tmp_path), check=False)
    assert proc.returncode == 2 and "id 'ISIC_9999999' is not in the training split" in proc.stderr


def test_data_check_reports_counts_sizes_and_problems(tmp_path):
    write_pairs(tmp_path / "images", tmp_path / "masks", 3, size=(24, 32), prefix="IMG")
    ok = bench_main("data", "check", f"folder:{tmp_path}")
    assert "all: 3 pairs, 0 bad; sizes (HxW) 24x32 (3)" in ok.stdout
    Image.fromarray(np.full((24, 32), 7, np.uint8)).save(tmp_path / "masks" / "IMG01_segmentation.png")
    bad = bench_main("data", "check", f"folder:{tmp_path}", check=False)
    assert bad.returncode == 1 and "1 bad" in bad.stdout
    assert "problem: " in bad.stdout and "IMG01_segmentation.png: mask is not binary" in bad.stdout
    (tmp_path / "masks" / "IMG02_segmentation.png").unlink()
    layout = bench_main("data", "check", f"folder:{tmp_path}", check=False)
    assert layout.returncode == 2 and "layout problem" in layout.stderr and "IMG02.jpg: no mask found" in layout.stderr
