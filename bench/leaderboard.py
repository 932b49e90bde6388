"""Markdown leaderboards from run records: rows segmenters, columns augmentation strategies (Table 2)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from bench.records import gen_label

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


def render(records: list[dict[str, Any]], metric: str = "jaccard") -> str:
    """One markdown section per table key; each cell is mean ± std over seeds with n."""
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
        for label, record in zip(_row_labels(group), group):
            cells[(label, strategy(record["run"]))].append(float(record["summary"][metric]))
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
                if not values:
                    line.append("–")
                    continue
                sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
                line.append(f"{np.mean(values):.4f} ± {sd:.4f} (n={len(values)})")
            out.append("| " + " | ".join(line) + " |")
        out.append("")
    return "\n".join(out)


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
