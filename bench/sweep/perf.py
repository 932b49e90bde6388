"""``bench perf``: the rates a run spends its time at, measured as the run does the work, and the data path.

Rows are :class:`bench.sweep.estimate.Need` s, keyed by every setting that changes their rate. A ``step`` row: images/s
of the full harness step (indexing the prepared split on the device, augmentation, channel expansion,
forward, loss, backward, Adam; captured with ``--cuda-graph``), of the bare model step on random tensors
already on the device (the ceiling), and of evaluation (a point of the training curve). A ``sampling`` row:
pairs/s of a generator filling the synthetic bank as a run's epoch does (calls of one shape at the generator's
size, resized, rounded to 8 bits). A ``gan`` row: images/s of a generator's training. A synthetic epoch trains
at ``1 / (1/step + 1/sampling)``. The data path: images/s of preparing a split, seconds to load it back, and
seconds for one epoch of the naive per-sample ``Dataset``/``DataLoader`` pipeline that decodes and resizes the
JPEGs with PIL.
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

from bench.train import bank as synthetic_bank
from bench.plugin.build import build_loss, build_segmenter, load_dataset, resolve_device
from bench.plugin.components import Generator
from bench.config.run import iterative_generators
from bench.data import channels
from bench.data.prepare import Prepared, prepare
from bench.data.source import FileSplit, Split
from bench.data.spec import format_size, parse_size, parse_spec
from bench.errors import ConfigError
from bench.sweep.estimate import PERF_SCHEMA, Need
from bench.scoring.evaluate import curve_point
from bench.gan.cache import generator_for, to_gan_input
from bench.plugin.host import PluginHost
from bench.train.engine import Trainer, TrainState


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


def concurrent(needs_file: Path, common: list[str], processes: int) -> dict[str, Any]:
    """``bench perf --needs FILE`` in ``processes`` processes at once (their timed parts started together by
    barriers): each row's rates are all the processes' work over the span they shared, what several runs
    sharing one device reach together."""
    with tempfile.TemporaryDirectory(prefix="bench-perf-barrier-") as folder:
        procs = [subprocess.Popen([sys.executable, "-m", "bench", "perf", "--needs", str(needs_file), *common,
                                   "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
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
        for name in row["windows"]:
            row[RATE_OF_WINDOW[name]] = _together([p["windows"][name] for p in parts])
        _derive(row)
        row["peak_mem_mb"] = max(p["peak_mem_mb"] for p in parts)
        row["processes"] = processes
        row["per_process"] = [{k: p[k] for k in RATE_OF_WINDOW.values() if k in p} for p in parts]
        rows.append(row)
    return {**results[0], "rows": rows, "processes": processes}


RATE_OF_WINDOW = {"train": "train_img_s", "model": "model_img_s", "eval": "eval_img_s", "sample": "sample_pairs_s"}
"""Each timed part of a row (its window) and the rate it gives."""


def _derive(row: dict[str, Any]) -> None:
    if "model_img_s" in row and row.get("model_img_s"):
        row["ratio"] = row["train_img_s"] / row["model_img_s"]


def _rate(step: Callable[[], int], device: torch.device, warmup: int, steps: int,
          window: list[float] | None = None) -> float:
    """Images per second over ``steps`` calls of ``step`` (each returns the images it handled), after
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


