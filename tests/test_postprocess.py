"""Dual-threshold post-processing on hand-made probability maps."""

import numpy as np

from bench.scoring.postprocess import dual_threshold, lesion_centre


def disc(shape, cy, cx, r, value):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return np.where((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r, value, 0.0)


def test_two_blobs_keep_the_one_with_the_biggest_confident_core():
    big = disc((60, 80), 20, 20, 12, 0.9)
    small = disc((60, 80), 40, 60, 8, 0.95)  # more confident but smaller
    prob = np.maximum(big, small)
    out = dual_threshold(prob)
    assert out[20, 20] and not out[40, 60]
    assert out.sum() == (big > 0).sum()


def test_low_threshold_grows_the_lesion_around_its_core():
    prob = np.maximum(disc((50, 50), 25, 25, 15, 0.5), disc((50, 50), 25, 25, 5, 0.9))
    out = dual_threshold(prob)
    assert out.sum() == (prob > 0.4).sum()  # the whole 0.5 halo joins the 0.9 core
    assert not dual_threshold(prob, low=0.6)[25, 10]  # thresholds are options


def test_centre_outside_every_low_component_keeps_the_nearest():
    # A C-shaped confident lesion: its centre of mass lies in the empty middle.
    ring = disc((80, 80), 40, 40, 20, 0.9) - disc((80, 80), 40, 40, 12, 0.9)
    ring[35:46, 55:] = 0  # open the ring on the right: a C
    far = disc((80, 80), 8, 72, 4, 0.6)  # another low-threshold object, further away
    prob = np.maximum(ring, far)
    cy, cx = lesion_centre(prob)
    assert prob[int(round(cy)), int(round(cx))] == 0  # the centre is outside the lesion
    out = dual_threshold(prob)
    assert out.sum() == (ring > 0.4).sum()
    assert not out[8, 72]


def test_empty_map_gives_an_empty_mask():
    assert not dual_threshold(np.zeros((20, 30))).any()


def test_nothing_above_high_keeps_the_largest_low_component():
    prob = np.maximum(disc((40, 40), 10, 10, 6, 0.6), disc((40, 40), 28, 28, 3, 0.7))
    assert lesion_centre(prob) is None
    out = dual_threshold(prob)
    assert out[10, 10] and not out[28, 28]
    assert out.sum() == (disc((40, 40), 10, 10, 6, 1) > 0).sum()
