"""The training step captured as one CUDA graph: gather, augmentation, channels, forward, loss, backward, Adam.

The thin CDNNs are launch-bound on a GPU at the paper's batch size: the graph replays the step's hundreds of
kernels with one launch. Everything random is drawn outside the graph from the run's own generators
(:func:`bench.data.augment.augment_noise`, the synthetic bank) and copied into static inputs, so a graphed run
draws exactly what an eager one draws, and checkpoints resume it the same way. One graph is captured per
batch layout (the sources gathered from and how many pairs from each); a batch of another layout (the
epoch's last, smaller batch) runs eagerly rather than being captured again. Where capture is not possible
(no CUDA, DistributedDataParallel, an operation that cannot be captured) the step runs eagerly and
:attr:`StepGraphs.error` says why.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

Segments = list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
"""``(images, masks, index)`` per source of a batch: uint8 tensors on the device and the rows to gather."""
Core = Callable[[Segments, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

WARMUP = 2
"""Eager steps on a side stream before capture (cuDNN picks its algorithms, Adam creates its state);
their effect on the weights and the optimiser is undone before the captured step is ever replayed."""
MAX_GRAPHS = 8
"""Layouts captured at most (real, synthetic and mixed per generator); further layouts run eagerly."""


def unavailable(device: torch.device, distributed: bool) -> str | None:
    """Why the step cannot be captured on ``device``, or ``None`` when it can."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device (this step runs on {device.type})"
    if distributed:
        return "not captured under DistributedDataParallel (--nproc > 1): its gradient hooks synchronise"
    return None


def make_capturable(optimizer: torch.optim.Optimizer) -> None:
    """Adam keeps its step count on the device (``capturable=True``) so that ``step()`` can be captured."""
    for group in optimizer.param_groups:
        group["capturable"] = True
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if "step" in state and state["step"].device != p.device:
                state["step"] = state["step"].to(device=p.device, dtype=torch.float32)


def make_eager(optimizer: torch.optim.Optimizer) -> None:
    """Adam as an eager run keeps it (``capturable=False``, step counts on the host), whatever the checkpoint
    it was resumed from: a captured run's state loads on a CPU, or into a run without ``--cuda-graph``."""
    for group in optimizer.param_groups:
        if not group.get("capturable"):
            continue
        group["capturable"] = False
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if "step" in state and torch.is_tensor(state["step"]):
                state["step"] = state["step"].detach().to("cpu", torch.float32)


