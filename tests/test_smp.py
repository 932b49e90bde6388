"""`--seg smp:ARCH:ENCODER`: any segmentation-models-pytorch model, offline, listed, with local weights."""

import pytest
import torch

from bench.data import channels
from bench.errors import ConfigError, UnknownComponentError
from bench.plugin.host import get_host
from conftest import bench_cli, bench_main
from test_run import TINY, check_record, record_of


def build(spec, channel_set="rgb", **kw):
    return get_host().registry.get("segmenters", "smp").factory(channels.channel_count(channel_set), spec=spec, **kw)


@pytest.mark.parametrize("spec,channel_set", [("Unet:resnet34", "rgb"), ("FPN:tu-convnext_atto", "rgb-hsv-l"),
                                              ("DeepLabV3Plus:efficientnet-b0", "rgb-hsv-lab")])
def test_architectures_and_encoders_build_offline_with_the_channel_set(spec, channel_set, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = build(spec, channel_set).eval()
    with torch.no_grad():
        out = model(torch.randn(2, channels.channel_count(channel_set), 48, 64))  # not a multiple of 32
    assert out.shape == (2, 1, 48, 64)


def test_unknown_architecture_and_encoder_get_close_matches():
    with pytest.raises(UnknownComponentError, match="unknown smp architecture 'Unett'; did you mean 'Unet'"):
        build("Unett:resnet34")
    with pytest.raises(UnknownComponentError, match="unknown smp encoder 'resnet35'; did you mean .*'resnet34'"):
        build("Unet:resnet35")
    with pytest.raises(UnknownComponentError, match="did you mean 'tu-convnext_atto'"):
        build("Unet:tu-convnext_attto")
    with pytest.raises(ConfigError, match="expected smp:ARCH:ENCODER"):
        build("Unet")


def test_list_shows_architectures_and_encoders():
    out = bench_main("list", "segmenters", "smp:*").stdout
    assert "smp:ARCH:ENCODER" in out and "UnetPlusPlus" in out and "resnet34" in out and "tu-" in out
    combos = bench_main("list", "segmenters", "smp:FPN:tu-convnext_at*").stdout.split()
    assert "smp:FPN:tu-convnext_atto" in combos and all(c.startswith("smp:FPN:tu-convnext_at") for c in combos)


def test_quick_run_with_local_weights_is_recorded(tmp_path):
    weights = tmp_path / "r18.pt"
    encoder = build("Unet:resnet18").model.encoder
    torch.nn.init.constant_(encoder.conv1.weight, 0.01)
    torch.save(encoder.state_dict(), weights)
    record, path = record_of(bench_cli("run", "--seg", "smp:Unet:resnet18", "--weights", str(weights),
                                       "--out", str(tmp_path / "runs"), *TINY))
    check_record(record, 6)
    assert record["run"]["seg"] == "smp:Unet:resnet18" and record["run"]["loss"] == "bce"
    assert record["run"]["weights"] == str(weights) and len(record["run"]["weights_sha256"]) == 64
    assert "smp-Unet-resnet18" in path and "weights-" in path
    plain, _ = record_of(bench_cli("run", "--seg", "smp:Unet:resnet18", "--out", str(tmp_path / "runs"), *TINY))
    assert plain["run"]["weights"] is None
    bad = bench_main("run", "--seg", "smp:Unet:resnet18", "--weights", str(weights), "--channels", "rgb-hsv-l",
                    "--out", str(tmp_path / "runs"), *TINY, check=False)
    assert bad.returncode == 2 and "does not fit encoder resnet18 with 7 input channels" in bad.stderr
    missing = bench_main("run", "--seg", "smp:Unet:resnet18", "--weights", str(tmp_path / "nope.pt"), check=False)
    assert missing.returncode == 2 and "nope.pt: file not found" in missing.stderr


class Payload:
    """Any arbitrary object in a checkpoint needs unpickling of code, which weights_only refuses."""


def test_pickled_weights_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"conv1.weight": torch.zeros(1), "payload": Payload()}, path)
    with pytest.raises(ConfigError, match="cannot be loaded safely"):
        build("Unet:resnet18", weights=str(path))
