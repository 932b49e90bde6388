"""bench sweep: built-in grids, TOML grids, the local executor end to end (without submitit), runs packed per
GPU, SLURM jobs through a stand-in sbatch, resume, status, estimates, leaderboard."""

import json
from pathlib import Path

import pytest

from bench.errors import ConfigError
from bench.sweep.executors import parse_time
from bench.sweep.runner import BUILT_IN, from_toml
from conftest import bench_cli, bench_main


def without_submitit(tmp_path: Path) -> dict[str, str]:
    """An environment in which ``import submitit`` fails, as on a machine without the slurm extra."""
    fake = tmp_path / "no-submitit" / "submitit"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("No module named submitit")\n')
    return {"PYTHONPATH": str(fake.parent)}

GRID = """
description = "two losses x real-only and DCGAN, on a tiny fixture"
[grid]
loss = ["bce", "tanimoto"]
gen = ["none", "dcgan"]
[run]
seg = "unet"
data = "fixture?n=16&n_test=6"
epochs = 1
synthetic_epochs = 1
finetune_epochs = 1
gan_epochs = 2
"""


def test_built_in_grids_are_the_papers_tables():
    table2 = BUILT_IN["table2"]().cells
    assert len(table2) == 7 + 6 * 3
    assert [c["gen"] for c in table2 if c["seg"] == "cdnn4"] == ["none"]
    table3 = BUILT_IN["table3"]().cells
    assert {(c["loss"], c["gen"]) for c in table3} == {
        (loss, gen) for loss in ("bce", "tanimoto") for gen in ("none", "dcgan", "lapgan", "dcgan,lapgan")}
    scal = BUILT_IN["scalability"]().cells
    assert {c.get("subset") for c in scal} == {500, 1000, 1500, None} and {c["seg"] for c in scal} == {"cdnn0"}


