"""The diffusion generator: forward noising, the DDIM sampler, runs with ddpm, its cache and its sampling steps."""

import numpy as np
import pytest
import torch

from bench.plugin.host import get_host
from bench_plugins.ddpm import ddim_sample, ddim_steps, linear_schedule, q_sample
from conftest import bench_cli
from test_run import TINY, check_record, record_of


def test_linear_schedule_is_the_product_of_one_minus_ho_et_als_betas():
    ab = linear_schedule().numpy()
    by_hand = np.cumprod(1.0 - np.linspace(1e-4, 0.02, 1000))
    assert ab.shape == (1000,) and np.allclose(ab, by_hand, rtol=1e-12, atol=0)
    assert ab[0] == pytest.approx(1 - 1e-4) and ab[-1] < 1e-4


def test_forward_noising_has_the_closed_form_mean_and_variance():
    ab = linear_schedule()
    x0 = torch.tensor([0.8, -0.3, 0.0], dtype=torch.float64).view(1, 3, 1, 1).expand(20000, 3, 1, 1)
    g = torch.Generator().manual_seed(0)
    for step in (0, 250, 999):
        noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
        t = torch.full((len(x0),), step)
        xt = q_sample(x0, t, noise, ab)
        a = float(ab[step])
        assert torch.equal(xt, a ** 0.5 * x0 + (1 - a) ** 0.5 * noise)  # eq. 4, term by term
        assert xt.mean(0).flatten().tolist() == pytest.approx((a ** 0.5 * x0[0]).flatten().tolist(), abs=0.03)
        assert xt.var(0).flatten().tolist() == pytest.approx([1 - a] * 3, rel=0.05, abs=1e-3)
    mixed = q_sample(x0[:2], torch.tensor([0, 999]), torch.zeros(2, 3, 1, 1, dtype=torch.float64), ab)
    assert torch.allclose(mixed[0], ab[0].sqrt() * x0[0]) and torch.allclose(mixed[1], ab[999].sqrt() * x0[0])


def test_ddim_steps_are_distinct_and_run_from_the_last_step_to_zero():
    for steps in (1, 2, 10, 50, 1000):
        schedule = ddim_steps(1000, steps)
        assert len(schedule) == steps == len(set(schedule)) and schedule[0] == 999
        assert schedule == sorted(schedule, reverse=True) and (steps == 1 or schedule[-1] == 0)
    with pytest.raises(ValueError, match="sample_steps must lie between 1 and 1000"):
        ddim_steps(1000, 0)


def oracle(points: torch.Tensor, alpha_bar: torch.Tensor):
    """The exact noise predictor for data that is an equal mixture of ``points``: the posterior mean of the noise."""
    def eps(x, t):
        a = alpha_bar[t].view(-1, 1, 1, 1).to(x.dtype)
        diff = x[:, None] - a.sqrt()[:, None] * points[None]  # (B, K, C, H, W)
        logp = -(diff ** 2).flatten(2).sum(-1) / (2 * (1 - a.view(-1, 1)))
        w = torch.softmax(logp, 1).view(*logp.shape, 1, 1, 1)
        return (w * diff).sum(1) / (1 - a).sqrt()
    return eps


@pytest.mark.parametrize("steps", [1, 5, 50])
def test_ddim_with_a_denoiser_that_knows_one_data_point_returns_it(steps):
    ab = linear_schedule()
    point = torch.rand(1, 4, 6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 1.6 - 0.8
    noise = torch.randn(5, 4, 6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    out = ddim_sample(oracle(point, ab), noise, ab, steps)
    assert torch.allclose(out, point.expand_as(out), atol=1e-9, rtol=0)


def test_ddim_with_a_denoiser_that_knows_two_data_points_returns_one_of_them():
    ab = linear_schedule()
    points = torch.rand(2, 4, 6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 1.6 - 0.8
    noise = torch.randn(64, 4, 6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    out = ddim_sample(oracle(points, ab), noise, ab, 20)
    distance = (out[:, None] - points[None]).abs().flatten(2).amax(-1)  # (64, 2)
    nearest = distance.argmin(1)
    assert distance.amin(1).max() < 1e-6
    assert 0 < int(nearest.sum()) < 64  # both points are reached


def test_ddpm_samples_4_channel_pairs_and_describes_itself():
    gen = get_host().registry.get("generators", "ddpm").factory(size=(48, 64), width=0.25, sample_steps=3)
    samples = gen.sample(3, rng=torch.Generator().manual_seed(0))
    assert samples.shape == (3, 4, 48, 64) and samples.min() >= -1 and samples.max() <= 1
    text = bench_cli("describe", "ddpm").stdout
    assert "Ho et al. 2020" in text and "Song et al. 2021" in text and "DDIM sampling in 50 steps" in text


def test_ddpm_two_phase_run_is_valid_its_cache_is_hit_and_sample_steps_change_the_identity_only(tmp_path):
    env = {"BENCH_CACHE_DIR": str(tmp_path / "cache")}
    run = lambda out, *extra: record_of(bench_cli("run", "--gen", "ddpm", "--seg", "unet", "--out",  # noqa: E731
                                                  str(tmp_path / out), *TINY, *extra, env=env))[0]
    first, second = run("a"), run("b")
    check_record(first, 6)
    assert first["run"]["sample_steps"] == 10  # the quick profile's value
    assert [g["cache"] for g in (first["generators"][0], second["generators"][0])] == ["miss", "hit"]
    assert first["generators"][0]["key"] == second["generators"][0]["key"]
    assert first["summary"]["jaccard"] == second["summary"]["jaccard"]
    fewer = run("a", "--sample-steps", "3")
    assert fewer["generators"][0]["cache"] == "hit"  # sampling steps do not retrain the DDPM
    assert fewer["generators"][0]["key"] == first["generators"][0]["key"]
    assert fewer["run"]["sample_steps"] == 3 and fewer["identity"]["hash"] != first["identity"]["hash"]
    assert fewer["generators"][0]["identity"] != first["generators"][0]["identity"]
