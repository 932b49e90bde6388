"""The one-line contract checks of ``bench.testing``: every built-in keeps its contract, a small correct plugin does
too, and each way of breaking one is named in one line (the component, its plugin, what broke)."""

from __future__ import annotations

import random
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from bench.api import Generator, GeneratorMeta, Option, OptionsMeta, Phase, ScheduleMeta, SegmenterMeta, hookimpl
from bench.testing import ContractError, check_generator, check_loss, check_schedule, check_segmenter
from conftest import ROOT

PROBE = "contract-probe"
"""The name the broken plugin of these tests registers under: every message must name it."""


# -- built-ins ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seg", ["cdnn0", "cdnn1", "cdnn2", "cdnn3", "cdnn4", "cdnn5", "cdnn6", "unet",
                                 "smp:Unet:resnet18"])
def test_every_built_in_segmenter_keeps_its_contract(seg):
    """At the quick profile's 48x64 and at the segmenter's own size; the captured step of each built-in is checked
    by tests/test_capture_check.py, so here only once (below)."""
    info = check_segmenter(seg, capture=False)
    assert info["size"] == "48x64" and info["own_size"] in ("96x128", "192x256", "384x512")
    assert info["parameters"] > 1000 and info["capture"] is None


def test_a_segmenter_check_runs_the_captured_step_by_default():
    info = check_segmenter("cdnn1", channels="rgb", size="32x48")
    assert info["capture"]["graphed"] and info["capture"]["guarded_replays"] >= 2
    assert info["size"] == "32x48" and info["own_size"] is None and info["channels"] == "rgb"


@pytest.mark.parametrize("loss", ["bce", "jaccard", "mse", "tanimoto"])
def test_every_built_in_loss_keeps_its_contract(loss):
    info = check_loss(loss)
    assert info["perfect"] < info["wrong"]


@pytest.mark.parametrize("schedule,reads,needs", [
    ("real-only", ["epochs"], False),
    ("two-phase", ["synthetic_epochs", "finetune_epochs"], True),
    ("real-only-matched", ["synthetic_epochs", "finetune_epochs"], False),
    ("mixed", ["epochs"], True),
])
def test_every_built_in_schedule_keeps_its_contract(schedule, reads, needs):
    info = check_schedule(schedule)
    assert info["reads"] == reads and info["needs_generator"] is needs and info["phases"]


@pytest.mark.parametrize("gen,size", [("dcgan", (32, 32)), ("lapgan", (48, 64)), ("ddpm", (32, 32)),
                                      ("ellipses", (32, 32))])
def test_every_built_in_generator_keeps_its_contract(gen, size):
    """lapgan's sizes are its base 6x8 times a power of two, so it is checked at 48x64. ddpm is the slowest: about
    5 s on two busy cores (two fits of one epoch, DDIM sampling in 2 steps), kept."""
    info = check_generator(gen, size=size)
    assert info["size"] == f"{size[0]}x{size[1]}" and info["cacheable"] is (gen != "ellipses")
    assert all(isinstance(v, float) for v in info["fit"].values())


def test_lapgan_at_a_size_it_cannot_make_is_named():
    with pytest.raises(ContractError, match=r"^generator 'lapgan' from plugin 'lapgan' failed to build: ValueError: "
                                            r"lapgan: output size 32x32 is not the base 6x8"):
        check_generator("lapgan")


def test_an_unknown_name_is_a_contract_error():
    with pytest.raises(ContractError, match=r"^unknown segmenter 'no-such-seg'"):
        check_segmenter("no-such-seg")


# -- a probe plugin: one correct component of each kind, and each way of breaking it ------------------------------


class Tiny(torch.nn.Module):
    """A correct segmenter: one convolution."""

    def __init__(self, in_channels: int, width: float = 1.0) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(in_channels, 1, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


class WrongShape(Tiny):
    def forward(self, x):
        return torch.cat((self.conv(x), self.conv(x)), 1)


class Float64(Tiny):
    def forward(self, x):
        return self.conv(x).double()


class Float16(Tiny):
    def forward(self, x):
        return self.conv(x).half()


class OtherDevice(Tiny):
    """Logits on another device than the input's ("meta" stands for a GPU model returning CPU logits)."""

    def forward(self, x):
        return self.conv(x).to("meta")


class NonFinite(Tiny):
    def forward(self, x):
        return self.conv(x) / 0.0


class OwnGenerator(Tiny):
    """Initialised from its own torch.Generator: the same weights whatever the run's seed."""

    def __init__(self, in_channels: int, width: float = 1.0) -> None:
        super().__init__(in_channels, width)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=torch.Generator()))


