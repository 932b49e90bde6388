"""bench run --config FILE.toml and the config.toml each run writes: the same keys as a grid's [run] table."""

import json
from pathlib import Path

from conftest import bench_main


def record_path(proc) -> Path:
    return Path(proc.stdout.split("record: ")[1].strip())


def test_a_config_file_runs_the_command_line_wins_and_a_runs_config_toml_reruns_it(tmp_path):
    config = tmp_path / "exp.toml"
    config.write_text('description = "tiny"\n[run]\nseg = "cdnn0"\ndata = "fixture?n=16&n_test=6"\n'
                      'size = "32x48"\nepochs = 1\nseed = 3\n')
    out = tmp_path / "runs"
    first = record_path(bench_main("run", "--config", str(config), "--out", str(out)))
    record = json.loads(first.read_text())
    assert record["run"]["seg"] == "cdnn0" and record["run"]["epochs"] == 1 and record["run"]["seed"] == 3
    assert record["run"]["size"] == "32x48" and "epochs-1_size-32x48" in str(first)

    written = first.parent / "config.toml"
    text = written.read_text()
    assert 'seg = "cdnn0"' in text and "seed = 3" in text and "lr = 0.0003" in text and "batch_size = 16" in text
    again = bench_main("run", "--config", str(written), "--out", str(out))  # every setting resolved, same run
    assert record_path(again) == first and "already finished" in again.stderr
    typed = bench_main("run", "--config", str(config), "--lr", "0.0003", "--gan-epochs", "7", "--out", str(out))
    assert record_path(typed) == first and "already finished" in typed.stderr  # a default, an unused GAN setting

    wins = record_path(bench_main("run", "--config", str(written), "--epochs", "2", "--seed", "4", "--out", str(out)))
    run = json.loads(wins.read_text())["run"]
    assert run["epochs"] == 2 and run["seed"] == 4 and run["seg"] == "cdnn0" and run["size"] == "32x48"


def test_config_file_errors_name_the_file_and_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run]\nsegmenter = 'unet'\n")
    proc = bench_main("run", "--config", str(bad), check=False)
    assert proc.returncode == 2 and f"--config {bad}" in proc.stderr and "unknown option 'segmenter'" in proc.stderr
    bad.write_text("epochs = [1, 2]\n")
    assert "epochs must be a single value" in bench_main("run", "--config", str(bad), check=False).stderr
    bad.write_text("epochs = \n")
    assert "not valid TOML" in bench_main("run", "--config", str(bad), check=False).stderr
