"""The synthetic bank and the captured step's CPU side: what a segmenter trains on is unchanged."""

import pytest
import torch

from bench.data.augment import AugmentConfig
from bench.train.bank import SyntheticBank, to_pairs
from bench.plugin.build import load_dataset
from bench.plugin.components import Generator, Phase
from bench.data.prepare import prepare
from bench.errors import ConfigError
from bench.plugin.host import get_host
from bench.train.engine import Trainer, TrainState, synthetic_batch
from conftest import bench_main


class SerialGenerator(Generator):
    """Each sample carries its own serial number (red and green bytes) and its generator's number (blue)."""

    size = (16, 16)

    def __init__(self, number):
        self.number, self.serial, self.calls = number, 0, []

    def fit(self, data, *, epochs, batch_size, rng, on_epoch=None):
        return {}

    def sample(self, n, *, rng):
        self.calls.append(n)
        serial = torch.arange(self.serial, self.serial + n, dtype=torch.float32)
        self.serial += n
        x = torch.ones(n, 4, 16, 16)
        for channel, value in enumerate((serial % 256, serial // 256, torch.full((n,), float(self.number)))):
            x[:, channel] = (value / 255 * 2 - 1).view(n, 1, 1)
        return x

    def to(self, device):
        return self

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class Recorder(torch.nn.Module):
    """A one-convolution segmenter that keeps every batch it is given."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 1)
        self.batches = []

    def forward(self, x):
        self.batches.append(((x.detach()[:, :, 0, 0] + 1) / 2 * 255).round().long())  # rgb was scaled to [-1, 1]
        return self.conv(x)


def train(source, epochs, bank_mb=None, n=40, batch=16):
    real = prepare(load_dataset(get_host(), f"fixture?n={n}", "--data").split("train"), (16, 16))
    model = Recorder()
    gens = [SerialGenerator(1), SerialGenerator(2)]
    trainer = Trainer(TrainState(model, torch.optim.Adam(model.parameters())),
                      get_host().registry.get("losses", "bce").factory(), "rgb", (16, 16), batch, torch.device("cpu"),
                      0, augment_cfg=AugmentConfig(enabled=False), bank_mb=bank_mb)
    trainer.run([Phase(source, source, epochs)], real, gens)
    return model.batches, gens, trainer


@pytest.mark.parametrize("bank_mb", [None, 0.04])  # 0.04 MB: 20 pairs per generator, refilled as it empties
def test_every_synthetic_pair_is_used_once_and_every_epoch_is_fresh(bank_mb):
    batches, gens, trainer = train("synthetic", 2, bank_mb)
    assert len(batches) == 6  # 40 pairs in batches of 16, 16, 8, for two epochs
    seen = {1: [], 2: []}
    for step, batch in enumerate(batches):
        number = {int(v) for v in batch[:, 2]}
        assert number == {1 + step % 3 % 2}  # steps alternate generators within each epoch
        seen[1 + step % 3 % 2] += [int(r) + 256 * int(g) for r, g in batch[:, :2]]
    for g, need in ((1, 48), (2, 32)):  # each pair used once, all fresh
        assert len(seen[g]) == len(set(seen[g])) == need
    info = trainer.bank.info()
    for g, gen in enumerate(gens):  # every call of a generator has one shape; its surplus is discarded, not used
        assert set(gen.calls) == {info["draw"][g]}
    assert sum(gens[0].calls) + sum(gens[1].calls) == 80 + info["discarded"]
    assert info["generated"] == 80 and info["budget_mb"] == (bank_mb or 1024)
    if bank_mb:
        assert info["capacity"] == [20, 16] and info["refills"] > 4 and info["mb"] <= bank_mb
    else:
        assert info["discarded"] == 0  # one refill per epoch of exactly the epoch's need


def test_mixed_batches_take_their_second_half_from_the_bank():
    batches, gens, _ = train("mixed", 1)
    for step, batch in enumerate(batches):
        half = len(batch) // 2
        assert {int(v) for v in batch[len(batch) - half:, 2]} == {1 + step % 2}
    assert sum(gens[0].calls) == 8 + 4 and sum(gens[1].calls) == 8  # nothing discarded: one call per epoch


def test_banked_pairs_are_the_generators_pairs_in_eight_bits():
    gen = SerialGenerator(0)
    gen.sample = lambda n, *, rng: torch.rand(n, 4, 16, 16, generator=rng) * 2 - 1
    bank = SyntheticBank([gen], (8, 12), torch.device("cpu"), torch.Generator().manual_seed(3), 1)
    bank.start_epoch([5], 5)
    images, masks, index = bank.take(0, 5)
    rgb, mask = synthetic_batch(gen, 5, (8, 12), torch.Generator().manual_seed(3))
    assert torch.allclose(images[index].float() / 255, rgb, atol=0.5 / 255 + 1e-6)
    assert torch.equal(masks[index].float(), mask) and to_pairs(torch.zeros(1, 4, 8, 12), (8, 12))[1].sum() == 0


def test_a_bank_budget_below_one_batch_is_refused():
    with pytest.raises(ConfigError, match=r"--bank-mb 0.001: holds 0 generated pairs .* fewer than one batch"):
        train("synthetic", 1, bank_mb=0.001)


def test_cuda_graph_off_cuda_trains_eagerly_and_says_why(bench_run):
    record = bench_run(seg="cdnn0", cuda_graph=True)
    step = record["runtime"]["step"]
    assert step["cuda_graph"] is True and step["graphed"] is False and "CUDA device" in step["graph_error"]
    proc = bench_main("run", "--compile", check=False)
    assert proc.returncode == 2 and "--compile was removed" in proc.stderr and "--cuda-graph" in proc.stderr


class EagerCapture:
    """Stands in for CUDA graph capture off a GPU with the same contract: nothing runs at capture; each replay
    runs the captured step on the static inputs, gradients written afresh, into the static outputs."""

    def __init__(self, optimizer):
        self.optimizer, self.captures = optimizer, 0

    def prepare(self, optimizer):
        pass

    def warmup(self, fn):
        for _ in range(2):
            fn()

    def capture(self, fn, inputs):
        self.captures += 1
        outputs = (torch.zeros(()), torch.zeros(()))

        def replay():
            self.optimizer.zero_grad(set_to_none=True)
            for out, value in zip(outputs, fn()):
                out.copy_(value)

        return replay, outputs

    def synchronize(self):
        pass


def test_a_captured_step_trains_exactly_like_the_eager_step():
    """Warm-up steps leave no trace, static inputs are refilled every step, the last smaller batch runs
    eagerly: two real epochs and a synthetic one end with the eager run's weights and losses, bit for bit."""
    real = prepare(load_dataset(get_host(), "fixture?n=40", "--data").split("train"), (16, 16))
    loss = get_host().registry.get("losses", "bce").factory()
    phases = [Phase("synthetic", "synthetic", 1), Phase("real", "real", 2)]
    results = []
    for graphed in (False, True):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                                    torch.nn.Conv2d(4, 1, 1))
        state = TrainState(model, torch.optim.Adam(model.parameters(), lr=1e-2))
        capture = EagerCapture(state.optimizer) if graphed else None
        trainer = Trainer(state, loss, "rgb", (16, 16), 16, torch.device("cpu"), 3, cuda_graph=graphed,
                          capture=capture)
        gens = [SerialGenerator(1)]
        history = trainer.run(phases, real, gens)
        results.append((model.state_dict(), [h["loss"] for h in history], trainer.step_info()))
    (eager, eager_losses, _), (graph, graph_losses, info) = results
    assert info["graphed"] and info["graphs"] == 2 and info["replays"] == 6 and info["eager_steps"] == 3
    assert graph_losses == eager_losses
    assert all(torch.equal(eager[k], graph[k]) for k in eager)


def test_an_optimiser_state_saved_by_a_captured_run_resumes_eagerly_on_a_cpu():
    """A GPU run with --cuda-graph saves Adam with capturable=True, which Adam refuses on a CPU."""
    real = prepare(load_dataset(get_host(), "fixture?n=8", "--data").split("train"), (16, 16))
    model = torch.nn.Conv2d(3, 1, 1)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3, 4, 4)).sum().backward()
    opt.step()
    saved = opt.state_dict()
    for group in saved["param_groups"]:
        group["capturable"] = True
    opt = torch.optim.Adam(model.parameters())
    opt.load_state_dict(saved)
    trainer = Trainer(TrainState(model, opt), get_host().registry.get("losses", "bce").factory(), "rgb", (16, 16),
                      4, torch.device("cpu"), 0)
    assert trainer.run([Phase("real", "real", 1)], real, [])[0]["images"] == 8


def test_the_training_curve_is_scored_every_n_epochs_and_at_each_phase_end(bench_run):
    """--curve-every 2 over phases of 3 and 1 epochs: epochs 2 and 3 of the first, the second's one; the scores
    and the identity are those of the run that scored the curve every epoch."""
    every = bench_run(gen="ellipses", seg="cdnn3", overrides={"synthetic_epochs": 3, "finetune_epochs": 1})
    sparse = bench_run(gen="ellipses", seg="cdnn3", force=True,
                       overrides={"synthetic_epochs": 3, "finetune_epochs": 1, "curve_every": 2})
    assert [("curve_jaccard" in h, "curve_s" in h) for h in sparse["history"]] == \
        [(False, False), (True, True), (True, True), (True, True)]
    assert all("curve_jaccard" in h for h in every["history"])
    assert sparse["identity"]["hash"] == every["identity"]["hash"] and sparse["run"]["curve_every"] == 2
    assert sparse["summary"]["jaccard"] == every["summary"]["jaccard"]
    assert "plots/training_curves.png" in sparse["plots"]
