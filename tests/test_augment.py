"""Augmentation applies one transform per image, identically to image and mask, on whole batches."""

import torch

from bench.data.augment import AugmentConfig, augment


def test_image_and_mask_get_the_same_transform():
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(8, 1, 48, 64)
    for i in range(8):
        mask[i, 0, 5 + i : 25 + i, 10 + 2 * i : 40] = 1
    rgb = mask.repeat(1, 3, 1, 1) * 0.8 + 0.1  # the image *is* the mask, so they must stay aligned
    out_rgb, out_mask = augment(rgb, mask, g, AugmentConfig(contrast=(1.0, 1.0)))
    agree = ((out_rgb[:, :1] > 0.5) == (out_mask > 0.5)).float().mean()
    assert agree > 0.99
    assert not torch.equal(out_mask, mask)  # something did move
    assert set(out_mask.unique().tolist()) <= {0.0, 1.0}
    assert out_rgb.min() >= 0 and out_rgb.max() <= 1


def test_same_seed_same_batch_and_disabled_is_identity():
    rgb, mask = torch.rand(4, 3, 16, 16), (torch.rand(4, 1, 16, 16) > 0.5).float()
    a = augment(rgb, mask, torch.Generator().manual_seed(5))
    b = augment(rgb, mask, torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    same = augment(rgb, mask, torch.Generator(), AugmentConfig(enabled=False))
    assert same[0] is rgb and same[1] is mask
