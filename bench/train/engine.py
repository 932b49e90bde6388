"""The segmenter training engine: phases of real, synthetic or mixed batches, no per-sample Python.

All state a checkpoint needs (model, optimiser, phase, epoch, RNG states) lives in :class:`TrainState`.
Batches are indexed from the prepared split on the device; losses accumulate on the device and are
read once per epoch, so the loop never waits on the host between steps.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from bench.train import distributed
from bench.train import bank as synthetic_bank
from bench.data.augment import AugmentConfig, apply_augment, augment_noise
from bench.train.bank import SyntheticBank, to_pairs
from bench.plugin.components import Generator, Phase, Reporter, SilentReporter
from bench.data import channels
from bench.data.prepare import Prepared
from bench.errors import ConfigError, TrainingError
from bench.train.graph_step import Segments, StepGraphs, make_eager, unavailable

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class TrainState:
    """Everything needed to continue a run: where it is and every source of randomness."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    phase_index: int = 0
    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def state_dict(self, rngs: dict[str, torch.Generator]) -> dict[str, Any]:
        """Tensors, numbers, strings and lists only: loadable with ``torch.load(weights_only=True)``."""
        version, mt, gauss = random.getstate()
        np_state: tuple[Any, ...] = tuple(np.random.get_state())
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "phase_index": self.phase_index,
            "epoch": self.epoch,
            "history": json.dumps(self.history),
            "rng": {name: g.get_state() for name, g in rngs.items()},
            "python_rng": [version, list(mt), gauss],
            "numpy_rng": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
            "torch_rng": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any], rngs: dict[str, torch.Generator]) -> None:
        """Restore what :meth:`state_dict` saved, RNG states included, so training continues bit for bit."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.phase_index, self.epoch = int(state["phase_index"]), int(state["epoch"])
        self.history = json.loads(state["history"])
        for name, g in rngs.items():
            g.set_state(state["rng"][name])
        version, mt, gauss = state["python_rng"]
        random.setstate((version, tuple(mt), gauss))
        name, keys, pos, has_gauss, cached = state["numpy_rng"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])


def synthetic_batch(
    gen: Generator, n: int, size: tuple[int, int], rng: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` generated pairs as (RGB in [0, 1], binary mask), resized to the segmenter's size."""
    with torch.no_grad():
        return to_pairs(gen.sample(n, rng=rng), size)


