"""`bench perf` measures and reports; it never asserts on the numbers (benchmarks measure, tests check shape)."""

import json

from conftest import bench_cli, bench_main


def test_perf_json_has_rows_of_each_kind_keyed_by_their_settings():
    out = json.loads(bench_cli("perf", "--seg", "unet", "--gen", "dcgan", "--with-sampling", "--size", "32x48",
                               "--width", "0.25", "--steps", "2", "--warmup", "1", "--batch", "4",
                               "--data", "fixture?n=16", "--json").stdout)
    assert out["schema"] == 2 and out["processes"] == 1
    assert [(r["kind"], r["component"]) for r in out["rows"]] == [
        ("step", "unet"), ("sampling", "dcgan samples"), ("gan", "dcgan (GAN training)")]
    step, sampling, gan = out["rows"]
    assert step["width"] == sampling["width"] == gan["width"] == 0.25 and step["device"] == "cpu"
    assert (step["size"], step["channels"], step["loss"], step["batch"], step["eval_batch"]) == \
        ("32x48", "rgb", "bce", 4, 16)
    assert step["train_img_s"] > 0 and step["model_img_s"] > 0 and step["eval_img_s"] > 0
    assert not step["graph"] and not step["graphed"]
    # sampling: the generator at its own size (--gan-size, default --size) filling the bank, in calls of one shape
    assert (sampling["gan_size"], sampling["size"]) == ("32x48", "32x48") and sampling["sample_pairs_s"] > 0
    assert sampling["draw"] == 16  # the whole training split in one call (256 at most)
    assert gan["batch"] == 4 and gan["train_img_s"] > 0
    data = out["data"]
    assert data["n_images"] == 16 and data["prepare_img_s"] > 0 and data["naive_epoch_s"] > 0
    assert out["machine"]["cores"] >= 1


def test_perf_table_and_missing_components():
    text = bench_cli("perf", "--seg", "cdnn3", "--gen", "dcgan", "--with-sampling", "--size", "32x48", "--steps", "1",
                     "--warmup", "1", "--batch", "2", "--width", "0.25", "--data", "fixture?n=8").stdout
    assert "| cdnn3 | 32x48 | 0.25 | rgb-hsv-l, tanimoto | 2 | eager |" in text and "| dcgan samples | 32x48 -> 32x48 | 0.25 |" in text
    assert "cdnn3 + dcgan samples (32x48): a synthetic epoch trains at" in text and "naive DataLoader epoch" in text
    proc = bench_main("perf", check=False)
    assert proc.returncode == 2 and "name at least one --seg or --gen, or a --grid" in proc.stderr
    proc = bench_main("perf", "--seg", "cdnn0", "--batch", "256", "--data", "fixture?n=8", check=False)
    assert proc.returncode == 2 and "--batch 256: larger than the training split" in proc.stderr
    proc = bench_main("perf", "--grid", "table2", "--seg", "cdnn0", check=False)
    assert proc.returncode == 2 and "drop --seg and --gen" in proc.stderr
    proc = bench_main("perf", "--grid", "table2", "--width", "0.5", "--batch", "8", check=False)
    assert proc.returncode == 2 and "--batch, --width would not apply to them" in proc.stderr and "--set width=" in proc.stderr
    proc = bench_main("perf", "--seg", "cdnn0", "--set", "width=0.5", check=False)
    assert proc.returncode == 2 and "--profile and --set describe a grid's runs" in proc.stderr


def test_perf_grid_measures_exactly_what_the_estimate_needs(tmp_path):
    """A grid at quarter width with a generator: every row the estimate needs, each once, and nothing else;
    the estimate then prices every run. Measured in two processes at once, for --runs-per-gpu 2."""
    grid = tmp_path / "g.toml"
    grid.write_text('[grid]\ngen = ["none", "dcgan"]\nseed = [0, 1]\n[run]\nseg = "cdnn0"\n'
                    'data = "fixture?n=8&n_test=2"\nepochs = 1\nsynthetic_epochs = 1\nfinetune_epochs = 1\n'
                    'gan_epochs = 1\nsize = "32x48"\ngan_size = "32x48"\nbatch_size = 4\ngan_batch_size = 4\n')
    proc = bench_cli("perf", "--grid", str(grid), "--steps", "1", "--warmup", "1", "--processes", "2", "--json")
    out = json.loads(proc.stdout)
    assert out["processes"] == 2 and "data" not in out
    assert [(r["kind"], r["name"], r["size"], r["width"], r["batch"]) for r in out["rows"]] == [
        ("step", "cdnn0", "32x48", 0.25, 4), ("sampling", "dcgan", "32x48", 0.25, 0),
        ("gan", "dcgan", "32x48", 0.25, 4)]
    for row in out["rows"]:  # together: all images over the span from the first start to the last end
        assert row["processes"] == 2 and len(row["per_process"]) == 2
    step = out["rows"][0]
    assert 0 < step["train_img_s"] <= sum(p["train_img_s"] for p in step["per_process"]) * (1 + 1e-9)
    perf = tmp_path / "perf.json"
    perf.write_text(proc.stdout)
    text = bench_main("sweep", str(grid), "--out", str(tmp_path / "runs"), "--estimate", "--perf", str(perf),
                      "--runs-per-gpu", "2").stdout
    assert "of device time for 4 runs, 2 at once per GPU" in text and "not measured" not in text
