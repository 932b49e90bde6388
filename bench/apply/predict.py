"""``bench predict``: a trained run or ensemble applied to images without masks, as the run scored its test split.

Each image is read and resized exactly as a split is prepared (:func:`bench.data.prepare.resize_image`),
expanded to the run's channel set, predicted in fp32 at the run's size, upsampled bilinearly to the image's
own size and thresholded at the run's threshold; an ensemble averages its members' upsampled probabilities
and applies its dual threshold. So predicting a run's own test split writes the masks the run scored.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image

from bench.plugin.build import build_segmenter
from bench.train.checkpoints import load as load_checkpoint
from bench.data import channels
from bench.data.images import read_image
from bench.data.layout import IMAGE_SUFFIXES, same_stem
from bench.data.prepare import resize_image
from bench.data.spec import parse_size
from bench.errors import BenchError, ConfigError
from bench.scoring.evaluate import upsample
from bench.plugin.host import PluginHost
from bench.scoring.postprocess import dual_threshold
from bench.results.records import RESULTS
from bench.results.reader import RecordProblem, load_run, read_record

TTA = ("none", "flip")


@dataclass
class Member:
    """One trained network: its weights loaded, its input size and channel set."""

    model: torch.nn.Module
    size: tuple[int, int]
    channels: str


@dataclass
class Predictor:
    """What turns images into masks: the members, and a threshold or the ensemble's dual threshold."""

    members: list[Member]
    threshold: float
    dual: tuple[float, float] | None
    source: str
    batch_size: int = 16
    """The run's evaluation batch size: the default of ``--batch-size``."""
    record: dict = field(default_factory=dict)
    """The run's or ensemble's record, as read."""

    def describe(self) -> str:
        how = (f"dual threshold high {self.dual[0]:g}, low {self.dual[1]:g}" if self.dual
               else f"threshold {self.threshold:g}")
        sizes = ", ".join(f"{m.size[0]}x{m.size[1]} {m.channels}" for m in self.members)
        return f"{self.source}: {len(self.members)} network(s) at {sizes}; {how}"


def load_predictor(host: PluginHost, path: Path, device: torch.device) -> Predictor:
    """The run (its folder or ``results.json``) or ensemble record at ``path``, with every network loaded."""
    record_path = path if path.name == RESULTS else path / RESULTS
    try:
        record = read_record(record_path)
    except RecordProblem as exc:
        raise BenchError(f"bench predict {path}: not a finished run or ensemble ({exc.reason})") from None
    if record.get("run", {}).get("kind") == "ensemble":
        run = record["run"]
        members, batch = [], 16
        for m in run["members"]:
            member = load_run(Path(m["path"]), f"bench predict {path}: member")
            if member.record["identity"]["hash"] != m["identity"]:
                raise BenchError(f"bench predict {path}: member {m['path']} is not the run the ensemble was built "
                                 f"from (identity {member.record['identity']['hash']}, recorded {m['identity']})")
            members.append(_member(host, member.run, member.checkpoint, device))
            batch = int(member.run.get("eval_batch_size", 16))
        return Predictor(members, 0.5, (float(run["high"]), float(run["low"])), f"ensemble {record_path.parent}",
                         batch, record)
    finished = load_run(path, "bench predict")
    return Predictor([_member(host, finished.run, finished.checkpoint, device)], float(finished.run["threshold"]),
                     None, f"run {finished.folder}", int(finished.run.get("eval_batch_size", 16)), finished.record)


def _member(host: PluginHost, run: dict, checkpoint: Path, device: torch.device) -> Member:
    model = build_segmenter(host, run["seg"], run["channels"], run["width"], run.get("weights"))
    model.load_state_dict(load_checkpoint(checkpoint)["model"])
    return Member(model.to(device).eval(), parse_size(run["size"]), run["channels"])