def test_a_toml_grid_crosses_its_lists_and_rejects_unknown_options(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(GRID)
    grid = from_toml(path)
    assert grid.name == "g" and len(grid.cells) == 4 and grid.seeds == [0]
    assert grid.shared["seg"] == "unet" and grid.shared["epochs"] == 1
    assert {(c["loss"], c["gen"]) for c in grid.cells} == {(a, b) for a in ("bce", "tanimoto") for b in ("none", "dcgan")}
    path.write_text('[grid]\nsegmenter = ["unet"]\n')
    with pytest.raises(ConfigError, match="unknown option 'segmenter'"):
        from_toml(path)
    path.write_text('[grid]\nepochs = [1, 2]\n[run]\nepochs = 3\n')
    with pytest.raises(ConfigError, match=r"epochs in both \[grid\] and \[run\]"):
        from_toml(path)


def test_sweep_settings_follow_one_precedence_and_a_grid_axis_cannot_be_overridden(tmp_path):
    """[run] < the grid's axes < bench sweep's options; --set on an axis is an error, not a silent choice; each run
    reads its resolved cell file, and runs that print the same command share one folder."""
    grid = tmp_path / "g.toml"
    grid.write_text('[grid]\nepochs = [1, 2]\n[run]\nseg = "cdnn0"\nlr = 0.001\ndata = "fixture?n=16&n_test=6"\n')
    out = tmp_path / "runs"
    proc = bench_main("sweep", str(grid), "--out", str(out), "--dry-run", "--set", "lr=0.002")
    assert proc.stdout.count("--lr 0.002") == 2 and "--lr 0.001" not in proc.stdout
    assert "--epochs 1" in proc.stdout and "--epochs 2" in proc.stdout
    bad = bench_main("sweep", str(grid), "--out", str(out), "--dry-run", "--set", "epochs=5", check=False)
    assert bad.returncode != 0 and "sets epochs = 5, which grid g [grid] varies" in bad.stdout + bad.stderr

    from bench.config.layers import Layer
    from bench.plugin.host import get_host
    from bench.sweep.runner import expand, write_cells

    entries = expand(get_host(), from_toml(grid), out, Layer("the command line", {"lr": 0.002}), [3], 1,
                     out / "sweeps" / "g")
    write_cells(entries)
    cell = Path(entries[0]["args"][entries[0]["args"].index("--config") + 1]).read_text()
    assert "seed = 3" in cell and "lr = 0.002" in cell and "epochs = 1" in cell and "width = 0.25" in cell
    assert entries[0]["args"][:2] == ["run", "--config"]  # the child parses no re-serialised flags


def test_slurm_times_parse_to_minutes():
    assert [parse_time(t) for t in ("90", "01:30:00", "1-00:00", "2:30")] == [90, 90, 1440, 3]
    with pytest.raises(ConfigError, match="--time"):
        parse_time("soon")


def test_a_grid_runs_on_the_local_executor_shares_its_gan_resumes_and_renders(tmp_path):
    """Two runs at a time (--runs-per-gpu 2 on a machine without a GPU), submitit absent."""
    grid = tmp_path / "tiny.toml"
    grid.write_text(GRID)
    out = tmp_path / "runs"
    env = {"BENCH_CACHE_DIR": str(tmp_path / "cache"), **without_submitit(tmp_path)}
    proc = bench_cli("sweep", str(grid), "--executor", "local", "--runs-per-gpu", "2", "--out", str(out), env=env)
    assert "4 runs, 0 already done" in proc.stdout and "4 done (of 4)" in proc.stdout
    records = [json.loads(p.read_text()) for p in out.rglob("results.json")]
    assert len(records) == 4 and all(r["status"] == "finished" for r in records)
    caches = sorted(g["cache"] for r in records for g in r["generators"])
    assert caches == ["hit", "miss"]  # the second DCGAN run started once the first had trained the generator
    assert len([p for p in (tmp_path / "cache" / "generators").iterdir() if p.is_dir()]) == 1

    again = bench_cli("sweep", str(grid), "--executor", "local", "--out", str(out), env=env)
    assert "4 already done" in again.stdout and "submitted" not in again.stdout
    status = bench_cli("sweep", "status", "tiny", "--out", str(out))
    assert "4 done (of 4)" in status.stdout

    board = bench_cli("leaderboard", "--runs", str(out))
    assert "| unet |" in board.stdout and "dcgan" in board.stdout


def test_status_names_the_log_of_a_failed_run(tmp_path):
    from test_data import write_pairs

    data = tmp_path / "data"
    for split in ("train", "test"):
        write_pairs(data / split / "images", data / split / "masks", 3)
    (data / "train" / "images" / "ISIC_0000001.jpg").write_bytes(b"not an image")  # found only when decoded
    grid = tmp_path / "broken.toml"
    grid.write_text(f'[grid]\nseg = ["unet"]\n[run]\ndata = "folder:{data}"\nepochs = 1\n')
    out = tmp_path / "runs"
    proc = bench_cli("sweep", str(grid), "--out", str(out), check=False)
    assert proc.returncode == 1 and "1 failed (of 1)" in proc.stdout
    status = bench_cli("sweep", "status", "broken", "--out", str(out), check=False)
    assert status.returncode == 1
    log = Path(status.stdout.split("log: ")[1].split()[0])
    assert log.is_file() and "ISIC_0000001.jpg" in log.read_text()


def test_a_sweep_never_counts_a_stale_record_as_done(tmp_path, monkeypatch):
    """Also: on a machine with GPUs, each local run is pinned to one (here a stand-in GPU list)."""
    from bench.sweep import executors as sweep

    grid = tmp_path / "tiny.toml"
    grid.write_text('[grid]\nseg = ["unet"]\n[run]\ndata = "fixture?n=16&n_test=6"\nepochs = 1\ndevice = "cpu"\n')
    out = tmp_path / "runs"
    monkeypatch.setattr(sweep, "visible_gpus", lambda: ["3", "5"])
    assert "on GPU 3" in bench_main("sweep", str(grid), "--out", str(out), "--runs-per-gpu", "2").stdout
    job = json.loads((out / "sweeps" / "tiny" / "sweep.json").read_text())["runs"][0]["job"]
    assert job["gpu"] == "3" and job["executor"] == "local"
    slots = sweep.local_slots(sweep.ExecutorOptions(runs_per_gpu=2), ["3", "5"])
    assert slots == ["3", "3", "5", "5"]
    assert sweep.local_slots(sweep.ExecutorOptions(parallel=3), ["3", "5"]) == ["3", "5", "3"]
    assert sweep.local_slots(sweep.ExecutorOptions(runs_per_gpu=2), []) == [None, None]
    record_path = next(out.rglob("results.json"))
    record = json.loads(record_path.read_text())
    assert "1 already done" in bench_cli("sweep", str(grid), "--out", str(out), "--dry-run").stdout
    record["identity"]["hash"] = "0" * 16  # as if trained on other data or settings
    record_path.write_text(json.dumps(record))
    again = bench_cli("sweep", str(grid), "--out", str(out), "--dry-run").stdout
    assert "0 already done" in again and "[stale]" in again


def fake_slurm(tmp_path: Path) -> Path:
    """A stand-in ``sbatch`` (no cluster here) that records each submission script; ``sacct`` knows nothing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(
        "#!/bin/bash\nn=$(( $(cat \"$(dirname \"$0\")/count\" 2>/dev/null || echo 100) + 1 ))\n"
        "echo $n > \"$(dirname \"$0\")/count\"\ncp \"$1\" \"$(dirname \"$0\")/job_$n.sh\"\necho \"Submitted batch job $n\"\n")
    for tool in ("srun", "sacct"):
        (bin_dir / tool).write_text("#!/bin/bash\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir


def slurm_sweep(tmp_path: Path) -> tuple[Path, Path, dict[str, str], Path]:
    """The stand-in SLURM tools, a grid of two losses x three strategies, the environment that finds the
    tools, and the runs folder."""
    pytest.importorskip("submitit")
    bin_dir = fake_slurm(tmp_path)
    grid = tmp_path / "g.toml"
    grid.write_text('[grid]\nloss = ["bce", "tanimoto"]\ngen = ["none", "dcgan", "dcgan,lapgan"]\n'
                    '[run]\ndata = "fixture?n=16&n_test=6"\nepochs = 1\n')
    return bin_dir, grid, {"PATH": f"{bin_dir}:{__import__('os').environ['PATH']}"}, tmp_path / "runs"


def submitted(bin_dir: Path) -> tuple[dict[int, str], dict[int, str | None]]:
    """Each recorded submission script by job number, and its ``--dependency`` (``None`` without one)."""
    scripts = {int(p.stem.split("_")[1]): p.read_text() for p in bin_dir.glob("job_*.sh")}
    depends = {k: next((line.split("=")[1] for line in s.splitlines() if "--dependency" in line), None)
               for k, s in scripts.items()}
    return scripts, depends


def test_slurm_jobs_wait_for_the_run_that_trains_their_generator(tmp_path):
    bin_dir, grid, env, out = slurm_sweep(tmp_path)
    proc = bench_cli("sweep", str(grid), "--executor", "slurm", "--slurm-partition", "gpu", "--gpus-per-job", "2",
                     "--time", "2:00:00", "--out", str(out), env=env)
    assert "queued" in proc.stdout
    scripts, depends = submitted(bin_dir)
    assert sorted(scripts) == [101, 102, 103, 104, 105, 106]  # bce: none, dcgan, both; tanimoto: the same
    assert all("--partition=gpu" in s and "--time=120" in s and "--gpus-per-node=2" in s for s in scripts.values())
    assert depends == {101: None, 102: None, 103: "afterany:102", 104: None, 105: "afterany:102",
                       106: "afterany:102:103"}
    runs = json.loads((out / "sweeps" / "g" / "sweep.json").read_text())["runs"]
    assert all(r["args"][-2:] == ["--nproc", "2"] and "nproc-2" in r["folder"] for r in runs)  # DDP per job
    status = bench_cli("sweep", "status", "g", "--out", str(out), env=env)
    assert "6 pending (of 6)" in status.stdout


def test_slurm_packs_runs_per_gpu_and_orders_generator_training_first(tmp_path):
    bin_dir, grid, env, out = slurm_sweep(tmp_path)
    bench_cli("sweep", str(grid), "--executor", "slurm", "--runs-per-gpu", "2", "--out", str(out), env=env)
    scripts, depends = submitted(bin_dir)
    assert sorted(scripts) == [101, 102, 103] and all("--gpus-per-node=1" in s for s in scripts.values())
    # (bce none, bce dcgan) train DCGAN; (bce both, tanimoto none) LAPGAN; (tanimoto dcgan, both) reuse both.
    assert depends == {101: None, 102: "afterany:101", 103: "afterany:101:102"}
    runs = json.loads((out / "sweeps" / "g" / "sweep.json").read_text())["runs"]
    jobs = {(r["cell"]["loss"], r["cell"]["gen"]): r["job"]["id"] for r in runs}
    assert jobs == {("bce", "none"): "101", ("bce", "dcgan"): "101", ("bce", "dcgan,lapgan"): "102",
                    ("tanimoto", "none"): "102", ("tanimoto", "dcgan"): "103", ("tanimoto", "dcgan,lapgan"): "103"}


def _perf_file(path, rows, processes=1):
    path.write_text(json.dumps({"schema": 2, "processes": processes, "rows": rows}))
    return path


def _step(loss, rate, width=0.25, graph=False):
    return {"kind": "step", "name": "cdnn0", "size": "32x48", "batch": 16, "width": width, "channels": "rgb-hsv-l",
            "loss": loss, "graph": graph, "eval_batch": 32, "train_img_s": rate, "eval_img_s": 60.0}


def test_estimate_projects_each_run_from_perf_rows(tmp_path):
    """Hand computation: 16 training pairs and 6 test pairs, one epoch per phase, quick profile (width 0.25,
    eval batch 32, the curve every epoch). cdnn0 steps at 100 img/s (bce) or 80 (tanimoto), evaluates at 60;
    DCGAN fills the bank at 40 pairs/s in calls of 8, trains at 20 img/s.
    Real only, bce: 16/100 + (1 curve point + the final prediction) x 6/60 = 0.16 + 0.2 = 0.36 s.
    DCGAN, bce: generator 16/20 = 0.8 s; 32 steps' images/100 + 2 calls x 8/40 = 0.72 s; 3 x 6/60 = 0.3 s: 1.82 s.
    DCGAN, tanimoto (generator shared): 32/80 + 0.4 = 0.8 s, and 0.3 s. Real only, tanimoto: 0.2 + 0.2 s."""
    grid = tmp_path / "g.toml"
    grid.write_text('[grid]\nloss = ["bce", "tanimoto"]\ngen = ["none", "dcgan"]\n[run]\nseg = "cdnn0"\n'
                    'data = "fixture?n=16&n_test=6"\nepochs = 1\nsynthetic_epochs = 1\nfinetune_epochs = 1\n'
                    'gan_epochs = 1\nsize = "32x48"\ngan_size = "32x48"\n')
    sampling = {"kind": "sampling", "name": "dcgan", "size": "32x48", "batch": 0, "width": 0.25,
                "gan_size": "32x48", "sample_steps": None, "sample_pairs_s": 40.0, "draw": 8}
    gan = {"kind": "gan", "name": "dcgan", "size": "32x48", "batch": 16, "width": 0.25, "train_img_s": 20.0}
    perf = _perf_file(tmp_path / "perf.json", [_step("bce", 100.0), _step("tanimoto", 80.0), sampling, gan])
    estimate = ("sweep", str(grid), "--out", str(tmp_path / "runs"), "--estimate", "--perf", str(perf))
    text = bench_main(*estimate).stdout
    lines = {line.split(" |")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert lines["gen=none loss=bce seed=0"].endswith("| 16 | 0 | 0 | 1 | - | 0.2 s | 0.2 s | 0.4 s |")
    assert lines["gen=dcgan loss=bce seed=0"].endswith("| 16 | 16 | 0 | 2 | 0.8 s | 0.7 s | 0.3 s | 1.8 s |")
    assert lines["gen=dcgan loss=tanimoto seed=0"].endswith("| - | 0.8 s | 0.3 s | 1.1 s |")
    assert "total: 3.7 s of device time for 4 runs" in text and "evaluation 1.0 s, 27.2%" in text
    # the curve every 2 epochs: a phase of one epoch still scores its last; of 3 epochs, epochs 2 and 3
    longer = tmp_path / "longer.toml"
    longer.write_text(grid.read_text().replace("epochs = 1\n", "epochs = 3\ncurve_every = 2\n", 1))
    three = bench_main("sweep", str(longer), *estimate[2:]).stdout
    assert "| gen=none loss=bce seed=0 | 48 | 0 | 0 | 2 |" in three

    # rows of other settings never price a run: captured steps, full-width networks, another sampler
    missing = bench_main(*estimate, "--set", "cuda_graph=true", check=False)
    assert missing.returncode == 1 and "no total" in missing.stdout and "of device time" not in missing.stdout
    assert "cdnn0: size 32x48, channels rgb-hsv-l, loss bce, batch 16, width 0.25, graph True" in missing.stdout
    assert f"bench perf --grid {grid} --set cuda_graph=true --device cuda --json > FILE" in missing.stdout
    _perf_file(perf, [_step("bce", 100.0, width=1.0), _step("tanimoto", 80.0, width=1.0), sampling, gan])
    wide = bench_main(*estimate, check=False)
    assert wide.returncode == 1 and "cdnn0: size 32x48, channels rgb-hsv-l, loss bce, batch 16, width 0.25" in wide.stdout
    ddpm = tmp_path / "ddpm.toml"
    ddpm.write_text(grid.read_text().replace('gen = ["none", "dcgan"]', 'gen = ["ddpm"]'))
    ddpm_rows = [_step("bce", 100.0), _step("tanimoto", 80.0), {**gan, "name": "ddpm"},
                 {**sampling, "name": "ddpm", "sample_steps": 50, "sample_pairs_s": 4.0}]
    _perf_file(perf, ddpm_rows)
    unmatched = bench_main("sweep", str(ddpm), "--out", str(tmp_path / "runs"), "--estimate", "--perf", str(perf),
                           check=False)
    assert unmatched.returncode == 1 and "ddpm samples: gan_size 32x48, size 32x48, width 0.25, sample_steps 10" \
        in unmatched.stdout
    matched = bench_main("sweep", str(ddpm), "--out", str(tmp_path / "runs"), "--estimate", "--perf", str(perf),
                         "--set", "sample_steps=50").stdout
    # DDPM training once 0.8 s; bce: 32/100 + 2 x 8/4 = 4.32 s, tanimoto 32/80 + 4 = 4.4 s; evaluation 2 x 0.3 s
    assert "total: 10.1 s of device time for 2 runs" in matched
    packed = bench_main(*estimate, "--runs-per-gpu", "2", check=False)
    assert packed.returncode == 2 and "bench perf ... --processes 2" in packed.stderr
    perf.write_text(json.dumps({"rows": [{"component": "cdnn0", "size": "32x48", "batch": 16, "train_img_s": 9.0}]}))
    old = bench_main(*estimate, check=False)
    assert old.returncode == 2 and "written by an older bench perf (schema 1)" in old.stderr
    for rows, said in (([{"kind": "step", "name": "cdnn0"}], "row 1 is not a bench perf row"),
                       ([{**_step("bce", 100.0), "eval_img_s": 0}], "row 1 (cdnn0) has no finite eval_img_s"),
                       ([{**_step("bce", 100.0), "train_img_s": float("nan")}], "no finite train_img_s"),
                       ([_step("bce", 100.0), _step("bce", 9.0)], "is measured in")):
        _perf_file(perf, rows)
        bad = bench_main(*estimate, check=False)
        assert bad.returncode == 2 and said in bad.stderr, bad.stderr
    perf.write_text(json.dumps({"schema": 3, "rows": []}))
    newer = bench_main(*estimate, check=False)
    assert newer.returncode == 2 and "written by a newer bench perf (schema 3" in newer.stderr
    # the command that measures what is missing survives a shell: values are quoted
    _perf_file(perf, [])
    quoted = bench_main(*estimate, "--data", "fixture?n=16&n_test=6", check=False)
    assert "bench perf --grid " in quoted.stdout and "--data 'fixture?n=16&n_test=6'" in quoted.stdout
