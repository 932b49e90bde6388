"""Markdown leaderboards from run records: rows segmenters, columns augmentation strategies (Table 2)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from bench.results import paper
from bench.config.identity import digest
from bench.data.spec import parse_spec
from bench.results.grouping import (BASELINES, by_environment, distinct_labels, in_environment_of, md, group_tables, mean_sd,
                                    row_label, strategy)
from bench.results.reader import run_environment
from bench.results.records import data_label, safe_name
from bench.results.stats import BOOTSTRAP_SAMPLES, MAX_SEEDS, Comparison, Sample, compare, sample, unit_means

def _order(columns: set[str]) -> list[str]:
    """Columns in board order: the baselines first (also when a setting or environment is named in their
    label, ``real only (environment ...)``), then the strategies alphabetically."""
    def rank(column: str) -> tuple[int, str]:
        for i, base in enumerate(BASELINES):
            if column == base or (column.startswith(base + " (") and not any(
                    b != base and b.startswith(base + " (") and column.startswith(b) for b in BASELINES)):
                return i, column
        return len(BASELINES), column
    return sorted(columns, key=rank)


def cell_members(group: list[dict[str, Any]],
                 pool_environments: bool = False) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """A table's records by cell, ``(row, column)`` labels as the board prints them (shared with
    ``results/export.py``, which gives the same cells as data)."""
    members: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    labelled = group if pool_environments else by_environment(group)
    for cell, record in zip(distinct_labels(labelled, lambda r: md(row_label(r["run"])),
                                            lambda r: md(strategy(r["run"]))), group):
        members[cell].append(record)
    return members


def table_order(key: tuple) -> tuple[str, ...]:
    """The order of a board's tables (``sorted(tables, key=table_order)``)."""
    return tuple(str(x) for x in key)


def render(records: list[dict[str, Any]], metric: str = "jaccard", plots: Path | None = None,
           links_from: Path | None = None, baselines: tuple[str, ...] = BASELINES,
           pool_environments: bool = False) -> str:
    """One markdown section per table key; each cell is mean ± std over seeds with n, then every strategy's
    difference from each of ``baselines`` that the table has (column labels).

    Runs of one experiment in different environments (:func:`run_environment`) are different cells unless
    ``pool_environments``; a difference between cells of two environments says so in its row.

    With ``plots`` (a folder), every row's Jaccard histogram and training curves are drawn there as PNGs
    and linked from the distribution table, relative to ``links_from`` (the markdown file's folder).
    """
    tables = group_tables(records)
    if not tables:
        return "# skinbench leaderboard\n\nNo finished runs found.\n"
    out = ["# skinbench leaderboard", ""]
    for key in sorted(tables, key=table_order):
        data, test, split, profile, version = key
        group = tables[key]
        members = cell_members(group, pool_environments)
        envs = sorted({run_environment(r) for r in group})
        cells = {cell: unit_means(records, metric) for cell, records in members.items()}
        rows = sorted({r for r, _ in cells})
        cols = _order({c for _, c in cells})
        n_images = sorted({record["summary"]["n_images"] for record in group})
        out += [
            f"## {md(data)}{f', scored on {md(test)}' if test != data else ''} (profile `{md(profile)}`, "
            f"protocol v{md(version)})",
            "",
            *([f"The same data (equal fingerprints) also at: {', '.join(f'`{md(a)}`' for a in also)}.", ""]
              if (also := sorted({r["run"]["data"] for r in group} - {data})) else []),
            f"Mean per-image {metric.replace('_', ' ')} on the `{md(split)}` split of `{md(test)}` "
            f"({', '.join(map(str, n_images))} images, each scored at its original resolution); "
            "mean ± standard deviation over seeds, n = number of seeds"
            + (" (a seed's folds together score every image once and count as one seed)." if any(
                r["run"].get("fold") for r in group) else "."),
            "",
            *([(f"Environments pooled (`--pool-environments`): {'; '.join(envs)}." if pool_environments else
                f"Runs from {len(envs)} environments ({'; '.join(envs)}): a cell never pools two, and a difference "
                "between cells of two environments names them (`--pool-environments` pools them)."), ""]
              if len(envs) > 1 else []),
            "| segmenter | " + " | ".join(cols) + " |",
            "| --- | " + " | ".join("---" for _ in cols) + " |",
        ]
        for row in rows:
            line = [row]
            for col in cols:
                values = cells.get((row, col))
                line.append(f"{mean_sd(values)} (n={len(values)})" if values else "–")
            out.append("| " + " | ".join(line) + " |")
        out.append("")
        samples = cell_samples(members, metric)  # once per table, shared by every baseline's comparison
        for baseline in baselines:
            out += _comparison(rows, cols, members, samples, metric, baseline, pool_environments)
        figures = None
        if plots is not None:
            prefix = safe_name(f"{data_label(data, parse_spec(data).name)}-{profile}")
            figures = {cell: _row_figures(cell, records_of, plots / prefix, links_from or plots.parent)
                       for cell, records_of in members.items()}
        out += _distribution(rows, cols, members, figures)
    from bench.results import crossdata  # imported here: it builds on this module's cells and comparisons

    out += crossdata.render(records, metric, baselines, pool_environments)
    return "\n".join(out)


