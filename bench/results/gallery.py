"""The failure gallery: each cell's worst test images with truth (green) and prediction (red) drawn over them,
from saved predictions or recomputed from a run's weights, as JPEG thumbnails."""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.errors import BenchError
from bench.results.stats import _unit_order, unit_of
from bench.results.report_html import esc, img


Recompute = Callable[[dict[str, Any], list[np.ndarray]], list[np.ndarray]]
"""``(record, images) -> masks``: a finished run's (or ensemble's) binary masks for ``images`` (RGB arrays at their
original size), computed from its weights as its scoring computed them; raises :class:`BenchError` when it cannot."""

HostFactory = Callable[[], Any]
"""Gives the plugin host (called only when the gallery needs a record's test data)."""

GALLERY = 6
"""Worst images shown per cell by default (``--gallery``)."""
THUMB_WIDTH = 256
JPEG_QUALITY = 82


class ScoredImages:
    """The test images and truth masks of records, read through the plugin host once per (spec, split) and
    checked against the record's test fingerprint."""

    def __init__(self, host: HostFactory | None) -> None:
        self.host = host
        self.splits: dict[tuple[str, str], Any] = {}
        self.index: dict[tuple[str, str], dict[str, int]] = {}
        self.failed: dict[tuple[str, str], str] = {}

    def lookup(self, record: dict[str, Any]) -> tuple[Any, dict[str, int]] | str:
        """``(split, id -> index)`` for the images ``record`` scored, or why they cannot be read here."""
        from bench.plugin.build import load_dataset

        run, runtime = record["run"], record.get("runtime") or {}
        fold = bool(run.get("fold"))
        spec, name = (run["data"], "train") if fold else (run["test"], str(runtime.get("test_split")))
        key = (spec, name)
        if key in self.failed:
            return self.failed[key]
        if key not in self.splits:
            if self.host is None:
                self.failed[key] = "no plugin host to read the test data"
                return self.failed[key]
            try:
                split = load_dataset(self.host(), spec, "--test").split(name)
            except (BenchError, OSError, KeyError, ValueError) as exc:
                self.failed[key] = f"test data {spec} (split {name}) not readable here: {exc}"
                return self.failed[key]
            self.splits[key] = split
            self.index[key] = {image_id: i for i, image_id in enumerate(split.ids())}
        split = self.splits[key]
        expected = (record.get("data_fingerprint") or {}).get("test")
        if not fold and expected and split.fingerprint() != expected:
            return (f"test data {spec} (split {name}) changed since the run (fingerprint {split.fingerprint()}, "
                    f"recorded {expected})")
        return split, self.index[key]


def _folder(record: dict[str, Any]) -> Path:
    return Path(record["_path"]).parent


def _saved(record: dict[str, Any], image_id: str) -> Path | None:
    path = _folder(record) / "predictions" / f"{image_id}_segmentation.png"
    return path if path.is_file() else None


def _weights(record: dict[str, Any]) -> str | None:
    """Why ``record``'s masks cannot be recomputed from weights here (``None``: they can be tried)."""
    run = record["run"]
    if run.get("kind") == "ensemble":
        if (run.get("tuning") or {}).get("method") == "cross-fitted":
            return "a cross-fitted ensemble (each fold has its own thresholds)"
        missing = [m.get("path") for m in run.get("members", [])
                   if not (Path(str(m.get("path"))) / "checkpoints" / "final.pt").is_file()]
        return f"member weights missing ({missing[0]}/checkpoints/final.pt)" if missing else None
    return None if (_folder(record) / "checkpoints" / "final.pt").is_file() else "no checkpoints/final.pt"


def _edge(mask: np.ndarray) -> np.ndarray:
    """The outline of a binary mask, about two pixels wide (along the image's border too, where the mask touches it)."""
    m = np.pad(mask, 1)
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    edge = mask & ~inner
    e = np.pad(edge, 1)
    return edge | e[:-2, 1:-1] | e[2:, 1:-1] | e[1:-1, :-2] | e[1:-1, 2:]


