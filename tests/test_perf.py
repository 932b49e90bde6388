"""`bench perf` measures and reports; it never asserts on the numbers (benchmarks measure, tests check shape)."""

import json

import torch

from bench.api import SegmenterMeta, hookimpl
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


def test_compile_flag_runs_and_is_recorded(bench_register, bench_run):
    """A one-convolution segmenter keeps torch.compile's CPU compile time to seconds."""

    class Plugin:
        @hookimpl
        def bench_register_segmenters(self, register):
            register("one-conv", lambda in_channels, width=1.0: torch.nn.Conv2d(in_channels, 1, 3, padding=1),
                     meta=SegmenterMeta(size="32x32", channels="rgb", loss="bce"))

    bench_register(Plugin(), name="compile-plugin")
    record = bench_run(seg="one-conv", compile=True)
    step = record["runtime"]["step"]
    assert step["compile"] is True and step["amp"] == "fp32"
    assert step["compiled"] is (step["compile_error"] is None)
