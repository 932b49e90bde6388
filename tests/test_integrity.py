"""Never a silently wrong or stale number: damaged caches and checkpoints, impostor and crashing plugins, bad
segmenters, hostile records, concurrent runs and full disks."""

import errno
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.train import checkpoints
from bench.api import ScheduleMeta, SegmenterMeta, hookimpl
from bench.plugin.build import load_dataset
from bench.data.prepare import CacheWarning, cache_root, prepare
from bench.errors import BenchError
from bench.gan.cache import obtain
from bench.storage.locks import run_lock
from bench.plugin.host import get_host
from bench.storage.atomic import atomic_save
from conftest import bench_cli, bench_main
from test_plugins import env_with, make_distribution, plugins_json

TINY = "fixture?n=16&n_test=6"


def test_a_damaged_prepared_split_is_rebuilt_never_used(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    split = load_dataset(get_host(), TINY, "--data").split("train")
    first = prepare(split, (48, 64))
    [entry] = (cache_root() / "prepared").iterdir()
    masks = np.load(entry / "masks.npy")
    np.save(entry / "masks.npy", np.zeros_like(masks))  # same size, all background: the silent 0.0
    with pytest.warns(CacheWarning, match=r"masks.npy does not match its checksum\); rebuilding"):
        again = prepare(split, (48, 64))
    assert torch.equal(again.masks, first.masks) and not again.from_cache
    (entry / "images.npy").write_bytes((entry / "images.npy").read_bytes()[:100])  # truncated
    with pytest.warns(CacheWarning, match="cannot be read"):
        assert torch.equal(prepare(split, (48, 64)).images, first.images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert prepare(split, (48, 64)).from_cache  # the rebuilt entry is whole again


def test_a_damaged_generator_entry_is_retrained_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    host = get_host()
    real = prepare(load_dataset(host, TINY, "--data").split("train"), (48, 64))
    config = {"name": "dcgan", "size": "48x64", "width": 0.25, "lr": 2e-4, "epochs": 1, "batch_size": 8}
    _, info = obtain(host, config, real, 0, torch.device("cpu"))
    assert info["cache"] == "miss" and info["code"]
    state = Path(info["checkpoint"])
    state.write_bytes(state.read_bytes()[:-10])
    with pytest.warns(CacheWarning, match="generator cache entry .* is damaged"):
        _, again = obtain(host, config, real, 0, torch.device("cpu"))
    assert again["cache"] == "miss"
    assert obtain(host, config, real, 0, torch.device("cpu"))[1]["cache"] == "hit"


def test_a_damaged_checkpoint_is_an_error_naming_it(tmp_path):
    path = tmp_path / "latest.pt"
    checkpoints.save(path, {"model": {"w": torch.ones(3)}, "epoch": 2})
    assert checkpoints.load(path)["epoch"] == 2
    state = torch.load(path, weights_only=True)
    state["model"]["w"][0] = 5.0  # a flipped value the zip container does not notice
    torch.save(state, path)
    with pytest.raises(BenchError, match=r"latest.pt: damaged checkpoint, its contents do not match"):
        checkpoints.load(path)
    path.write_bytes(b"")
    with pytest.raises(BenchError, match=r"latest.pt: damaged checkpoint, it cannot be read .*--force"):
        checkpoints.load(path)


def test_a_plugin_cannot_take_over_a_built_in_name(tmp_path):
    impostor = """
    from bench.api import SegmenterMeta, hookimpl
    @hookimpl
    def bench_register_segmenters(register):
        register("unet", lambda in_channels, **kw: None, description="an impostor",
                 meta=SegmenterMeta(size="32x32", channels="rgb", loss="bce"))
    """
    crash = "import sys\nsys.exit(3)\n"
    site = make_distribution(tmp_path, "bench-impostor", {"impostor_plugin": impostor, "crash_plugin": crash},
                             {"impostor": "impostor_plugin", "unet": "impostor_plugin", "crash": "crash_plugin"})
    found = plugins_json(env_with(site))
    assert found["unet"]["distribution"] == "skinbench" and found["unet"]["registered"] == {"segmenters": ["unet"]}
    assert "belongs to the built-in plugin 'unet' (skinbench)" in found["impostor"]["errors"][0]
    assert "was not registered" in found["impostor"]["errors"][0]
    assert any("entry point name 'unet' is already taken by distribution skinbench" in e
               for p in found.values() for e in p["errors"])
    assert "import failed: SystemExit: 3" in found["crash"]["errors"][0]
    proc = bench_cli("describe", "unet", env=env_with(site))
    assert "plugin unet" in proc.stdout and "31," in proc.stdout  # the real U-Net, not the impostor


def test_a_segmenter_that_cannot_take_the_size_fails_before_any_data_work(tmp_path, bench_register):
    proc = bench_main("run", "--seg", "unet", "--size", "40x60", "--data", f"folder:{tmp_path / 'nowhere'}",
                      check=False)
    assert proc.returncode == 2 and "cannot take --size 40x60 inputs" in proc.stderr
    assert "must be divisible by 16" in proc.stderr and "nowhere" not in proc.stderr

    class Plugin:
        @hookimpl
        def bench_register_segmenters(self, register):
            register("two-out", lambda in_channels, width=1.0: torch.nn.Conv2d(in_channels, 2, 1),
                     meta=SegmenterMeta(size="32x32", channels="rgb", loss="bce"))
            register("not-a-module", lambda in_channels, width=1.0: "a string",
                     meta=SegmenterMeta(size="32x32", channels="rgb", loss="bce"))

    bench_register(Plugin(), name="bad-factories")
    proc = bench_main("run", "--seg", "two-out", check=False)
    assert "segmenter 'two-out' from plugin 'bad-factories': maps (1, 3, 48, 64) to (1, 2, 48, 64)" in proc.stderr
    proc = bench_main("run", "--seg", "not-a-module", check=False)
    assert "its factory returned str, not a torch.nn.Module" in proc.stderr


def test_the_leaderboard_escapes_records_and_skips_malformed_ones(tmp_path):
    from test_stats import record

    hostile = record(None, 0, [0.5, 0.6], seg="evil|<b>x</b>\nnext")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "results.json").write_text(json.dumps({**hostile, "schema": 1, "status": "finished"}))
    broken = record(None, 0, [0.5, 0.6])
    del broken["histogram"]
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_text(json.dumps({**broken, "schema": 1}))
    wrong = record(None, 0, [0.5, 0.6])
    wrong["run"]["profile"] = None
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "results.json").write_text(json.dumps({**wrong, "schema": 1}))
    proc = bench_main("leaderboard", "--runs", str(tmp_path))
    assert "b/results.json: skipped, incomplete record (missing histogram)" in proc.stderr
    assert "c/results.json: skipped, malformed record (run.profile" in proc.stderr
    assert "| evil\\|&lt;b&gt;x&lt;/b&gt; next | 0.5500" in proc.stdout
    assert "<b>" not in proc.stdout
    out_dir = bench_main("leaderboard", "--runs", str(tmp_path), "--out", str(tmp_path), check=False)
    assert out_dir.returncode == 2 and "is a folder; expected a markdown file name" in out_dir.stderr


