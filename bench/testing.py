"""``bench.testing``: a pytest plugin for plugin authors (loaded automatically with skinbench installed).

Fixtures:

- ``bench_host``: the process-wide :class:`bench.plugin.host.PluginHost` with every installed plugin loaded.
- ``bench_register``: ``bench_register(plugin, name=None)`` registers a module or object with hook
  implementations for the current test only; it is removed afterwards, components and all.
- ``bench_dataset``: a small synthetic fixture dataset (16 training pairs at 48x64, 6 test pairs).
- ``bench_real_pairs``: ``bench_real_pairs(split="train", size=(48, 64), device="cpu")`` gives a split of
  ``bench_dataset`` as the harness hands real pairs to ``Generator.fit``: ``(N, 4, H, W)`` in [-1, 1].
- ``bench_run``: ``bench_run(gen=..., seg=..., **options)`` runs a tiny real protocol in-process (48x64,
  quarter-width networks, one or two epochs) under ``tmp_path`` and returns its record.
- ``bench_capture_check``: ``bench_capture_check(seg, loss=..., channels=..., gens=(...), source=...)`` trains
  one tiny epoch through the captured-step path on the CPU with every operation watched, and fails naming
  the operation and line that a CUDA graph could not capture (``bench.testing.CaptureViolation``).

Contract checks, plain functions to call in one line (each builds the registered component the way the harness
does, raises ``bench.testing.ContractError`` with one line naming the component, its plugin and what broke, and
returns what it checked):

- ``check_segmenter(name_or_spec, channels=None, size=None, device="cpu", width=0.25, capture=True)``
- ``check_generator(name, size=(32, 32), device="cpu", width=0.25, epochs=1)``
- ``check_loss(name, device="cpu")``
- ``check_schedule(name, profile="quick")``

Each also takes ``host=`` (default: the process-wide host, every installed plugin loaded).

Plugin packages and their tests import only ``bench.api`` and ``bench.testing``; the modules behind them may move.
Each test gets its own prepared-data and generator cache (``BENCH_CACHE_DIR`` under ``tmp_path``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

from bench.data.source import Dataset
from bench.plugin.host import PluginHost, get_host

if TYPE_CHECKING:
    import torch

    from bench.plugin.contract import ContractError
    from bench.train.capture_check import CaptureViolation

__all__ = ["CaptureViolation", "ContractError", "bench_cache", "bench_capture_check", "bench_dataset", "bench_host",
           "bench_real_pairs", "bench_register", "bench_run", "check_generator", "check_loss", "check_schedule",
           "check_segmenter"]

TINY_DATA = "fixture?n=16&n_test=6&size=48x64"
TINY_OVERRIDES = {"gan_epochs": 2, "synthetic_epochs": 1, "finetune_epochs": 1, "epochs": 1}


@pytest.fixture
def bench_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh prepared-data and generator cache for this test (sets ``BENCH_CACHE_DIR``)."""
    cache = tmp_path / "bench-cache"
    monkeypatch.setenv("BENCH_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def bench_host() -> PluginHost:
    """The process-wide plugin host, every installed plugin loaded."""
    return get_host()


@pytest.fixture
def bench_register(bench_host: PluginHost) -> Iterator[Callable[..., Any]]:
    """``bench_register(plugin, name=None)``: register hook implementations for this test only."""
    added: list[str] = []

    def register(plugin: object, name: str | None = None) -> Any:
        plugin_name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if plugin_name in bench_host.plugins:
            raise ValueError(f"a plugin named {plugin_name!r} is already loaded; pass name=")
        info = bench_host.add_plugin(plugin, plugin_name, "test", None)
        added.append(plugin_name)
        if info.errors:
            raise RuntimeError(f"plugin {plugin_name!r} failed to register: {'; '.join(info.errors)}")
        return info

    yield register
    for plugin_name in reversed(added):
        bench_host.remove_plugin(plugin_name)


@pytest.fixture
def bench_dataset(bench_host: PluginHost, bench_cache: Path) -> Dataset:
    """A small synthetic dataset: 16 training pairs at 48x64, 6 validation and 6 test pairs."""
    from bench.plugin.build import load_dataset

    return load_dataset(bench_host, TINY_DATA, "--data")


@pytest.fixture
def bench_real_pairs(bench_dataset: Dataset) -> Callable[..., torch.Tensor]:
    """``bench_real_pairs(split="train", size=(48, 64), device="cpu")``: the pairs of a split of ``bench_dataset``
    exactly as the harness hands real data to ``Generator.fit``: a float tensor ``(N, 4, H, W)`` in [-1, 1],
    RGB then the mask as -1/1, resized to ``size`` and prepared (and cached) as a run prepares them."""

    def pairs(split: str = "train", size: tuple[int, int] = (48, 64), device: str = "cpu") -> torch.Tensor:
        return _real_pairs(bench_dataset, split, size, device)

    return pairs


def _real_pairs(dataset: Dataset, split: str, size: tuple[int, int], device: str) -> torch.Tensor:
    """A split of ``dataset`` as the harness hands real pairs to ``Generator.fit``: prepared (and cached) at
    ``size`` as a run prepares them, then ``(N, 4, H, W)`` in [-1, 1] on ``device``."""
    import torch

    from bench.data.prepare import prepare
    from bench.gan.cache import to_gan_input

    h, w = size
    return to_gan_input(prepare(dataset.split(split), (int(h), int(w))), torch.device(device))


@pytest.fixture
def bench_run(bench_host: PluginHost, bench_cache: Path, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """``bench_run(gen=..., seg=..., **options)``: a tiny real run in-process; returns its record."""
    from bench.train.run import RunOptions, execute

    def run(gen: str = "none", seg: str = "unet", **options: Any) -> dict[str, Any]:
        overrides = {**TINY_OVERRIDES, **options.pop("overrides", {})}
        opts = RunOptions(gen=gen, seg=seg, data=options.pop("data", TINY_DATA), profile="quick",
                          out=tmp_path / "runs", overrides=overrides, **options)
        return execute(bench_host, opts, log=lambda message: None)

    return run


@pytest.fixture
def bench_capture_check(bench_host: PluginHost, bench_cache: Path) -> Callable[..., dict[str, Any]]:
    """``bench_capture_check(seg, **options)``: would ``bench run --cuda-graph`` capture this segmenter, loss,
    channel set and source on a GPU? Raises ``bench.testing.CaptureViolation`` naming the operation
    and the line that could not be captured; returns what was checked."""
    from bench.train.capture_check import check_step

    def check(seg: str, **options: Any) -> dict[str, Any]:
        return check_step(bench_host, seg, **options)

    return check


def _as_size(size: tuple[int, int] | str) -> tuple[int, int]:
    """``(48, 64)`` from ``(48, 64)`` or ``"48x64"``."""
    from bench.data.spec import parse_size

    if isinstance(size, str):
        return parse_size(size, "size")
    h, w = size
    return int(h), int(w)


def check_segmenter(name_or_spec: str, *, channels: str | None = None, size: tuple[int, int] | str | None = None,
                    device: str = "cpu", width: float = 0.25, host: PluginHost | None = None,
                    capture: bool = True) -> dict[str, Any]:
    """Build segmenter ``name_or_spec`` (``NAME[:ARG][?key=value]``) as a run does (after seeding, for ``channels``
    inputs, default: its own channel set) and check its contract: SegmenterMeta (a valid size, a known channel
    set, a registered default loss); an ``nn.Module``; on a ``(2, C, H, W)`` float32 batch at ``size`` (default:
    the quick profile's 48x64, which overrides every segmenter's own size) float32 logits ``(2, 1, H, W)`` on the
    input's device, finite, in eval and train mode, floating under bfloat16 autocast; finite gradients for every
    parameter (one with none breaks DistributedDataParallel); two builds after one seed identical, after another
    seed different; built with every declared option's default given, the same model; without ``size``, a run's
    pre-check at its own ``SegmenterMeta.size`` (the paper profile's) too. Then, unless ``capture=False``, one
    captured training step on the CPU, as ``bench_capture_check``. Raises :class:`ContractError` (one line);
    returns what was checked."""
    from bench.config.profiles import PROFILES
    from bench.plugin import contract
    from bench.train.capture_check import check_step

    host = host or get_host()
    at = _as_size(size if size is not None else PROFILES["quick"]["size"])

    def captured(channel_set: str, step_size: tuple[int, int]) -> dict[str, Any]:
        return check_step(host, name_or_spec, channels=channel_set, size=step_size, width=width)

    return contract.check_segmenter(host, name_or_spec, size=at, own_size=size is None, channels=channels,
                                    device=device, width=width, capture=captured if capture else None)


def check_generator(name: str, *, size: tuple[int, int] | str = (32, 32), device: str = "cpu", width: float = 0.25,
                    host: PluginHost | None = None, epochs: int = 1) -> dict[str, Any]:
    """Build generator ``name`` (``NAME[?key=value]``) as a run does (``factory(size=, width=, lr=, seed=,
    **options)``, ``sample_steps=`` for an iterative one) and check its contract: GeneratorMeta; a
    ``bench.api.Generator`` whose ``cacheable`` is a bool; ``fit`` for ``epochs`` on real pairs of
    ``bench_dataset`` (as ``bench_real_pairs`` gives them) returns a dict of finite floats; ``sample(n, rng=)``
    returns ``(n, 4, H, W)`` in [-1, 1] on the model's device at ``size``, the same pairs for ``rng`` seeded alike
    and different ones otherwise, also for n above the number of real pairs; a second build, with every declared
    option's default given, fitted alike samples alike; a cacheable one's ``state_dict`` (tensors only) restores
    it in a fresh build, and ``seed=`` changes its weights. Raises :class:`ContractError` (one line); returns
    what was checked."""
    from bench.gan.cache import build_generator
    from bench.plugin import contract
    from bench.plugin.build import load_dataset

    host = host or get_host()
    at = _as_size(size)
    real = _real_pairs(load_dataset(host, TINY_DATA, "--data"), "train", at, "cpu")
    return contract.check_generator(host, name, real=real, builder=build_generator, size=at, device=device,
                                    width=width, epochs=epochs)


def check_loss(name: str, *, device: str = "cpu", host: PluginHost | None = None) -> dict[str, Any]:
    """Build loss ``name`` (``NAME[?key=value]``) as a run does and check its contract: what a run checks before
    any data work (one finite scalar tensor that backpropagates to the logits), a float32 value on ``device`` for
    float32 and bfloat16 logits with a finite gradient, a perfect prediction scoring lower than a wrong one, the
    same value for the same inputs and with every declared option's default given. Raises
    :class:`ContractError` (one line); returns what was checked."""
    from bench.plugin import contract

    return contract.check_loss(host or get_host(), name, device=device)


def check_schedule(name: str, *, profile: str = "quick", host: PluginHost | None = None) -> dict[str, Any]:
    """Call schedule ``name`` (``NAME[?key=value]``) with the ``RunConfig`` of a run of ``profile`` and check its
    contract: a non-empty list of ``Phase``, the same with every declared option's default given;
    ``ScheduleMeta.needs_generator`` true exactly when a phase reads synthetic or mixed batches; every epoch
    setting its phases change with is among ``ScheduleMeta.uses``. Raises :class:`ContractError` (one line);
    returns what was checked."""
    from bench.errors import BenchError
    from bench.plugin import contract

    host = host or get_host()
    component = contract.lookup(host, "schedules", name, "--schedule")
    try:
        config = _quick_config(host, name, bool(getattr(component.meta, "needs_generator", False)), profile)
    except BenchError as exc:
        raise contract.ContractError(f"{contract.who(component)}: no run configuration to call it with "
                                     f"({contract.one_line(exc)})") from None
    return contract.check_schedule(host, name, config=config)


def _quick_config(host: PluginHost, schedule: str, needs_generator: bool, profile: str) -> Any:
    """The ``RunConfig`` a run of ``schedule`` in ``profile`` gets: with ``unet`` (or the first segmenter
    installed) and, when the schedule says it needs one, the first generator installed."""
    from bench.config.run import RunOptions, build

    segmenters = host.registry.names("segmenters")
    generators = host.registry.names("generators") if needs_generator else []
    seg = "unet" if "unet" in segmenters else (segmenters or ["unet"])[0]
    gen = (["ellipses"] if "ellipses" in generators else generators or ["none"])[0]
    return build(host, RunOptions(gen=gen, seg=seg, schedule=schedule, profile=profile))


def __getattr__(name: str) -> Any:
    """``CaptureViolation``, what ``bench_capture_check`` raises, and ``ContractError``, what the ``check_*``
    functions raise, are imported on first use: this module is loaded by every pytest session in an
    environment with skinbench, and the training code is not needed for that."""
    if name == "CaptureViolation":
        from bench.train.capture_check import CaptureViolation

        return CaptureViolation
    if name == "ContractError":
        from bench.plugin.contract import ContractError

        return ContractError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
