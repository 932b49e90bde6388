"""Markdown leaderboards from run records: rows segmenters, columns augmentation strategies (Table 2)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.spec import parse_spec
from bench.records import data_label, gen_label, safe_name
from bench.stats import BOOTSTRAP_SAMPLES, paired_bootstrap, per_image_mean

BASELINE = "real only"
VARIANT_KEYS = ("size", "channels", "width", "batch_size", "lr", "threshold")
"""Run values that make two rows different models; runs that share them are averaged over seeds."""


def strategy(run: dict[str, Any]) -> str:
    """Column label: ``real only`` for no generator, the generators, and the schedule when not default."""
    if run.get("strategy"):
        return run["strategy"]
    if not run["gen"]:
        return BASELINE if run["schedule"] == "real-only" else f"none ({run['schedule']})"
    label = gen_label(run["gen"])
    return label if run["schedule"] == "two-phase" else f"{label} ({run['schedule']})"


def row_label(run: dict[str, Any]) -> str:
    """Row label: the segmenter, with its loss when it is not the segmenter's default."""
    default = run.get("loss_default")
    return run["seg"] if run["loss"] == default else f"{run['seg']} [{run['loss']}]"


def _row_labels(group: list[dict[str, Any]]) -> list[str]:
    """Row labels of a table's records; a segmenter run with several sizes etc. gets one row per variant."""
    base = [row_label(r["run"]) for r in group]
    variants: dict[str, set[tuple]] = defaultdict(set)
    for label, record in zip(base, group):
        variants[label].add(tuple(record["run"].get(k) for k in VARIANT_KEYS))
    labels = []
    for label, record in zip(base, group):
        if len(variants[label]) > 1:
            differing = [k for i, k in enumerate(VARIANT_KEYS) if len({v[i] for v in variants[label]}) > 1]
            label += " (" + ", ".join(f"{k} {record['run'].get(k)}" for k in differing) + ")"
        labels.append(label)
    return labels


def table_key(run: dict[str, Any]) -> tuple:
    """Records that may share a table: same data, test split, profile and protocol version."""
    return (run["data"], run["test"], run.get("test_split"), run["profile"], run.get("protocol_version"))


def _order(columns: set[str]) -> list[str]:
    rest = sorted(c for c in columns if c != BASELINE)
    return ([BASELINE] if BASELINE in columns else []) + rest


def render(records: list[dict[str, Any]], metric: str = "jaccard", plots: Path | None = None,
           links_from: Path | None = None) -> str:
    """One markdown section per table key; each cell is mean ± std over seeds with n.

    With ``plots`` (a folder), every row's Jaccard histogram and training curves are drawn there as PNGs
    and linked from the distribution table, relative to ``links_from`` (the markdown file's folder).
    """
    tables: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        tables[table_key(record["run"])].append(record)
    if not tables:
        return "# skinbench leaderboard\n\nNo finished runs found.\n"
    out = ["# skinbench leaderboard", ""]
    for key in sorted(tables, key=lambda k: tuple(str(x) for x in k)):
        data, test, split, profile, version = key
        group = tables[key]
        cells: dict[tuple[str, str], list[float]] = defaultdict(list)
        members: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for label, record in zip(_row_labels(group), group):
            cells[(label, strategy(record["run"]))].append(float(record["summary"][metric]))
            members[(label, strategy(record["run"]))].append(record)
        rows = sorted({r for r, _ in cells})
        cols = _order({c for _, c in cells})
        n_images = sorted({record["summary"]["n_images"] for record in group})
        out += [
            f"## {data} (profile `{profile}`, protocol v{version})",
            "",
            f"Mean per-image {metric.replace('_', ' ')} on the `{split}` split of `{test}` "
            f"({', '.join(map(str, n_images))} images, each scored at its original resolution); "
            "mean ± standard deviation over seeds, n = number of seeds.",
            "",
            "| segmenter | " + " | ".join(cols) + " |",
            "| --- | " + " | ".join("---" for _ in cols) + " |",
        ]
        for row in rows:
            line = [row]
            for col in cols:
                values = cells.get((row, col))
                line.append(f"{_mean_sd(values)} (n={len(values)})" if values else "–")
            out.append("| " + " | ".join(line) + " |")
        out.append("")
        out += _comparison(rows, cols, members, metric)
        figures = None
        if plots is not None:
            prefix = safe_name(f"{data_label(data, parse_spec(data).name)}-{profile}")
            figures = {cell: _row_figures(cell, records_of, plots / prefix, links_from or plots.parent)
                       for cell, records_of in members.items()}
        out += _distribution(rows, cols, members, figures)
    return "\n".join(out)