def test_a_second_process_on_the_same_run_is_refused_naming_the_first(tmp_path):
    out = tmp_path / "runs"
    bench_main("run", "--seg", "unet", "--data", TINY, "--epochs", "1", "--out", str(out))
    folder = next(out.rglob("results.json")).parent
    with run_lock(folder):
        proc = bench_main("run", "--seg", "unet", "--data", TINY, "--epochs", "1", "--out", str(out), check=False)
    assert proc.returncode == 2 and "another bench process (pid " in proc.stderr
    assert "already finished" in bench_main("run", "--seg", "unet", "--data", TINY, "--epochs", "1",
                                            "--out", str(out)).stderr


def test_a_full_disk_is_one_line_naming_the_path_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("old")

    def full(tmp):
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(BenchError, match=r"results.json: cannot write it \(No space left on device\)"):
        atomic_save(path, full)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_data_check_finds_near_copies_across_splits_and_writes_an_exclude_file(tmp_path):
    from PIL import Image

    from test_data import write_pairs

    root = tmp_path / "d"
    ids = write_pairs(root / "train" / "images", root / "train" / "masks", 4, size=(48, 64))
    write_pairs(root / "test" / "images", root / "test" / "masks", 1, size=(48, 64), prefix="TEST_")
    copy = Image.open(root / "train" / "images" / f"{ids[2]}.jpg").resize((128, 96))  # resized and re-encoded
    copy.save(root / "test" / "images" / "TEST_00.jpg", quality=80)
    Image.open(root / "train" / "masks" / f"{ids[2]}_segmentation.png").resize(
        (128, 96), Image.Resampling.NEAREST).save(root / "test" / "masks" / "TEST_00_segmentation.png")
    out = tmp_path / "near.txt"
    proc = bench_main("data", "check", f"folder:{root}", "--exclude-out", str(out))
    assert "near-duplicates across splits (thumbnail correlation >= 0.95): 1" in proc.stdout
    assert f"train/{ids[2]} ~ test/TEST_00" in proc.stdout
    assert [line for line in out.read_text().splitlines() if not line.startswith("#")] == [ids[2]]


