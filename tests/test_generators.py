"""Generators: LAPGAN pyramids, sampling shapes, alternation, the cache, `bench gan`, quality metrics."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.plugin.components import Generator, Phase
from bench.data.prepare import prepare
from bench.gan.quality import checkerboard, diversity_ssim
from bench.plugin.host import get_host
from bench.train.run import load_dataset
from bench.train.engine import Trainer, TrainState, synthetic_batch
from bench_plugins.lapgan import build_pyramid, reconstruct
from conftest import bench_cli
from test_run import TINY, check_record, record_of

GAN_TINY = ["--gan-epochs", "1", "--data", "fixture?n=16&n_test=6"]


@pytest.mark.parametrize("levels,size", [(1, (12, 16)), (4, (96, 128)), (5, (192, 256))])
def test_laplacian_pyramid_construction_and_reconstruction_are_exact_inverses(levels, size):
    x = torch.rand(3, 4, *size, dtype=torch.float64, generator=torch.Generator().manual_seed(levels)) * 2 - 1
    pyramid = build_pyramid(x, levels)
    assert pyramid[0].shape[-2:] == (size[0] >> levels, size[1] >> levels)
    assert len(pyramid) == levels + 1
    assert torch.allclose(reconstruct(pyramid), x, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name,size", [("dcgan", (48, 64)), ("dcgan", (192, 256)), ("lapgan", (48, 64)), ("ddpm", (48, 64)),
                                       ("lapgan", (192, 256))])
def test_sampling_gives_4_channel_pairs_with_binary_masks(name, size):
    gen = get_host().registry.get("generators", name).factory(size=size, width=0.25)
    samples = gen.sample(3, rng=torch.Generator().manual_seed(0))
    assert samples.shape == (3, 4, *size)
    assert samples.min() >= -1 and samples.max() <= 1
    rgb, mask = synthetic_batch(gen, 3, (32, 48), torch.Generator().manual_seed(0))
    assert rgb.shape == (3, 3, 32, 48) and set(mask.unique().tolist()) <= {0.0, 1.0}


def test_lapgan_sizes_follow_the_base_and_bad_sizes_are_refused():
    lapgan = get_host().registry.get("generators", "lapgan").factory
    assert lapgan(size=(96, 128), width=0.25, base="3x4").levels == 5
    with pytest.raises(ValueError, match="not the base 6x8 times a power of two"):
        lapgan(size=(100, 128))
    text = bench_cli("describe", "lapgan").stdout
    assert "level 4: residual at 96x128" in text and "G4 applied again at 192x256" in text


class CountingGenerator(Generator):
    """A test double that records how many samples each instance was asked for."""

    def __init__(self, value: float) -> None:
        self.size, self.value, self.calls = (16, 16), value, []

    def fit(self, data, *, epochs, batch_size, rng, on_epoch=None):
        return {}

    def sample(self, n, *, rng):
        self.calls.append(n)
        return torch.full((n, 4, 16, 16), self.value)

    def to(self, device):
        return self

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_several_generators_alternate_batch_by_batch():
    real = prepare(load_dataset(get_host(), "fixture?n=40", "--data").split("train"), (16, 16))
    model = torch.nn.Conv2d(3, 1, 3, padding=1)
    state = TrainState(model, torch.optim.Adam(model.parameters()))
    a, b = CountingGenerator(0.5), CountingGenerator(-0.5)
    loss = get_host().registry.get("losses", "bce").factory()
    Trainer(state, loss, "rgb", (16, 16), 16, torch.device("cpu"), 0).run([Phase("synthetic", "synthetic", 2)], real, [a, b])
    # 40 images per epoch in batches of 16, 16, 8: batches 0 and 2 from the first generator, 1 from the second;
    # the synthetic bank asks each generator once per epoch for exactly what its batches use.
    assert a.calls == [24, 24] and b.calls == [16, 16]


@pytest.mark.parametrize("gen", ["dcgan", "lapgan", "dcgan,lapgan", "dcgan,ddpm"])
def test_quick_two_phase_run_with_each_generator(tmp_path, gen):
    record, _ = record_of(bench_cli("run", "--gen", gen, "--seg", "unet", "--out", str(tmp_path), *TINY))
    check_record(record, 6)
    assert [g["name"] for g in record["generators"]] == gen.split(",")
    assert all(Path(g["checkpoint"]).exists() for g in record["generators"])


def test_generator_cache_is_hit_by_the_second_run_and_gives_the_same_result(tmp_path):
    env = {"BENCH_CACHE_DIR": str(tmp_path / "cache")}
    first, _ = record_of(bench_cli("run", "--gen", "lapgan", "--seg", "unet", "--out", str(tmp_path / "a"), *TINY, env=env))
    second, _ = record_of(bench_cli("run", "--gen", "lapgan", "--seg", "unet", "--out", str(tmp_path / "b"), *TINY, env=env))
    assert first["generators"][0]["cache"] == "miss" and second["generators"][0]["cache"] == "hit"
    assert first["generators"][0]["key"] == second["generators"][0]["key"]
    assert first["generators"][0]["checkpoint"] == second["generators"][0]["checkpoint"]
    assert first["summary"]["jaccard"] == second["summary"]["jaccard"]
    other_seed, _ = record_of(bench_cli("run", "--gen", "lapgan", "--seg", "unet", "--out", str(tmp_path / "a"),
                                        *TINY, "--seed", "1", env=env))
    assert other_seed["generators"][0]["cache"] == "miss"
    trained = json.loads(bench_cli("gan", "train", "--gen", "lapgan", "--gan-epochs", "2",
                                   "--data", "fixture?n=16&n_test=6", env=env).stdout.split("\n", 1)[1])
    assert trained["cache"] == "hit" and trained["key"] == first["generators"][0]["key"]


def test_gan_sample_writes_a_grid_and_quality_is_recorded_and_ranked(tmp_path):
    env = {"BENCH_CACHE_DIR": str(tmp_path / "cache")}
    out = tmp_path / "runs"
    reference = record_of(bench_cli("run", "--seg", "unet", "--out", str(out), *TINY, env=env))[1]
    grid = tmp_path / "grid.png"
    proc = bench_cli("gan", "sample", "--gen", "dcgan", "--n", "5", "--out", str(grid), *GAN_TINY, env=env)
    assert "wrote" in proc.stdout
    image = np.asarray(Image.open(grid))
    assert image.ndim == 3 and image.shape[2] == 3 and image.shape[0] >= 128
    for gen, extra in (("dcgan", GAN_TINY), ("lapgan", GAN_TINY), ("dcgan", [*GAN_TINY[2:], "--gan-epochs", "2"])):
        bench_cli("gan", "quality", "--gen", gen, "--n", "6", "--reference", str(Path(reference).parent),
                  "--n-features", "12", "--out", str(out), *extra, env=env)
    record = json.loads(next(out.rglob("gan-dcgan__gan_epochs-1/seed_0/quality-ref-*.json")).read_text())
    metrics = record["metrics"]
    assert metrics["n_samples"] == 6 and metrics["diversity_ssim"]["n_pairs"] == 15
    assert 0 <= metrics["mask_coherence"]["value"] <= 1 and 0 <= metrics["checkerboard"]["value"] <= 1
    features = metrics["features"]
    assert features["n_real"] == features["n_fake"] == 12 and features["kid"]["subset_size"] == 6
    assert "encoder of the unet reference run" in features["extractor"] and features["fid"] >= 0
    assert all(0 <= features[k] <= 1 for k in ("precision", "recall", "coverage"))
    assert list(Path(record["generator"]["checkpoint"]).parent.glob("quality-ref-*.json"))
    board = bench_cli("leaderboard", "--runs", str(out), env=env).stdout
    assert "## Generator quality" in board and "- [F1] encoder of the unet reference, identity " in board
    rows = {l.split(" | ")[0]: l.split(" | ") for l in board.splitlines() if l.startswith("| ")}
    # the two DCGANs differ in their epochs: two rows, never one pooled row
    assert {"| dcgan (gan epochs 1)", "| dcgan (gan epochs 2)", "| lapgan"} <= set(rows)
    assert rows["| dcgan (gan epochs 1)"][1] == f"{features['fid']:.4f}"
    assert rows["| dcgan (gan epochs 1)"][8] == "F1" and rows["| dcgan (gan epochs 1)"][-1] == "1 |"
    copy = out / "copy" / "quality.json"  # the same seed's record twice (another runs folder) counts once
    copy.parent.mkdir()
    copy.write_text(json.dumps(record))
    again = bench_cli("leaderboard", "--runs", str(out), env=env).stdout
    assert [l for l in again.splitlines() if l.startswith("| dcgan (gan epochs 1)")][0].endswith("| 1 |")


def test_quality_metrics_by_construction():
    rng = np.random.default_rng(0)
    smooth = np.repeat(np.linspace(0, 1, 32)[None, None, :, None], 4, axis=0).repeat(24, axis=1).repeat(3, axis=3)
    checker = smooth.copy()
    checker[:, ::2, ::2] += 0.2
    assert checkerboard(checker) > 10 * checkerboard(smooth + 1e-3 * rng.random(smooth.shape))
    same = np.repeat(rng.random((1, 24, 32, 3)), 3, axis=0)
    assert diversity_ssim(same)[0] == pytest.approx(1.0)
    assert diversity_ssim(rng.random((3, 24, 32, 3)))[0] < 0.2