def _comparison(rows: list[str], cols: list[str], members: dict, metric: str) -> list[str]:
    """Each strategy minus the same segmenter's real-only baseline, per image, with a paired bootstrap CI."""
    others = [c for c in cols if c != BASELINE]
    if BASELINE not in cols or not others:
        return []
    lines = [
        f"Difference from `{BASELINE}` (same segmenter, same test images): mean per-image {metric} difference "
        f"with a 95% paired bootstrap interval ({BOOTSTRAP_SAMPLES} resamples of the images; each image's score "
        "averaged over seeds first). `*` marks an interval that excludes zero.",
        "",
        "| segmenter | " + " | ".join(others) + " |",
        "| --- | " + " | ".join("---" for _ in others) + " |",
    ]
    for row in rows:
        if (row, BASELINE) not in members:
            continue
        base = per_image_mean(members[(row, BASELINE)], metric)
        line = [row]
        for col in others:
            result = paired_bootstrap(per_image_mean(members[(row, col)], metric), base) \
                if (row, col) in members else None
            line.append("–" if result is None else
                        f"{result['mean']:+.4f} [{result['low']:+.4f}, {result['high']:+.4f}]"
                        f"{' *' if result['significant'] else ''}")
        lines.append("| " + " | ".join(line) + " |")
    return lines + [""]


def _row_figures(cell: tuple[str, str], records: list[dict[str, Any]], folder: Path, links_from: Path) -> str:
    """Draw a row's pooled Jaccard histogram and seed-averaged training curves; markdown links to them."""
    import os

    from bench.plots import jaccard_histogram, training_curves

    row, col = cell
    stem = safe_name(f"{row}-{col}")
    title = f"{row} · {col} · {len(records)} seed{'s' if len(records) > 1 else ''}"
    links = []
    hist = jaccard_histogram([r["jaccard"] for rec in records for r in rec["per_image"]], title,
                             folder / f"{stem}-histogram.png")
    links.append(f"[histogram]({Path(os.path.relpath(hist, links_from)).as_posix()})")
    curves = training_curves([rec.get("history", []) for rec in records], f"{row} · {col}",
                             folder / f"{stem}-curves.png")
    if curves:
        links.append(f"[curves]({Path(os.path.relpath(curves, links_from)).as_posix()})")
    return " · ".join(links)


def _distribution(rows: list[str], cols: list[str], members: dict, figures: dict | None = None) -> list[str]:
    """Fig. 7 for every row: the per-image Jaccard histogram (seeds pooled) and the counts below 0.6 and 0.7."""
    lines = [
        "Per-image Jaccard distribution (Fig. 7), all seeds pooled: images below 0.6 and 0.7, and the counts "
        "in the bins [0, 0.1), ..., [0.9, 1.0]"
        + ("; the plots are the pooled histogram and the training curves (Fig. 5) averaged over seeds." if figures
           else "."),
        "",
        "| segmenter | strategy | images | below 0.6 | below 0.7 | histogram |" + (" plots |" if figures else ""),
        "| --- | --- | --- | --- | --- | --- |" + (" --- |" if figures else ""),
    ]
    for row in rows:
        for col in cols:
            if (row, col) not in members:
                continue
            records = members[(row, col)]
            counts = np.sum([r["histogram"]["counts"] for r in records], axis=0)
            lines.append(
                f"| {row} | {col} | {sum(r['summary']['n_images'] for r in records)} | "
                f"{sum(r['summary']['below_0.6'] for r in records)} | {sum(r['summary']['below_0.7'] for r in records)} | "
                f"{' '.join(str(int(c)) for c in counts)} |"
                + (f" {figures[(row, col)]} |" if figures else "")
            )
    return lines + [""]


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "–"
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{np.mean(values):.4f} ± {sd:.4f}"


def render_quality(records: list[dict[str, Any]]) -> str:
    """One table per (data, profile): each generator's coherence, diversity and checkerboard, real data beside."""
    tables: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        tables[(record["run"]["data"], record["run"]["profile"])].append(record)
    out: list[str] = []
    for (data, profile), group in sorted(tables.items(), key=lambda kv: tuple(map(str, kv[0]))):
        by_gen: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in group:
            label = record["generator"]["name"] + (f" ({record['run']['gan_size']})" if len(
                {r["run"]["gan_size"] for r in group}) > 1 else "")
            by_gen[label].append(record["metrics"])
        out += [
            f"## Generator quality: {data} (profile `{profile}`)",
            "",
            "Mask coherence: mean Jaccard between each sample's mask and a real-data-trained segmenter's prediction "
            "on the sample (higher is better). Diversity: mean pairwise SSIM of the samples (lower is more diverse). "
            "Checkerboard: share of spectral energy on the Nyquist row and column (stride-2 artefacts). "
            "Mean ± standard deviation over seeds; N = samples per seed.",
            "",
            "| generator | mask coherence | diversity (SSIM) | checkerboard | N | seeds |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        real_div, real_cb, real_n = [], [], set()
        for label in sorted(by_gen):
            ms = by_gen[label]
            coherence = [m["mask_coherence"]["value"] for m in ms if "mask_coherence" in m]
            out.append(
                f"| {label} | {_mean_sd(coherence)} | {_mean_sd([m['diversity_ssim']['value'] for m in ms])} | "
                f"{_mean_sd([m['checkerboard']['value'] for m in ms])} | "
                f"{', '.join(sorted({str(m['n_samples']) for m in ms}))} | {len(ms)} |"
            )
            real_div += [m["diversity_ssim"]["real"] for m in ms]
            real_cb += [m["checkerboard"]["real"] for m in ms]
            real_n |= {str(m["n_samples"]) for m in ms}
        out.append(f"| real training images | – | {np.mean(real_div):.4f} | {np.mean(real_cb):.4f} | "
                   f"{', '.join(sorted(real_n))} | – |")
        out.append("")
    return "\n".join(out)
