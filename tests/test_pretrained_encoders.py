"""`--encoder-weights TAG`: published pretrained encoders from the local Hugging Face cache only, pinned by content.

The cache is built here in huggingface_hub's own layout (``models--ORG--NAME/{refs,blobs,snapshots}``) from
randomly initialised encoders of the right architecture; nothing reaches the network (a guard fails on any
attempt to connect or resolve a host name).
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from bench.config import identity as identities
from bench.config.options import GRID_KEYS
from bench.config.run import RunOptions, build
from bench.data import channels
from bench.errors import ConfigError
from bench.plugin.host import get_host
from bench.results.grouping import distinct_labels, row_label, strategy
from bench.train.run import identify, open_data
from conftest import bench_main
from test_run import check_record

DATA = "fixture?n=8&n_test=4&size=32x32"
RESNET18 = "3f2325ff978283d47aa6a1d6878ca20565622683"
"""The commit smp 0.6 pins for ``smp-hub/resnet18.imagenet`` (its ``pretrained_settings``)."""
MAIN = "a" * 40
"""The commit ``refs/main`` points at in the fake timm repository."""


class NetworkAttempt(BaseException):
    """Raised by the guard: a BaseException, so that no library's ``except Exception`` can swallow it."""


def _refuse_inet(original):
    def connect(self, *args, **kwargs):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise NetworkAttempt(f"connect{args}")
        return original(self, *args, **kwargs)
    return connect


def _refuse_lookup(*args, **kwargs):
    raise NetworkAttempt(f"getaddrinfo{args}")


