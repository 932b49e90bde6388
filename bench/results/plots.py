"""PNG figures with matplotlib (no pyplot state, Agg canvas): the paper's Figs. 5, 7, 8 and 9 from records."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.scoring.evaluate import curve_value
from bench.scoring.metrics import HISTOGRAM_EDGES
from bench.storage.atomic import atomic_write_bytes

PHASE_LABELS = {"synthetic": "synthetic", "real": "real", "mixed": "real + synthetic"}


def _save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG atomically; no software version in the file, so it depends only on the data."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    atomic_write_bytes(path, buf.getvalue())
    return path


def jaccard_histogram(jaccards: Sequence[float], title: str, path: Path) -> Path:
    """Fig. 7: how many test images fall in each Jaccard bin of width 0.1, with the 0.65 challenge threshold."""
    fig = Figure(figsize=(5.5, 3.4))
    ax = fig.subplots()
    values = np.asarray(jaccards, dtype=float)
    ax.hist(values, bins=HISTOGRAM_EDGES, color="#4c72b0", edgecolor="white")
    ax.axvline(0.65, color="#c44e52", linestyle="--", linewidth=1, label="0.65 (threshold Jaccard)")
    ax.set_xlim(0, 1)
    ax.set_xlabel("per-image Jaccard")
    ax.set_ylabel("images")
    ax.set_title(f"{title}\nmean {values.mean():.4f}, {int((values < 0.6).sum())} below 0.6, n = {len(values)}",
                 fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


def has_curves(history: list[dict[str, Any]]) -> bool:
    """Whether a history has per-epoch training accuracies and at least one curve point (``val_`` names too)."""
    return bool(history) and all("train_accuracy" in h for h in history) and any(
        curve_value(h, "accuracy") is not None for h in history)


CurveInfo = Mapping[str, Any] | None
"""A record's ``runtime.curve`` (``split``, ``n``, ``fraction``); ``None`` for a record from before it, whose
curve was on the scored split."""


def curve_split(curve: CurveInfo) -> str:
    """``scored`` or ``holdout``: what a run's curve is computed on (a record without the fact: scored)."""
    return str((curve or {}).get("split") or "scored")


def curve_source(curves: Sequence[CurveInfo]) -> str:
    """What the curves of these runs are computed on, in words: ``the scored split (test images; not for model
    selection)``, ``40 held-out training pairs``, or a mix of both, said as one."""
    held = [c for c in curves if curve_split(c) == "holdout"]
    if not held:
        return "the scored split (test images; not for model selection)"
    sizes = sorted({int((c or {}).get("n") or 0) for c in held})
    pairs = f"{sizes[0] if len(sizes) == 1 else f'{sizes[0]}-{sizes[-1]}'} held-out training pairs"
    if len(held) == len(curves):
        return pairs
    return (f"a mix of runs, not comparable: {len(curves) - len(held)} on the scored split (test images), "
            f"{len(held)} on {pairs}")


def training_curves(histories: list[list[dict[str, Any]]], title: str, path: Path,
                    curves: Sequence[CurveInfo] | None = None) -> Path | None:
    """Fig. 5: accuracy on the training data (synthetic, then real) and the curve's accuracy and Jaccard per epoch,
    labelled with what the curve is computed on (``curves``: each history's ``runtime.curve``; ``None``: the
    scored split, as every record before ``--curve-split``).

    Several histories (seeds) are drawn as their mean with a min-max band; a dotted line marks each
    phase boundary. Returns ``None`` when the histories predate per-epoch accuracies.
    """
    infos = list(curves) if curves is not None else [None] * len(histories)
    kept = [(h, c) for h, c in zip(histories, infos) if has_curves(h)]
    histories, infos = [h for h, _ in kept], [c for _, c in kept]
    if not histories or len({len(h) for h in histories}) != 1:
        return None
    computed_on = curve_source(infos)
    mixed = len({curve_split(c) for c in infos}) > 1
    on = "the curve's pairs (mixed)" if mixed else computed_on.split(" (")[0]
    first = histories[0]
    x = np.arange(1, len(first) + 1)
    fig = Figure(figsize=(6.5, 3.6))
    ax = fig.subplots()
    series = [("train_accuracy", "training accuracy", "#4c72b0", "-"),
              ("accuracy", f"accuracy on {on}", "#dd8452", "-"),
              ("jaccard", f"Jaccard on {on}", "#55a868", "--")]
    for key, label, colour, style in series:
        values = np.array([[_point(e, key) for e in h] for h in histories], dtype=float)
        scored = ~np.isnan(values).any(0)  # the curve is scored every --curve-every epochs (and at phase ends)
        xs, values = x[scored], values[:, scored]
        ax.plot(xs, values.mean(0), color=colour, linestyle=style, label=label, linewidth=1.4,
                marker="." if len(xs) < len(x) or len(xs) < 3 else None, markersize=3 if len(xs) >= 3 else 8)
        if len(histories) > 1:
            ax.fill_between(xs, values.min(0), values.max(0), color=colour, alpha=0.2, linewidth=0)
    phases = [e["phase"] for e in first]
    for i in range(1, len(phases)):
        if phases[i] != phases[i - 1]:
            ax.axvline(i + 0.5, color="grey", linestyle=":", linewidth=1.2)
    start = 0
    for i in range(1, len(phases) + 1):
        if i == len(phases) or phases[i] != phases[start]:
            source = first[start].get("source", phases[start])
            ax.text((start + i + 1) / 2, 0.98, f"{PHASE_LABELS.get(source, source)} data", ha="center",
                    va="top", fontsize=8, color="grey", transform=ax.get_xaxis_transform())
            start = i
    ax.set_ylim(0, 1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy / Jaccard")
    seeds = f", mean of {len(histories)} seeds (band: min-max)" if len(histories) > 1 else ""
    ax.set_title(f"{title}{seeds}\ncurve (accuracy, Jaccard) on {computed_on}", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def _point(entry: Mapping[str, Any], key: str) -> float:
    """One plotted value of a history entry: ``train_accuracy``, or the curve's ``accuracy``/``jaccard`` (NaN on
    an epoch without a curve point)."""
    value = entry.get(key) if key == "train_accuracy" else curve_value(dict(entry), key)
    return np.nan if value is None else float(value)


def run_plots(record: dict[str, Any], folder: Path) -> list[str]:
    """The per-run figures in ``folder``: the Jaccard histogram and (when recorded) the training curves, from a
    record's ``run``, ``per_image`` and ``history`` (a run draws them before its record is built)."""
    run = record["run"]
    title = f"{run['seg']} · {'+'.join(run['gen']) or 'real only'} · seed {run['seed']}"
    written = [jaccard_histogram([r["jaccard"] for r in record["per_image"]], title, folder / "jaccard_histogram.png")]
    curves = training_curves([record.get("history", [])], title, folder / "training_curves.png",
                             [(record.get("runtime") or {}).get("curve")])
    return [p.name for p in written + ([curves] if curves else [])]


def scalability(curves: dict[str, list[tuple[int, float, float]]], title: str, path: Path) -> Path:
    """Figs. 8 and 9: mean Jaccard (± sd over seeds) against the number of real training images, per strategy."""
    fig = Figure(figsize=(6, 3.8))
    ax = fig.subplots()
    for label, points in curves.items():
        n, mean, sd = (np.array(v, dtype=float) for v in zip(*sorted(points)))
        ax.errorbar(n, mean, yerr=sd, marker="o", capsize=3, linewidth=1.4, label=label)
    ax.set_xlabel("real training images")
    ax.set_ylabel("mean per-image Jaccard")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)
