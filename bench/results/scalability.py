"""Figs. 8 and 9: Jaccard against the number of real training images, per strategy, and what a GAN is worth
in real images ("equivalent extra real images", read off the real-only curve by linear interpolation)."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.results.grouping import BASELINE, distinct_labels, group_tables, mean_sd, strategy
from bench.results.records import safe_name
from bench.results.reader import normalise
from bench.results.stats import Sample

VARIES = frozenset({"subset", "train data"})
"""What changes along a curve by design: the training subset."""


def curves(records: list[dict[str, Any]], seg: str) -> dict[tuple, dict[str, dict[int, list[float]]]]:
    """``{table key: {strategy: {training images: [Jaccard of each seed]}}}`` for segmenter ``seg``."""
    out: dict[tuple, dict[str, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    mine = [r for r in map(normalise, records) if r["run"]["seg"] == seg and r["run"].get("kind") != "ensemble"
            and isinstance(r["runtime"].get("n_train"), int)]  # a record without its training-set size has no x
    tables = group_tables(mine)
    for key, group in tables.items():
        labels = distinct_labels(group, lambda r: strategy(r["run"]), lambda r: str(r["runtime"]["n_train"]),
                                 ignore=VARIES, axis_of=lambda k: "row")
        for (label, _), record in zip(labels, group):
            out[key][label][int(record["runtime"]["n_train"])].append(float(record["summary"]["jaccard"]))
    return out


def equivalent_images(real: list[tuple[int, float]], value: float) -> tuple[float | None, str]:
    """Training-set size at which the real-only curve reaches ``value``: ``(n, "")``, or ``(None, ">")`` above
    the curve's highest point, ``(None, "<")`` below its lowest. The curve is piecewise linear through the
    points in order of size; the first crossing counts."""
    points = sorted(real)
    if len(points) < 2:
        return None, "?"
    ns = [float(n) for n, _ in points]
    js = [j for _, j in points]
    for (n0, j0), (n1, j1) in zip(zip(ns, js), zip(ns[1:], js[1:])):
        low, high = min(j0, j1), max(j0, j1)
        if low <= value <= high:
            return (n0 if j1 == j0 else n0 + (value - j0) * (n1 - n0) / (j1 - j0)), ""
    return None, (">" if value > max(js) else "<")


SHARE_BOOTSTRAP = 2000
"""Resamples of :func:`share_interval` (seeds within each cell and the shared test images, together)."""


def share_interval(real: dict[int, Sample], gan: Sample, size: int, level: float = 0.95,
                   resamples: int = SHARE_BOOTSTRAP, seed: int = 0) -> tuple[float, float] | None:
    """A ``level`` interval for what the GAN at ``size`` real images is worth, as a share of ``size`` in extra
    real images: the percentile bootstrap of :func:`equivalent_images` over the seeds of every cell (the real-only
    curve's too) and the test images they share, resampled together. ``+inf`` / ``-inf`` stand for a value above
    / below the real-only curve's range. ``None`` when a side has fewer than two seeds (no seed noise to count).
    """
    cells = [*real.values(), gan]
    if len(gan.units) < 2 or len(real.get(size, gan).units) < 2:
        return None
    images = sorted(set.intersection(*(set(c.images) for c in cells)))
    if not images:
        return None
    real = {n: c.restrict(images) for n, c in real.items()}
    gan = gan.restrict(images)
    rng = np.random.default_rng(seed)
    shares = []
    for _ in range(resamples):
        pick = rng.integers(0, len(images), len(images))

        def mean(c: Sample) -> float:
            return float(c.scores[rng.integers(0, len(c.units), len(c.units))][:, pick].mean())

        curve = [(n, mean(c)) for n, c in sorted(real.items())]
        n_eq, bound = equivalent_images(curve, mean(gan))
        shares.append((n_eq - size) / size if n_eq is not None else (np.inf if bound == ">" else -np.inf))
    alpha = (1 - level) / 2
    low, high = np.quantile(np.array(shares), [alpha, 1 - alpha], method="inverted_cdf")
    return float(low), float(high)


def render(records: list[dict[str, Any]], seg: str = "cdnn0", plots: Path | None = None,
           links_from: Path | None = None) -> str:
    """Markdown: mean Jaccard per size and strategy, the equivalent extra real images, and the figure."""
    from bench.results.plots import scalability as draw

    tables = curves(records, seg)
    out = [f"# Scalability: {seg}, Jaccard against the number of real training images (Figs. 8, 9)", ""]
    if not tables:
        return "\n".join(out + [f"No finished {seg} runs found.", ""])
    for key in sorted(tables, key=lambda k: tuple(str(x) for x in k)):
        data, test, split, profile, version = key
        by_strategy = tables[key]
        cols = ([BASELINE] if BASELINE in by_strategy else []) + sorted(c for c in by_strategy if c != BASELINE)
        sizes = sorted({n for c in cols for n in by_strategy[c]})
        out += [f"## {data} (profile `{profile}`, protocol v{version})", "",
                f"Mean per-image Jaccard on the `{split}` split of `{test}` ± standard deviation over seeds (n).", "",
                "| training images | " + " | ".join(cols) + " |", "| --- | " + " | ".join("---" for _ in cols) + " |"]
        for n in sizes:
            cells = []
            for c in cols:
                values = by_strategy[c].get(n)
                cells.append(f"{mean_sd(values)} (n={len(values)})" if values else "–")
            out.append(f"| {n} | " + " | ".join(cells) + " |")
        out.append("")
        real = [(n, float(np.mean(v))) for n, v in by_strategy.get(BASELINE, {}).items()]
        others = [c for c in cols if c != BASELINE]
        if len(real) >= 2 and others:
            out += ["Equivalent extra real images: how many more real images the real-only model needs to reach "
                    "each strategy's mean Jaccard, by linear interpolation on the real-only curve (`>`: above "
                    "the curve's best point, so at least the gap to the largest size; `<`: below its lowest).", "",
                    "| training images | " + " | ".join(others) + " |",
                    "| --- | " + " | ".join("---" for _ in others) + " |"]
            top, bottom = max(n for n, _ in real), min(n for n, _ in real)
            for n in sizes:
                cells = []
                for c in others:
                    values = by_strategy[c].get(n)
                    if not values:
                        cells.append("–")
                        continue
                    n_eq, bound = equivalent_images(real, float(np.mean(values)))
                    cells.append(f"{n_eq - n:+.0f}" if n_eq is not None else
                                 f"> {top - n:+d}" if bound == ">" else f"< {bottom - n:+d}")
                out.append(f"| {n} | " + " | ".join(cells) + " |")
            out.append("")
        if plots is not None:
            figure = plots / f"{safe_name(f'{seg}-{data}-{profile}')}.png"
            points = {c: [(n, float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
                          for n, v in by_strategy[c].items()] for c in cols}
            draw(points, f"{seg} on {data} (profile {profile})", figure)
            link = Path(os.path.relpath(figure, links_from or plots.parent)).as_posix()
            out += [f"![Jaccard against training images]({link})", ""]
    return "\n".join(out)