def cell_samples(members: dict[tuple[str, str], list[dict[str, Any]]], metric: str) -> dict[tuple[str, str], Sample]:
    """Each cell's seed x image score matrix."""
    return {cell: sample(records, metric) for cell, records in members.items()}


def seeds_text(result: Comparison) -> str:
    """How many seeds each side had, and whether the difference was paired by seed."""
    if result.seeds_a == result.seeds_b == 1:
        return "1"
    if result.paired and result.of is not None:
        seeds = ", ".join(u.rsplit(" ", 1)[-1] for u in result.units)
        return f"{result.seeds_a} paired (seeds {seeds} of {result.of[0]} vs {result.of[1]})"
    if result.paired:
        return f"{result.seeds_a} paired"
    return f"{result.seeds_a} vs {result.seeds_b}"


def interval_text(result: Comparison) -> str:
    """The seed x image interval with its mark, or why there is none."""
    interval = result.interval
    if interval is None:
        return "none: one seed" + ("" if result.seeds_a == result.seeds_b == 1 else " on a side")
    return f"[{interval[0]:+.4f}, {interval[1]:+.4f}]{' *' if result.significant else ''}"


def _seeds_for(result: Comparison, effect: float | None) -> str:
    if effect is None:
        return "–"
    if not result.has_seed_interval:
        return "? (one seed)"
    if effect == 0:
        return "– (no gain)"
    needed = result.seeds_needed(effect)
    if needed is not None:
        return str(needed)
    limit = result.image_mde()
    return f"> {MAX_SEEDS}" + (f" (the test images alone allow {limit:.4f})" if limit >= abs(effect) else "")


def base_column(records: list[dict[str, Any]]) -> str:
    """The strategy a cell's records ran, as its column is labelled before any setting is named in it."""
    return md(strategy(records[0]["run"]))


def baseline_cell(cell: tuple[str, str], baseline: str, members: dict) -> tuple[str, str] | None:
    """The cell ``cell`` is compared with: its row's cell of strategy ``baseline``. When the row ran that
    baseline in several environments (a CPU and a GPU), the one in ``cell``'s environment; when none is in its
    environment, the one with the most seeds (the comparison then names both environments)."""
    row = cell[0]
    found = sorted(c for c in members if c[0] == row and base_column(members[c]) == baseline)
    if len(found) <= 1:
        return found[0] if found else None
    return in_environment_of(found, cell, members)