def find_images(text: str) -> tuple[list[Path], list[Path]]:
    """The images of a folder (sorted by name) or of a glob pattern, and the other files passed over: an image is
    a file with an extension training reads (``bench.data.layout.IMAGE_SUFFIXES``); an error if there are none."""
    path = Path(text).expanduser()
    if path.is_dir():
        files = [p for p in sorted(path.iterdir()) if p.is_file()]
    else:
        files = [Path(p) for p in sorted(glob.glob(str(path), recursive=True)) if Path(p).is_file()]
    found = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    passed_over = [p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    if not found:
        others = f"; found only {_names(passed_over)}" if passed_over else ""
        raise ConfigError(f"--images {text}: no images found{others} (expected a folder of {_suffixes()} images "
                          "or a glob such as 'photos/*.jpg')")
    return found, passed_over


def _suffixes() -> str:
    names = sorted(s.lstrip(".") for s in IMAGE_SUFFIXES)
    return ", ".join(names[:-1]) + " or " + names[-1]


def _names(paths: list[Path], shown: int = 3) -> str:
    more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
    return ", ".join(p.name for p in paths[:shown]) + more


def passed_over_message(paths: list[Path], shown: int = 10) -> str:
    """One line naming the files :func:`find_images` passed over, each once: ``skipped 2 files that are not
    images (JPEG, PNG, BMP or TIFF): a.txt, b.csv``."""
    what = "1 file that is not an image" if len(paths) == 1 else f"{len(paths)} files that are not images"
    return f"skipped {what} (JPEG, PNG, BMP or TIFF): {_names(paths, shown)}"


def _reason(path: Path, exc: Exception) -> str:
    """Why ``path`` could not be read, without the path that the error's message may begin with (the line that
    reports it names the file once)."""
    text = str(exc)
    for prefix in (f"{path}: ", f"{path.name}: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def outputs(paths: list[Path], out: Path, write_probabilities: bool) -> list[Path]:
    """Every file :func:`predict` writes into ``out`` for ``paths``, in order."""
    kinds = ("segmentation", "probability") if write_probabilities else ("segmentation",)
    return [out / f"{p.stem}_{kind}.png" for p in paths for kind in kinds]


def refuse_existing(paths: list[Path], out: Path, write_probabilities: bool, overwrite: bool) -> None:
    """An error naming the files already in ``out`` that predicting ``paths`` would replace, unless ``overwrite``:
    ISIC's ground-truth masks use the same ``<id>_segmentation.png`` names, so a user's masks are never lost."""
    if overwrite or not out.is_dir():
        return
    existing = [p for p in outputs(paths, out, write_probabilities) if p.exists() or p.is_symlink()]
    if existing:
        verb = "already exists" if len(existing) == 1 else "already exist"
        raise ConfigError(f"--out {out}: {_names(existing)} {verb} there; pass --overwrite to replace "
                          f"{'it' if len(existing) == 1 else 'them'}, or choose another --out folder")


@torch.no_grad()
def probabilities(predictor: Predictor, images: list[np.ndarray], device: torch.device, tta: str) -> list[torch.Tensor]:
    """Each image's probability map at its own size, on the CPU: a run's upsampled on the device as its scoring
    does; an ensemble's members upsampled on the CPU and averaged, as ``bench ensemble`` does."""
    maps: list[list[torch.Tensor]] = [[] for _ in images]
    for member in predictor.members:
        batch = torch.from_numpy(np.stack([resize_image(img, member.size) for img in images]))
        rgb = batch.permute(0, 3, 1, 2).to(device).float() / 255.0
        probs = _predict(member, rgb, tta)
        if predictor.dual is not None:
            probs = probs.cpu()
        for i, img in enumerate(images):
            maps[i].append(upsample(probs[i], img.shape[:2]).cpu())
    return [m[0] if predictor.dual is None else torch.stack(m).mean(0) for m in maps]


def _predict(member: Member, rgb: torch.Tensor, tta: str) -> torch.Tensor:
    """Sigmoid probabilities ``(B, 1, h, w)``; with ``flip``, the mean over the four horizontal/vertical flips."""
    flips: list[tuple[int, ...]] = [()] if tta == "none" else [(), (3,), (2,), (2, 3)]
    total = torch.zeros(rgb.shape[0], 1, *rgb.shape[2:], device=rgb.device)
    for dims in flips:
        x = torch.flip(rgb, dims) if dims else rgb
        p = torch.sigmoid(member.model(channels.expand(x, member.channels)).float())
        total += torch.flip(p, dims) if dims else p
    return total / len(flips) if len(flips) > 1 else total


def to_mask(predictor: Predictor, prob: torch.Tensor) -> np.ndarray:
    """The binary mask the run (or ensemble) would score: its threshold, or its dual-threshold post-processing."""
    if predictor.dual is not None:
        return dual_threshold(prob.numpy(), *predictor.dual).astype(bool)
    return (prob > predictor.threshold).numpy()


def batches(paths: list[Path], size: int) -> Iterator[list[Path]]:
    for start in range(0, len(paths), size):
        yield paths[start:start + size]


def predict(predictor: Predictor, paths: list[Path], out: Path, device: torch.device, batch_size: int,
            tta: str = "none", write_probabilities: bool = False,
            advance: Callable[[int], None] = lambda n: None,
            overwrite: bool = False) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Write ``<stem>_segmentation.png`` (0/255) for each image, and ``<stem>_probability.png`` (0-255) when
    asked, replacing files already there only with ``overwrite``; returns the images written and
    ``(image, reason)`` for those that could not be read (the reason does not repeat the image's path)."""
    if tta not in TTA:
        raise ConfigError(f"--tta {tta!r}: expected one of {', '.join(TTA)}")
    twins = same_stem(paths)
    if twins:
        raise ConfigError(f"--images: {twins[1]} and {twins[0]} would both write {twins[0].stem}_segmentation.png; "
                          "predict them into different --out folders")
    refuse_existing(paths, out, write_probabilities, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    written, skipped = [], []
    for group in batches(paths, batch_size):
        readable, arrays = [], []
        for p in group:
            try:
                arrays.append(read_image(p))
                readable.append(p)
            except (BenchError, OSError, ValueError) as exc:
                skipped.append((p, _reason(p, exc)))
        if arrays:
            for p, prob in zip(readable, probabilities(predictor, arrays, device, tta)):
                Image.fromarray(to_mask(predictor, prob).astype(np.uint8) * 255).save(out / f"{p.stem}_segmentation.png")
                if write_probabilities:
                    Image.fromarray((prob.clamp(0, 1) * 255).round().to(torch.uint8).numpy()).save(
                        out / f"{p.stem}_probability.png")
                written.append(p)
        advance(len(group))
    return written, skipped
