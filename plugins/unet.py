"""U-Net (Ronneberger et al. 2015), the paper's Table 3 segmenter.

Four down- and four up-steps of two 3x3 convolutions, 64 channels at full width doubling per level,
2x2 transposed-convolution upsampling and skip concatenation. Two documented departures from the
2015 paper, as in most re-implementations: 'same' padding (output size = input size, no cropping)
and batch norm after each convolution (training from scratch at batch 16).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.api import SegmenterMeta, hookimpl, Option


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Logits ``(B, 1, H, W)`` from ``(B, in_channels, H, W)``; H and W divisible by 16."""

    def __init__(self, in_channels: int = 3, base: int = 64, depth: int = 4) -> None:
        super().__init__()
        widths = [base * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([_double_conv(in_channels, widths[0])])
        self.down.extend(_double_conv(widths[i], widths[i + 1]) for i in range(depth))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth)))
        self.merge = nn.ModuleList(_double_conv(widths[i] * 2, widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], 1, 1)
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 2**self.depth or x.shape[-1] % 2**self.depth:
            raise ValueError(f"U-Net input {tuple(x.shape[-2:])} must be divisible by {2**self.depth}")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat((up(x), skips.pop()), 1))
        return self.head(x)


def build_unet(in_channels: int, width: float = 1.0, depth: int = 4) -> UNet:
    return UNet(in_channels, base=max(4, int(round(64 * width))), depth=depth)


@hookimpl
def bench_register_segmenters(register):
    register(
        "unet", build_unet,
        description="U-Net, 4 levels (depth=), 64 base channels (width scales them)",
        meta=SegmenterMeta(size="192x256", channels="rgb", loss="bce", options={
            "depth": Option(4, help="down- and up-steps; the input's sides must be divisible by 2^depth",
                            choices=(2, 3, 4, 5))}),
        reference="Ronneberger et al. 2015; Pollastri et al. Table 3 (Eq. 6 default, Eq. 1 with --loss tanimoto)",
    )
