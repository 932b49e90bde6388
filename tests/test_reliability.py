"""Nothing silently wrong (issue 27): config.toml round-trips any text, loggers cannot harm the record or end the
run, locks hold across caches and say who holds them, and bad seeds, perf files and roots are one-line errors."""

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.api import Logger, hookimpl
from bench.config.file import SEED_MAX, check_seed, dumps
from bench.errors import BenchError, ConfigError
from bench.storage.locks import entry_lock, run_lock
from bench.sweep.estimate import load_rows
from conftest import bench_main

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

TRICKY = ['"', "\\", "\\u00e9", "\x7f", "\U0001F600", "\u2028", "\ufeff", "'", "#", "=", " ", "\t", "\n", "\r",
          *map(chr, range(0x20)), "é", "漢", "\U0010FFFF", "a", "[run]"]


def test_any_text_round_trips_through_a_config_toml():
    rng = random.Random(27)
    samples = ["", "plain", "folder:/data/😀/x", 'say "hi"\\n', "\x00\x1f\x7f", "C:\\runs\\new"]
    samples += ["".join(rng.choice(TRICKY) for _ in range(rng.randint(1, 12))) for _ in range(300)]
    for text in samples:
        written = dumps({"k": text, "n": 3, "on": True}, comment=f"cell: {text}")
        assert tomllib.loads(written) == {"run": {"k": text, "n": 3, "on": True}}, written
        assert "\\ud83d" not in written.lower()  # characters are written as themselves, not as surrogate pairs


def test_a_value_that_is_not_unicode_text_is_an_error_naming_the_key():
    with pytest.raises(ConfigError, match="data 'folder:/x/\\\\udcff': holds bytes that are not UTF-8"):
        dumps({"data": "folder:/x/\udcff"})


def test_a_run_on_data_under_an_emoji_folder_reruns_from_its_config_toml(tmp_path):
    from test_data import write_pairs

    data = tmp_path / "skin 😀 \"data\""
    write_pairs(data / "train" / "images", data / "train" / "masks", 6, size=(32, 48))
    write_pairs(data / "test" / "images", data / "test" / "masks", 2, size=(32, 48))
    out = tmp_path / "runs"
    first = bench_main("run", "--seg", "cdnn0", "--data", f"folder:{data}", "--size", "32x48", "--epochs", "1",
                       "--out", str(out))
    path = Path(first.stdout.split("record: ")[1].strip())
    config = path.parent / "config.toml"
    quoted = str(data).replace('"', '\\"')
    assert f'data = "folder:{quoted}"' in config.read_text(encoding="utf-8")  # the emoji as itself
    again = bench_main("run", "--config", str(config), "--out", str(out))
    assert "already finished" in again.stderr and again.stdout.split("record: ")[1].strip() == str(path)
    assert not list(path.parent.glob(".lock*"))  # the run's lock went with the run


class Mutating(Logger):
    def start(self, run):
        run.config["seg"] = "tampered"

    def log_epoch(self, step, metrics, phase):
        metrics.clear()

    def finish(self, summary, artefacts):
        summary["jaccard"] = -1.0
        summary.clear()
        artefacts.clear()


class Exiting(Logger):
    def start(self, run):
        pass

    def log_epoch(self, step, metrics, phase):
        raise SystemExit(3)

    def finish(self, summary, artefacts):
        raise AssertionError("never called after its failure")


class Watching(Logger):
    """Logged after the others: sees what they were given, untouched by their mutations."""

    seen: list = []

    def start(self, run):
        self.seen.append(run.config["seg"])

    def log_epoch(self, step, metrics, phase):
        self.seen.append(sorted(metrics))

    def finish(self, summary, artefacts):
        self.seen.append((summary.get("jaccard"), len(artefacts)))


class LoggerPlugin:
    @hookimpl
    def bench_register_loggers(self, register):
        register("mutating", Mutating)
        register("exiting", Exiting)
        register("watching", Watching)


def test_a_logger_can_neither_change_the_record_nor_end_the_run(bench_register, bench_host, bench_cache, tmp_path):
    from bench.testing import TINY_DATA, TINY_OVERRIDES
    from bench.train.run import RunOptions, execute

    Watching.seen = []
    bench_register(LoggerPlugin(), name="reliability-loggers")
    messages: list[str] = []
    opts = RunOptions(gen="none", seg="cdnn0", data=TINY_DATA, profile="quick", out=tmp_path / "runs",
                      overrides=TINY_OVERRIDES, log=("mutating", "exiting", "watching"))
    record = execute(bench_host, opts, log=messages.append)
    assert record["status"] == "finished" and record["run"]["seg"] == "cdnn0"
    stored = json.loads(Path(record["_path"]).read_text())
    assert stored["summary"] == record["summary"] and 0.0 <= stored["summary"]["jaccard"] <= 1.0
    assert record["plots"] and all(isinstance(p, str) for p in record["plots"])
    assert Watching.seen[0] == "cdnn0" and "train/loss" in Watching.seen[1]
    assert Watching.seen[-1][0] == stored["summary"]["jaccard"] and Watching.seen[-1][1] > 0
    assert any("logger 'exiting' failed in log_epoch (SystemExit: 3)" in m for m in messages)
    loggers = record["runtime"]["loggers"]
    assert loggers["used"] == ["mutating", "watching"] and loggers["failed"] == {"exiting": "log_epoch: SystemExit: 3"}


HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from bench.storage.locks import entry_lock, run_lock
    with run_lock(Path(sys.argv[1])), entry_lock(Path(sys.argv[2])):
        print("held", flush=True)
        sys.stdin.readline()
""")


@pytest.fixture
def holder(tmp_path):
    """A second process (its own BENCH_CACHE_DIR) holding a run folder and a generator cache entry."""
    run, entry = tmp_path / "runs" / "a" / "run", tmp_path / "cache-b" / "generators" / "key"
    env = {**os.environ, "BENCH_CACHE_DIR": str(tmp_path / "cache-a")}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run), str(entry)], env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == "held"
    yield proc, run, entry
    if proc.returncode is None:
        proc.communicate("done\n", timeout=60)


def test_a_run_folder_is_held_across_caches_and_a_cache_entry_wait_names_its_holder(holder, tmp_path,
                                                                                    monkeypatch):
    proc, run, entry = holder
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache-b"))
    with pytest.raises(ConfigError, match=f"another bench process \\(pid {proc.pid} on .* since .*\\) is running"):
        with run_lock(run):
            pass
    monkeypatch.setenv("BENCH_LOCK_TIMEOUT", "1")
    said: list[str] = []
    with pytest.raises(BenchError) as info:
        with entry_lock(entry, log=said.append):
            pass
    assert len(said) == 1 and f"(pid {proc.pid} on " in said[0] and "BENCH_LOCK_TIMEOUT" in said[0]
    message = str(info.value)
    assert message.startswith(f"{entry}.lock: still held by another bench process (pid {proc.pid} on ")
    assert f"delete {entry}.lock" in message and "\n" not in message
    proc.communicate("done\n", timeout=60)
    assert not (tmp_path / "runs").exists()  # the holder created the folders and, ending, left nothing there
    with entry_lock(entry, log=said.append):
        assert (tmp_path / "cache-b" / "generators" / "key.lock.owner").read_text().startswith(f"pid {os.getpid()}")
    assert len(said) == 1 and not (tmp_path / "cache-b" / "generators" / "key.lock.owner").exists()


def test_a_bad_lock_timeout_is_an_error_naming_the_variable(holder, monkeypatch):
    monkeypatch.setenv("BENCH_LOCK_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="BENCH_LOCK_TIMEOUT='soon': expected a number of seconds"):
        with entry_lock(holder[2], log=lambda message: None):
            pass


def test_a_failed_run_leaves_no_folder_behind(tmp_path):
    with pytest.raises(RuntimeError):
        with run_lock(tmp_path / "runs" / "a" / "b"):
            assert (tmp_path / "runs" / "a" / "b" / ".lock.owner").exists()
            raise RuntimeError("the run failed")
    assert list(tmp_path.iterdir()) == []


def test_seeds_are_limited_to_32_bits_everywhere(tmp_path):
    assert check_seed(SEED_MAX, "--seed") == 2**32 - 1
    proc = bench_main("run", "--seed", "4294967296", "--out", str(tmp_path / "runs"), check=False)
    assert proc.returncode == 2 and "--seed: seed must be an integer from 0 to 4294967295" in proc.stderr
    config = tmp_path / "c.toml"
    config.write_text("seed = 4294967296\n")
    proc = bench_main("run", "--config", str(config), "--out", str(tmp_path / "runs"), check=False)
    assert proc.returncode == 2 and f"--config {config}: seed must be an integer from 0" in proc.stderr
    grid = tmp_path / "g.toml"
    grid.write_text('[grid]\nseg = ["cdnn0"]\n[run]\ndata = "fixture?n=16&n_test=6"\nepochs = 1\n')
    for seeds in ("0,4294967296", "-1", ","):
        proc = bench_main("sweep", str(grid), "--seeds", seeds, "--dry-run", "--out", str(tmp_path / "runs"),
                          check=False)
        assert proc.returncode == 2 and f"--seeds {seeds!r}: " in proc.stderr, proc.stderr
    grid.write_text('[grid]\nseg = ["cdnn0"]\nseed = [0, 4294967296]\n')
    proc = bench_main("sweep", str(grid), "--dry-run", "--out", str(tmp_path / "runs"), check=False)
    assert proc.returncode == 2 and f"grid {grid} [grid]: seed must be an integer from 0" in proc.stderr
    assert not (tmp_path / "runs").exists()


STEP = {"kind": "step", "name": "cdnn0", "size": "32x48", "batch": 16, "width": 0.25, "channels": "rgb",
        "loss": "bce", "graph": False, "eval_batch": 32, "train_img_s": 100.0, "eval_img_s": 60.0}


@pytest.mark.parametrize("content,said", [
    ("", "not the output of bench perf --json"),
    ("[1, 2]", "not the output of bench perf --json"),
    ('"rows"', "not the output of bench perf --json"),
    ({"rows": {"a": 1}}, "'rows' is a dict; expected a list"),
    ({"rows": [STEP], "processes": "1"}, "processes is '1'; expected a positive integer"),
    ({"rows": [STEP, 7]}, "row 2 is not a bench perf row (it is a int, not an object)"),
    ({"rows": [None]}, "row 1 is not a bench perf row (it is a NoneType"),
    ({"rows": [{**STEP, "kind": "lunch"}]}, "row 1 is not a bench perf row (it has kind 'lunch'"),
    ({"rows": [{k: v for k, v in STEP.items() if k != "name"}]}, "row 1 is not a bench perf row (it has no name)"),
    ({"rows": [{**STEP, "size": [32, 48]}]}, "row 1 is not a bench perf row (it has size [32, 48]; expected str)"),
    ({"rows": [{**STEP, "batch": 16.5}]}, "(it has batch 16.5; expected int)"),
    ({"rows": [{**STEP, "batch": True}]}, "(it has batch True; expected int)"),
    ({"rows": [{**STEP, "graph": "no"}]}, "(it has graph 'no'; expected bool)"),
    ({"rows": [{**STEP, "channels": {"rgb": 1}}]}, "(it has channels {'rgb': 1}; expected str or null)"),
    ({"rows": [{**STEP, "train_img_s": "fast"}]}, "row 1 (cdnn0) has no finite train_img_s"),
    ({"rows": [{**STEP, "eval_img_s": True}]}, "row 1 (cdnn0) has no finite eval_img_s"),
    ({"rows": [{**STEP, "eval_img_s": 10 ** 400}]}, "row 1 (cdnn0) has no finite eval_img_s"),
    ({"rows": [{**STEP, "eval_img_s": 1e-320}]}, "of at least 1e-06 per second"),
])
def test_a_malformed_perf_file_is_an_error_naming_the_file_and_row(tmp_path, content, said):
    perf = tmp_path / "perf.json"
    perf.write_text(content if isinstance(content, str) else json.dumps({"schema": 2, "processes": 1, **content}))
    with pytest.raises(ConfigError) as info:
        load_rows([perf], 1)
    assert str(info.value).startswith(f"--perf {perf}: ") and said in str(info.value) and "\n" not in str(info.value)


def test_estimate_from_a_malformed_or_empty_perf_file_is_never_a_traceback(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text('[grid]\nseg = ["cdnn0"]\n[run]\ndata = "fixture?n=16&n_test=6"\nepochs = 1\n')
    perf = tmp_path / "perf.json"
    estimate = ("sweep", str(grid), "--out", str(tmp_path / "runs"), "--estimate", "--perf", str(perf))
    perf.write_text(json.dumps({"schema": 2, "processes": 1, "rows": [{"kind": "step", "name": ["cdnn0"]}]}))
    proc = bench_main(*estimate, check=False)
    assert proc.returncode == 2 and f"--perf {perf}: row 1 is not a bench perf row (it has no size)" in proc.stderr
    perf.write_text(json.dumps({"schema": 2, "processes": 1, "rows": [], "machine": [1, 2]}))
    empty = bench_main(*estimate, check=False)  # nothing measured: every measurement the grid needs is listed
    assert empty.returncode == 1 and "no total" in empty.stdout and "bench perf --grid" in empty.stdout


def test_download_into_a_root_that_is_a_file_names_it(tmp_path):
    root = tmp_path / "isic.zip"
    root.write_bytes(b"not a folder")
    for given in (root, root / "isic2017"):
        proc = bench_main("data", "download", "isic2017", "--root", str(given), "--base-url", "http://127.0.0.1:9/",
                          check=False)
        assert proc.returncode == 2 and f"--root {given}: " in proc.stderr and "not a folder" in proc.stderr
    assert root.read_bytes() == b"not a folder"


def test_two_spellings_of_one_setting_and_files_that_are_not_utf8_are_named(tmp_path):
    from bench.config.file import read
    from bench.sweep.runner import from_toml

    grid = tmp_path / "g.toml"
    grid.write_text('[grid]\nsynthetic_epochs = [1]\nsynthetic-epochs = [2]\n')
    with pytest.raises(ConfigError, match="'synthetic_epochs' and 'synthetic-epochs' are the same setting"):
        from_toml(grid)
    grid.write_text('[grid]\nseg = ["cdnn0", "cdnn0"]\n')
    with pytest.raises(ConfigError, match="'cdnn0' is listed twice"):
        from_toml(grid)
    config = tmp_path / "c.toml"
    config.write_text("batch_size = 8\nbatch-size = 4\n")
    with pytest.raises(ConfigError, match="the same setting"):
        read(config)
    config.write_bytes(b"\xff\xfeseg = 1\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        read(config)
    grid.write_bytes(b"\xff\xfe[grid]\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        from_toml(grid)
