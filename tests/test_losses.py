"""The paper's losses against hand computations on small tensors."""

import math

import pytest
import torch

from bench.plugin.host import get_host


def loss(name):
    return get_host().registry.get("losses", name).factory()


def logit(p):
    return torch.logit(torch.tensor(p, dtype=torch.float64))


P1 = [[0.9, 0.2], [0.6, 0.1]]
T1 = [[1.0, 0.0], [1.0, 1.0]]
P2 = [[0.5, 0.5], [0.5, 0.5]]
T2 = [[0.0, 0.0], [1.0, 0.0]]


def batch():
    logits = torch.stack([logit(P1), logit(P2)])[:, None]
    target = torch.tensor([T1, T2], dtype=torch.float64)[:, None]
    return logits, target


def test_tanimoto_eq1_is_mean_of_per_image_losses():
    # image 1: sum tp = .9+.6+.1 = 1.6; sum t^2 = 3; sum p^2 = .81+.04+.36+.01 = 1.22
    l1 = 1 - 1.6 / (3 + 1.22 - 1.6)
    # image 2: sum tp = .5; sum t^2 = 1; sum p^2 = 1.0
    l2 = 1 - 0.5 / (1 + 1.0 - 0.5)
    assert loss("tanimoto")(*batch()).item() == pytest.approx((l1 + l2) / 2, abs=1e-6)


def test_generalised_jaccard_eq3():
    l1 = 1 - 1.6 / (3 + 1.8 - 1.6)
    l2 = 1 - 0.5 / (1 + 2.0 - 0.5)
    assert loss("jaccard")(*batch()).item() == pytest.approx((l1 + l2) / 2, abs=1e-6)


def test_mse_eq4_over_all_pixels():
    se = (0.1**2 + 0.2**2 + 0.4**2 + 0.9**2) + (0.25 * 3 + 0.25)
    assert loss("mse")(*batch()).item() == pytest.approx(se / 8, abs=1e-6)


def test_bce_eq6_over_all_pixels():
    terms = [-math.log(0.9), -math.log(0.8), -math.log(0.6), -math.log(0.1)] + [-math.log(0.5)] * 4
    assert loss("bce")(*batch()).item() == pytest.approx(sum(terms) / 8, abs=1e-6)


@pytest.mark.parametrize("name", ["tanimoto", "jaccard", "mse", "bce"])
def test_perfect_prediction_scores_lower_than_inverted(name):
    target = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    good = (target * 2 - 1) * 20
    assert loss(name)(good, target) < loss(name)(-good, target)