class CudaCapture:
    """How :class:`StepGraphs` captures on a GPU: warm-up on a side stream, ``torch.cuda.graph`` into one
    memory pool shared by the layouts (they never replay at once, and their outputs are copied at once)."""

    def __init__(self) -> None:
        self.pool: Any = None

    def prepare(self, optimizer: torch.optim.Optimizer) -> None:
        make_capturable(optimizer)

    def warmup(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on a side stream; the default CUDA generator (dropout) is put back as it was, so that a
        resumed run, which captures again at another step, draws what an uninterrupted one draws."""
        rng = torch.cuda.get_rng_state()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
        torch.cuda.set_rng_state(rng)

    def capture(self, fn: Callable[[], tuple[torch.Tensor, torch.Tensor]], inputs: list[torch.Tensor]
                ) -> tuple[Callable[[], None], tuple[torch.Tensor, torch.Tensor]]:
        """Record ``fn`` (which reads ``inputs``: static inputs, parameters, buffers) as one graph."""
        graph = torch.cuda.CUDAGraph()
        self.pool = self.pool or torch.cuda.graph_pool_handle()
        with torch.cuda.graph(graph, pool=self.pool):
            outputs = fn()
        return graph.replay, outputs

    def synchronize(self) -> None:
        torch.cuda.synchronize()


class StepGraphs:
    """Captured steps keyed by batch layout; :meth:`run` replays one or returns ``None`` to run eagerly."""

    def __init__(self, core: Core, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 capture: Any = None) -> None:
        """``capture``: how to capture (default :class:`CudaCapture`; tests pass one that replays eagerly)."""
        self.core, self.model, self.optimizer = core, model, optimizer
        self.backend = capture if capture is not None else CudaCapture()
        self.graphs: dict[tuple, tuple[Callable[[], None], list[torch.Tensor], torch.Tensor,
                                       tuple[torch.Tensor, torch.Tensor], Segments]] = {}
        self.error: str | None = None
        self.capture_s = 0.0
        self.replays = 0
        self.eager_steps = 0

    @staticmethod
    def key(segments: Segments, noise: torch.Tensor) -> tuple:
        return tuple((im.data_ptr(), m.data_ptr(), len(i)) for im, m, i in segments) + (tuple(noise.shape),)

    def run(self, segments: Segments, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(loss, correct)`` of one replayed step (copies the graph owns no more), or ``None``: run it eagerly."""
        if self.error is not None:
            self.eager_steps += 1
            return None
        key = self.key(segments, noise)
        entry = self.graphs.get(key)
        if entry is None:
            if self.graphs and (len(self.graphs) >= MAX_GRAPHS
                                or sum(len(i) for *_, i in segments) < self._largest()):
                self.eager_steps += 1  # a smaller (last) batch: eager, not another capture
                return None
            entry = self._capture(key, segments, noise)
            if entry is None:
                self.eager_steps += 1
                return None
        replay, static_index, static_noise, outputs, _ = entry
        for static, (_, _, index) in zip(static_index, segments):
            static.copy_(index)
        static_noise.copy_(noise)
        replay()
        self.replays += 1
        return outputs[0].clone(), outputs[1].clone()

    def _largest(self) -> int:
        return max(sum(n for *_, n in k[:-1]) for k in self.graphs)

    def _capture(self, key: tuple, segments: Segments, noise: torch.Tensor):
        t0 = time.perf_counter()
        static_index = [index.clone() for _, _, index in segments]
        static_noise = noise.clone()
        static = [(im, m, i) for (im, m, _), i in zip(segments, static_index)]
        self.backend.prepare(self.optimizer)  # here, not earlier: a resumed optimiser state may have replaced it
        saved = self._snapshot()

        def step() -> tuple[torch.Tensor, torch.Tensor]:
            return self.core(static, static_noise)

        def warm() -> None:
            self.optimizer.zero_grad(set_to_none=True)
            step()

        try:
            self.backend.warmup(warm)
            self._restore(saved)
            self.optimizer.zero_grad(set_to_none=True)  # the captured backward writes the gradients afresh
            inputs = [t for segment in static for t in segment] + [static_noise] + \
                list(self.model.parameters()) + list(self.model.buffers())
            replay, outputs = self.backend.capture(step, inputs)
        except Exception as exc:  # an operation that cannot be captured: train eagerly, and say why
            self.backend.synchronize()
            self._restore(saved)
            self.optimizer.zero_grad(set_to_none=True)
            self.error = f"capture failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            self.capture_s += time.perf_counter() - t0
            return None
        self.backend.synchronize()
        self.capture_s += time.perf_counter() - t0
        entry = (replay, static_index, static_noise, outputs, static)  # static keeps its sources alive
        self.graphs[key] = entry
        return entry

    def _snapshot(self) -> dict:
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        return {"tensors": [(t, t.detach().clone()) for t in tensors],
                "optimizer": {p: {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()}
                              for p, s in self.optimizer.state.items()}}

    def _restore(self, saved: dict) -> None:
        """Undo the warm-up steps in place (the graph captures these very tensors): weights and buffers as
        they were, Adam state as it was, or zeroed where the warm-up created it (Adam's initial state)."""
        with torch.no_grad():
            for tensor, value in saved["tensors"]:
                tensor.copy_(value)
            for p, state in self.optimizer.state.items():
                before = saved["optimizer"].get(p)
                for k, v in state.items():
                    if not torch.is_tensor(v):
                        continue
                    if before is not None and k in before:
                        v.copy_(before[k])
                    else:
                        v.zero_()

    def info(self) -> dict[str, object]:
        return {"graphs": len(self.graphs), "capture_s": round(self.capture_s, 3), "replays": self.replays,
                "eager_steps": self.eager_steps}
