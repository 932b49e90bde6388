"""Results as data: the records a leaderboard counts, and the leaderboard's cells, as tidy tables (pandas).

``bench results`` gives one row per record (:func:`run_table`) or per (record, test image)
(:func:`image_table`); ``bench leaderboard --format csv|json`` gives the board's cells (:func:`board_table`),
walking the grouping the markdown renderer walks (``leaderboard.cell_members``) and computing each number with
the same functions, unformatted. Column names are stable (:data:`RUN_COLUMNS`, :data:`IMAGE_COLUMNS`,
:data:`BOARD_COLUMNS`; README.md, "Results as data", documents them): a column a record lacks is empty, never
absent. Records can carry keys this version does not name (a newer setting): they follow, sorted, as
``run.KEY``, ``timings.KEY`` or ``per_image.KEY``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.config import profiles
from bench.config.identity import RUNTIME_KEYS
from bench.errors import BenchError
from bench.results import paper
from bench.results.crossdata import sections
from bench.results.grouping import BASELINES, group_tables, md, strategy
from bench.results.leaderboard import _order, base_column, baseline_cell, cell_members, cell_samples, table_order
from bench.results.reader import environment_facts, run_environment
from bench.results.records import gen_label
from bench.results.stats import MAX_SEEDS, Comparison, _unit_order, compare, unit_means, unit_of

FORMATS = ("csv", "json", "parquet")

KEY_COLUMNS: tuple[str, ...] = (
    "record", "kind", "identity", "table_data", "table_test", "test_split", "profile", "protocol_version",
    "row", "column", "segmenter", "loss", "strategy", "generators", "schedule", "seed", "fold", "member_seeds",
    "unit", "environment",
)
"""What names a record: its file, identity, the board table and cell it is counted in (labels as the markdown
prints them), its main settings, its seed and fold (an ensemble: its members' seeds) and its environment."""

_COVERED = frozenset({"kind", "seg", "loss", "strategy", "gen", "schedule", "profile", "seed", "fold",
                      "protocol_version", "data", "test", "data_name", "test_name"})
"""Keys of a record's ``run`` section that :data:`KEY_COLUMNS` or :data:`DATA_COLUMNS` already give."""

SETTING_COLUMNS: tuple[str, ...] = tuple(f.name for f in profiles.FIELDS if f.name not in _COVERED) + (
    "optimizer", "augment", "weights", "weights_sha256", "subset", "subset_seed", "exclude", "fold_seed", "nproc",
    "loss_default", "schedule_uses", "overrides", "high", "low", "post_processing", "members",
)
"""Every protocol setting of a record's ``run`` section (the settings table's, then the rest; an ensemble's
thresholds and members). Objects and lists are JSON text."""

DATA_COLUMNS = ("data", "test", "data_name", "test_name", "train_split", "test_split_reason", "n_train", "n_test",
                "train_fingerprint", "test_fingerprint")
ENV_COLUMNS = ("device", "precision", "torch", "skinbench", "git")
METRICS = ("jaccard", "dice", "accuracy", "sensitivity", "specificity", "threshold_jaccard")
SUMMARY_COLUMNS = METRICS + ("n_images", "below_0.6", "below_0.7")
TIMING_COLUMNS = ("prepare_s", "gan_train_s", "train_s", "evaluate_s", "total_s")
RUN_COLUMNS: tuple[str, ...] = (KEY_COLUMNS + SETTING_COLUMNS + DATA_COLUMNS + ENV_COLUMNS + SUMMARY_COLUMNS
                                + TIMING_COLUMNS)
"""``bench results``: one row per record, these columns in this order (then any ``run.KEY``/``timings.KEY``)."""

PER_IMAGE_COLUMNS = ("image",) + METRICS + ("tp", "fp", "fn", "tn")
IMAGE_COLUMNS: tuple[str, ...] = KEY_COLUMNS + PER_IMAGE_COLUMNS
"""``bench results --per-image``: one row per (record, test image) (then any ``per_image.KEY``)."""

HISTOGRAM_COLUMNS = tuple(f"hist_{i}" for i in range(10))
"""The cell's pooled per-image histogram: ``hist_0`` counts [0, 0.1), ..., ``hist_9`` [0.9, 1.0]."""

CELL_COLUMNS: tuple[str, ...] = (
    "data", "test", "split", "profile", "protocol_version", "metric", "row", "column", "environment",
    "mean", "sd", "n_seeds", "seeds", "n_records", "images", "below_0.6", "below_0.7", *HISTOGRAM_COLUMNS,
)
COMPARISON_COLUMNS: tuple[str, ...] = (
    "baseline", "baseline_column", "baseline_environment", "baseline_mean", "baseline_n_seeds", "difference", "ci_low", "ci_high",
    "significant", "p", "se", "df", "image_ci_low", "image_ci_high", "image_significant", "paired", "paired_seeds",
    "compared_seeds", "compared_baseline_seeds", "n_images_compared", "mde", "image_mde", "paper_gain",
    "seeds_for_paper_gain", "new_seed_wins", "note",
)
TABLE_COLUMNS: tuple[str, ...] = ("table", "train_label", "test_label")
"""Which part of the board a row is from: ``main`` (a (training data, test data) pair's own table) or
``cross-dataset`` (a cell of the train x test matrices, ``results/crossdata.py``; ``row`` and ``column`` are then
the matrix's labels, ``data``/``test``/``split`` the cell's pair, ``train_label``/``test_label`` the dataset labels
as the matrix prints them, and ``baseline_column`` the matrix's label of the baseline cell)."""
BOARD_COLUMNS: tuple[str, ...] = CELL_COLUMNS + COMPARISON_COLUMNS + TABLE_COLUMNS
"""``bench leaderboard --format csv|json``: one row per (table, row, column, baseline): the cell's own numbers
on each, its difference from ``baseline`` beside them; a cell compared with nothing (a baseline itself, a
table without one) has one row, ``baseline`` empty. The cross-dataset matrices' cells follow (``table``
``cross-dataset``): the same cells again, under the matrix's labels."""


@dataclass
class Table:
    """Rows (dicts of JSON scalars) under named columns: what every output format is written from."""

    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def frame(self) -> Any:
        """A pandas DataFrame: the columns in order, whole numbers as nullable integers, flags as booleans."""
        import pandas as pd

        data = {}
        for column in self.columns:
            values = [row.get(column) for row in self.rows]
            present = [v for v in values if v is not None]
            if present and all(isinstance(v, bool) for v in present):
                data[column] = pd.array(values, dtype="boolean")
            elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
                data[column] = pd.array(values, dtype="Int64")
            elif present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
                data[column] = pd.array([math.nan if v is None else float(v) for v in values], dtype="float64")
            else:
                data[column] = pd.array(values, dtype=object)
        return pd.DataFrame(data, columns=self.columns)

    def json(self) -> str:
        """A JSON array of row objects (every column, in order), one row a line."""
        lines = [json.dumps({c: row.get(c) for c in self.columns}, allow_nan=False) for row in self.rows]
        return "[\n" + ",\n".join(lines) + "\n]\n" if lines else "[]\n"

    def csv(self) -> str:
        return str(self.frame().to_csv(index=False, lineterminator="\n"))


def parquet_engine() -> str:
    """The installed parquet engine (pyarrow, else fastparquet); a one-line error naming the fix otherwise."""
    for engine in ("pyarrow", "fastparquet"):
        try:
            __import__(engine)
        except ImportError:
            continue
        return engine
    raise BenchError("--format parquet needs pyarrow or fastparquet, and neither is installed: pip install pyarrow")


def write(table: Table, fmt: str, out: Path | None) -> str | None:
    """``table`` as ``fmt``: written atomically to ``out``, or returned as text (csv, json) when ``out`` is None."""
    from bench.storage.atomic import atomic_save, atomic_write_bytes

    if fmt == "parquet":
        if out is None:
            raise BenchError("--format parquet writes a binary file: give --out FILE.parquet")
        engine = parquet_engine()
        frame = table.frame()
        atomic_save(out, lambda tmp: frame.to_parquet(tmp, engine=engine, index=False))
        return None
    if fmt not in ("csv", "json"):
        raise BenchError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    text = table.csv() if fmt == "csv" else table.json()
    if out is None:
        return text
    atomic_write_bytes(out, text.encode())
    return None


def _scalar(value: Any) -> Any:
    """A record value as one table cell: JSON scalars as they are (non-finite floats empty), anything else as
    compact JSON text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, np.generic):
        return _scalar(value.item())
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _placed(records: list[dict[str, Any]], pool_environments: bool) -> dict[int, tuple[tuple, tuple[str, str]]]:
    """Each record's board table and cell, by ``id``: the grouping ``bench leaderboard`` counts it in."""
    placed = {}
    tables = group_tables(records)
    for key, group in tables.items():
        for cell, members in cell_members(group, pool_environments).items():
            for record in members:
                placed[id(record)] = (key, cell)
    return placed


def _key(record: dict[str, Any], key: tuple, cell: tuple[str, str]) -> dict[str, Any]:
    run = record["run"]
    ensemble = run.get("kind") == "ensemble"
    data, test, split, profile, version = key
    return {
        "record": record.get("_path"), "kind": "ensemble" if ensemble else "run",
        "identity": record["identity"]["hash"], "table_data": data, "table_test": test, "test_split": split,
        "profile": profile, "protocol_version": _scalar(version), "row": cell[0], "column": cell[1],
        "segmenter": run.get("seg"), "loss": run.get("loss"), "strategy": strategy(run),
        "generators": gen_label(run.get("gen") or []), "schedule": run.get("schedule"),
        "seed": _scalar(run.get("seed")), "fold": _scalar(run.get("fold")),
        "member_seeds": "+".join(sorted((str(m.get("seed")) for m in run.get("members", [])), key=_unit_order))
        if ensemble else None,
        "unit": unit_of(record), "environment": run_environment(record),
    }


def _extra(section: dict[str, Any], known: set[str] | frozenset[str], prefix: str) -> dict[str, Any]:
    return {f"{prefix}.{k}": _scalar(v) for k, v in section.items() if k not in known}


def _with_extras(base: tuple[str, ...], rows: list[dict[str, Any]]) -> list[str]:
    extras = sorted({k for row in rows for k in row} - set(base))
    return list(base) + extras


def run_table(records: list[dict[str, Any]], pool_environments: bool = False) -> Table:
    """One row per record (:data:`RUN_COLUMNS`), in ``records``' order: give it what ``load_records`` returns,
    the records the leaderboard counts."""
    placed = _placed(records, pool_environments)
    rows = []
    known_run = set(_COVERED) | set(SETTING_COLUMNS) | set(RUNTIME_KEYS)  # older records: runtime facts in run
    for record in records:
        key, cell = placed[id(record)]
        run, runtime = record["run"], record.get("runtime") or {}
        env, fps = record.get("env") or {}, record.get("data_fingerprint") or {}
        timings, summary = record.get("timings") or {}, record["summary"]
        device, precision, _ = environment_facts(record)
        row = _key(record, key, cell)
        row.update({k: _scalar(run.get(k)) for k in SETTING_COLUMNS})
        row.update({
            "data": run.get("data"), "test": run.get("test"), "data_name": run.get("data_name"),
            "test_name": run.get("test_name"), "train_split": runtime.get("train_split"),
            "test_split_reason": runtime.get("test_split_reason"), "n_train": _scalar(runtime.get("n_train")),
            "n_test": _scalar(runtime.get("n_test")), "train_fingerprint": fps.get("train"),
            "test_fingerprint": fps.get("test"),
            "device": device, "precision": precision, "torch": _scalar(env.get("torch")),
            "skinbench": _scalar(env.get("skinbench")), "git": _scalar(env.get("git")),
        })
        row.update({k: _scalar(summary.get(k)) for k in SUMMARY_COLUMNS})
        row.update({k: _scalar(timings.get(k)) for k in TIMING_COLUMNS})
        row.update(_extra(run, known_run, "run"))
        row.update(_extra(timings, set(TIMING_COLUMNS), "timings"))
        rows.append(row)
    return Table(_with_extras(RUN_COLUMNS, rows), rows)


def image_table(records: list[dict[str, Any]], pool_environments: bool = False) -> Table:
    """One row per (record, test image) (:data:`IMAGE_COLUMNS`): the per-image scores with the record's key."""
    placed = _placed(records, pool_environments)
    rows = []
    for record in records:
        key = _key(record, *placed[id(record)])
        for scores in record["per_image"]:
            row = {**key, "image": scores.get("id")}
            row.update({k: _scalar(scores.get(k)) for k in PER_IMAGE_COLUMNS[1:]})
            row.update(_extra(scores, set(PER_IMAGE_COLUMNS) | {"id"}, "per_image"))
            rows.append(row)
    return Table(_with_extras(IMAGE_COLUMNS, rows), rows)


def board_table(records: list[dict[str, Any]], metric: str = "jaccard", baselines: tuple[str, ...] = BASELINES,
                pool_environments: bool = False) -> Table:
    """The cells of ``bench leaderboard`` (same arguments) as numbers (:data:`BOARD_COLUMNS`): every cell's
    mean, standard deviation and seeds, its Fig. 7 counts, and its comparison with each baseline the markdown
    shows, computed as the markdown computes them."""
    rows: list[dict[str, Any]] = []
    tables = group_tables(records)
    for key in sorted(tables, key=table_order):
        data, test, split, profile, version = key
        members = cell_members(tables[key], pool_environments)
        cells = {cell: unit_means(rs, metric) for cell, rs in members.items()}
        row_labels = sorted({r for r, _ in cells})
        cols = _order({c for _, c in cells})
        samples = cell_samples(members, metric)
        for row in row_labels:
            for col in cols:
                if (row, col) not in members:
                    continue
                base = {"data": data, "test": test, "split": split, "profile": profile,
                        "protocol_version": _scalar(version), "metric": metric, "row": row, "column": col,
                        **_cell(members[(row, col)], cells[(row, col)]), "table": "main"}
                compared = [c for baseline in baselines
                            if (c := _comparison(row, col, baseline, row_labels, cols, members, cells, samples))]
                rows += [{**base, **c} for c in compared] or [base]
    rows += _cross_rows(records, metric, baselines, pool_environments)
    return Table(_with_extras(BOARD_COLUMNS, rows), rows)


def _cross_rows(records: list[dict[str, Any]], metric: str, baselines: tuple[str, ...],
                pool_environments: bool) -> list[dict[str, Any]]:
    """The board's cross-dataset matrices as rows: each matrix cell with the numbers of the pair table's cell it
    is (:func:`_cell`) and that cell's comparisons (:func:`_comparison`, as the main rows compute them), under the
    matrix's labels."""
    rows: list[dict[str, Any]] = []
    for section in sections(records, metric, pool_environments):
        matrix_label = {(at, cell): matrix for matrix, places in section.place.items() for at, cell in places.items()}
        for row, col in ((r, c) for r in section.rows for c in section.cols if (r, c) in section.place):
            for train in section.trains:
                for column in section.tests:
                    found = section.table_cell((row, col), train, column)
                    if found is None:
                        continue
                    pair, cell = found
                    data, test, split, profile, version = pair.key
                    base = {"data": data, "test": test, "split": split, "profile": profile,
                            "protocol_version": _scalar(version), "metric": metric, "row": row, "column": col,
                            **_cell(pair.members[cell], pair.cells[cell]), "table": "cross-dataset",
                            "train_label": md(section.labels[train]), "test_label": md(section.column_labels[column])}
                    compared = [c for baseline in baselines if (c := _comparison(
                        cell[0], cell[1], baseline, pair.rows, pair.cols, pair.members, pair.cells, pair.samples))]
                    for c in compared:
                        against = c.get("baseline_column")
                        if against is not None:
                            c["baseline_column"] = matrix_label[((train, column), (cell[0], against))][1]
                    rows += [{**base, **c} for c in compared] or [base]
    return rows


def _cell(records: list[dict[str, Any]], values: list[float]) -> dict[str, Any]:
    units = sorted({unit_of(r) for r in records}, key=_unit_order)
    counts = np.sum([r["histogram"]["counts"] for r in records], axis=0)
    return {
        "environment": "; ".join(sorted({run_environment(r) for r in records})),
        "mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None,
        "n_seeds": len(values), "seeds": " ".join(u.rsplit(" ", 1)[-1] for u in units), "n_records": len(records),
        "images": int(sum(r["summary"]["n_images"] for r in records)),
        "below_0.6": int(sum(r["summary"]["below_0.6"] for r in records)),
        "below_0.7": int(sum(r["summary"]["below_0.7"] for r in records)),
        **{f"hist_{i}": int(c) for i, c in enumerate(counts)},
    }


def _comparison(row: str, col: str, baseline: str, rows: list[str], cols: list[str], members: dict,
                cells: dict, samples: dict) -> dict[str, Any] | None:
    """The numbers of ``leaderboard._comparison``'s line for (``row``, ``col``) against ``baseline``; ``None``
    where the markdown has no line."""
    bases = {cell: base_column(records) for cell, records in members.items()}
    if baseline not in bases.values() or bases[(row, col)] == baseline:
        return None
    against = baseline_cell((row, col), baseline, members)
    if against is None:
        has = {r for (r, _), b in bases.items() if b == baseline}
        stray = sorted(r for r in has if r != row and (r.startswith(row + " (") or r.startswith(row + " [")))
        if not stray:
            return None
        return {"baseline": baseline, "note": f"ambiguous: no `{md(baseline)}` run with this row's settings; "
                                              f"{', '.join(f'`{r}`' for r in stray)} ran it"}
    there = members[against]
    out: dict[str, Any] = {"baseline": baseline, "baseline_column": against[1],
                           "baseline_environment": "; ".join(sorted({run_environment(r) for r in there})),
                           "baseline_mean": float(np.mean(cells[against])),
                           "baseline_n_seeds": len(cells[against])}
    result = compare(samples[(row, col)], samples[against])
    if result is None:
        return {**out, "note": "no common test image"}
    effect = paper.gain(members[(row, col)][0]["run"], there[0]["run"])
    interval = result.interval
    out.update({
        "difference": result.mean, "ci_low": interval[0] if interval else None,
        "ci_high": interval[1] if interval else None, "significant": result.significant if interval else None,
        "p": result.p_value, "se": result.se, "df": result.df,
        "image_ci_low": result.image_low, "image_ci_high": result.image_high,
        "image_significant": result.image_significant, "paired": result.paired,
        "paired_seeds": " ".join(u.rsplit(" ", 1)[-1] for u in result.units) if result.paired else None,
        "compared_seeds": result.seeds_a, "compared_baseline_seeds": result.seeds_b,
        "n_images_compared": result.n_images, "mde": result.mde(), "image_mde": result.image_mde(),
        "paper_gain": effect, "seeds_for_paper_gain": _seeds_for(result, effect),
        "new_seed_wins": result.new_seed_wins,
        "note": None if interval else "no seed interval: one seed" + (
            "" if result.seeds_a == result.seeds_b == 1 else " on a side"),
    })
    return out


def _seeds_for(result: Comparison, effect: float | None) -> int | None:
    """The seeds per side that would detect the paper's gain; ``None`` without a gain, an interval, or within
    :data:`MAX_SEEDS` (the markdown's ``> 100``)."""
    if effect is None or effect == 0 or not result.has_seed_interval:
        return None
    needed = result.seeds_needed(effect)
    return needed if needed is not None and needed <= MAX_SEEDS else None
