"""`bench perf` measures and reports; it never asserts on the numbers (benchmarks measure, tests check shape)."""

import json

from conftest import bench_cli, bench_main


def test_perf_json_has_rows_and_data():
    out = json.loads(bench_cli("perf", "--seg", "unet", "--gen", "dcgan", "--size", "32x48", "--steps", "2",
                               "--warmup", "1", "--batch", "4", "--data", "fixture?n=16", "--json").stdout)
    assert [r["component"] for r in out["rows"]] == ["unet", "dcgan (GAN training)"]
    for row in out["rows"]:
        assert {"component", "size", "device", "train_img_s", "model_img_s", "ratio", "peak_mem_mb"} <= set(row)
        assert row["size"] == "32x48" and row["device"] == "cpu" and row["train_img_s"] > 0
    data = out["data"]
    assert data["n_images"] == 16 and data["prepare_img_s"] > 0 and data["naive_epoch_s"] > 0
    assert out["machine"]["cores"] >= 1


def test_perf_table_and_missing_components():
    text = bench_cli("perf", "--seg", "cdnn3", "--size", "32x48", "--steps", "1", "--warmup", "1", "--batch", "2",
                     "--data", "fixture?n=8").stdout
    assert "| cdnn3 | 32x48 | cpu |" in text and "naive DataLoader epoch" in text
    proc = bench_main("perf", check=False)
    assert proc.returncode == 2 and "name at least one --seg or --gen" in proc.stderr
    proc = bench_main("perf", "--seg", "cdnn0", "--batch", "256", "--data", "fixture?n=8", check=False)
    assert proc.returncode == 2 and "--batch 256: larger than the training split" in proc.stderr


def test_perf_processes_measure_at_once_and_sum_their_rows():
    out = json.loads(bench_cli("perf", "--seg", "cdnn0", "--size", "16x24", "--steps", "2", "--warmup", "1",
                               "--batch", "4", "--data", "fixture?n=8", "--processes", "2", "--json").stdout)
    row = out["rows"][0]
    assert out["processes"] == 2 and row["processes"] == 2 and len(row["per_process_img_s"]) == 2
    # together: all images over the span from the first start to the last end, at most the sum of the parts
    assert 0 < row["train_img_s"] <= sum(row["per_process_img_s"]) * (1 + 1e-9)