class Constant(Tiny):
    """Every weight set to one constant: the same model whatever the run's seed."""

    def __init__(self, in_channels: int, width: float = 1.0) -> None:
        super().__init__(in_channels, width)
        with torch.no_grad():
            for p in self.parameters():
                p.fill_(0.01)


class Unseeded(Tiny):
    """Initialised from an unseeded random.Random (os entropy): another model at every build."""

    def __init__(self, in_channels: int, width: float = 1.0) -> None:
        super().__init__(in_channels, width)
        with torch.no_grad():
            self.conv.bias.fill_(random.Random().random())


class Unused(Tiny):
    def __init__(self, in_channels: int, width: float = 1.0) -> None:
        super().__init__(in_channels, width)
        self.unused = torch.nn.Linear(2, 2)


class NanGradient(Tiny):
    """Finite logits whose gradient is NaN (the derivative of sqrt(u^2) at u = 0)."""

    def forward(self, x):
        h = self.conv(x)
        return h + torch.sqrt((h - h.detach()) ** 2)


class NoisyEval(Tiny):
    def forward(self, x):
        return self.conv(x) + torch.randn_like(x[:, :1])


class Float32Buffer(Tiny):
    """Writes the logits into a float32 buffer: fine in float32, fails under bfloat16 autocast."""

    def forward(self, x):
        h = self.conv(x)
        index = torch.zeros(1, dtype=torch.long, device=x.device)
        return torch.zeros(x.shape[0], 1, *x.shape[-2:], device=x.device).index_add_(1, index, h)


class Needs32(Tiny):
    """A model that needs sides divisible by 32 and does not pad (as smp's models without PadToMultiple)."""

    multiple = 32

    def forward(self, x):
        if x.shape[-2] % self.multiple or x.shape[-1] % self.multiple:
            raise ValueError(f"input {tuple(x.shape[-2:])} must be divisible by {self.multiple}")
        return self.conv(x)


class Needs16(Needs32):
    multiple = 16


class HostBranch(Tiny):
    def forward(self, x):
        y = self.conv(x)
        return y if y.mean() > 0 else -y  # an if on a tensor reads it on the host: a CUDA graph cannot capture it


class Scaled(Tiny):
    """Declares ``scale`` 2.0 (below) but defaults to 1.0 itself: a run without the option is not what
    ``bench describe`` says."""

    def __init__(self, in_channels: int, width: float = 1.0, scale: float = 1.0) -> None:
        super().__init__(in_channels, width)
        self.scale = scale

    def forward(self, x):
        return self.conv(x) * self.scale


SEGMENTERS = {"tiny": Tiny, "wrong-shape": WrongShape, "float64": Float64, "float16": Float16,
              "other-device": OtherDevice, "non-finite": NonFinite, "own-generator": OwnGenerator,
              "constant": Constant, "unseeded": Unseeded, "unused": Unused, "nan-gradient": NanGradient, "noisy-eval": NoisyEval,
              "float32-buffer": Float32Buffer, "needs32": Needs32, "host-branch": HostBranch}


class Toy(Generator):
    """A correct (if useless) generator: one learnt pair, initialised from ``seed``, plus noise from ``rng``."""

    def __init__(self, size, seed: int) -> None:
        self.size = tuple(size)
        self.pair = torch.randn(4, *self.size, generator=torch.Generator().manual_seed(seed)) * 0.1

    def fit(self, data, *, epochs, batch_size, rng, on_epoch=None):
        for _ in range(epochs):
            order = torch.randperm(len(data), generator=rng, device=rng.device)
            self.pair = 0.5 * self.pair + 0.5 * data[order[:batch_size]].mean(0)
        return {"distance": float((self.pair - data.mean(0)).abs().mean())}

    def noise(self, n, rng):
        return torch.randn(n, 4, *self.size, generator=rng, device=rng.device)

    def sample(self, n, *, rng):
        return torch.tanh(self.pair + 0.5 * self.noise(n, rng))

    def to(self, device):
        self.pair = self.pair.to(device)
        return self

    def state_dict(self):
        return {"pair": self.pair}

    def load_state_dict(self, state):
        self.pair = state["pair"].clone()


