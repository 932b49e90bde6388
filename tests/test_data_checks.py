"""Data that is not what it looks like: two files of one id, a scored split that was trained on, generated pairs
outside the generator contract and a loss that returns no tensor are named, never trained on silently."""

import shutil

import pytest
import torch

from bench.api import GeneratorMeta, hookimpl
from bench.errors import BenchError
from bench.plugin.build import check_loss, check_samples
from conftest import bench_main
from test_data import write_pairs

from bench_plugins.ellipses import EllipsesGenerator


def folder_dataset(root, n=4):
    for split in ("train", "test"):
        write_pairs(root / split / "images", root / split / "masks", n)
    return root


@pytest.mark.parametrize("where", ["images", "masks"])
def test_two_files_of_one_id_are_refused_naming_both(tmp_path, where):
    root = folder_dataset(tmp_path / "data")
    folder = root / "train" / where
    first = sorted(folder.iterdir())[0]
    twin = first.with_suffix(".bmp" if first.suffix != ".bmp" else ".png")
    shutil.copy(first, twin)
    proc = bench_main("run", "--seg", "cdnn0", "--data", f"folder:{root}", "--epochs", "1",
                      "--out", str(tmp_path / "runs"), check=False)
    assert proc.returncode == 2
    assert f"{first.name}" in proc.stderr and f"{twin.name}" in proc.stderr and "two files with the id" in proc.stderr


def test_a_scored_split_that_was_trained_on_is_named_and_kept_in_the_record(tmp_path):
    import json
    from pathlib import Path

    root = folder_dataset(tmp_path / "data")
    shutil.rmtree(root / "test")
    shutil.copytree(root / "train", root / "test")  # the "test" split is the training split
    proc = bench_main("run", "--seg", "cdnn0", "--data", f"folder:{root}", "--epochs", "1",
                      "--out", str(tmp_path / "runs"))
    assert "same content as the training split" in proc.stderr
    record = json.loads(Path(proc.stdout.split("record: ")[1].strip()).read_text())
    assert any("fit, not generalisation" in w for w in record["runtime"]["warnings"])


class Broken(EllipsesGenerator):
    """Ellipses with one thing wrong with their samples."""

    def __init__(self, size, fault):
        super().__init__(size)
        self.fault = fault

    def sample(self, n, *, rng):
        x = super().sample(n, rng=rng)
        if self.fault == "nan":
            x[0, 0, 0, 0] = float("nan")
        elif self.fault == "range":
            x = x * 255.0
        elif self.fault == "channels":
            x = x[:, :3]
        return x


@pytest.mark.parametrize("fault,message", [
    ("nan", "1 non-finite values"),
    ("range", "values from -255 to 255"),
    ("channels", "expected a tensor (16, 4, H, W)"),
])
def test_generated_pairs_outside_the_contract_stop_the_run_naming_the_generator(bench_register, bench_run, fault,
                                                                               message):
    class Plugin:
        @hookimpl
        def bench_register_generators(self, register):
            register(f"broken-{fault}", lambda size, width=1.0, lr=0.0, seed=0: Broken(size, fault),
                     meta=GeneratorMeta(size="48x64"))

    bench_register(Plugin(), f"broken-{fault}")
    with pytest.raises(BenchError, match=r"generator 'Broken': sample\(16\) returned") as err:
        bench_run(gen=f"broken-{fault}", seg="cdnn0")
    assert message in str(err.value)


def test_the_sample_check_accepts_the_contract_and_names_each_breach():
    good = torch.rand(4, 4, 8, 8) * 2 - 1
    assert check_samples(good, "g", 4) is good
    for bad, text in ((good[:3], "returned (3, 4, 8, 8)"), (good.numpy(), "returned ndarray"),
                      (good * 1.01 + 0.02, "returned values from")):
        with pytest.raises(BenchError, match="generator 'g'") as err:
            check_samples(bad, "g", 4)
        assert text in str(err.value)


@pytest.mark.parametrize("loss,message", [
    (lambda logits, target: 0.5, "returned float 0.5"),
    (lambda logits, target: (logits - target).abs(), "returned a tensor of shape (2, 1, 8, 8)"),
    (lambda logits, target: (logits - target).abs().mean().detach(), "without a gradient"),
    (lambda logits, target: (logits / 0).mean(), "expected a finite value"),
    (lambda logits, target: logits.squeeze(5), "fails on logits and a mask"),
])
def test_a_loss_that_returns_no_finite_scalar_tensor_is_named_before_training(loss, message):
    with pytest.raises(BenchError, match="loss 'x'") as err:
        check_loss(loss, "loss 'x'")
    assert message in str(err.value)