def warm_heap() -> None:
    """Put this process's heap in the state a run's is in when it trains. glibc serves blocks above its mmap
    threshold (128 KB in a fresh process) with fresh, page-faulting memory each time, and raises the threshold
    (up to 32 MB) once such a block is freed; a run has freed many (data preparation, generator training)
    before its first epoch. Without this, CPU rows measured first in a process ran 15-20% below a run's epochs."""
    block = torch.ones(32 * 2**20 // 4 - 4096)  # just under glibc's 32 MB cap on the threshold
    del block


class Measurer:
    """Measures :class:`bench.sweep.estimate.Need` rows on one device from one dataset's training split (each split
    prepared once per size)."""

    def __init__(self, host: PluginHost, data: str, device: torch.device, warmup: int, steps: int) -> None:
        self.host, self.data, self.device, self.warmup, self.steps = host, data, device, warmup, steps
        self.dataset = load_dataset(host, data, "--data")
        self.prepared: dict[tuple[int, int], Prepared] = {}
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # as a run sets it
        else:
            warm_heap()

    def real(self, size: tuple[int, int]) -> Prepared:
        if size not in self.prepared:
            self.prepared[size] = prepare(self.dataset.split("train"), size).to(self.device)
        return self.prepared[size]

    def measure(self, need: Need) -> dict[str, Any]:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        row = {"step": self.step, "sampling": self.sampling, "gan": self.gan}[need.kind](need)
        row.update(need.as_row(), component=need.component, device=str(self.device),
                   peak_mem_mb=_peak_mb(self.device))
        _derive(row)
        return row

    def step(self, need: Need) -> dict[str, Any]:
        """The harness step (prepared split on the device, augmentation, channels, forward, loss, backward, Adam;
        captured when ``need.graph``), the bare model step on random tensors, and the evaluation rate."""
        size, device, batch = parse_size(need.size), self.device, need.batch
        assert need.channels is not None and need.loss is not None and need.eval_batch is not None
        real = self.real(size)
        if batch > len(real):
            raise ConfigError(f"--batch {batch}: larger than the training split of --data {self.data} ({len(real)} "
                              f"pairs); a step would train on {len(real)} images, not {batch}. Use --batch "
                              f"{len(real)} or less, or more data")
        loss_fn = build_loss(self.host, need.loss)

        def fresh_model() -> torch.nn.Module:
            torch.manual_seed(0)
            model = build_segmenter(self.host, need.name, need.channels or "rgb", need.width).to(device)
            return model.to(memory_format=torch.channels_last) if device.type == "cuda" else model

        model = fresh_model()
        opt = torch.optim.Adam(model.parameters(), lr=3e-4)
        x = torch.randn(batch, channels.channel_count(need.channels), *size, device=device)
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

        windows: dict[str, list[float]] = {"model": [], "train": [], "eval": []}
        model_img_s = _rate(bare, device, self.warmup, self.steps, windows["model"])

        model = fresh_model()
        trainer = Trainer(TrainState(model, torch.optim.Adam(model.parameters(), lr=3e-4)), loss_fn,
                          need.channels, size, batch, device, 0, cuda_graph=need.graph)
        order = torch.randperm(len(real), generator=torch.Generator().manual_seed(0)).to(device)
        counter = {"i": 0}

        def harness() -> int:
            i = counter["i"]
            start = (i * batch) % max(len(real) - batch + 1, 1)
            idx = order[start : start + batch]
            trainer.step("real", idx, real, i)
            counter["i"] += 1
            return len(idx)

        train_img_s = _rate(harness, device, self.warmup, self.steps, windows["train"])
        info = trainer.step_info()

        n_eval = min(len(real), need.eval_batch * max(self.steps // 2, 2))
        subset = Prepared(real.ids[:n_eval], real.images[:n_eval], real.masks[:n_eval], real.original_sizes[:n_eval],
                          real.fingerprint, real.from_cache)

        def evaluate() -> int:
            curve_point(model, subset, need.channels or "rgb", device, need.eval_batch or 16)
            return n_eval

        eval_img_s = _rate(evaluate, device, 1, 2, windows["eval"])
        return {"train_img_s": train_img_s, "model_img_s": model_img_s, "eval_img_s": eval_img_s,
                "graphed": bool(info["graphed"]), "graph_error": info["graph_error"],
                "capture_s": info.get("capture_s", 0.0), "windows": windows}

    def sampling(self, need: Need) -> dict[str, Any]:
        """The generator filling the synthetic bank as a run's epoch does: calls of one shape (after one untimed
        call, where cuDNN tunes that shape), resized to the segmenter's size, rounded to 8 bits, written in."""
        assert need.gan_size is not None
        size, gan_size, device = parse_size(need.size), parse_size(need.gan_size), self.device
        gen = self._generator(need.name, gan_size, need.width, need.sample_steps)
        bank = synthetic_bank.SyntheticBank([gen], size, device, torch.Generator(device=device).manual_seed(0),
                                            synthetic_bank.default_budget_mb(device))
        n_train = len(self.real(size))
        largest = min(16, n_train)
        draw = bank.draw_size(0, bank.capacity_for(n_train, largest))
        warm = min(n_train, draw)
        timed = min(n_train, max(warm, -(-self.steps * 16 // draw) * draw))
        bank.start_epoch([warm], min(largest, warm))
        bank.take(0, warm)
        _sync(device)
        bank.start_epoch([timed], min(largest, timed))
        window: list[float] = []
        sample_pairs_s = _rate(lambda: (bank.take(0, timed), timed)[1], device, 0, 1, window)
        ring = bank.rings[0]
        assert ring is not None
        return {"sample_pairs_s": sample_pairs_s, "draw": ring.draw, "windows": {"sample": window}}

    def _generator(self, name: str, size: tuple[int, int], width: float, sample_steps: int | None) -> Generator:
        sampling = {"sample_steps": sample_steps} if sample_steps else {}
        gen = generator_for(self.host, name, {"size": format_size(size), "width": width, "lr": 2e-4, **sampling},
                            0).to(self.device)
        real = to_gan_input(self.real(size), self.device, torch.arange(min(len(self.real(size)), 2)))
        gen.fit(real, epochs=1, batch_size=2, rng=torch.Generator(device=self.device).manual_seed(0))
        return gen

    def gan(self, need: Need) -> dict[str, Any]:
        """A generator's training on the prepared split and on random tensors of the same shape."""
        size, batch, device = parse_size(need.size), need.batch, self.device
        real = to_gan_input(self.real(size), device)
        n = min(len(real), batch * self.steps)
        if n < batch:
            raise ConfigError(f"GAN batch {batch}: larger than the training split of --data {self.data} "
                              f"({len(real)} pairs)")
        rates: dict[str, float] = {}
        windows: dict[str, list[float]] = {}
        for kind, tensor in (("train", real[:n]), ("model", torch.rand_like(real[:n]) * 2 - 1)):
            gen = generator_for(self.host, need.name, {"size": format_size(size), "width": need.width, "lr": 2e-4},
                                0).to(device)
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
        return {"train_img_s": rates["train"], "model_img_s": rates["model"], "windows": windows}


def flag_needs(host: PluginHost, segs: list[str], gens: list[str], size: str | None, batch: int, width: float,
               channels_set: str | None, loss: str | None, gan_size: str | None, gan_batch: int | None,
               eval_batch: int, cuda_graph: bool, with_sampling: bool, sample_steps: int | None) -> list[Need]:
    """The rows ``bench perf --seg ... --gen ...`` measures: each segmenter's step, each generator's sampling
    at each segmenter's size (``--with-sampling``) and each generator's training."""
    hw = format_size(parse_size(size, "--size")) if size else None
    gan_hw = format_size(parse_size(gan_size, "--gan-size")) if gan_size else (hw or "192x256")
    iterative = iterative_generators(host, tuple(gens))
    needs: dict[Need, None] = {}
    for seg in segs:
        meta = host.registry.get("segmenters", parse_spec(seg, "--seg").name).meta
        seg_size = hw or format_size(parse_size(meta.size))
        needs.setdefault(Need("step", seg, seg_size, batch, width, channels_set or meta.channels, loss or meta.loss,
                              cuda_graph, eval_batch))
        if with_sampling:
            for gen in gens:
                needs.setdefault(Need("sampling", gen, seg_size, 0, width, gan_size=gan_hw,
                                      sample_steps=sample_steps if gen in iterative else None))
    for gen in gens:
        needs.setdefault(Need("gan", gen, gan_hw, gan_batch or batch, width))
    return list(needs)


def combined(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``SEG + GEN samples``: what a synthetic epoch of a run trains at, from a step row and a sampling row at
    the same size and width: each image costs one step and one banked pair (1 / (1/step + 1/sampling))."""
    out = []
    steps = [r for r in rows if r["kind"] == "step"]
    for step in steps:
        same = [r for r in steps if r["name"] == step["name"]]
        label = step["name"] if len(same) == 1 else f"{step['name']} ({step['channels']}, {step['loss']}, " \
            f"batch {step['batch']}, width {step['width']:g}{', graph' if step['graph'] else ''})"
        for s in (r for r in rows if r["kind"] == "sampling"):
            if (s["size"], s["width"]) == (step["size"], step["width"]) and step["train_img_s"] and s["sample_pairs_s"]:
                out.append({"component": f"{label} + {s['name']} samples", "size": step["size"],
                            "train_img_s": 1 / (1 / step["train_img_s"] + 1 / s["sample_pairs_s"]),
                            "step_img_s": step["train_img_s"], "sample_pairs_s": s["sample_pairs_s"]})
    return out


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


def perf(host: PluginHost, needs: list[Need], data: str, device_name: str, warmup: int, steps: int,
         with_data_path: bool = True) -> dict[str, Any]:
    """Measure ``needs`` (each once, in order) and, optionally, the data path at the first size measured."""
    device = resolve_device(device_name)
    measurer = Measurer(host, data, device, warmup, steps)
    rows = [measurer.measure(need) for need in needs]
    out: dict[str, Any] = {"schema": PERF_SCHEMA, "rows": rows, "machine": machine(device), "processes": 1}
    if with_data_path and needs:
        out["data"] = data_path(host, data, parse_size(needs[0].size), 16)
    return out


def grid_needs(host: PluginHost, grids: list[str], profile: str | None, data: str | None, cuda_graph: bool,
               settings: list[str]) -> tuple[list[Need], str]:
    """The rows ``bench sweep GRID --estimate`` needs for the grids' runs (with these options), each once, and
    the dataset the runs train on (measured on unless ``--data`` says otherwise)."""
    from bench.sweep import estimate as est
    from bench.sweep import runner as sw
    from bench.config.layers import Layer
    from bench.config.options import parse_settings

    given: dict[str, Any] = {k: v for k, v in {"data": data, "profile": profile}.items() if v is not None}
    if cuda_graph:
        given["cuda_graph"] = True
    command_line = Layer("the command line", {**sw.check_keys(given, "bench perf --grid"), **parse_settings(settings)})
    with tempfile.TemporaryDirectory(prefix="bench-perf-grid-") as out:
        entries = [e for grid in grids
                   for e in sw.expand(host, sw.load_grid(grid), Path(out), command_line, None, 1, Path(out) / "sweep")]
    plans = est.plan(host, entries)
    return est.needs(plans), plans[0].config.data if plans else "fixture?n=64"