@pytest.fixture
def no_network(monkeypatch):
    """Any TCP connection or host-name lookup in this process fails the test."""
    monkeypatch.setattr(socket.socket, "connect", _refuse_inet(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse_inet(socket.socket.connect_ex))
    monkeypatch.setattr(socket, "getaddrinfo", _refuse_lookup)


GUARD = """
import os, runpy, socket, sys
def _refuse(name):
    def refuse(*args, **kwargs):
        sock = args[0] if args and isinstance(args[0], socket.socket) else None
        if name == "connect" and sock is not None and sock.family not in (socket.AF_INET, socket.AF_INET6):
            return _original[name](*args, **kwargs)
        sys.stderr.write(f"NETWORK ATTEMPT: {name}{args[1:] if sock is not None else args}\\n")
        sys.stderr.flush()
        os._exit(97)
    return refuse
_original = {"connect": socket.socket.connect, "connect_ex": socket.socket.connect_ex}
socket.socket.connect = _refuse("connect")
socket.socket.connect_ex = _refuse("connect_ex")
socket.getaddrinfo = _refuse("getaddrinfo")
sys.argv = ["bench", *sys.argv[1:]]
runpy.run_module("bench", run_name="__main__", alter_sys=True)
"""
"""``python -c GUARD ARGS`` is ``bench ARGS`` in which any network access ends the process with status 97."""


def guarded_bench(*args: str, cache: Path, cwd: Path) -> subprocess.CompletedProcess:
    """``bench ARGS`` in a subprocess with ``HF_HUB_CACHE=cache`` and the network guard."""
    import os

    env = {**os.environ, "HF_HUB_CACHE": str(cache), "COLUMNS": "200"}
    env.pop("HF_HUB_OFFLINE", None)  # the harness must be offline by itself, not because the environment says so
    return subprocess.run([sys.executable, "-c", GUARD, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=600)


def put_in_cache(cache: Path, repo: str, commit: str, files: dict[str, bytes], ref: str | None = None) -> Path:
    """``files`` as huggingface_hub stores a download of ``repo`` at ``commit``: blobs named by their SHA-256,
    snapshot entries linking to them, and ``refs/REF`` holding the commit when a branch was asked for."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    (folder / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
    if ref is not None:
        (folder / "refs").mkdir(exist_ok=True)
        (folder / "refs" / ref).write_text(commit)
    for name, data in files.items():
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (folder / "snapshots" / commit / name).symlink_to(Path("..", "..", "blobs", blob.name))
    return folder / "snapshots" / commit


def weights_bytes(state: dict[str, torch.Tensor], path: Path) -> bytes:
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path.read_bytes()


def random_smp_encoder(seed: int) -> dict[str, torch.Tensor]:
    """A randomly initialised smp resnet18 encoder's state, with random batch-norm statistics too (so that every
    tensor differs from a fresh model's)."""
    from segmentation_models_pytorch.encoders import get_encoder

    torch.manual_seed(seed)
    state = get_encoder("resnet18", weights=None).state_dict()
    return {k: torch.rand_like(v) if v.is_floating_point() else v + seed + 1 for k, v in state.items()}


def smp_cache(root: Path, seed: int = 0) -> tuple[Path, dict[str, torch.Tensor], Path]:
    """A hub cache holding ``smp-hub/resnet18.imagenet`` at smp's pinned commit: (cache, tensors, snapshot file)."""
    state = random_smp_encoder(seed)
    data = weights_bytes(state, root.parent / f"{root.name}.safetensors")
    snapshot = put_in_cache(root, "smp-hub/resnet18.imagenet", RESNET18,
                            {"config.json": b"{}", "model.safetensors": data})
    return root, state, snapshot / "model.safetensors"


def timm_cache(root: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A hub cache holding ``timm/resnet18.a1_in1k`` (timm's default tag for resnet18) on ``main``: a whole
    classifier network's state, as timm publishes it."""
    import timm

    torch.manual_seed(1)
    state = {k: torch.rand_like(v) if v.is_floating_point() else v + 3
             for k, v in timm.create_model("resnet18", pretrained=False).state_dict().items()}
    put_in_cache(root, "timm/resnet18.a1_in1k", MAIN, {"model.safetensors": weights_bytes(state, root.parent / "t.st")},
                 ref="main")
    return root, state


def build_model(spec: str, channel_set: str = "rgb", **kw) -> torch.nn.Module:
    factory = get_host().registry.get("segmenters", "smp").factory
    return factory(channels.channel_count(channel_set), spec=spec, **kw).model


def test_smp_encoder_is_loaded_from_the_cache_exactly(tmp_path, monkeypatch, no_network):
    cache, state, _ = smp_cache(tmp_path / "hub")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    loaded = build_model("Unet:resnet18", encoder_weights="imagenet").encoder.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_other_channel_sets_get_smps_own_first_convolution(tmp_path, monkeypatch, no_network):
    """Seven input channels: the same tensors as smp's own loader gives after its download (its hub call
    answered with the cached files here), i.e. smp's adaptation of the first convolution, and nothing else."""
    import segmentation_models_pytorch.encoders as smp_encoders

    cache, state, file = smp_cache(tmp_path / "hub")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    ours = build_model("Unet:resnet18", "rgb-hsv-l", encoder_weights="imagenet").encoder.state_dict()
    monkeypatch.setattr(smp_encoders, "hf_hub_download", lambda repo, filename, revision: str(file.parent / filename))
    theirs = smp_encoders.get_encoder("resnet18", in_channels=7, weights="imagenet").state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert ours["conv1.weight"].shape[1] == 7 and not torch.equal(ours["conv1.weight"][:, :3], state["conv1.weight"])


@pytest.mark.parametrize("tag", ["imagenet", "a1_in1k"])
def test_timm_encoder_is_loaded_from_the_cache(tag, tmp_path, monkeypatch, no_network):
    """``tu-`` encoders: timm's default tag (``imagenet``) or the tag named; the classifier is left out."""
    cache, state = timm_cache(tmp_path / "hub")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    loaded = build_model("Unet:tu-resnet18", encoder_weights=tag).encoder.model.state_dict()
    assert set(loaded) == set(state) - {"fc.weight", "fc.bias"}
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)


def test_unknown_tags_name_the_ones_there_are(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ConfigError, match="no 'instagram' weights for encoder resnet18; it has: imagenet, ssl, swsl"):
        build_model("Unet:resnet18", encoder_weights="instagram")
    with pytest.raises(ConfigError, match=r"no tag 'b9_in1k' for tu-resnet18; it has: imagenet \(its default, "
                                          r"a1_in1k\), a1_in1k, a2_in1k"):
        build_model("Unet:tu-resnet18", encoder_weights="b9_in1k")


def run_identity(host, tag: str | None) -> tuple[dict, dict]:
    """The ``run`` section and identity a tiny smp run on the fixture would have (as a sweep resolves them)."""
    config = build(host, RunOptions(seg="smp:Unet:resnet18", encoder_weights=tag, data=DATA,
                                    overrides={"size": "32x32"}))
    return config.as_record(), identify(host, config, open_data(host, config))


def test_identity_holds_the_file_hash_and_other_runs_keep_theirs(tmp_path, monkeypatch, no_network):
    host = get_host()
    cache, _, file = smp_cache(tmp_path / "a")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    run, ident = run_identity(host, "imagenet")
    sha = hashlib.sha256(file.read_bytes()).hexdigest()
    assert (run["encoder_weights"], run["encoder_weights_sha256"], run["encoder_weights_file"]) == \
        ("imagenet", sha, str(file))
    assert ident["settings"]["encoder_weights"] == f"imagenet {sha[:12]}" and "encoder_weights_sha256" not in ident["settings"]

    other, _, _ = smp_cache(tmp_path / "b", seed=5)  # another file published under the same tag
    monkeypatch.setenv("HF_HUB_CACHE", str(other))
    run_b, ident_b = run_identity(host, "imagenet")
    assert run_b["encoder_weights_sha256"] != sha and ident_b["hash"] != ident["hash"]
    assert [c.split(":")[0] for c in identities.changed(ident["settings"], ident_b["settings"])] == ["encoder_weights"]

    plain, ident_plain = run_identity(host, None)  # no option: no new key anywhere, so old identities stand
    assert not any(k.startswith("encoder_weights") for k in [*plain, *ident_plain["settings"]])
    assert ident_plain["hash"] == identities.digest({k: v for k, v in ident["settings"].items() if k != "encoder_weights"})


def test_board_labels_name_the_weights(tmp_path, monkeypatch, no_network):
    """Rows of one segmenter that differ by their encoder weights are told apart, by tag and file."""
    host = get_host()
    records = []
    for name, seed in (("a", 0), ("b", 5)):
        cache, _, _ = smp_cache(tmp_path / name, seed)
        monkeypatch.setenv("HF_HUB_CACHE", str(cache))
        run, ident = run_identity(host, "imagenet")
        records.append({"run": {**run, "strategy": None}, "identity": ident})
    plain, ident = run_identity(host, None)
    records.append({"run": {**plain, "strategy": None}, "identity": ident})
    labels = distinct_labels(records, lambda r: row_label(r["run"]), lambda r: strategy(r["run"]))
    assert len(set(labels)) == 3
    for record, (row, _) in zip(records[:2], labels):
        assert f"encoder_weights imagenet {record['run']['encoder_weights_sha256'][:12]}" in row
    pair = distinct_labels(records[1:], lambda r: row_label(r["run"]), lambda r: strategy(r["run"]))
    assert len(set(pair)) == 2  # pretrained and from scratch: never pooled into one cell
    assert "encoder_weights imagenet" in pair[0][0] and "encoder_weights none" in pair[1][0]


def test_run_records_the_weights_without_touching_the_network(tmp_path):
    """The whole command, in a subprocess where any connection or host lookup ends the process."""
    cache, _, file = smp_cache(tmp_path / "hub")
    proc = guarded_bench("run", "--seg", "smp:Unet:resnet18", "--encoder-weights", "imagenet", "--data", DATA,
                         "--size", "32x32", "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "runs"),
                         cache=cache, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    path = Path([line for line in proc.stdout.splitlines() if line.startswith("record: ")][-1][len("record: "):])
    record = json.loads(path.read_text())
    check_record(record, 4)  # the record schema takes the new keys
    run = record["run"]
    assert run["encoder_weights"] == "imagenet"
    assert run["encoder_weights_sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    assert 'encoder_weights = "imagenet"' in (path.parent / "config.toml").read_text()  # rerunnable as --config
    assert path.parent.parent.name.endswith(f"__encoder-imagenet-{run['encoder_weights_sha256'][:8]}")


def test_absent_weights_are_one_line_before_any_work(tmp_path):
    empty = tmp_path / "empty-cache"
    proc = guarded_bench("run", "--seg", "smp:Unet:resnet18", "--encoder-weights", "imagenet", "--data", DATA,
                         "--out", str(tmp_path / "runs"), cache=empty, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --encoder-weights imagenet: smp-hub/resnet18.imagenet "
                                                   f"model.safetensors (revision {RESNET18}) is not in the Hugging "
                                                   f"Face cache {empty} (HF_HUB_CACHE)")
    assert f"hf_hub_download('smp-hub/resnet18.imagenet', 'model.safetensors', revision='{RESNET18}')" in lines[0]
    assert "models--smp-hub--resnet18.imagenet" in lines[0] and "HF_HUB_CACHE" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_segmenters_without_a_pretrained_encoder_and_weights_files_refuse(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    unet = bench_main("run", "--seg", "unet", "--encoder-weights", "imagenet", "--out", str(tmp_path / "r"), check=False)
    assert unet.returncode == 2 and len(unet.stderr.strip().splitlines()) == 1
    assert "segmenter 'unet' has no pretrained encoder" in unet.stderr and "--seg smp:Unet:resnet34" in unet.stderr
    weights = tmp_path / "r18.safetensors"
    weights.write_bytes(b"not read")
    both = bench_main("run", "--seg", "smp:Unet:resnet18", "--encoder-weights", "imagenet", "--weights", str(weights),
                      "--out", str(tmp_path / "r"), check=False)
    assert both.returncode == 2 and len(both.stderr.strip().splitlines()) == 1
    assert "both set the encoder's weights" in both.stderr
    with pytest.raises(ConfigError, match="both set the encoder's weights"):
        build_model("Unet:resnet18", weights=str(weights), encoder_weights="imagenet")
    assert not (tmp_path / "r").exists()


def test_grids_and_config_files_take_it(tmp_path, monkeypatch, no_network):
    assert "encoder_weights" in GRID_KEYS
    cache, _, _ = smp_cache(tmp_path / "hub")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    grid = tmp_path / "grid.toml"
    grid.write_text(f'[grid]\nseg = ["smp:Unet:resnet18"]\nencoder_weights = ["imagenet"]\n'
                    f'[run]\ndata = "{DATA}"\nsize = "32x32"\n')
    proc = bench_main("sweep", str(grid), "--out", str(tmp_path / "runs"), "--dry-run")
    assert "--encoder-weights imagenet" in proc.stdout and "[todo]" in proc.stdout
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "nothing"))
    missing = bench_main("sweep", str(grid), "--out", str(tmp_path / "runs"), "--dry-run", check=False)
    assert missing.returncode == 2 and "is not in the Hugging Face cache" in missing.stderr
