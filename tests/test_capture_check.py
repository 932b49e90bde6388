"""The capture check: every built-in would capture on a GPU, and what a CUDA graph cannot capture is named."""

import pytest
import torch

from bench.api import SegmenterMeta, hookimpl
from bench.train.capture_check import CaptureViolation
from bench.data.channels import CHANNEL_SETS

SMP = ("smp:Unet:resnet18", (32, 64), "fixture?n=12&n_test=2&size=32x64")
LAPGAN = ((48, 64), "fixture?n=8&n_test=2&size=48x64")


@pytest.mark.parametrize("seg", ["cdnn0", "cdnn1", "cdnn2", "cdnn3", "cdnn4", "cdnn5", "cdnn6", "unet", SMP])
def test_every_built_in_segmenter_captures(bench_capture_check, seg):
    if isinstance(seg, tuple):
        info = bench_capture_check(seg[0], size=seg[1], data=seg[2])
    else:
        info = bench_capture_check(seg)
    assert info["graphed"] and info["guarded_replays"] >= 2 and info["checked_ops"] > 500


@pytest.mark.parametrize("loss", ["bce", "jaccard", "mse", "tanimoto"])
def test_every_built_in_loss_captures(bench_capture_check, loss):
    assert bench_capture_check("cdnn1", loss=loss)["graphed"]


@pytest.mark.parametrize("channels", sorted(CHANNEL_SETS))
def test_every_channel_set_captures(bench_capture_check, channels):
    assert bench_capture_check("cdnn1", channels=channels)["graphed"]


@pytest.mark.parametrize("gen", ["dcgan", "lapgan", "ddpm", "ellipses"])
@pytest.mark.parametrize("source", ["synthetic", "mixed"])
def test_every_generator_source_captures(bench_capture_check, gen, source):
    extra = {"size": LAPGAN[0], "data": LAPGAN[1]} if gen == "lapgan" else {}
    info = bench_capture_check("cdnn0", gens=(gen,), source=source, **extra)
    assert info["graphed"] and info["graphs"] >= 1


XYZ = torch.tensor([0.4, 0.3, 0.2])


class HostConstant(torch.nn.Module):
    """What channels.py did before: a module-level constant tensor moved to the device inside the step."""

    def __init__(self, in_channels: int, width: float = 1.0) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, 1, 3, padding=1)

    def forward(self, x):
        return self.conv(x) * XYZ.to(device=x.device, dtype=x.dtype)[0]


class NewTensor(HostConstant):
    def forward(self, x):
        return self.conv(x) + torch.tensor(0.5, device=x.device)


class HostBranch(HostConstant):
    def forward(self, x):
        y = self.conv(x)
        return y if y.mean() > 0 else -y  # an if on a tensor reads it on the host


class Buffered(HostConstant):
    """The fix: a constant registered as a buffer moves with the model, and captures."""

    def __init__(self, in_channels: int, width: float = 1.0) -> None:
        super().__init__(in_channels, width)
        self.register_buffer("scale", torch.tensor([0.4, 0.3, 0.2]), persistent=False)

    def forward(self, x):
        return self.conv(x) * self.scale[0]


def item_loss():
    def loss(logits, target):
        value = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        if value.item() > 100:
            raise RuntimeError("diverged")
        return value
    return loss


def masked_loss():
    def loss(logits, target):
        return (logits[target > 0.5] - 1).pow(2).mean()
    return loss


class Plugin:
    @hookimpl
    def bench_register_segmenters(self, register):
        meta = SegmenterMeta(size="32x48", channels="rgb", loss="bce")
        for name, cls in (("host-constant", HostConstant), ("new-tensor", NewTensor), ("host-branch", HostBranch),
                          ("buffered", Buffered)):
            register(name, lambda in_channels, width=1.0, cls=cls: cls(in_channels, width), meta=meta)

    @hookimpl
    def bench_register_losses(self, register):
        register("item-loss", item_loss)
        register("masked-loss", masked_loss)


@pytest.mark.parametrize("seg,loss,said", [
    ("host-constant", None, "a tensor made outside the step ((3,), torch.float32, cpu) enters it"),
    ("new-tensor", None, "a tensor is created from host data inside the step"),
    ("host-branch", None, "reads a value on the host"),
    ("buffered", "item-loss", "aten._local_scalar_dense.default reads a value on the host"),
    ("buffered", "masked-loss", "has a data-dependent shape"),
])
def test_what_a_graph_cannot_capture_is_named_with_its_line(bench_register, bench_capture_check, seg, loss, said):
    bench_register(Plugin(), "capture-probe")
    with pytest.raises(CaptureViolation) as caught:
        bench_capture_check(seg, loss=loss)
    message = str(caught.value)
    assert said in message and "test_capture_check.py:" in message, message


def test_constants_as_buffers_capture(bench_register, bench_capture_check):
    bench_register(Plugin(), "capture-probe")
    assert bench_capture_check("buffered")["graphed"]
