"""Channel sets: the torch conversions equal scikit-image's, and each set has Table 1's channel count."""

import numpy as np
import pytest
import torch
from skimage.color import rgb2hsv, rgb2lab

from bench.data import channels


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    arr = rng.random((2, 3, 16, 20))
    arr[0, :, 0, :] = 0.5  # grey pixels (zero saturation, hue 0)
    arr[0, :, 1, :] = 0.0  # black pixels
    return torch.from_numpy(arr)


def test_hsv_matches_skimage(rgb):
    ours = channels.rgb_to_hsv(rgb).numpy()
    ref = np.stack([rgb2hsv(im.transpose(1, 2, 0)).transpose(2, 0, 1) for im in rgb.numpy()])
    assert np.abs(ours - ref).max() < 1e-9


def test_lab_matches_skimage(rgb):
    ours = channels.rgb_to_lab(rgb).numpy()
    ref = np.stack([rgb2lab(im.transpose(1, 2, 0)).transpose(2, 0, 1) for im in rgb.numpy()])
    assert np.abs(ours - ref).max() < 1e-6


@pytest.mark.parametrize("name,count", [("rgb", 3), ("rgb-hsv-l", 7), ("rgb-hsv-lab", 9)])
def test_channel_sets(rgb, name, count):
    out = channels.expand(rgb.float(), name)
    assert out.shape == (2, count, 16, 20)
    assert channels.channel_count(name) == count
    assert out.abs().max() <= 1.0 + 1e-5


def test_unknown_channel_set_names_option_and_choices():
    with pytest.raises(Exception, match="--channels.*rgb-hsv-l"):
        channels.expand(torch.zeros(1, 3, 4, 4), "rgb+hsv")
