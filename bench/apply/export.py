"""``bench export``: a finished run as one file that takes RGB uint8 images and returns probabilities.

The exported network carries its preprocessing: the uint8 RGB batch ``(B, 3, H, W)`` at the run's size is
scaled to [0, 1], expanded to the run's channel set (HSV, L*, Lab computed inside) and passed through the
network and a sigmoid, giving probabilities ``(B, 1, H, W)``. Resizing an image to the run's size (Pillow's
bilinear, antialiased: :func:`bench.data.prepare.resize_image`), upsampling the probabilities back (torch's
bilinear, not antialiased: :func:`bench.scoring.evaluate.upsample`) and thresholding at the run's threshold stay
with the caller (``bench predict`` does all three; README.md's example does them as it does, and a test compares
every pixel); the file's metadata names the size and threshold.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from bench.data import channels
from bench.errors import ConfigError
from bench.plugin.host import PluginHost
from bench.apply.predict import load_predictor
from bench.storage.atomic import atomic_write_bytes

FORMATS = ("torchscript", "onnx")
META_NAME = "skinbench.json"


class Exported(torch.nn.Module):
    """The run's network behind its input conversion: uint8 RGB in, probabilities out."""

    def __init__(self, model: torch.nn.Module, channel_set: str) -> None:
        super().__init__()
        self.model, self.channel_set = model, channel_set

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = channels.expand(rgb.float() / 255.0, self.channel_set)
        return torch.sigmoid(self.model(x).float())


def usage(meta: dict[str, Any], fmt: str) -> str:
    """How to call an exported file, for ``bench export``'s output and the file's own metadata: the input built
    from an image file and the mask at the image's size, as ``bench predict`` makes them (README.md has the whole
    recipe, images with transparency and 16-bit ones included, and a test runs it)."""
    h, w = meta["size"].split("x")
    run = ("prob = torch.jit.load(FILE)(torch.from_numpy(rgb))" if fmt == "torchscript" else
           "prob = torch.from_numpy(onnxruntime.InferenceSession(FILE).run(None, {'rgb': rgb})[0])")
    return (f"input: rgb, uint8 (B, 3, {h}, {w}), RGB, the image resized to {h}x{w} with Pillow's bilinear "
            "(antialiased)\n"
            f"output: probabilities, float32 (B, 1, {h}, {w}); the channel set ({meta['channels']}) is computed inside\n"
            f"mask: the probabilities upsampled to the image's size with torch's bilinear (not Pillow's), "
            f"> {meta['threshold']:g}\n"
            "image = Image.open(PATH).convert('RGB')\n"
            f"rgb = np.asarray(image.resize(({w}, {h}), Image.Resampling.BILINEAR)).transpose(2, 0, 1)[None].copy()\n"
            f"{run}\n"
            "full = torch.nn.functional.interpolate(prob, size=(image.height, image.width), mode='bilinear', "
            "align_corners=False)\n"
            f"mask = (full[0, 0] > {meta['threshold']!r}).numpy()")


def export(host: PluginHost, run_dir: Path, fmt: str, out: Path) -> dict[str, Any]:
    """Write the run in ``run_dir`` to ``out`` as ``fmt``; return the metadata stored with it."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    predictor = load_predictor(host, run_dir, torch.device("cpu"))
    if predictor.dual is not None:
        raise ConfigError(f"bench export {run_dir}: is an ensemble; export its member runs (an ensemble's mean and "
                          "dual threshold are applied to their outputs by bench predict)")
    member = predictor.members[0]
    record = predictor.record
    meta = {"format": fmt, "size": f"{member.size[0]}x{member.size[1]}", "channels": member.channels,
            "threshold": predictor.threshold, "seg": record["run"]["seg"], "identity": record["identity"]["hash"],
            "seed": record["run"]["seed"], "input": "rgb", "output": "probability"}
    module = Exported(member.model.eval(), member.channels).eval()
    example = torch.randint(0, 256, (2, 3, *member.size), dtype=torch.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            # the trace fixes the run's input size, which is the file's contract; say nothing about it
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", FutureWarning)
            traced = torch.jit.trace(module, example)
            buffer = io.BytesIO()
            torch.jit.save(traced, buffer, _extra_files={META_NAME: json.dumps({**meta, "usage": usage(meta, fmt)})})
        atomic_write_bytes(out, buffer.getvalue())
    else:
        _onnx(module, example, out, meta)
    return meta


def _onnx(module: torch.nn.Module, example: torch.Tensor, out: Path, meta: dict[str, Any]) -> None:
    try:
        import onnx
    except ImportError:
        raise ConfigError("--format onnx needs onnx and onnxscript: pip install 'skinbench[export]'") from None
    tmp = out.with_name(out.name + ".tmp")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.onnx.export(module, (example,), str(tmp), input_names=["rgb"], output_names=["probability"],
                              dynamic_shapes={"rgb": {0: torch.export.Dim("batch")}}, external_data=False,
                              verbose=False)
        proto = onnx.load(str(tmp))
        for key, value in {**meta, "usage": usage(meta, "onnx")}.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, str(value)
        atomic_write_bytes(out, proto.SerializeToString())
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".data").unlink(missing_ok=True)