class OutOfRange(Toy):
    def sample(self, n, *, rng):
        return 2 * super().sample(n, rng=rng)


class FromRandom(Toy):
    """Draws its noise from Python's random, not from ``rng``."""

    def noise(self, n, rng):
        return torch.full((n, 4, *self.size), random.random())


class IgnoresRng(Toy):
    def noise(self, n, rng):
        return torch.randn(n, 4, *self.size, generator=torch.Generator())


class IgnoresSeed(Toy):
    def __init__(self, size, seed: int) -> None:
        super().__init__(size, seed)
        self.pair = torch.randn(4, *self.size, generator=torch.Generator()) * 0.1


class NanLoss(Toy):
    def fit(self, data, **kwargs):
        super().fit(data, **kwargs)
        return {"loss": float("nan")}


class TensorLoss(Toy):
    def fit(self, data, **kwargs):
        super().fit(data, **kwargs)
        return {"loss": self.pair.mean()}


class ThreeChannels(Toy):
    def sample(self, n, *, rng):
        return super().sample(n, rng=rng)[:, :3]


class HalfSize(Toy):
    def sample(self, n, *, rng):
        return F.avg_pool2d(super().sample(n, rng=rng), 2)


class OnMeta(Toy):
    def sample(self, n, *, rng):
        return super().sample(n, rng=rng).to("meta")


class NotABool(Toy):
    cacheable = 1  # type: ignore[assignment]


class Forgetful(Toy):
    """Learns a pair but saves nothing: a cache hit would serve an untrained generator."""

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class Settings:
    """Not a tensor: a checkpoint holding it does not load with ``weights_only=True``."""


class PickledState(Toy):
    def state_dict(self):
        return {"pair": self.pair, "settings": Settings()}


class UnseededFit(Toy):
    def fit(self, data, **kwargs):
        out = super().fit(data, **kwargs)
        self.pair = self.pair + random.Random().random()
        return out


class Spread(Toy):
    """Declares ``spread`` 0.5 but defaults to 0.25 itself."""

    def __init__(self, size, seed: int, spread: float = 0.25) -> None:
        super().__init__(size, seed)
        self.spread = spread

    def sample(self, n, *, rng):
        return torch.tanh(self.pair + self.spread * self.noise(n, rng))


GENERATORS = {"toy": Toy, "out-of-range": OutOfRange, "from-random": FromRandom, "ignores-rng": IgnoresRng,
              "ignores-seed": IgnoresSeed, "nan-loss": NanLoss, "tensor-loss": TensorLoss,
              "three-channels": ThreeChannels, "half-size": HalfSize, "on-meta": OnMeta, "not-a-bool": NotABool,
              "forgetful": Forgetful, "pickled-state": PickledState, "unseeded-fit": UnseededFit}


def bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


LOSSES = {
    "good-loss": bce,
    "float-loss": lambda logits, target: 0.5,
    "detached-loss": lambda logits, target: bce(logits.detach(), target),
    "float64-loss": lambda logits, target: F.binary_cross_entropy_with_logits(logits.double(), target.double()),
    "bf16-loss": lambda logits, target: (torch.sigmoid(logits) - target.to(logits.dtype)).pow(2).mean(),
    "meta-loss": lambda logits, target: bce(logits, target).to("meta"),
    "inverted-loss": lambda logits, target: -bce(logits, target),
    "noisy-loss": lambda logits, target: bce(logits, target) + 1e-3 * torch.rand(()),
}


SCHEDULES = {
    "good-schedule": (lambda c: [Phase("synthetic", "synthetic", c.synthetic_epochs),
                                 Phase("real", "real", c.finetune_epochs)],
                      ScheduleMeta(needs_generator=True, uses=("synthetic_epochs", "finetune_epochs"))),
    "hidden-generator": (lambda c: [Phase("synthetic", "synthetic", c.epochs)],
                         ScheduleMeta(needs_generator=False, uses=("epochs",))),
    "no-generator": (lambda c: [Phase("real", "real", c.epochs)], ScheduleMeta(needs_generator=True, uses=("epochs",))),
    "undeclared-epochs": (lambda c: [Phase("real", "real", c.epochs + c.finetune_epochs)],
                          ScheduleMeta(needs_generator=False, uses=("epochs",))),
    "empty-schedule": (lambda c: [], ScheduleMeta(needs_generator=False, uses=("epochs",))),
}


