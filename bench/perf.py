"""``bench perf``: throughput of the harness training step against the bare model step, and of the data path.

For each segmenter: images/s of the full harness step (indexing the prepared split on the device,
augmentation, channel expansion, optionally generator sampling, forward, loss, backward, Adam) and of the
bare model step on random tensors already on the device (the ceiling), their ratio, and peak memory. For
each generator: images/s of its training on the prepared real split and on random tensors. For the data
path: images/s of preparing a split, seconds to load it back, and seconds for one epoch of the naive
per-sample ``Dataset``/``DataLoader`` pipeline that decodes and resizes the JPEGs with PIL.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from bench.data import channels
from bench.data.prepare import prepare
from bench.data.source import FileSplit, Split
from bench.data.spec import format_size, parse_size
from bench.config import iterative_generators
from bench.generators import build_generator, to_gan_input
from bench.plugins import PluginHost
from bench.build import build_segmenter, load_dataset, resolve_device
from bench.errors import ConfigError
from bench.train import Trainer, TrainState


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # whole-process peak RSS on Linux


_barriers = itertools.count()


def barrier(timeout_s: float = 600.0) -> None:
    """Under ``bench perf --processes K``: wait until every measuring process reaches this point, so that
    their timed steps overlap. A no-op in a single process."""
    folder = os.environ.get("BENCH_PERF_BARRIER")
    if not folder:
        return
    rank, k, n = os.environ["BENCH_PERF_RANK"], int(os.environ["BENCH_PERF_PROCESSES"]), next(_barriers)
    Path(folder, f"{n}.{rank}").touch()
    deadline = time.monotonic() + timeout_s
    while len(list(Path(folder).glob(f"{n}.*"))) < k:
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench perf --processes {k}: the other processes did not reach measurement {n}")
        time.sleep(0.005)


def _together(windows: list[list[float]]) -> float:
    """Images/s of processes timed at once: all their images over the span from the first start to the last end
    (a process that finished early does not count as still working)."""
    return sum(w[2] for w in windows) / (max(w[1] for w in windows) - min(w[0] for w in windows))


def concurrent(args: list[str], processes: int) -> dict[str, Any]:
    """``bench perf ARGS --json`` in ``processes`` processes at once (their timed steps started together): each
    row's images/s of all of them over the span they shared, what several runs sharing one device reach."""
    with tempfile.TemporaryDirectory(prefix="bench-perf-barrier-") as folder:
        procs = [subprocess.Popen([sys.executable, "-m", "bench", "perf", *args, "--json"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "BENCH_PERF_BARRIER": folder, "BENCH_PERF_RANK": str(rank),
                                       "BENCH_PERF_PROCESSES": str(processes)})
                 for rank in range(processes)]
        outputs = [proc.communicate() for proc in procs]
    failed = [err for proc, (_, err) in zip(procs, outputs) if proc.returncode != 0]
    if failed:
        raise ConfigError(f"bench perf --processes {processes}: a measuring process failed:\n{failed[0].strip()}")
    results = [json.loads(out) for out, _ in outputs]
    rows = []
    for parts in zip(*(r["rows"] for r in results)):
        row = dict(parts[0])
        row["train_img_s"] = _together([p["train_window"] for p in parts])
        row["model_img_s"] = _together([p["model_window"] for p in parts])
        row["ratio"] = row["train_img_s"] / row["model_img_s"]
        row["peak_mem_mb"] = max(p["peak_mem_mb"] for p in parts)
        row["processes"] = processes
        row["per_process_img_s"] = [p["train_img_s"] for p in parts]
        rows.append(row)
    return {**results[0], "rows": rows, "processes": processes}


def _rate(step: Callable[[], int], device: torch.device, warmup: int, steps: int,
          window: list[float] | None = None) -> float:
    """Images per second over ``steps`` calls of ``step`` (each returns the images it trained on), after
    ``warmup`` untimed calls; 0 when nothing is timed. ``window`` receives ``[start, end, images]`` in wall-clock
    seconds, so that processes measuring at once can be summed over the span they shared."""
    for _ in range(warmup):
        step()
    _sync(device)
    barrier()
    start, t0 = time.time(), time.perf_counter()
    images = sum(step() for _ in range(steps))
    _sync(device)
    elapsed = time.perf_counter() - t0
    if window is not None:
        window[:] = [start, start + elapsed, images]
    return images / elapsed if steps else 0.0


