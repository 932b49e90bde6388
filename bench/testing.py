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

    from bench.train.capture_check import CaptureViolation

__all__ = ["CaptureViolation", "bench_cache", "bench_capture_check", "bench_dataset", "bench_host", "bench_real_pairs",
           "bench_register", "bench_run"]

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
        import torch

        from bench.data.prepare import prepare
        from bench.gan.cache import to_gan_input

        h, w = size
        return to_gan_input(prepare(bench_dataset.split(split), (int(h), int(w))), torch.device(device))

    return pairs


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


def __getattr__(name: str) -> Any:
    """``CaptureViolation``, what ``bench_capture_check`` raises, is imported on first use: this module is loaded
    by every pytest session in an environment with skinbench, and the training code is not needed for that."""
    if name == "CaptureViolation":
        from bench.train.capture_check import CaptureViolation

        return CaptureViolation
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