def _comparison(rows: list[str], cols: list[str], members: dict, samples: dict[tuple[str, str], Sample],
                metric: str, baseline: str, pool_environments: bool = False) -> list[str]:
    """Each strategy minus the same segmenter's ``baseline``: the seed x image interval, the image-only one,
    the minimum detectable effect and the seeds the paper's gain for that row would need."""
    bases = {cell: base_column(records) for cell, records in members.items()}
    others = [c for c in cols if not any(bases[cell] == baseline for cell in members if cell[1] == c)]
    if baseline not in bases.values():
        return [f"No `{md(baseline)}` column in this table to compare with (it has: "
                f"{', '.join(f'`{c}`' for c in cols)}).", ""] if baseline not in BASELINES else []
    if not others:
        return []
    lines = [
        f"Difference from `{baseline}` (same segmenter, same test images), mean per-image {metric}: the 95% "
        "interval counts both seed-to-seed and test-image variance (paired on the seeds both sides ran when they "
        "share at least two, which the seeds column names; unpaired otherwise; Student t on seeds − 1 degrees of freedom; `*` marks one that excludes zero; "
        "`docs/statistics.md`). Image-only: the older 95% bootstrap interval over test images "
        f"({BOOTSTRAP_SAMPLES} resamples, each image averaged over seeds first), which ignores seed noise and "
        "is shown for reference only. MDE: the smallest difference these seeds and images detect with 80% power. "
        "Paper: the gain Tables 2 and 3 report for the row (on the 600 ISIC 2017 test images), and the seeds "
        "per side that would detect it with 80% power at this row's noise. New seed wins: the estimated "
        "probability that one new seed of the strategy beats one of the baseline on these images (t predictive).",
        "",
        "| segmenter | strategy | difference | 95% interval (seeds × images) | image-only interval | seeds | "
        "MDE (80%) | paper gain | seeds for paper gain | new seed wins |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    has_baseline = {r for r, _ in members if any(bases[(r, c)] == baseline for c in cols if (r, c) in members)}
    for row in rows:
        if row not in has_baseline:
            stray = sorted(r for r in has_baseline if r != row and (r.startswith(row + " (") or r.startswith(row + " [")))
            if stray:  # the row's baseline ran only with other settings: say so where the comparison would be
                for col in (c for c in others if (row, c) in members):
                    lines.append(f"| {row} | {col} | – (ambiguous: no `{md(baseline)}` run with this row's settings; "
                                 f"{', '.join(f'`{r}`' for r in stray)} ran it: keep one setting under --runs, or "
                                 "compare with another column with --baseline) | – | – | – | – | – | – |")
            continue
        for col in others:
            if (row, col) not in members:
                continue
            against = baseline_cell((row, col), baseline, members)
            assert against is not None
            result = compare(samples[(row, col)], samples[against])
            if result is None:
                lines.append(f"| {row} | {col} | – (no common test image) | – | – | – | – | – | – | – |")
                continue
            effect = paper.gain(members[(row, col)][0]["run"], members[against][0]["run"])
            mde = result.mde()
            here, there = ({run_environment(r) for r in members[cell]} for cell in ((row, col), against))
            shown = col if pool_environments or here == there else \
                f"{col} (ran on {'; '.join(sorted(here))}; `{md(against[1])}` on {'; '.join(sorted(there))})"
            lines.append(
                f"| {row} | {shown} | {result.mean:+.4f} | {interval_text(result)} | "
                f"[{result.image_low:+.4f}, {result.image_high:+.4f}]{' *' if result.image_significant else ''} | "
                f"{seeds_text(result)} | {'–' if mde is None else f'{mde:.4f}'} | "
                f"{'–' if effect is None else f'{effect:+.3f}'} | {_seeds_for(result, effect)} | "
                f"{'–' if result.new_seed_wins is None else f'{result.new_seed_wins:.2f}'} |")
    return lines + [""]


def _row_figures(cell: tuple[str, str], records: list[dict[str, Any]], folder: Path, links_from: Path) -> str:
    """Draw a row's pooled Jaccard histogram and seed-averaged training curves; markdown links to them."""
    import os

    from bench.results.plots import curve_source, curve_split, jaccard_histogram, training_curves

    row, col = cell
    stem = safe_name(f"{row}-{col}")
    title = f"{row} · {col} · {len(records)} seed{'s' if len(records) > 1 else ''}"
    links = []
    hist = jaccard_histogram([r["jaccard"] for rec in records for r in rec["per_image"]], title,
                             folder / f"{stem}-histogram.png")
    links.append(f"[histogram]({Path(os.path.relpath(hist, links_from)).as_posix()})")
    infos = [_curve_info(rec) for rec in records]
    curves = training_curves([rec.get("history", []) for rec in records], f"{row} · {col}",
                             folder / f"{stem}-curves.png", infos)
    if curves:
        kinds = {curve_split(info) for info in infos}
        label = "curves" if kinds == {"scored"} else f"curves on {curve_source(infos)}" if kinds == {"holdout"} \
            else "curves: runs on the scored split and on held-out pairs mixed"
        links.append(f"[{label}]({Path(os.path.relpath(curves, links_from)).as_posix()})")
    return " · ".join(links)


def _curve_info(record: dict[str, Any]) -> dict[str, Any] | None:
    """A record's ``runtime.curve`` (``None`` before ``--curve-split``: a curve on the scored split)."""
    return (record.get("runtime") or {}).get("curve")


def _curves_note(members: dict) -> str:
    """What a table's linked training curves are computed on, for the note above the plot links: the scored split
    (with why it must not choose an epoch), held-out training pairs, or both (each link then says which)."""
    from bench.results.plots import curve_split

    kinds = {curve_split(_curve_info(rec)) for records in members.values() for rec in records}
    scored = "the scored split (the test images: for reading, never for choosing an epoch)"
    if kinds == {"holdout"}:
        return ", computed on training pairs held out from all training (`--curve-split holdout:F`)"
    return f", computed on {scored}" + (" unless the link says held-out pairs" if "holdout" in kinds else "")


def _distribution(rows: list[str], cols: list[str], members: dict, figures: dict | None = None) -> list[str]:
    """Fig. 7 for every row: the per-image Jaccard histogram (seeds pooled) and the counts below 0.6 and 0.7."""
    lines = [
        "Per-image Jaccard distribution (Fig. 7), all seeds pooled: images below 0.6 and 0.7, and the counts "
        "in the bins [0, 0.1), ..., [0.9, 1.0]"
        + (f"; the plots are the pooled histogram and the training curves (Fig. 5) averaged over seeds"
           f"{_curves_note(members)}." if figures else "."),
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


def _quality_setting(record: dict[str, Any]) -> dict[str, str]:
    """What a generator-quality record measured, besides its seed: rows pool seeds of equal settings only."""
    run, metrics = record["run"], record["metrics"]
    config = record["generator"].get("config") or {}
    # the generator's seedless identity (its code included); older records name the commit they were made at
    made = record["generator"].get("identity") or f"code at {str((record.get('env') or {}).get('git'))[:7]}"
    setting = {"generator": str(record["generator"]["name"]), "generator identity": made,
               "gan size": str(run.get("gan_size"))}
    setting.update({k.replace("_", " "): str(v) for k, v in sorted((run.get("overrides") or {}).items())})
    if config.get("sample_steps") is not None:
        setting["sample steps"] = str(config["sample_steps"])
    setting["N"] = str(metrics["n_samples"])
    if "mask_coherence" in metrics:  # a reference run's seedless identity: each seed may use its own seed's run
        ref = metrics["mask_coherence"]
        # older records name only the reference's folder: without its seed_<k> it names the same experiment
        setting["coherence reference"] = str(ref.get("reference_identity")
                                             or re.sub(r"[/\\]seed_\d+[/\\]?$", "", str(ref["reference_run"])))
    if "features" in metrics:
        f = metrics["features"]
        setting["features"] = f"{f.get('extractor_key') or f['extractor']}; N {f['n_real']} real, {f['n_fake']} generated"
    return setting


def _labels(settings: dict[tuple, dict[str, str]]) -> dict[tuple, str]:
    """Row labels: the generator's name and the settings that vary among its rows; rows that these do not
    tell apart (another commit's code, another reference) also get a hash of their whole setting."""
    hidden = ("generator", "generator identity", "features", "coherence reference")
    labels = {}
    for key, setting in settings.items():
        mine = [s for s in settings.values() if s["generator"] == setting["generator"]]
        extra = [f"{k} {v}" for k, v in setting.items() if k not in hidden and len({s.get(k) for s in mine}) > 1]
        labels[key] = md(setting["generator"]) + (f" ({', '.join(md(e) for e in extra)})" if extra else "")
    counts = Counter(labels.values())
    return {key: f"{label} [{digest(settings[key])[:8]}]" if counts[label] > 1 else label
            for key, label in labels.items()}


def render_quality(records: list[dict[str, Any]]) -> str:
    """One table per (data, profile): each generator's feature-space metrics (FID, KID, precision, recall,
    density, coverage), coherence, diversity and checkerboard, real data beside. A row pools the seeds of one
    setting only; feature spaces are numbered and named under the table (their numbers are not comparable)."""
    tables: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        tables[(record["run"]["data"], record["run"]["profile"])].append(record)
    out: list[str] = []
    for (data, profile), group in sorted(tables.items(), key=lambda kv: tuple(map(str, kv[0]))):
        by_seed: dict[tuple, dict[Any, dict[str, Any]]] = defaultdict(dict)
        settings: dict[tuple, dict[str, str]] = {}
        for record in group:
            setting = _quality_setting(record)
            key = tuple(sorted(setting.items()))
            by_seed[key][record["run"].get("seed")] = record["metrics"]  # one measurement per seed counts once
            settings[key] = setting
        rows = {key: list(seeds.values()) for key, seeds in by_seed.items()}
        labels = _labels(settings)
        spaces = sorted({s["features"] for s in settings.values() if "features" in s})
        references = sorted({s["coherence reference"] for s in settings.values() if "coherence reference" in s})
        out += [
            f"## Generator quality: {md(data)} (profile `{md(profile)}`)",
            "",
            "FID, KID (x 1000; s.e.: its standard deviation over 100 subsets), precision, recall, density and "
            "coverage (k = 5) in the feature space the column [F] names below: not comparable with published "
            "Inception FIDs, nor across feature spaces. Mask coherence: mean Jaccard between each sample's mask and "
            "a real-data-trained segmenter's prediction on the sample (higher is better). Diversity: mean pairwise "
            "SSIM of the samples (lower is more diverse). Checkerboard: share of spectral energy on the Nyquist row "
            "and column (stride-2 artefacts). Mean ± standard deviation over seeds; N = samples per seed for "
            "coherence, diversity and checkerboard.",
            "",
            "| generator | FID | KID x 1000 | KID s.e. x 1000 | precision | recall | density | coverage | [F] "
            "| mask coherence | diversity (SSIM) | checkerboard | N | seeds |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        real: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
        for key in sorted(rows, key=lambda k: labels[k]):
            ms, setting = rows[key], settings[key]
            feats = [m["features"] for m in ms if "features" in m]
            space = f"F{spaces.index(setting['features']) + 1}" if "features" in setting else "–"
            coherence = [m["mask_coherence"]["value"] for m in ms if "mask_coherence" in m]
            out.append(
                f"| {labels[key]} | {mean_sd([f['fid'] for f in feats])} | "
                f"{mean_sd([1000 * f['kid']['value'] for f in feats])} | "
                f"{_mean_only([1000 * f['kid']['std'] for f in feats])} | "
                + " | ".join(mean_sd([f[k] for f in feats]) for k in ("precision", "recall", "density", "coverage"))
                + f" | {space} | {mean_sd(coherence)} | {mean_sd([m['diversity_ssim']['value'] for m in ms])} | "
                f"{mean_sd([m['checkerboard']['value'] for m in ms])} | {setting['N']} | {len(ms)} |"
            )
            real[setting["N"]][0].extend(m["diversity_ssim"]["real"] for m in ms)
            real[setting["N"]][1].extend(m["checkerboard"]["real"] for m in ms)
        for n, (div, cb) in sorted(real.items(), key=lambda kv: int(kv[0])):  # each N has its own real images
            out.append(f"| real training images | – | – | – | – | – | – | – | – | – | {np.mean(div):.4f} | "
                       f"{np.mean(cb):.4f} | {n} | – |")
        out.append("")
        for i, space in enumerate(spaces):
            described = sorted({m["features"]["extractor"] for k, st in settings.items()
                                if st.get("features") == space for m in rows[k]})
            out.append(f"- [F{i + 1}] {md(space)}: " + "; ".join(md(n) for n in described))
        out += [f"- mask coherence judged by the segmenter of reference {md(ref)}" for ref in references]
        out.append("")
    return "\n".join(out)


def _mean_only(values: list[float]) -> str:
    return f"{np.mean(values):.4f}" if values else "–"