def test_a_flat_folder_says_how_to_lay_it_out_for_training(tmp_path):
    from test_data import write_pairs

    write_pairs(tmp_path / "images", tmp_path / "masks", 3)
    proc = bench_main("run", "--data", f"folder:{tmp_path}", check=False)
    assert proc.returncode == 2 and "has no 'train' split to train on (it has: all)" in proc.stderr
    assert "ROOT/train/{images,masks} and ROOT/test/{images,masks}" in proc.stderr


def test_data_check_finds_the_known_near_copies_in_real_isic_2017(isic, tmp_path):
    """ISIC 2017 validation images with a recoloured copy in the training split (checked by eye)."""
    out = tmp_path / "near.txt"
    proc = bench_main("data", "check", f"isic2017:{isic}", "--exclude-out", str(out))
    for val, train in (("ISIC_0012127", "ISIC_0012970"), ("ISIC_0015124", "ISIC_0000171"),
                       ("ISIC_0015313", "ISIC_0000215"), ("ISIC_0014946", "ISIC_0000157")):
        assert f"train/{train} ~ val/{val}" in proc.stdout
        assert train in out.read_text().split()


def test_factories_returning_the_wrong_thing_and_crashing_hooks_are_named(bench_register):
    class Plugin:
        @hookimpl
        def bench_register_losses(self, register):
            register("not-callable", lambda: 42)

        @hookimpl
        def bench_register_schedules(self, register):
            register("empty", lambda config: [], meta=ScheduleMeta(needs_generator=False))

        @hookimpl
        def bench_register_generators(self, register):
            register("not-a-generator", lambda **kw: object())

    bench_register(Plugin(), name="wrong-returns")
    proc = bench_main("run", "--loss", "not-callable", check=False)
    assert "loss 'not-callable' from plugin 'wrong-returns': its factory returned int" in proc.stderr
    proc = bench_main("run", "--schedule", "empty", check=False)
    assert "schedule 'empty' from plugin 'wrong-returns': its factory must return a non-empty list" in proc.stderr
    proc = bench_main("run", "--gen", "not-a-generator", "--data", TINY, "--gan-epochs", "1", check=False)
    assert "its factory returned object, not a bench.api.Generator" in proc.stderr

    class Interrupting:
        @hookimpl
        def bench_register_losses(self, register):
            raise KeyboardInterrupt

    with pytest.raises(RuntimeError, match="hook bench_register_losses raised: KeyboardInterrupt"):
        bench_register(Interrupting(), name="interrupting")


def test_outputs_and_inputs_that_cannot_work_fail_before_anything_trains(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    proc = bench_main("run", "--out", str(tmp_path / "a-file"), check=False)
    assert proc.returncode == 2 and "--out" in proc.stderr and "is a file; expected a folder" in proc.stderr
    ids = load_dataset(get_host(), TINY, "--data").split("train").ids()
    (tmp_path / "all.txt").write_text("\n".join(ids))
    proc = bench_main("run", "--data", TINY, "--exclude", str(tmp_path / "all.txt"), "--out", str(tmp_path / "r"),
                      check=False)
    assert proc.returncode == 2 and "removes every training pair" in proc.stderr
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "a-file"))  # a cache that cannot be written
    proc = bench_main("run", "--data", TINY, "--out", str(tmp_path / "r"), check=False)
    assert proc.returncode == 2 and "cannot write this cache entry" in proc.stderr and "BENCH_CACHE_DIR" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_a_generators_cache_key_changes_with_its_source(tmp_path, bench_register):
    import importlib.util

    from bench.gan.cache import code_hash

    module = tmp_path / "versioned_gan.py"
    module.write_text("from bench_plugins.dcgan import build_dcgan\n\ndef factory(**kw):\n    return build_dcgan(**kw)\n")
    spec = importlib.util.spec_from_file_location("versioned_gan", module)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)

    class Plugin:
        @hookimpl
        def bench_register_generators(self, register):
            register("versioned", loaded.factory)

    bench_register(Plugin(), name="versioned-plugin")
    host = get_host()
    before = code_hash(host, "versioned")
    assert before and code_hash(host, "versioned") == before
    module.write_text(module.read_text() + "# a changed line, same plugin version\n")
    assert code_hash(host, "versioned") != before