def overlay(image: np.ndarray, truth: np.ndarray, pred: np.ndarray, width: int = THUMB_WIDTH) -> bytes:
    """A JPEG thumbnail ``width`` pixels wide: the image, the prediction tinted and outlined red, the truth outlined
    green (on top)."""
    from PIL import Image

    h, w = truth.shape
    size = (width, max(1, round(h * width / w)))
    rgb = image if image.ndim == 3 else np.stack([image] * 3, axis=-1)
    thumb = np.asarray(Image.fromarray(rgb[..., :3].astype(np.uint8)).resize(size, Image.Resampling.BILINEAR),
                       dtype=np.float32)

    def small(mask: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 127

    t, p = small(truth), small(pred)
    thumb[p] = thumb[p] * 0.6 + np.array([255.0, 0.0, 0.0]) * 0.4
    thumb[_edge(p)] = (255, 40, 40)
    thumb[_edge(t)] = (0, 230, 0)
    buf = io.BytesIO()
    Image.fromarray(thumb.round().astype(np.uint8)).save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buf.getvalue()


def _jaccard(truth: np.ndarray, pred: np.ndarray) -> float:
    union = np.count_nonzero(truth | pred)
    return 1.0 if union == 0 else np.count_nonzero(truth & pred) / union


def gallery_cell(label: str, records: list[dict[str, Any]], n: int, metric: str, images: ScoredImages,
                 recompute: Recompute | None) -> str:
    """A cell's ``n`` worst test images (lowest mean ``metric`` over its seeds), each drawn from the seed that did
    worst on it among those with a saved or recomputable prediction; or one line saying why none can be drawn,
    with the worst ids and their scores."""
    from PIL import Image

    by_image: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
    for record in records:
        for row in record["per_image"]:
            by_image[row["id"]].append((float(row[metric]), record))
    mean = {i: float(np.mean([s for s, _ in v])) for i, v in by_image.items()}
    worst = sorted(mean, key=lambda i: (mean[i], i))[:n]
    units = len({unit_of(r) for r in records})
    listed = ", ".join(f"<code>{esc(i)}</code> {mean[i]:.4f}" for i in worst)
    over = f"mean {esc(metric)} over {units} seed{'s' if units > 1 else ''}"

    def usable(record: dict[str, Any]) -> bool:
        return (_folder(record) / "predictions").is_dir() or (recompute is not None and _weights(record) is None)

    if not any(usable(r) for r in records):
        why = "No saved predictions (<code>--save-predictions</code>)" + (
            " or weights (<code>checkpoints/final.pt</code>)" if recompute is not None else
            " (masks are not recomputed from weights here)")
        return (f'<p class="nothing"><strong>{label}</strong>: {why} under these records; the {len(worst)} worst '
                f"images ({over}): {listed}.</p>")
    shots, problems = [], []
    refused: dict[int, str] = {}
    for image_id in worst:
        candidates = sorted(by_image[image_id], key=lambda sr: (sr[0], _unit_order(unit_of(sr[1]))))
        shown = None
        for score, record in candidates:
            if id(record) in refused or not usable(record):
                continue
            found = images.lookup(record)
            if isinstance(found, str):
                refused[id(record)] = found
                continue
            split, index = found
            if image_id not in index:
                refused[id(record)] = f"{image_id} is not in the test data"
                continue
            image, truth = split.load(index[image_id])
            truth = np.asarray(truth) > 0
            saved = _saved(record, image_id)
            try:
                if saved is not None:
                    pred = np.asarray(Image.open(saved).convert("L")) > 127
                    how = "saved prediction"
                elif recompute is not None and _weights(record) is None:
                    pred = np.asarray(recompute(record, [np.asarray(image)])[0]).astype(bool)
                    how = "recomputed from its weights"
                else:
                    continue
            except (BenchError, OSError, ValueError, RuntimeError) as exc:
                refused[id(record)] = str(exc)
                continue
            if pred.shape != truth.shape:
                refused[id(record)] = f"its mask of {image_id} is {pred.shape[1]}x{pred.shape[0]}, the image " \
                                      f"{truth.shape[1]}x{truth.shape[0]}"
                continue
            shown = (score, record, image, truth, pred, how)
            break
        if shown is None:
            problems.append(image_id)
            continue
        score, record, image, truth, pred, how = shown
        drawn = _jaccard(truth, pred)
        check = f" (the mask shown: {drawn:.4f})" if metric == "jaccard" and abs(drawn - score) > 5e-4 else ""
        shots.append(f'<figure class="shot">{img(overlay(np.asarray(image), truth, pred), "image/jpeg", image_id)}'
                     f"<figcaption><code>{esc(image_id)}</code><br>{esc(unit_of(record))}: {esc(metric)} {score:.4f}"
                     f"{check}<br>{f'{over}: {mean[image_id]:.4f}<br>' if units > 1 else ''}"
                     f"<span class=\"small\">{how}</span>"
                     "</figcaption></figure>")
    out = [f"<h5>{label}</h5>"]
    if shots:
        out.append('<div class="gallery">' + "\n".join(shots) + "</div>")
    if problems:
        reasons = sorted(set(refused.values()))
        named = ", ".join(f"<code>{esc(i)}</code> {mean[i]:.4f}" for i in problems)
        out.append(f'<p class="nothing">Not drawn: {named}' + (f" ({esc('; '.join(reasons))})" if reasons else "")
                   + ".</p>")
    return "\n".join(out)


