"""CDNN0-6: Table 1 defaults, the architecture's size, a forward pass at each variant's size, learning."""

import pytest
import torch

from bench.data import channels
from bench.data.prepare import prepare
from bench.data.spec import parse_size
from bench.plugin.host import get_host
from bench.train.run import load_dataset

TABLE1 = {
    "cdnn0": ("192x256", "rgb-hsv-l", 7, "tanimoto"),
    "cdnn1": ("192x256", "rgb", 3, "tanimoto"),
    "cdnn2": ("192x256", "rgb-hsv-lab", 9, "tanimoto"),
    "cdnn3": ("96x128", "rgb-hsv-l", 7, "tanimoto"),
    "cdnn4": ("384x512", "rgb-hsv-l", 7, "tanimoto"),
    "cdnn5": ("192x256", "rgb-hsv-l", 7, "jaccard"),
    "cdnn6": ("192x256", "rgb-hsv-l", 7, "mse"),
}


def component(name):
    return get_host().registry.get("segmenters", name)


@pytest.mark.parametrize("name", sorted(TABLE1))
def test_variant_defaults_and_forward_at_its_size(name):
    size, cset, count, loss = TABLE1[name]
    c = component(name)
    assert c.defaults == {"size": size, "channels": cset, "loss": loss}
    assert channels.channel_count(cset) == count
    model = c.factory(count).eval()
    h, w = parse_size(size)
    with torch.no_grad():
        out = model(torch.randn(1, count, h, w))
    assert out.shape == (1, 1, h, w)


def test_architecture_has_28_layers_and_about_5m_parameters():
    model = component("cdnn0").factory(7)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 4.8e6 < params < 5.1e6
    assert len(model.table) == 28
    assert sum("max-pool" in r for r in model.table) == 4 and sum("upsample" in r for r in model.table) == 4


@pytest.mark.parametrize("name", sorted(TABLE1))
def test_loss_falls_over_a_few_steps_on_the_fixture(name):
    """Full-width network, its channel set and loss, on fixture pairs at 48x64 (CPU-sized)."""
    size, cset, count, loss_name = TABLE1[name]
    torch.manual_seed(0)
    data = prepare(load_dataset(get_host(), "fixture?n=8", "--data").split("train"), (48, 64))
    x = channels.expand(data.images.float() / 255, cset)
    y = data.masks.float()
    model = component(name).factory(count)
    loss_fn = get_host().registry.get("losses", loss_name).factory()
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    losses = []
    for _ in range(12):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3


def test_odd_sizes_are_padded_and_cropped_back():
    model = component("cdnn1").factory(3, width=0.125).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 30, 45)).shape == (2, 1, 30, 45)