def segmenter_row(host: PluginHost, seg: str, gens: list[str], size: tuple[int, int] | None, batch: int,
                  device: torch.device, data: str, warmup: int, steps: int, cuda_graph: bool,
                  sample_steps: int | None = None) -> dict[str, Any]:
    component = host.registry.get("segmenters", seg.split(":")[0])
    size = size or parse_size(component.meta.size)
    cset = component.meta.channels
    loss_fn = host.registry.get("losses", component.meta.loss).factory()
    dataset = load_dataset(host, data, "--data")
    real = prepare(dataset.split("train"), size).to(device)
    if batch > len(real):
        raise ConfigError(f"--batch {batch}: larger than the training split of --data {data} ({len(real)} pairs); "
                          f"a step would train on {len(real)} images, not {batch}. Use --batch {len(real)} or less, "
                          "or more data")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)

    def fresh_model() -> torch.nn.Module:
        torch.manual_seed(0)
        model = build_segmenter(host, seg, cset, 1.0).to(device)
        return model.to(memory_format=torch.channels_last) if device.type == "cuda" else model

    # The bare model step: random tensors already on the device, eager.
    model = fresh_model()
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)
    x = torch.randn(batch, channels.channel_count(cset), *size, device=device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    y = (torch.rand(batch, 1, *size, device=device) > 0.5).float()

    def bare() -> int:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return batch

    model_window: list[float] = []
    model_img_s = _rate(bare, device, warmup, steps, model_window)

    # The harness step: the prepared split on the device, augmentation, channels, the synthetic bank.
    generators = []
    iterative = iterative_generators(host, tuple(gens))
    for name in gens:
        sampling = {"sample_steps": sample_steps} if name in iterative and sample_steps else {}
        gen = build_generator(host.registry.get("generators", name),
                              {"size": format_size(size), "width": 1.0, "lr": 2e-4, **sampling}, 0).to(device)
        gen.fit(to_gan_input(real, device)[: max(batch, 2)], epochs=1, batch_size=max(batch, 2),
                rng=torch.Generator(device=device).manual_seed(0))
        generators.append(gen)
    model = fresh_model()
    trainer = Trainer(TrainState(model, torch.optim.Adam(model.parameters(), lr=3e-4)), loss_fn, cset, size,
                      batch, device, 0, cuda_graph=cuda_graph)
    order = torch.randperm(len(real), generator=torch.Generator().manual_seed(0)).to(device)
    counter = {"i": 0}
    source = "synthetic" if generators else "real"

    def harness() -> int:
        i = counter["i"]
        start = (i * batch) % max(len(real) - batch + 1, 1)
        idx = order[start : start + batch]
        trainer.step(source, idx, real, i)
        counter["i"] += 1
        return len(idx)

    # Each of the two "epochs" sizes the bank for its own steps: the timed one pays its bank refill.
    trainer.start_epoch(source, [batch] * warmup, generators)
    _rate(harness, device, warmup, 0)
    trainer.start_epoch(source, [batch] * steps, generators)
    train_window: list[float] = []
    train_img_s = _rate(harness, device, 0, steps, train_window)
    step = trainer.step_info()
    label = seg + (f" + {','.join(gens)} samples" if gens else "")
    row = {"component": label, "size": format_size(size), "device": str(device), "batch": batch,
           "train_img_s": train_img_s, "model_img_s": model_img_s, "ratio": train_img_s / model_img_s,
           "peak_mem_mb": _peak_mb(device), "cuda_graph": bool(step["graphed"]),
           "graph_error": step["graph_error"], "capture_s": step.get("capture_s", 0.0),
           "train_window": train_window, "model_window": model_window}
    if iterative:
        row["sample_steps"] = sample_steps
    if trainer.bank is not None:
        row["bank"] = trainer.bank.info()
    return row


def generator_row(host: PluginHost, name: str, size: tuple[int, int], batch: int, device: torch.device,
                  data: str, steps: int) -> dict[str, Any]:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    real = to_gan_input(prepare(load_dataset(host, data, "--data").split("train"), size), device)
    n = min(len(real), batch * steps)
    rates: dict[str, float] = {}
    windows: dict[str, list[float]] = {}
    for kind, tensor in (("train", real[:n]), ("model", torch.rand_like(real[:n]) * 2 - 1)):
        gen = build_generator(host.registry.get("generators", name),
                              {"size": format_size(size), "width": 1.0, "lr": 2e-4}, 0).to(device)
        rng = torch.Generator(device=device).manual_seed(0)
        gen.fit(tensor[: batch * 2], epochs=1, batch_size=batch, rng=rng)  # warm-up
        _sync(device)
        barrier()
        start, t0 = time.time(), time.perf_counter()
        gen.fit(tensor, epochs=1, batch_size=batch, rng=rng)
        _sync(device)
        elapsed = time.perf_counter() - t0
        rates[kind] = (n // batch) * batch / elapsed
        windows[kind] = [start, start + elapsed, (n // batch) * batch]
    return {"component": f"{name} (GAN training)", "size": format_size(size), "device": str(device), "batch": batch,
            "train_img_s": rates["train"], "model_img_s": rates["model"], "ratio": rates["train"] / rates["model"],
            "peak_mem_mb": _peak_mb(device), "cuda_graph": False, "train_window": windows["train"],
            "model_window": windows["model"]}


class NaiveDataset(torch.utils.data.Dataset):
    """What users write by hand: open, decode and resize each JPEG and PNG with PIL, every epoch."""

    def __init__(self, split: FileSplit, size: tuple[int, int]) -> None:
        self.pairs, self.size = split.pairs, size

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = self.size
        pair = self.pairs[i]
        img = Image.open(pair.image).convert("RGB").resize((w, h), Image.Resampling.BILINEAR)
        mask = Image.open(pair.mask).convert("L").resize((w, h), Image.Resampling.NEAREST)
        return (torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255,
                torch.from_numpy(np.array(mask) > 127).float()[None])


def _file_split(split: Split, folder: Path) -> FileSplit:
    """The split itself if it is on disk; otherwise (the fixture) written out as JPEG images and PNG masks."""
    if isinstance(split, FileSplit):
        return split
    from bench.data.source import Pair

    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir(parents=True)
    pairs = []
    for i, image_id in enumerate(split.ids()):
        image, mask = split.load(i)
        Image.fromarray(image).save(folder / "images" / f"{image_id}.jpg", quality=95)
        Image.fromarray(mask * 255).save(folder / "masks" / f"{image_id}_segmentation.png")
        pairs.append(Pair(image_id, folder / "images" / f"{image_id}.jpg", folder / "masks" / f"{image_id}_segmentation.png"))
    return FileSplit(split.name, pairs, str(folder))


def data_path(host: PluginHost, data: str, size: tuple[int, int], batch: int) -> dict[str, Any]:
    """Prepare (cold), load (warm) and one naive DataLoader epoch over the same files."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-perf-"))
    old = os.environ.get("BENCH_CACHE_DIR")
    try:
        split = _file_split(load_dataset(host, data, "--data").split("train"), tmp / "export")
        os.environ["BENCH_CACHE_DIR"] = str(tmp / "cache")
        t0 = time.perf_counter()
        prepare(split, size)
        prepare_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        prepare(split, size)
        load_s = time.perf_counter() - t0
        workers = min(4, os.cpu_count() or 1)
        loader = torch.utils.data.DataLoader(NaiveDataset(split, size), batch_size=batch, shuffle=True,
                                             num_workers=workers)
        t0 = time.perf_counter()
        for _ in loader:
            pass
        naive_s = time.perf_counter() - t0
    finally:
        if old is None:
            os.environ.pop("BENCH_CACHE_DIR", None)
        else:
            os.environ["BENCH_CACHE_DIR"] = old
        shutil.rmtree(tmp, ignore_errors=True)
    n = len(split)
    return {"data": data, "n_images": n, "size": format_size(size), "prepare_img_s": n / prepare_s,
            "prepare_s": prepare_s, "load_s": load_s, "naive_epoch_s": naive_s, "naive_workers": workers,
            "load_speedup_vs_naive_epoch": naive_s / load_s}


def machine(device: torch.device) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    out = {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    return out


def perf(host: PluginHost, segs: list[str], gens: list[str], size: str | None, batch: int, device_name: str,
         data: str, warmup: int, steps: int, cuda_graph: bool, with_gen_sampling: bool,
         sample_steps: int | None = None) -> dict[str, Any]:
    device = resolve_device(device_name)
    hw = parse_size(size, "--size") if size else None
    rows = []
    for seg in segs:
        rows.append(segmenter_row(host, seg, [], hw, batch, device, data, warmup, steps, cuda_graph))
        if with_gen_sampling:
            for gen in gens:
                rows.append(segmenter_row(host, seg, [gen], hw, batch, device, data, warmup, steps, cuda_graph,
                                          sample_steps))
    for gen in gens:
        rows.append(generator_row(host, gen, hw or (192, 256), batch, device, data, steps))
    first = hw or parse_size(host.registry.get("segmenters", segs[0].split(":")[0]).meta.size) \
        if segs else (hw or (192, 256))
    return {"rows": rows, "data": data_path(host, data, first, batch), "machine": machine(device)}