def test_a_cache_entry_holding_another_entrys_files_is_never_used(tmp_path, monkeypatch):
    """State is pinned: an entry's files are checked against its key and seed, not only their checksum."""
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    host = get_host()
    real = prepare(load_dataset(host, TINY, "--data").split("train"), (48, 64))
    config = {"name": "dcgan", "size": "48x64", "width": 0.25, "lr": 2e-4, "epochs": 1, "batch_size": 8}
    _, seed0 = obtain(host, config, real, 0, torch.device("cpu"))
    _, seed1 = obtain(host, config, real, 1, torch.device("cpu"))
    one, other = Path(seed0["checkpoint"]).parent, Path(seed1["checkpoint"]).parent
    for name in ("state.pt", "meta.json"):  # seed 1's entry now holds seed 0's (whole, checksummed) files
        (other / name).write_bytes((one / name).read_bytes())
    with pytest.warns(CacheWarning, match=r"is of entry .* at seed 0, not of this entry"):
        _, again = obtain(host, config, real, 1, torch.device("cpu"))
    assert again["cache"] == "miss"


def test_a_run_folder_holding_another_runs_weights_is_refused_by_every_reader(tmp_path):
    """Records pin their final weights by checksum: predict, export and ensembles refuse a swapped final.pt."""
    import shutil

    out = tmp_path / "runs"
    folders = []
    for seed in (0, 1):
        proc = bench_main("run", "--seg", "cdnn0", "--data", TINY, "--epochs", "1", "--seed", str(seed),
                          "--out", str(out))
        folders.append(Path(proc.stdout.split("record: ")[1].strip()).parent)
    shutil.copy(folders[1] / "checkpoints" / "final.pt", folders[0] / "checkpoints" / "final.pt")
    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 150, 120)).save(images / "lesion.jpg")
    for command in (["predict", str(folders[0]), "--images", str(images), "--out", str(tmp_path / "masks")],
                    ["export", str(folders[0]), "--format", "torchscript", "--out", str(tmp_path / "model.pt")],
                    ["ensemble", str(folders[0]), str(folders[1]), "--out", str(tmp_path / "ens")]):
        proc = bench_main(*command, check=False)
        assert proc.returncode == 2 and "not the weights" in proc.stderr and "final.pt" in proc.stderr, command


def test_a_prepared_entry_holding_another_splits_arrays_and_a_malformed_generator_meta_are_rebuilt(tmp_path,
                                                                                                   monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    host = get_host()
    dataset = load_dataset(host, TINY, "--data")
    train, test = dataset.split("train"), dataset.split("test")
    first, other = prepare(train, (48, 64)), prepare(test, (48, 64))
    entries = sorted((cache_root() / "prepared").iterdir())
    mine = next(e for e in entries if json.loads((e / "meta.json").read_text())["fingerprint"] == train.fingerprint())
    theirs = next(e for e in entries if e != mine)
    for name in ("images.npy", "masks.npy", "meta.json"):  # the training entry now holds the test split's files
        (mine / name).write_bytes((theirs / name).read_bytes())
    with pytest.warns(CacheWarning, match="holds another split's arrays"):
        again = prepare(train, (48, 64))
    assert torch.equal(again.images, first.images) and not torch.equal(again.images[:len(other)], other.images)
    config = {"name": "dcgan", "size": "48x64", "width": 0.25, "lr": 2e-4, "epochs": 1, "batch_size": 8}
    real = prepare(train, (48, 64))
    _, info = obtain(host, config, real, 0, torch.device("cpu"))
    (Path(info["checkpoint"]).parent / "meta.json").write_text("[1]")
    with pytest.warns(CacheWarning, match="meta.json holds list, not an object"):
        assert obtain(host, config, real, 0, torch.device("cpu"))[1]["cache"] == "miss"