class Probe:
    """Registers every component above under plugin ``contract-probe``."""

    @hookimpl
    def bench_register_segmenters(self, register):
        meta = SegmenterMeta(size="64x64", channels="rgb", loss="bce")
        for name, cls in SEGMENTERS.items():
            register(name, lambda in_channels, width=1.0, cls=cls: cls(in_channels, width), meta=meta)
        register("own-size-too-small", lambda in_channels, width=1.0: Needs16(in_channels, width),
                 meta=SegmenterMeta(size="72x72", channels="rgb", loss="bce"))
        register("unknown-loss", lambda in_channels, width=1.0: Tiny(in_channels, width),
                 meta=SegmenterMeta(size="64x64", channels="rgb", loss="no-such-loss"))
        register("not-a-module", lambda in_channels, width=1.0: (lambda x: x[:, :1]), meta=meta)
        register("scaled", Scaled, meta=SegmenterMeta(size="64x64", channels="rgb", loss="bce",
                                                      options={"scale": Option(2.0, help="logit scale")}))
        register("scaled-right", lambda in_channels, width=1.0, scale=2.0: Scaled(in_channels, width, scale),
                 meta=SegmenterMeta(size="64x64", channels="rgb", loss="bce", options={"scale": 2.0}))
        register("undeclared-keyword", lambda in_channels, width=1.0: Tiny(in_channels, width),
                 meta=SegmenterMeta(size="64x64", channels="rgb", loss="bce", options={"depth": 3}))

    @hookimpl
    def bench_register_generators(self, register):
        for name, cls in GENERATORS.items():
            register(name, lambda size, width=1.0, lr=0.0, seed=0, cls=cls: cls(size, seed),
                     meta=GeneratorMeta(size="32x32"))
        register("not-a-generator", lambda size, **kw: object())
        register("spread", lambda size, width=1.0, lr=0.0, seed=0, spread=0.25: Spread(size, seed, spread),
                 meta=GeneratorMeta(size="32x32", options={"spread": Option(0.5, help="noise scale")}))

    @hookimpl
    def bench_register_losses(self, register):
        for name, fn in LOSSES.items():
            register(name, lambda fn=fn: fn)
        register("weighted-loss", lambda weight=1.0: lambda logits, target: weight * bce(logits, target),
                 meta=OptionsMeta({"weight": 2.0}))

    @hookimpl
    def bench_register_schedules(self, register):
        for name, (factory, meta) in SCHEDULES.items():
            register(name, factory, meta=meta)
        register("longer", lambda c, extra=0: [Phase("real", "real", c.epochs + extra)],
                 meta=ScheduleMeta(needs_generator=False, uses=("epochs",), options={"extra": 1}))


@pytest.fixture
def probe(bench_register):
    bench_register(Probe(), name=PROBE)


def broken(kind: str, name: str, check, said: str) -> str:
    """Run ``check``; it must raise a one-line ContractError naming the component and the probe plugin, and
    saying ``said``. Returns the message."""
    with pytest.raises(ContractError) as caught:
        check()
    message = str(caught.value)
    assert "\n" not in message, message
    assert message.startswith(f"{kind} '{name}' from plugin '{PROBE}'"), message
    assert said in message, message
    return message


def test_contract_errors_are_assertion_errors():
    assert issubclass(ContractError, AssertionError)


