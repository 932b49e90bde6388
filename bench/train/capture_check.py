"""What a captured training step must not do, checked on any device, the CPU included.

A CUDA graph replays kernels: anything the step does on the host is either refused at capture or frozen
into the graph. So inside the step nothing may create a tensor from host data (``torch.tensor``,
``torch.as_tensor``, ``torch.from_numpy``), read a tensor made outside it that is not the model's, the
optimiser's or the step's own input (a module-level constant tensor: on a GPU, a host-to-device copy), copy
across devices, or wait on the device (``.item()``, ``float(t)``, ``bool(t)``, ``nonzero``, masked selection,
``unique``...: their result's value or shape is needed on the host). :class:`CaptureGuard` watches every
operation the step dispatches (a ``TorchDispatchMode``) and raises :class:`CaptureViolation` naming the
operation and the line of Python that issued it. :class:`GuardedCapture` is a capture backend for
:class:`bench.train.graph_step.StepGraphs` that runs the step under the guard where a GPU would capture it, so the
training engine's own capture path is what is checked; ``bench.testing.check_capturable`` offers it to
plugin authors.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from bench.train.graph_step import WARMUP

CREATES_FROM_HOST = {"lift_fresh", "lift_fresh_copy", "lift"}
"""Operations through which ``torch.tensor``, ``torch.as_tensor`` and ``torch.from_numpy`` enter the dispatcher."""

WAITS_ON_HOST = {
    "_local_scalar_dense": "reads a value on the host (.item(), float(t), int(t), bool(t), an if on a tensor)",
    "nonzero": "has a data-dependent shape (nonzero, boolean indexing): the host waits for the count",
    "nonzero_static": None,
    "masked_select": "has a data-dependent shape (boolean indexing): the host waits for the count",
    "_unique2": "has a data-dependent shape (unique)",
    "unique_dim": "has a data-dependent shape (unique)",
    "unique_consecutive": "has a data-dependent shape (unique_consecutive)",
    "is_nonzero": "reads a value on the host (bool(t) or an if on a tensor)",
    "equal": "reads a value on the host (torch.equal)",
    "allclose": "reads a value on the host (torch.allclose)",
    "_assert_async": None,
    "repeat_interleave": "has a data-dependent shape when repeats is a tensor",
}
"""Operations that synchronise the host with the device (``None``: known to be safe under capture)."""


class CaptureViolation(RuntimeError):
    """An operation inside the step that a CUDA graph cannot capture (or would freeze)."""


def _caller() -> str:
    """The innermost frame of the stack outside torch: the line of the step that issued the operation."""
    for frame in reversed(traceback.extract_stack()):
        path = frame.filename.replace("\\", "/")
        if "/torch/" in path or frame.filename == __file__ or "/contextlib.py" in path:
            continue
        return f"{frame.filename}:{frame.lineno} ({frame.line or frame.name})"
    return "unknown location"


class CaptureGuard(TorchDispatchMode):
    """Raise :class:`CaptureViolation` on the first operation a captured step must not do.

    ``inputs``: the tensors the step may read (its inputs, the model's parameters and buffers, the optimiser's
    state); every tensor an operation creates inside the step is added. A tensor argument that is neither (by
    storage, so views and aliases of known tensors count as known) was made outside the step.
    ``paused`` (a counter) switches the guard off, e.g. around the optimiser's own step.
    """

    def __init__(self, inputs: list[torch.Tensor]) -> None:
        super().__init__()
        self.keep: list[torch.Tensor] = []
        self.storages: set[int] = set()
        self.paused = 0
        self.ops = 0
        for t in inputs:
            self._know(t)

    def _know(self, t: torch.Tensor) -> None:
        self.keep.append(t)  # keeps the storage alive, so its address cannot be reused by another tensor
        self.storages.add(self._storage(t))

    @staticmethod
    def _storage(t: torch.Tensor) -> int:
        try:
            return t.untyped_storage().data_ptr()
        except (RuntimeError, NotImplementedError):  # tensors without storage (meta, subclasses): not data
            return 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if self.paused:
            return func(*args, **kwargs)
        self.ops += 1
        name = func._schema.name.split("::")[-1]
        if name in CREATES_FROM_HOST:
            raise CaptureViolation(f"a tensor is created from host data inside the step ({func}), at {_caller()}: "
                                   "use Python numbers, or a buffer registered on the module "
                                   "(register_buffer(..., persistent=False)), created once outside the step")
        if WAITS_ON_HOST.get(name):
            raise CaptureViolation(f"{func} {WAITS_ON_HOST[name]}, at {_caller()}: the step must not wait on the "
                                   "device; keep values as tensors and read them after the epoch")
        tensors = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
        if name in {"index", "index_put", "index_put_", "_index_put_impl_"} and len(args) > 1 and any(
                isinstance(t, torch.Tensor) and t.dtype in (torch.bool, torch.uint8) for t in args[1]):
            raise CaptureViolation(f"{func} with a boolean mask has a data-dependent shape (x[mask]), at {_caller()}: "
                                   "the host waits for the count; use torch.where or multiply by the mask")
        devices = {t.device for t in tensors}
        for t in tensors:
            storage = self._storage(t)
            if storage and storage not in self.storages and t.numel() > 0:
                raise CaptureViolation(
                    f"a tensor made outside the step ({tuple(t.shape)}, {t.dtype}, {t.device}) enters it through "
                    f"{func}, at {_caller()}: on a GPU it is a host tensor copied in (or a value frozen into the "
                    "graph). Make constants Python numbers or buffers of the module (register_buffer), so that "
                    ".to(device) moves them with the model")
        out = func(*args, **kwargs)
        outputs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
        target = kwargs.get("device")
        if name in {"_to_copy", "copy_", "to"} and (len(devices | {o.device for o in outputs}) > 1
                                                   or (target is not None and torch.device(target) not in devices)):
            raise CaptureViolation(f"{func} copies between devices ({', '.join(sorted(map(str, devices)))} -> "
                                   f"{', '.join(sorted({str(o.device) for o in outputs}))}) inside the step, at "
                                   f"{_caller()}: keep every tensor of the step on the training device")
        for o in outputs:
            self._know(o)
        return out


class GuardedCapture:
    """A :class:`bench.train.graph_step.StepGraphs` capture backend for any device: the contract of CUDA capture
    (warm-up steps, nothing runs at capture, each replay runs the captured step on the static inputs into the
    static outputs), with every replay run under :class:`CaptureGuard`. A run through it trains exactly as an
    eager run does, so the training engine's own capture path is what is checked. The optimiser's
    ``step()`` (PyTorch's Adam, captured with ``capturable=True`` on CUDA, which a CPU cannot run) is not."""

    def __init__(self) -> None:
        self.optimizer: torch.optim.Optimizer | None = None
        self.checked_ops = 0
        self.captures = 0
        self.replays = 0

    def prepare(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer

    def warmup(self, fn: Callable[[], object]) -> None:
        for _ in range(WARMUP):
            fn()

    def capture(self, fn: Callable[[], tuple[torch.Tensor, torch.Tensor]], inputs: list[torch.Tensor]
                ) -> tuple[Callable[[], None], tuple[torch.Tensor, torch.Tensor]]:
        optimizer = self.optimizer
        assert optimizer is not None, "prepare() comes first"
        self.captures += 1
        outputs = (torch.zeros(()), torch.zeros(()))

        def replay() -> None:
            state = [v for s in optimizer.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
            guard = CaptureGuard(list(inputs) + state)

            def pause(*_: Any) -> None:
                guard.paused += 1

            def resume(*_: Any) -> None:
                guard.paused -= 1

            hooks = [optimizer.register_step_pre_hook(pause), optimizer.register_step_post_hook(resume)]
            optimizer.zero_grad(set_to_none=True)
            try:
                with guard:
                    values = fn()
            finally:
                for hook in hooks:
                    hook.remove()
            self.checked_ops += guard.ops
            self.replays += 1
            for out, value in zip(outputs, values):
                out.copy_(value)

        return replay, outputs

    def synchronize(self) -> None:
        pass


def check_step(host: Any, seg: str, *, loss: str | None = None, channels: str | None = None,
               gens: tuple[str, ...] = (), source: str = "real", size: tuple[int, int] = (32, 48),
               width: float = 0.25, batch: int = 4, data: str = "fixture?n=12&n_test=2&size=32x48"
               ) -> dict[str, Any]:
    """Train one epoch of ``source`` (real, synthetic or mixed) with segmenter ``seg`` through the captured
    path, every replay under :class:`CaptureGuard`, on the CPU; raise :class:`CaptureViolation` on the first
    operation a CUDA graph could not capture. Returns what was checked (graphs, replays, operations)."""
    from bench.plugin.build import build_loss, build_segmenter, load_dataset
    from bench.config.run import iterative_generators
    from bench.plugin.components import Phase
    from bench.data import channels as channel_sets
    from bench.data.prepare import prepare
    from bench.data.spec import format_size, parse_spec
    from bench.gan.cache import generator_for, to_gan_input
    from bench.train.engine import Trainer, TrainState

    component = host.registry.get("segmenters", parse_spec(seg, "--seg").name)
    cset = channels or component.meta.channels
    channel_sets.channel_count(cset)
    loss_fn = build_loss(host, loss or component.meta.loss)
    torch.manual_seed(0)
    model = build_segmenter(host, seg, cset, width)
    real = prepare(load_dataset(host, data, "--data").split("train"), size)
    iterative = iterative_generators(host, tuple(gens))
    generators = []
    for g in gens:  # fitted for one epoch, as a run fits them before sampling (some hold the real pairs)
        gen = generator_for(host, g, {"size": format_size(size), "width": width, "lr": 2e-4,
                                      **({"sample_steps": 2} if g in iterative else {})}, 0)
        gen.fit(to_gan_input(real, torch.device("cpu")), epochs=1, batch_size=batch, rng=torch.Generator().manual_seed(0))
        generators.append(gen)
    backend = GuardedCapture()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    trainer = Trainer(TrainState(model, optimizer), loss_fn, cset, size, batch, torch.device("cpu"), 0,
                      cuda_graph=True, capture=backend)
    trainer.run([Phase(source, source, 1)], real, generators)
    info = trainer.step_info()
    if info["graph_error"]:
        raise CaptureViolation(f"{seg} ({cset}, loss {loss or component.meta.loss}, {source}"
                               f"{' from ' + '+'.join(gens) if gens else ''}): {info['graph_error']}")
    return {**info, "checked_ops": backend.checked_ops, "guarded_replays": backend.replays}