class Trainer:
    """Runs a schedule's phases for one segmenter."""

    def __init__(
        self,
        state: TrainState,
        loss_fn: LossFn,
        channel_set: str,
        size: tuple[int, int],
        batch_size: int,
        device: torch.device,
        seed: int,
        augment_cfg: AugmentConfig = AugmentConfig(),
        reporter: Reporter | None = None,
        on_epoch_end: Callable[[TrainState, dict[str, torch.Generator]], None] | None = None,
        validate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
        network: torch.nn.Module | None = None,
        world: distributed.World = distributed.World(),
        cuda_graph: bool = False,
        bank_mb: float | None = None,
        capture: Any = None,
        curve_every: int = 1,
    ) -> None:
        """``network`` is what the forward pass calls (a DistributedDataParallel wrapper of ``state.model``
        under ``world``); batches are this rank's share, and the device RNG is seeded per rank.
        ``cuda_graph`` captures the step (falling back to eager, with :attr:`graph_error` saying why);
        ``bank_mb`` bounds the synthetic bank (default: :func:`bench.train.bank.default_budget_mb`); ``capture``
        replaces CUDA graph capture (:class:`bench.train.graph_step.CudaCapture`), for tests off a GPU.
        ``validate`` runs after every ``curve_every``-th epoch of a phase and after its last."""
        self.state = state
        self.loss_fn = loss_fn
        self.channel_set = channel_set
        self.size = size
        self.batch_size = batch_size
        self.device = device
        self.augment_cfg = augment_cfg
        self.reporter = reporter or SilentReporter()
        self.on_epoch_end = on_epoch_end
        self.validate = validate
        self.curve_every = curve_every
        self.network = network if network is not None else state.model
        self.world = world
        self._correct: torch.Tensor | None = None
        self.amp = device.type == "cuda"
        self.channels_last = device.type == "cuda"
        self.cuda_graph = cuda_graph
        self.graphs: StepGraphs | None = None
        self.graph_error: str | None = None
        if cuda_graph:
            self.graph_error = None if capture is not None else unavailable(device, world.distributed)
            if self.graph_error is None:
                self.graphs = StepGraphs(self._core, state.model, state.optimizer, capture)
        self.bank_mb = bank_mb
        self.bank: SyntheticBank | None = None
        self.rngs = {
            "order": torch.Generator().manual_seed(seed),
            "device": torch.Generator(device=device).manual_seed(seed + 1 + 1_000_003 * world.rank),
        }

    def run(self, phases: list[Phase], real: Prepared, generators: list[Generator]) -> list[dict[str, Any]]:
        """Train through ``phases`` from the state's current phase and epoch; return the epoch history."""
        if self.graphs is None:
            make_eager(self.state.optimizer)
        steps = len(distributed.shard(torch.arange(len(real)), self.batch_size, self.world))
        for index in range(self.state.phase_index, len(phases)):
            phase = phases[index]
            if phase.source != "real" and not generators:
                raise TrainingError(f"phase {phase.name!r} needs synthetic data but no generator was given")
            self.reporter.start_phase(phase.name, phase.epochs, steps)
            for epoch in range(self.state.epoch, phase.epochs):
                self._epoch(phase, epoch, real, generators)
                self.state.epoch = epoch + 1
                if self.on_epoch_end:
                    self.on_epoch_end(self.state, self.rngs)
            self.reporter.end_phase()
            self.state.phase_index, self.state.epoch = index + 1, 0
        return self.state.history

    def start_epoch(self, source: str, batch_sizes: list[int], generators: list[Generator]) -> None:
        """Size the synthetic bank for an epoch of ``batch_sizes`` drawn from ``source`` (nothing for real)."""
        needs = synthetic_bank.epoch_needs(source, batch_sizes, len(generators))
        if not any(needs):
            return
        if self.bank is None or self.bank.generators != generators:
            budget = self.bank_mb if self.bank_mb is not None else synthetic_bank.default_budget_mb(self.device)
            self.bank = SyntheticBank(generators, self.size, self.device, self.rngs["device"], budget)
        largest = max(batch_sizes) if source == "synthetic" else max(batch_sizes) // 2
        try:
            self.bank.start_epoch(needs, largest)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def _segments(self, source: str, idx: torch.Tensor, real: Prepared, step: int) -> Segments:
        """Where the batch comes from: rows of the real split, of a generator's bank ring, or both (mixed)."""
        if source == "real":
            return [(real.images, real.masks, idx)]
        assert self.bank is not None, "start_epoch sizes the bank before a synthetic step"
        g = step % len(self.bank.generators)
        if source == "synthetic":
            return [self.bank.take(g, len(idx))]
        half = len(idx) // 2
        return [(real.images, real.masks, idx[: len(idx) - half]), self.bank.take(g, half)]

    def step(self, source: str, idx: torch.Tensor, real: Prepared, step: int) -> torch.Tensor:
        """One optimisation step on the batch ``idx`` of ``real`` (or of the bank); the loss stays on the device.

        bf16 autocast on CUDA (fp32 elsewhere); channels-last inputs when the model is channels-last.
        Random draws happen here, outside any captured graph, from the run's generators.
        """
        segments = self._segments(source, idx, real, step)
        n = len(idx)
        if self.augment_cfg.enabled:
            noise = augment_noise(n, self.rngs["device"], self.device, self.augment_cfg)
        else:
            noise = torch.zeros(7, n, device=self.device)
        out = self.graphs.run(segments, noise) if self.graphs is not None else None
        if out is None:
            out = self._core(segments, noise)
        loss, correct = out
        if self._correct is not None:
            self._correct += correct
        return loss.detach()

    def _core(self, segments: Segments, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gather, augment, expand channels, forward, loss, backward, Adam: no host synchronisation, so it
        runs eagerly or captured alike. Returns the loss and the batch's pixel accuracy times its size."""
        rgbs = [images[index].float() / 255.0 for images, _, index in segments]
        labels = [masks[index].float() for _, masks, index in segments]
        rgb = rgbs[0] if len(rgbs) == 1 else torch.cat(rgbs)
        mask = labels[0] if len(labels) == 1 else torch.cat(labels)
        rgb, mask = apply_augment(rgb, mask, noise, self.augment_cfg)
        x = channels.expand(rgb, self.channel_set)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp,
                            cache_enabled=self.graphs is None):
            logits = self.network(x)
        loss = self.loss_fn(logits.float(), mask)
        correct = ((logits.detach() > 0) == (mask > 0.5)).float().mean() * len(rgb)
        self.state.optimizer.zero_grad(set_to_none=True)  # captured too: the graph's backward writes them afresh
        loss.backward()
        self.state.optimizer.step()
        return loss.detach(), correct

    def step_info(self) -> dict[str, Any]:
        """What the record says about the step: precision, layout, whether and how it was captured."""
        info: dict[str, Any] = {"amp": "bf16" if self.amp else "fp32", "channels_last": self.channels_last,
                                "cuda_graph": self.cuda_graph, "graphed": False, "graph_error": self.graph_error}
        if self.graphs is not None:
            info.update(self.graphs.info(), graphed=self.graphs.replays > 0, graph_error=self.graphs.error)
        return info

    def _epoch(self, phase: Phase, epoch: int, real: Prepared, generators: list[Generator]) -> None:
        self.state.model.train()
        order = torch.randperm(len(real), generator=self.rngs["order"]).to(self.device)
        batches = distributed.shard(order, self.batch_size, self.world)
        step_losses: list[torch.Tensor] = []
        self._correct = torch.zeros((), device=self.device)
        t0 = time.perf_counter()
        self.start_epoch(phase.source, [len(idx) for idx in batches], generators)
        for step, idx in enumerate(batches):
            step_losses.append(self.step(phase.source, idx, real, step))
            self.reporter.advance(1, len(idx))
        losses = torch.stack(step_losses).float()
        sizes = torch.tensor([len(idx) for idx in batches], dtype=torch.float32, device=losses.device)
        finite = torch.isfinite(losses)
        totals = distributed.all_sum(self.world, torch.stack((
            torch.where(finite, losses * sizes, torch.zeros_like(losses)).sum(), self._correct.float(),
            sizes.sum(), (~finite).sum().float())))
        losses, totals = losses.cpu(), totals.cpu()  # the one host synchronisation of the epoch
        self._correct = None
        if totals[3] > 0:
            bad = (~torch.isfinite(losses)).nonzero()
            where = (f"step {int(bad[0, 0]) + 1} of {len(batches)}" if len(bad)
                     else f"another process (rank {self.world.rank} saw none)")
            value = f"{losses[int(bad[0, 0])].item()}" if len(bad) else "nan/inf"
            raise TrainingError(
                f"non-finite loss ({value}) in phase {phase.name!r}, epoch {epoch + 1}, {where}; the run stopped "
                "and its last good checkpoint (end of the previous epoch) is kept; try a lower --lr"
            )
        images = int(totals[2])
        rate = images / max(time.perf_counter() - t0, 1e-9)
        loss = float(totals[0]) / max(images, 1)
        entry: dict[str, Any] = {"phase": phase.name, "source": phase.source, "epoch": epoch + 1, "loss": loss, "train_accuracy": float(totals[1]) / max(images, 1),
                 "images": images, "images_per_s": rate}
        if self.validate is not None and ((epoch + 1) % self.curve_every == 0 or epoch + 1 == phase.epochs):
            t1 = time.perf_counter()
            entry.update(self.validate(self.state.model))
            entry["curve_s"] = time.perf_counter() - t1
            self.state.model.train()
        self.state.history.append(entry)
        self.reporter.end_epoch(phase.name, epoch + 1, loss, rate)
