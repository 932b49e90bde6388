"""CDNN0-6 (Pollastri et al. Table 1): Yuan & Lo's convolutional-deconvolutional network.

Stride 1 everywhere, 'same' padding, convolution + batch norm + ReLU, four 2x2 max-pools mirrored by
four nearest-neighbour x2 upsamplings, no skip connections, a 1x1 convolution to one logit (the
sigmoid is applied by the loss and at prediction). 28 layers counting pooling, upsampling and the two
dropouts; 4.92M trainable parameters with 7 input channels. Kernels are 3x3 except the two 4x4
layers Yuan & Lo give (conv3_2 and its mirror). We chose this variant over the public Keras
re-implementation's (two extra 1x1 "fc" layers of 1024 channels at the bottom, 7.8M parameters)
because it matches the paper's "28 layers, about 5M parameters".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.api import SegmenterMeta, hookimpl

REFERENCE = ("Yuan & Lo 2017, arXiv:1709.09780 (architecture); Pollastri et al., Table 1 (variants)")

# (kind, out_channels, kernel); kinds: c = conv+BN+ReLU, p = max-pool, u = upsample, d = dropout 0.5
LAYERS = [
    ("c", 16, 3), ("c", 32, 3), ("p", 0, 2),
    ("c", 64, 3), ("c", 64, 3), ("p", 0, 2),
    ("c", 128, 3), ("c", 128, 4), ("p", 0, 2),
    ("c", 256, 3), ("d", 0, 0), ("c", 256, 3), ("p", 0, 2),
    ("c", 512, 3),
    ("c", 256, 3), ("u", 0, 2), ("c", 256, 3), ("c", 128, 3), ("u", 0, 2),
    ("c", 128, 4), ("c", 64, 3), ("u", 0, 2), ("c", 64, 3), ("c", 32, 3), ("u", 0, 2),
    ("c", 16, 3), ("d", 0, 0), ("out", 1, 1),
]

VARIANTS = {
    "cdnn0": ("192x256", "rgb-hsv-l", "tanimoto", "RGB + HSV + L*, Eq. 1"),
    "cdnn1": ("192x256", "rgb", "tanimoto", "RGB only, Eq. 1"),
    "cdnn2": ("192x256", "rgb-hsv-lab", "tanimoto", "RGB + HSV + CIELAB, Eq. 1"),
    "cdnn3": ("96x128", "rgb-hsv-l", "tanimoto", "half-size input 96x128, Eq. 1"),
    "cdnn4": ("384x512", "rgb-hsv-l", "tanimoto", "double-size input 384x512, Eq. 1"),
    "cdnn5": ("192x256", "rgb-hsv-l", "jaccard", "generalised Jaccard loss, Eq. 3"),
    "cdnn6": ("192x256", "rgb-hsv-l", "mse", "mean squared error loss, Eq. 4"),
}


class ConvBNReLU(nn.Sequential):
    """'Same'-padded convolution; even kernels pad one pixel less before than after, as Keras does."""

    def __init__(self, cin: int, cout: int, k: int) -> None:
        before, after = (k - 1) // 2, k // 2
        pad = [nn.ZeroPad2d((before, after, before, after))] if k % 2 == 0 else []
        conv = nn.Conv2d(cin, cout, k, padding=0 if pad else k // 2, bias=False)
        super().__init__(*pad, conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CDNN(nn.Module):
    """Logits ``(B, 1, H, W)``; any H, W (inputs are reflection-padded to a multiple of 16 and cropped back)."""

    def __init__(self, in_channels: int = 7, width: float = 1.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        self.table: list[str] = []
        cin = in_channels
        for kind, cout, k in LAYERS:
            if kind == "c":
                cout = max(2, int(round(cout * width)))
                layers.append(ConvBNReLU(cin, cout, k))
                self.table.append(f"conv {k}x{k} {cin}->{cout} + BN + ReLU")
                cin = cout
            elif kind == "p":
                layers.append(nn.MaxPool2d(2))
                self.table.append("max-pool 2x2")
            elif kind == "u":
                layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
                self.table.append("upsample x2 (nearest)")
            elif kind == "d":
                layers.append(nn.Dropout2d(0.5))
                self.table.append("dropout 0.5")
            else:
                layers.append(nn.Conv2d(cin, 1, 1))
                self.table.append(f"conv 1x1 {cin}->1 (+ sigmoid)")
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 16, (-w) % 16
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
        return self.body(x)[..., :h, :w]

    def describe(self) -> str:
        params = sum(p.numel() for p in self.parameters() if p.requires_grad)
        lines = [f"  {len(self.table)} layers (counting pooling, upsampling and dropout), "
                 f"{params:,} trainable parameters"]
        lines += [f"  {i + 1:>2}. {row}" for i, row in enumerate(self.table)]
        return "\n".join(lines)


def build_cdnn(in_channels: int, width: float = 1.0) -> CDNN:
    return CDNN(in_channels, width)


@hookimpl
def bench_register_segmenters(register):
    for name, (size, channels, loss, text) in VARIANTS.items():
        register(name, build_cdnn, description=f"CDNN (Yuan & Lo), {text}",
                 meta=SegmenterMeta(size=size, channels=channels, loss=loss), reference=REFERENCE)