def test_importing_bench_testing_loads_no_check_until_one_is_used():
    """bench.testing is a pytest plugin that every session in an environment with skinbench loads."""
    code = ("import sys, bench.testing; print([m for m in ('bench.plugin.contract', 'bench.train', 'bench.gan', "
            "'bench.config') if m in sys.modules]); from bench.testing import ContractError; "
            "print('bench.plugin.contract' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "True"]


def test_correct_probe_components_pass(probe):
    """The checks are not stricter than the contract: a minimal correct component of each kind passes, the
    segmenter's captured step included."""
    assert check_segmenter("tiny")["capture"]["graphed"]
    assert check_generator("toy")["fit"]["distance"] >= 0
    assert check_loss("good-loss")["perfect"] < 0.01
    assert check_schedule("good-schedule")["reads"] == ["synthetic_epochs", "finetune_epochs"]


SEGMENTER_BREAKS = [
    ("wrong-shape", "returned shape (2, 2, 48, 64) for a (2, 3, 48, 64) float32 batch (eval mode); "
                    "expected logits (2, 1, 48, 64)"),
    ("float64", "returned float64 logits for a (2, 3, 48, 64) float32 batch (eval mode); expected float32"),
    ("float16", "returned float16 logits for a (2, 3, 48, 64) float32 batch (eval mode); expected float32"),
    ("other-device", "returned logits on meta for a (2, 3, 48, 64) float32 batch (eval mode) on cpu; "
                     "expected them on the input's device"),
    ("non-finite", "non-finite logits for a (2, 3, 48, 64) float32 batch (eval mode)"),
    ("own-generator", "ignores the seed: parameter 'conv.weight' is the same after seeds 0 and 1"),
    ("constant", "ignores the seed: every parameter is one constant after seeds 0 and 1"),
    ("unseeded", "two builds after seed 0 differ in 'conv.bias'"),
    ("unused", "parameter 'unused.weight' gets no gradient from the logits; an unused parameter makes "
               "DistributedDataParallel (--nproc) fail"),
    ("nan-gradient", "parameter 'conv.weight' gets a non-finite gradient"),
    ("noisy-eval", "two builds after seed 0 give different logits in eval mode"),
    ("float32-buffer", "fails on a (2, 3, 48, 64) batch (bfloat16 autocast): RuntimeError: index_add_(): "
                       "self (Float) and source (BFloat16) must have the same scalar type"),
    ("needs32", "fails on a (2, 3, 48, 64) batch (eval mode): ValueError: input (48, 64) must be divisible by 32"),
    ("not-a-module", "its factory returned function, not a torch.nn.Module"),
    ("unknown-loss", "its default loss 'no-such-loss' (SegmenterMeta.loss) is not a registered loss"),
    ("scaled", "built with its declared defaults given (scale=2.0) it gives other logits in eval mode than built "
               "without them; keep the factory's defaults equal to the declared ones"),
    ("undeclared-keyword", "built with its declared defaults given (depth=3): failed to build: TypeError:"),
    ("unet?dpth=3", "--seg unet?dpth=3: segmenter 'unet' has no option 'dpth'; it declares: depth (int)"),
]


@pytest.mark.parametrize("name,said", SEGMENTER_BREAKS, ids=[name for name, _ in SEGMENTER_BREAKS])
def test_a_broken_segmenter_is_named_with_what_broke(probe, name, said):
    if "?" in name:  # the harness's own option error, which names the option first
        with pytest.raises(ContractError, match=re.escape(said)):
            check_segmenter(name, capture=False)
        return
    broken("segmenter", name, lambda: check_segmenter(name, capture=False), said)


def test_options_are_checked_as_given_and_with_their_declared_defaults(probe):
    assert check_segmenter("scaled-right", capture=False)["defaults_given"] == "scale=2.0"
    assert check_segmenter("scaled?scale=3", capture=False)["defaults_given"] is None  # every option given
    info = check_segmenter("unet?depth=3", size=(32, 32), capture=False)
    assert info["segmenter"] == "unet?depth=3" and info["defaults_given"] is None
    assert check_segmenter("unet", size=(32, 32), capture=False)["defaults_given"] == "depth=4"
    assert check_generator("spread?spread=0.25")["defaults_given"] is None
    assert check_loss("weighted-loss?weight=1")["defaults_given"] is None
    assert check_schedule("longer?extra=0")["phases"] == [("real", "real", 12)]


def test_a_segmenter_that_cannot_take_its_own_size_is_named(probe):
    """At 48x64 it works, at its SegmenterMeta.size (72x72, which the paper profile uses) it cannot."""
    assert check_segmenter("own-size-too-small", size=(48, 64), capture=False)["own_size"] is None
    broken("segmenter", "own-size-too-small", lambda: check_segmenter("own-size-too-small", capture=False),
           "cannot take --size 72x72 inputs (ValueError: input (72, 72) must be divisible by 16); choose another "
           "--size (its SegmenterMeta.size, the paper profile's size)")


def test_a_segmenter_a_cuda_graph_cannot_capture_is_named_with_its_line(probe):
    message = broken("segmenter", "host-branch", lambda: check_segmenter("host-branch"),
                     "the captured-step check (bench_capture_check, --cuda-graph) failed: CaptureViolation:")
    assert "reads a value on the host" in message and "test_contract_checks.py:" in message
    assert check_segmenter("host-branch", capture=False)["capture"] is None  # the rest of its contract holds


GENERATOR_BREAKS = [
    ("out-of-range", "; Generator.sample must return pairs in [-1, 1]"),
    ("from-random", "sample(5) twice with rng seeded alike returned different pairs; sample must draw only from rng"),
    ("ignores-rng", "sample(5) with rng seeded 1 and 2 returned identical pairs; it ignores rng"),
    ("ignores-seed", "ignores its seed: builds with seed=0 and seed=1 have identical weights"),
    ("nan-loss", "fit() returned 'loss' = nan; expected a finite value"),
    ("tensor-loss", "fit() returned Tensor for 'loss'; expected a float"),
    ("three-channels", "sample(5) returned (5, 3, 32, 32); expected a tensor (5, 4, H, W)"),
    ("half-size", "sample(5) returned 16x16 pairs; its factory was given size=(32, 32)"),
    ("on-meta", "sample(5) returned pairs on meta; expected them on the model's device cpu"),
    ("not-a-bool", "cacheable is 1; expected True or False"),
    ("forgetful", "a fresh build that loads state_dict() samples differently from the fitted generator"),
    ("pickled-state", "state_dict() does not load with weights_only=True"),
    ("unseeded-fit", "two builds with seed=0 fitted alike sample differently"),
    ("not-a-generator", "its factory returned object, not a bench.api.Generator"),
    ("spread", "built with its declared defaults given (spread=0.5) it samples differently after the same fit than "
               "built without them"),
]


@pytest.mark.parametrize("name,said", GENERATOR_BREAKS, ids=[name for name, _ in GENERATOR_BREAKS])
def test_a_broken_generator_is_named_with_what_broke(probe, name, said):
    broken("generator", name, lambda: check_generator(name), said)


LOSS_BREAKS = [
    ("float-loss", "returned float 0.5 for float32 logits; expected one scalar tensor"),
    ("detached-loss", "returned a tensor of shape () without a gradient"),
    ("float64-loss", "returned float64 for float32 logits; expected float32"),
    ("bf16-loss", "returned bfloat16 for bfloat16 logits; expected float32 (compute in float32: logits.float())"),
    ("meta-loss", "returned its value on meta for logits on cpu; expected the logits' device"),
    ("inverted-loss", "no lower than a wrong one"),
    ("noisy-loss", "on the same logits and mask; expected the same value"),
    ("weighted-loss", "built with its declared defaults given (weight=2.0) it returns another value"),
]


@pytest.mark.parametrize("name,said", LOSS_BREAKS, ids=[name for name, _ in LOSS_BREAKS])
def test_a_broken_loss_is_named_with_what_broke(probe, name, said):
    broken("loss", name, lambda: check_loss(name), said)


SCHEDULE_BREAKS = [
    ("hidden-generator", "phase 'synthetic' reads generated pairs, but ScheduleMeta(needs_generator=False)"),
    ("no-generator", "no phase reads generated pairs, but ScheduleMeta(needs_generator=True)"),
    ("undeclared-epochs", "its phases change with finetune_epochs, which ScheduleMeta.uses (epochs) leaves out"),
    ("empty-schedule", "its factory returned []; expected a non-empty list of bench.api.Phase"),
    ("longer", "built with its declared defaults given (extra=1) it gives other phases"),
]


@pytest.mark.parametrize("name,said", SCHEDULE_BREAKS, ids=[name for name, _ in SCHEDULE_BREAKS])
def test_a_broken_schedule_is_named_with_what_broke(probe, name, said):
    broken("schedule", name, lambda: check_schedule(name), said)


def test_the_checks_leave_the_callers_random_state_alone():
    """They seed the global generators as a run does, and give the test its own state back."""
    torch.manual_seed(123)
    random.seed(123)
    expected = (torch.rand(3), random.random())
    torch.manual_seed(123)
    random.seed(123)
    check_segmenter("cdnn1", channels="rgb", size=(32, 32), capture=False)
    check_generator("dcgan")
    assert torch.equal(torch.rand(3), expected[0]) and random.random() == expected[1]
