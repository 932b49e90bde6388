"""bench predict: a trained run or ensemble applied to image files without masks, exactly as it was scored."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.api import SegmenterMeta, hookimpl
from bench.plugin.host import get_host
from conftest import ROOT, bench_main
from test_data import write_pairs


class Darker(torch.nn.Module):
    """Foreground where red is below the image's mean, scaled and shifted by the seed's initial weights: masks with real
    boundaries whatever a few epochs of training do (the weight gets no gradient through ``detach``)."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(4 + 8 * torch.rand(1))
        self.offset = torch.nn.Parameter(2 * torch.rand(1) - 1)
        self.bias = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        red = x[:, :1]
        return -self.scale.detach() * (red - red.mean((2, 3), keepdim=True)) + self.offset.detach() + 0 * self.bias


class Plugin:
    @hookimpl
    def bench_register_segmenters(self, register):
        register("darker", lambda in_channels, width=1.0: Darker(),
                 meta=SegmenterMeta(size="32x48", channels="rgb-hsv-l", loss="bce"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two runs of a segmenter whose masks do not depend on training, on a folder dataset with test images of
    several sizes, their scored predictions saved, and their ensemble."""
    host = get_host()
    host.add_plugin(Plugin(), "predict-test", "test", None)
    root = tmp_path_factory.mktemp("predict")
    data = root / "data"
    write_pairs(data / "train" / "images", data / "train" / "masks", 8)
    for i, size in enumerate([(24, 32), (30, 40), (37, 29)]):
        write_pairs(data / "test" / "images", data / "test" / "masks", 1, size=size, prefix=f"ISIC_10{i}")
    runs = []
    for seed in ("0", "1"):
        out = bench_main("run", "--seg", "darker", "--data", f"folder:{data}", "--epochs", "1", "--seed", seed,
                         "--out", str(root / "runs"), "--save-predictions").stdout
        runs.append(Path(out.split("record: ")[1].strip()).parent)
    bench_main("ensemble", *map(str, runs), "--out", str(root / "runs"), "--save-predictions")
    ensemble = next((root / "runs").rglob("ensemble*/**/results.json"))
    yield data, runs, ensemble
    host.remove_plugin("predict-test")


def pngs(folder: Path, suffix: str = "_segmentation.png") -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob(f"*{suffix}"))}


def test_predicting_a_runs_test_split_writes_the_masks_it_scored(trained, tmp_path):
    data, runs, ensemble = trained
    for source, scored in ((runs[0], runs[0] / "predictions"), (ensemble, ensemble.parent / "predictions")):
        out = tmp_path / source.name
        proc = bench_main("predict", str(source), "--images", str(data / "test" / "images"), "--out", str(out))
        assert "wrote 3 masks" in proc.stdout
        mine, theirs = pngs(out), pngs(scored)
        assert sorted(mine) == sorted(theirs) and len(mine) == 3
        assert all(np.array_equal(mine[k], theirs[k]) for k in mine)  # exactly, at each image's own size
        assert {v.shape for v in mine.values()} == {(24, 32), (30, 40), (37, 29)}
        assert all(set(np.unique(v)) == {0, 255} for v in mine.values())  # real boundaries to get right


def test_probabilities_flips_and_unreadable_images(trained, tmp_path):
    data, runs, _ = trained
    images = tmp_path / "images"
    images.mkdir()
    for p in (data / "test" / "images").iterdir():
        (images / p.name).write_bytes(p.read_bytes())
    (images / "broken.jpg").write_bytes(b"not an image")
    proc = bench_main("predict", str(runs[1]), "--images", str(images / "*.jpg"), "--out", str(tmp_path / "out"),
                      "--probabilities", "--tta", "flip", "--batch-size", "2", check=False)
    assert proc.returncode == 1 and "wrote 3 masks" in proc.stdout and "skipped 1 unreadable image" in proc.stdout
    [named] = [line for line in proc.stderr.splitlines() if "broken.jpg" in line]
    assert named.startswith(f"skipped {images / 'broken.jpg'}: cannot read image (") and named.count("broken.jpg") == 1
    masks, probs = pngs(tmp_path / "out"), pngs(tmp_path / "out", "_probability.png")
    assert len(masks) == 3 and len(probs) == 3
    for name, mask in masks.items():
        prob = probs[name.replace("_segmentation", "_probability")]
        assert prob.shape == mask.shape and prob.dtype == np.uint8
        assert np.array_equal(mask == 255, prob > 127) or np.mean((mask == 255) != (prob > 127)) < 0.01
    missing = bench_main("predict", str(runs[1]), "--images", str(tmp_path / "nothing"), "--out", str(tmp_path / "o"),
                         check=False)
    assert missing.returncode == 2 and "no images found" in missing.stderr


def exported_matches_predict(trained, fmt, tmp_path, run_model):
    """The exported file's probabilities on images at the run's size equal bench predict's within 1e-4."""
    from bench.data.images import read_image
    from bench.data.prepare import resize_image
    from bench.apply.predict import load_predictor, probabilities

    data, runs, _ = trained
    out = tmp_path / f"model.{fmt}"
    proc = bench_main("export", str(runs[0]), "--format", fmt, "--out", str(out))
    assert "wrote" in proc.stdout and "uint8 (B, 3, 48, 64)" in proc.stdout
    images = [resize_image(read_image(p), (48, 64)) for p in sorted((data / "test" / "images").iterdir())]
    predictor = load_predictor(get_host(), runs[0], torch.device("cpu"))
    expected = torch.stack(probabilities(predictor, images, torch.device("cpu"), "none"))
    rgb = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    got = run_model(out, rgb)[:, 0]
    assert got.shape == expected.shape and float((got - expected).abs().max()) < 1e-4


def test_torchscript_export_takes_uint8_rgb_and_matches_predict(trained, tmp_path):
    def run(path, rgb):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated in torch 2.14
            return torch.jit.load(str(path))(rgb).detach()

    exported_matches_predict(trained, "torchscript", tmp_path, run)
    proc = bench_main("export", str(trained[2]), "--format", "torchscript", "--out", str(tmp_path / "e.pt"),
                      check=False)
    assert proc.returncode == 2 and "is an ensemble" in proc.stderr
    assert "onnxruntime.InferenceSession" in bench_main("export", "--help").stdout


def test_onnx_export_matches_predict(trained, tmp_path):
    for module in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(module, reason=f"{module} is not installed (pip install 'skinbench[export]')")
    import onnxruntime

    def run(path, rgb):
        session = onnxruntime.InferenceSession(str(path))
        return torch.from_numpy(session.run(None, {"rgb": rgb.numpy()})[0])

    exported_matches_predict(trained, "onnx", tmp_path, run)


def readme_onnx_example() -> str:
    """The python block between README.md's ``<!-- onnx-example`` and ``<!-- /onnx-example -->`` markers."""
    block = (ROOT / "README.md").read_text().split("<!-- onnx-example")[1].split("<!-- /onnx-example -->")[0]
    return block.split("```python\n")[1].split("```")[0]


def odd_images(folder: Path) -> list[Path]:
    """Images bench reads beyond the RGB JPEGs of the test split: larger than the run's 48x64 (the probabilities
    are upsampled) and exactly its size (no resize), a PNG with transparency, a palette PNG with a transparent
    colour, a grey one and a 16-bit grey one."""
    pairs = folder / "pairs"
    made = {name: write_pairs(pairs / "images", pairs / "masks", 1, size=size, prefix=name)[0]
            for name, size in (("large", (97, 131)), ("exact", (48, 64)), ("other", (61, 45)))}
    large, exact, other = (pairs / "images" / f"{made[name]}.jpg" for name in ("large", "exact", "other"))
    rgb = np.asarray(Image.open(other))
    alpha = np.tile(np.linspace(0, 255, rgb.shape[1]).astype(np.uint8), (rgb.shape[0], 1))
    Image.fromarray(np.dstack([rgb, alpha])).save(folder / "rgba.png")
    palette = Image.open(other).convert("P")
    palette.info["transparency"] = int(np.asarray(palette)[0, 0])
    palette.save(folder / "palette.png", transparency=palette.info["transparency"])
    grey = np.asarray(Image.open(large).convert("L"))
    Image.fromarray(grey).save(folder / "grey.png")
    Image.fromarray(grey.astype(np.uint16) * 256 + 100).save(folder / "grey16.png")
    for p in (large, exact):
        (folder / p.name).write_bytes(p.read_bytes())
    return [folder / name for name in (large.name, exact.name, "rgba.png", "palette.png", "grey.png", "grey16.png")]


def test_readme_onnx_example_writes_bench_predicts_masks_pixel_for_pixel(trained, tmp_path, monkeypatch):
    """README's ONNX example, run as written on the run's export, gives every image the mask bench predict writes:
    every pixel, at every size (smaller, larger and the run's own) and for every image mode bench reads."""
    for module in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(module, reason=f"{module} is not installed (pip install 'skinbench[export]')")
    from bench.apply.predict import load_predictor, probabilities
    from bench.data.images import read_image

    data, runs, _ = trained
    code = readme_onnx_example()
    images = tmp_path / "images"
    images.mkdir()
    for p in (data / "test" / "images").iterdir():  # 24x32, 30x40, 37x29: smaller than the run's 48x64
        (images / p.name).write_bytes(p.read_bytes())
    paths = sorted(images.glob("*.jpg")) + odd_images(images)
    assert {Image.open(p).mode for p in paths} == {"RGB", "RGBA", "P", "L", "I;16"}
    bench_main("export", str(runs[0]), "--format", "onnx", "--out", str(tmp_path / "lesion.onnx"))
    out = tmp_path / "masks"
    bench_main("predict", str(runs[0]), "--images", str(images), "--out", str(out))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photo.jpg").write_bytes(paths[0].read_bytes())
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # as written: lesion.onnx -> photo_segmentation.png
    assert np.array_equal(np.asarray(Image.open("photo_segmentation.png")),
                          np.asarray(Image.open(out / f"{paths[0].stem}_segmentation.png")))
    predictor = load_predictor(get_host(), runs[0], torch.device("cpu"))
    for path in paths:
        expected = np.asarray(Image.open(out / f"{path.stem}_segmentation.png")) == 255
        got = namespace["segment"](path)
        assert got.dtype == bool and got.shape == expected.shape == read_image(path).shape[:2], path.name
        if not np.array_equal(got, expected):
            prob = probabilities(predictor, [read_image(path)], torch.device("cpu"), "none")[0].numpy()
            gaps = np.abs(prob - predictor.threshold)[got != expected]
            raise AssertionError(f"{path.name}: {int((got != expected).sum())} of {got.size} pixels differ from "
                                 f"bench predict's mask, at {gaps.min():.3g}-{gaps.max():.3g} from the threshold")
        assert 0 < expected.mean() < 1, path.name  # masks with boundaries to get right
