"""FID, KID and precision/recall/density/coverage against hand computations; the two feature extractors."""

import numpy as np
import pytest
import scipy.linalg
import timm
import torch

from bench.errors import ConfigError
from bench.gan.feature_metrics import deepest_activation, extract, fid, kid, prdc, segmenter_extractor, timm_extractor
from bench.plugin.host import get_host


def gaussians(n=300, d=4, seed=0):
    g = np.random.default_rng(seed)
    real = g.normal(size=(n, d))
    fake = g.normal(size=(n, d)) @ np.diag([1.0, 2.0, 0.5, 1.5])[:d, :d] + np.arange(d) * 0.3
    return real, fake


def test_fid_equals_the_frechet_distance_computed_by_hand():
    real, fake = gaussians()
    m1, m2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    by_hand = ((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert fid(torch.from_numpy(real), torch.from_numpy(fake)) == pytest.approx(by_hand, rel=1e-6)
    assert fid(torch.from_numpy(real), torch.from_numpy(real)) == pytest.approx(0.0, abs=1e-6)


def test_kid_equals_the_unbiased_polynomial_mmd_computed_by_hand():
    real, fake = gaussians(n=40)
    d = real.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    m = len(real)
    kxx, kyy, kxy = k(real, real), k(fake, fake), k(real, fake)
    by_hand = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
               - 2 * kxy.sum() / m ** 2)
    whole = kid(torch.from_numpy(real), torch.from_numpy(fake), subsets=3, subset_size=m)
    assert whole["value"] == pytest.approx(by_hand, rel=1e-9) and whole["std"] == pytest.approx(0.0, abs=1e-12)
    default = kid(torch.from_numpy(real), torch.from_numpy(fake))
    assert default["subset_size"] == 20 and default["subsets"] == 100 and default["std"] > 0
    assert default == kid(torch.from_numpy(real), torch.from_numpy(fake))  # seeded
    assert abs(default["value"] - by_hand) < 3 * default["std"]


def test_precision_recall_density_coverage_by_hand():
    # k = 1. Real 0, 1, 2, 3, 5: balls of radius 1, 1, 1, 1, 2. Generated 0.5, 10, 2.2: radii 1.7, 7.8, 1.7.
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0], [5.0]])
    fake = torch.tensor([[0.5], [10.0], [2.2]])
    out = prdc(real, fake, k=1)
    assert out["precision"] == pytest.approx(2 / 3)  # 0.5 and 2.2 lie in real balls, 10 in none
    assert out["recall"] == pytest.approx(1.0)  # 10's ball (7.8) reaches 5; the others reach 0..3
    assert out["density"] == pytest.approx(4 / 3)  # 0.5 in the balls of 0 and 1, 2.2 in those of 2 and 3
    assert out["coverage"] == pytest.approx(4 / 5)  # 5's nearest generated sample (2.2) is 2.8 away, over 2
    same = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    itself = prdc(same, same)
    assert (itself["precision"], itself["recall"], itself["coverage"]) == (1.0, 1.0, 1.0) and itself["density"] >= 1
    with pytest.raises(ValueError, match="more than k=5"):
        prdc(real, fake)


def test_the_reference_extractor_takes_a_segmenters_deepest_activation():
    model = get_host().registry.get("segmenters", "unet").factory(3, width=0.25)
    name, _ = deepest_activation(model, torch.zeros(1, 3, 48, 64))
    extractor = segmenter_extractor(model, (48, 64), lambda x: x, "unet", torch.device("cpu"))
    images = torch.rand(5, 3, 24, 32, generator=torch.Generator().manual_seed(0))
    features = extract(extractor, images, batch_size=2)
    assert features.shape[0] == 5 and features.dtype == torch.float64
    assert name in extractor.name and "unet" in extractor.name
    assert torch.allclose(features, extract(extractor, images), atol=1e-6)  # batching changes nothing


def test_a_timm_backbone_needs_its_own_local_weights(tmp_path):
    path = tmp_path / "test_resnet.pth"
    torch.save(timm.create_model("test_resnet", num_classes=10).state_dict(), path)
    extractor = timm_extractor("test_resnet", path, torch.device("cpu"))
    assert extractor.name.startswith("timm:test_resnet (weights test_resnet.pth, sha256 ")
    features = extract(extractor, torch.rand(3, 3, 48, 64))
    assert features.shape[0] == 3 and torch.isfinite(features).all()
    other = tmp_path / "other.pth"
    torch.save(timm.create_model("test_efficientnet", num_classes=0).state_dict(), other)
    with pytest.raises(ConfigError, match="not the weights of timm model 'test_resnet'"):
        timm_extractor("test_resnet", other, torch.device("cpu"))
    with pytest.raises(ConfigError, match="file not found"):
        timm_extractor("test_resnet", tmp_path / "missing.pth", torch.device("cpu"))


def test_bench_gan_quality_refuses_an_extractor_it_cannot_build_before_any_training(tmp_path):
    from conftest import bench_main

    cases = [(["--features", "timm:test_resnet"], "--features timm:test_resnet: pass --weights PATH"),
             (["--features", "reference"], "--features reference: pass --reference RUN_DIR"),
             (["--weights", str(tmp_path / "w.pth")], "--weights: only used with --features timm:NAME"),
             (["--features", "inception"], "--features inception: expected reference or timm:NAME"),
             (["--features", "timm:test_resnet", "--weights", str(tmp_path / "w.pth")], "file not found")]
    for extra, message in cases:
        proc = bench_main("gan", "quality", "--gen", "dcgan", "--data", "fixture?n=8", *extra, check=False)
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr, (extra, proc.stdout, proc.stderr)
