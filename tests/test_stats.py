"""Leaderboard statistics against hand-computed values on small synthetic records."""

import pytest

from bench.leaderboard import render
from bench.stats import paired_bootstrap, per_image_mean


def record(gen, seed, scores, seg="unet"):
    per_image = [{"id": f"img{i}", "jaccard": s} for i, s in enumerate(scores)]
    counts = [0] * 10
    for s in scores:
        counts[min(int(s * 10), 9)] += 1
    return {
        "run": {"gen": [gen] if gen else [], "seg": seg, "loss": "bce", "loss_default": "bce",
                "schedule": "two-phase" if gen else "real-only", "profile": "quick", "seed": seed,
                "data": "fixture", "test": "fixture", "test_split": "test", "protocol_version": 1},
        "summary": {"jaccard": sum(scores) / len(scores), "n_images": len(scores),
                    "below_0.6": sum(s < 0.6 for s in scores), "below_0.7": sum(s < 0.7 for s in scores)},
        "histogram": {"edges": [i / 10 for i in range(11)], "counts": counts},
        "per_image": per_image,
    }


def test_known_difference_is_exact_and_marked():
    base = {"a": 0.5, "b": 0.6, "c": 0.7}
    better = {k: v + 0.1 for k, v in base.items()}
    result = paired_bootstrap(better, base)
    assert result["mean"] == pytest.approx(0.1) and result["low"] == pytest.approx(0.1)
    assert result["high"] == pytest.approx(0.1) and result["significant"] and result["n_images"] == 3


def test_zero_difference_is_not_marked():
    base = {"a": 0.5, "b": 0.6, "c": 0.7, "d": 0.8}
    noisy = {"a": 0.6, "b": 0.5, "c": 0.8, "d": 0.7}  # +0.1, -0.1, +0.1, -0.1
    result = paired_bootstrap(noisy, base)
    assert result["mean"] == pytest.approx(0.0)
    assert result["low"] < 0 < result["high"] and not result["significant"]


def test_seeds_are_averaged_per_image_first():
    merged = per_image_mean([record(None, 0, [0.2, 0.4]), record(None, 1, [0.4, 0.8])])
    assert merged == {"img0": pytest.approx(0.3), "img1": pytest.approx(0.6)}


def test_leaderboard_renders_intervals_marks_single_seeds_and_histograms():
    records = [record(None, 0, [0.5, 0.6, 0.7]), record(None, 1, [0.5, 0.6, 0.7]),
               record("dcgan", 0, [0.6, 0.7, 0.8]), record("lapgan", 0, [0.6, 0.5, 0.8])]
    text = render(records)
    assert "| unet | 0.6000 ± 0.0000 (n=2) | 0.7000 ± 0.0000 (n=1) | 0.6333 ± 0.0000 (n=1) |" in text
    # dcgan: every image +0.1 (marked); lapgan: +0.1, -0.1, +0.1 (interval holds zero, unmarked)
    assert "| unet | +0.1000 [+0.1000, +0.1000] * | +0.0333 [-0.1000, +0.1000] |" in text
    assert "| unet | real only | 6 | 2 | 4 | 0 0 0 0 0 2 2 2 0 0 |" in text
    assert "| unet | dcgan | 3 | 0 | 1 | 0 0 0 0 0 0 1 1 1 0 |" in text
