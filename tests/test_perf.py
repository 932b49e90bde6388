"""`bench perf` measures and reports; it never asserts on the numbers (benchmarks measure, tests check shape)."""

import json

from conftest import bench_cli


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
    proc = bench_cli("perf", check=False)
    assert proc.returncode == 2 and "name at least one --seg or --gen" in proc.stderr


def test_compile_flag_runs_and_is_recorded(tmp_path):
    from test_run import record_of

    record, _ = record_of(bench_cli("run", "--seg", "cdnn1", "--compile", "--data", "fixture?n=8&n_test=2",
                                    "--epochs", "1", "--size", "32x32", "--out", str(tmp_path)))
    step = record["run"]["step"]
    assert step["compile"] is True and step["amp"] == "fp32"
    assert step["compiled"] is (step["compile_error"] is None)
