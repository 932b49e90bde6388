#!/usr/bin/env python3
"""Operations (about one kernel launch each on a GPU) and host waits in one training step, harness vs bare.

    python scripts/step_ops.py [--seg cdnn0] [--size 192x256] [--batch 16] [--width 1]

A launch-bound step on a GPU (the thin CDNNs at batch 16) runs at about the rate its launches allow, so the
operations the harness adds to the bare model step (gather, augmentation, channels, accuracy) are its cost,
and a host wait (a host-to-device copy of a constant, .item()) stalls the launch queue. Counted on the CPU by
a dispatch mode over one eager step after two warm-up steps. It reads the Trainer of whichever commit is
checked out (older ones took the generators in ``step``), so two commits can be compared.
"""

from __future__ import annotations

import argparse
import inspect
import time
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class Count(TorchDispatchMode):
    """Counts operations outside the optimiser's step (PyTorch's Adam: one foreach kernel group per update on a
    GPU, a per-parameter loop on a CPU, so its CPU count says nothing of the GPU's)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.host = 0
        self.paused = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if self.paused:
            return func(*args, **(kwargs or {}))
        name = func._schema.name.split("::")[-1]
        self.ops[name] += 1
        if name in ("_local_scalar_dense", "lift_fresh", "nonzero", "is_nonzero"):
            self.host += 1
        if name == "_to_copy" and args and isinstance(args[0], torch.Tensor) and args[0].dtype == torch.float64:
            self.host += 1  # a float64 constant converted: on a GPU, a host-to-device copy
        return func(*args, **(kwargs or {}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seg", default="cdnn0")
    parser.add_argument("--size", default="192x256")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--time-steps", type=int, default=0,
                        help="also time this many steps (at a tiny --size and --width: the host's cost per step)")
    args = parser.parse_args()
    from bench.plugin.build import build_segmenter, load_dataset
    from bench.data import channels
    from bench.data.prepare import prepare
    from bench.plugin.host import get_host
    from bench.train.engine import Trainer, TrainState

    host = get_host()
    h, w = (int(v) for v in args.size.split("x"))
    meta = host.registry.get("segmenters", args.seg).meta
    loss_fn = host.registry.get("losses", meta.loss).factory()
    real = prepare(load_dataset(host, f"fixture?n={args.batch}&size={args.size}", "--data").split("train"), (h, w))
    torch.manual_seed(0)
    model = build_segmenter(host, args.seg, meta.channels, args.width)
    trainer = Trainer(TrainState(model, torch.optim.Adam(model.parameters())), loss_fn, meta.channels, (h, w),
                      args.batch, torch.device("cpu"), 0)
    idx = torch.arange(args.batch)
    old = "generators" in inspect.signature(trainer.step).parameters

    def step() -> None:
        if old:
            trainer.step("real", idx, real, [], 0)  # type: ignore[call-arg]
        else:
            trainer.step("real", idx, real, 0)

    x = torch.randn(args.batch, channels.channel_count(meta.channels), h, w)
    y = (torch.rand(args.batch, 1, h, w) > 0.5).float()
    opt = torch.optim.Adam(model.parameters())

    def bare() -> None:
        loss = loss_fn(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for name, fn, optimizer in (("bare model step", bare, opt), ("harness step", step, trainer.state.optimizer)):
        for _ in range(2):
            fn()
        count = Count()
        hooks = [optimizer.register_step_pre_hook(lambda *a: setattr(count, "paused", 1)),
                 optimizer.register_step_post_hook(lambda *a: setattr(count, "paused", 0))]
        with count:
            fn()
        for hook in hooks:
            hook.remove()
        t0 = time.perf_counter()
        for _ in range(args.time_steps):
            fn()
        host_ms = (time.perf_counter() - t0) / max(args.time_steps, 1) * 1000
        print(f"{name}: {sum(count.ops.values())} operations and {count.host} host waits besides Adam; "
              f"{host_ms:.2f} ms a step on this CPU at {args.size}, batch {args.batch}, width {args.width:g}")


if __name__ == "__main__":
    main()
