"""Scoring: per-image metrics and their edge cases, and agreement with the official ISIC scorer."""

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from bench.scoring.evaluate import score_probabilities
from bench.scoring.metrics import confusion, image_metrics, summarise
from bench.plugin.host import get_host
from bench.train.run import load_dataset


def test_metrics_by_hand():
    truth = np.array([[1, 1, 0, 0], [1, 1, 0, 0]], bool)
    pred = np.array([[1, 0, 1, 0], [1, 0, 0, 0]], bool)
    c = confusion(truth, pred)
    assert c == {"tp": 2, "fp": 1, "fn": 2, "tn": 3}
    m = image_metrics(c)
    assert m["jaccard"] == pytest.approx(2 / 5)
    assert m["dice"] == pytest.approx(4 / 7)
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["sensitivity"] == pytest.approx(2 / 4)
    assert m["specificity"] == pytest.approx(3 / 4)
    assert m["threshold_jaccard"] == 0.0  # below 0.65


def test_edge_cases_follow_the_official_scorer():
    empty = np.zeros((3, 3), bool)
    both_empty = image_metrics(confusion(empty, empty))
    assert both_empty["jaccard"] == 1.0 and both_empty["dice"] == 1.0 and both_empty["sensitivity"] == 1.0
    full = np.ones((3, 3), bool)
    assert image_metrics(confusion(full, full))["specificity"] == 1.0
    assert image_metrics(confusion(full, empty))["jaccard"] == 0.0


def test_summary_histogram_and_counts():
    rows = [{"jaccard": j, "dice": 0, "accuracy": 0, "sensitivity": 0, "specificity": 0, "threshold_jaccard": 0}
            for j in (0.05, 0.55, 0.65, 0.95, 1.0)]
    summary, hist = summarise(rows)
    assert summary["jaccard"] == pytest.approx(0.64)
    assert summary["below_0.6"] == 2 and summary["below_0.7"] == 3 and summary["n_images"] == 5
    assert hist["counts"] == [1, 0, 0, 0, 0, 1, 1, 0, 0, 2]


def test_mean_jaccard_equals_official_isic_scorer_on_real_validation_files(isic, tmp_path):
    """Imperfect predictions (eroded, dilated, shifted, emptied, noisy) scored by us and by the scorer."""
    from isic_challenge_scoring import SegmentationScore

    split = load_dataset(get_host(), f"isic2017:{isic}", "--data").split("val")
    rng = np.random.default_rng(0)
    maps = []
    for i in range(len(split)):
        _, mask = split.load(i)
        kind = i % 5
        if kind == 0:
            m = ndimage.binary_erosion(mask, iterations=int(rng.integers(5, 40)))
        elif kind == 1:
            m = ndimage.binary_dilation(mask, iterations=int(rng.integers(5, 40)))
        elif kind == 2:
            m = np.roll(mask, (int(rng.integers(-60, 60)), int(rng.integers(-60, 60))), axis=(0, 1)) > 0
        elif kind == 3:
            m = np.zeros_like(mask, bool) if i % 10 == 3 else np.ones_like(mask, bool)
        else:
            m = (mask > 0) ^ (rng.random(mask.shape) < 0.1)
        maps.append(torch.from_numpy(m.astype(np.float32)))
    preds = tmp_path / "pred"
    _, summary, _ = score_probabilities(lambda i: maps[i], split, 0.5, preds)
    truth_dir = isic / "ISIC-2017_Validation_Part1_GroundTruth"
    official = SegmentationScore.from_dir(truth_dir, preds).macro_average
    assert summary["n_images"] == 150
    assert abs(summary["jaccard"] - official["jaccard"]) < 1e-9
    assert abs(summary["dice"] - official["dice"]) < 1e-9
    assert abs(summary["threshold_jaccard"] - official["threshold_jaccard"]) < 1e-9
    assert abs(summary["sensitivity"] - official["sensitivity"]) < 1e-9
    assert 0.2 < summary["jaccard"] < 0.9  # imperfect on purpose


def test_prediction_files_are_binary_at_original_size(tmp_path):
    split = load_dataset(get_host(), "fixture?n=2&n_test=2&size=30x50", "--data").split("test")
    probs = torch.rand(2, 1, 12, 20)
    score_probabilities(probs, split, 0.5, tmp_path)
    png = np.asarray(Image.open(tmp_path / "fixture_test_00000_segmentation.png"))
    assert png.shape == (30, 50) and set(np.unique(png)) <= {0, 255}
