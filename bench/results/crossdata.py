"""Cross-dataset evaluation: train x test matrices of the board's cells ("does a GAN's gain on ISIC 2017 hold
when the same models are scored on PH2?").

When the records of one profile and protocol version span more than one (training data, test data) pair, the
board gains a "Cross-dataset" section: per segmenter row and strategy a matrix, rows the training data, columns
the test data, and per strategy its difference from a baseline trained and scored on the same pair.

Every matrix cell *is* a cell of that pair's own table: the same records (``leaderboard.cell_members``), the same
mean ± sd, and the same comparison (``leaderboard.baseline_cell`` and ``stats.compare`` on the pair's samples),
so the matrix can never show a number the pair's table does not. What it adds is one labelling across the tables:
rows and columns are labelled (``grouping.distinct_labels``, environments apart as in the tables) over all the
section's records at once, with the training and test data and what follows from them alone (each generator's
training data) left out of the identity. A matrix row is then one experiment design, whose settings other than
the data are the same in every cell; designs that differ in anything else are different rows, named by what
differs, exactly as the tables name them.

Datasets are the tables' canonical specs (``grouping.group_tables``: equal fingerprints are one dataset, whatever
the path) shown by a short label (:func:`dataset_labels`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from bench.config.identity import digest, generator_identity
from bench.data.spec import parse_spec
from bench.results.grouping import (BASELINES, DERIVED, by_environment, distinct_labels, group_tables, md, mean_sd,
                                    row_label, strategy)
from bench.results.leaderboard import (_order, base_column, baseline_cell, cell_members, cell_samples, interval_text,
                                       seeds_text, table_order)
from bench.results.reader import run_environment
from bench.results.records import data_label
from bench.results.stats import Comparison, Sample, compare, unit_means

Cell = tuple[str, str]
"""A ``(row, column)`` label pair."""
Column = tuple[str, Any]
"""A matrix column: the test data's canonical spec and its scored split."""
Place = tuple[str, Column]
"""Where in a matrix a cell sits: the training data's canonical spec and the column."""


@dataclass
class Pair:
    """One (training data, test data, split) table of the board: its cells as the table labels them."""

    key: tuple
    members: dict[Cell, list[dict[str, Any]]]
    cells: dict[Cell, list[float]]
    samples: dict[Cell, Sample]
    rows: list[str]
    cols: list[str]


@dataclass
class Section:
    """The matrices of one profile and protocol version: the pairs, the matrix labels, and where each matrix cell
    is in its pair's table."""

    profile: str
    version: Any
    pairs: dict[Place, Pair]
    place: dict[Cell, dict[Place, Cell]]
    """Matrix cell -> {(train, column): the pair table's cell holding the same records}."""
    rows: list[str]
    cols: list[str]
    trains: list[str]
    tests: list[Column]
    labels: dict[str, str]
    """Canonical dataset spec -> its short label."""
    column_labels: dict[Column, str]
    aliases: dict[str, list[str]] = field(default_factory=dict)
    """Canonical spec -> other specs of the same content that records used."""

    def table_cell(self, cell: Cell, train: str, column: Column) -> tuple[Pair, Cell] | None:
        """The pair's table and its cell that matrix ``cell`` shows at (``train``, ``column``); ``None`` when that
        pair has no run of it."""
        found = self.place.get(cell, {}).get((train, column))
        return None if found is None else (self.pairs[(train, column)], found)


def dataset_labels(specs: list[str]) -> dict[str, str]:
    """A short, unique label per canonical spec: the dataset's registered name; when several specs share a name,
    the name with the options whose values differ (``fixture (seed=1)``) and, when the roots differ, the shortest
    tail of the root that tells them apart (``isic2017 (b/isic2017)``). Labels that still collide fall back to the
    run folder's name (``isic2017-1a2b3c4d``, a hash of the whole spec)."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for spec in specs:
        by_name[parse_spec(spec).name].append(spec)
    labels: dict[str, str] = {}
    for name, group in by_name.items():
        if len(group) == 1:
            labels[group[0]] = name
            continue
        parsed = {spec: parse_spec(spec) for spec in group}
        keys = sorted(k for k in {k for p in parsed.values() for k in p.options}
                      if len({p.options.get(k) for p in parsed.values()}) > 1)
        tails = _root_tails([p.arg for p in parsed.values()])
        for (spec, p), tail in zip(parsed.items(), tails):
            parts = ([tail] if tail is not None else []) + [f"{k}={p.options[k]}" for k in keys if k in p.options]
            labels[spec] = f"{name} ({', '.join(parts)})" if parts else name
    counts = Counter(labels.values())
    return {spec: label if counts[label] == 1 else data_label(spec, parse_spec(spec).name)
            for spec, label in labels.items()}


def _root_tails(roots: list[str | None]) -> list[str | None]:
    """The shortest path tails that tell ``roots`` apart (``None`` for all when they do not differ; ``no root``
    for a spec without one)."""
    if len(set(roots)) == 1:
        return [None] * len(roots)
    parts = [PurePosixPath(r).parts if r is not None else () for r in roots]
    longest = max(len(p) for p in parts)
    for k in range(1, longest + 1):
        tails: list[str | None] = [str(PurePosixPath(*p[-k:])) if r is not None else "no root"
                                   for p, r in zip(parts, roots)]
        if len(set(tails)) == len(set(roots)):
            return tails
    return [r if r is not None else "no root" for r in roots]


def _generator_design(record: dict[str, Any], name: str, value: Any) -> Any:
    """Generator ``name``'s identity with its training data left out (its configuration, plugin version and
    source), when the record's generator entry reproduces ``value``, the seedless identity the run's identity
    holds; ``value`` otherwise (a record that does not say, which then never shares a row across training data)."""
    train = (record.get("data_fingerprint") or {}).get("train")
    for gen in record.get("generators") or []:
        if gen.get("name") != name or not isinstance(gen.get("config"), dict):
            continue
        config, version, code = gen["config"], gen.get("plugin_version"), gen.get("code")
        if generator_identity(config, str(train), version, code) == value:
            return "design " + digest({"config": config, "plugin_version": version, "code": code})
    return value


def _designs(records: list[dict[str, Any]], pool_environments: bool) -> list[dict[str, Any]]:
    """Stand-ins of ``records`` for the matrix labelling, in order: identities without the training and test
    data (and the generators' training data), with the environment as the tables have it. Within one pair two
    records share a stand-in identity exactly when they share a table cell."""
    out = []
    for record in records if pool_environments else by_environment(records):
        gens = {f"{name} generator": name for name in record["run"].get("gen") or []}
        settings = {key: _generator_design(record, gens[key], value) if key in gens else value
                    for key, value in record["identity"]["settings"].items() if key not in DERIVED}
        hashed = {k: v for k, v in settings.items() if k != "member seeds"}  # as ensemble_identity hashes
        out.append({**record, "identity": {"hash": digest(hashed), "settings": settings}})
    return out


def sections(records: list[dict[str, Any]], metric: str = "jaccard",
             pool_environments: bool = False) -> list[Section]:
    """The board's cross-dataset sections: one per (profile, protocol version) whose records span more than one
    (training data, test data) pair, in board order."""
    tables = group_tables(records)
    by_protocol: dict[tuple, list[tuple]] = defaultdict(list)
    for key in sorted(tables, key=table_order):
        by_protocol[(key[3], key[4])].append(key)
    out = []
    for (profile, version), keys in sorted(by_protocol.items(), key=lambda kv: tuple(map(str, kv[0]))):
        if len({(data, test) for data, test, *_ in keys}) > 1:
            out.append(_section(profile, version, {key: tables[key] for key in keys}, metric, pool_environments))
    return out


def _section(profile: str, version: Any, tables: dict[tuple, list[dict[str, Any]]], metric: str,
             pool_environments: bool) -> Section:
    """A section from its tables: each pair's cells as its table has them, and the matrix labels over them all."""
    pairs: dict[Place, Pair] = {}
    where: dict[int, tuple[Place, Cell]] = {}
    aliases: dict[str, set[str]] = defaultdict(set)
    everything: list[dict[str, Any]] = []
    for key, group in tables.items():
        data, test, split = key[:3]
        place = (data, (test, split))
        members = cell_members(group, pool_environments)
        cells = {cell: unit_means(rs, metric) for cell, rs in members.items()}
        pairs[place] = Pair(key, members, cells, cell_samples(members, metric), sorted({r for r, _ in cells}),
                            _order({c for _, c in cells}))
        for cell, rs in members.items():
            for record in rs:
                where[id(record)] = (place, cell)
                aliases[data].add(record["run"]["data"])
                aliases[test].add(record["run"]["test"])
        everything += group
    place_of: dict[Cell, dict[Place, Cell]] = defaultdict(dict)
    labels = distinct_labels(_designs(everything, pool_environments), lambda r: md(row_label(r["run"])),
                             lambda r: md(strategy(r["run"])))
    for record, cell in zip(everything, labels):
        at, table_cell = where[id(record)]
        seen = place_of[cell].setdefault(at, table_cell)
        assert seen == table_cell, f"matrix cell {cell} holds two cells of one table: {seen}, {table_cell}"
    trains = sorted({data for data, _ in pairs})
    tests = sorted({column for _, column in pairs}, key=lambda c: (str(c[0]), str(c[1])))
    names = dataset_labels(sorted(set(trains) | {spec for spec, _ in tests}))
    splits = Counter(spec for spec, _ in tests)
    column_labels = {c: names[c[0]] + (f" ({c[1]})" if splits[c[0]] > 1 else "") for c in tests}
    return Section(profile, version, pairs, dict(place_of), sorted({r for r, _ in place_of}),
                   _order({c for _, c in place_of}), sorted(trains, key=lambda s: names[s]),
                   sorted(tests, key=lambda c: column_labels[c]), names, column_labels,
                   {spec: sorted(a - {spec}) for spec, a in aliases.items() if a - {spec}})


@dataclass(frozen=True)
class Difference:
    """A matrix cell of a difference matrix: the pair table's comparison (``result``, with the baseline cell it
    was compared with), or why there is none (``note``)."""

    result: Comparison | None
    against: Cell | None
    note: str | None


def difference(pair: Pair, cell: Cell, baseline: str) -> Difference | None:
    """``cell`` of ``pair``'s table minus the same row's ``baseline`` cell, as the table's difference row computes
    it (``baseline_cell``, then ``compare`` on the table's samples); ``None`` where the table has no such row."""
    against = baseline_cell(cell, baseline, pair.members)
    if against is None:
        bases = {c: base_column(rs) for c, rs in pair.members.items()}
        has = {r for (r, _), b in bases.items() if b == baseline}
        row = cell[0]
        stray = [r for r in has if r != row and (r.startswith(row + " (") or r.startswith(row + " ["))]
        return Difference(None, None, "ambiguous: see the pair's table") if stray else None
    result = compare(pair.samples[cell], pair.samples[against])
    return Difference(result, against, None if result is not None else "no common test image")


def _difference_text(pair: Pair, cell: Cell, found: Difference, pool_environments: bool) -> str:
    """A difference matrix cell: the difference, its seed x image interval (``*`` when it excludes zero) and the
    seeds, in the words of the table's difference row; the baseline's environment when it is another."""
    if found.result is None or found.against is None:
        return f"– ({found.note})"
    result = found.result
    interval = interval_text(result)
    text = (f"{result.mean:+.4f} {interval}" if result.interval is not None else f"{result.mean:+.4f}; interval {interval}")
    text += f"; seeds {seeds_text(result)}"
    here, there = ({run_environment(r) for r in pair.members[c]} for c in (cell, found.against))
    if not pool_environments and here != there:
        text += f"; ran on {'; '.join(sorted(here))}, `{found.against[1]}` on {'; '.join(sorted(there))}"
    return text


def render(records: list[dict[str, Any]], metric: str = "jaccard", baselines: tuple[str, ...] = BASELINES,
           pool_environments: bool = False) -> list[str]:
    """The board's "Cross-dataset" sections as markdown lines (none when no profile spans two pairs)."""
    out: list[str] = []
    for section in sections(records, metric, pool_environments):
        out += _render_section(section, metric, baselines, pool_environments)
    return out


def _legend(section: Section) -> list[str]:
    """What each dataset label stands for: its spec, other specs of the same content, and the split it is
    scored on."""
    lines = []
    for spec in sorted(section.labels, key=lambda s: section.labels[s]):
        scored = sorted({str(split) for test, split in section.tests if test == spec})
        lines.append(f"- `{md(section.labels[spec])}`: `{md(spec)}`"
                     + (f" (equal fingerprints: the same files as {', '.join(f'`{md(a)}`' for a in section.aliases[spec])})"
                        if spec in section.aliases else "")
                     + (f"; scored on its {', '.join(f'`{md(s)}`' for s in scored)} split" if scored else "")
                     + ("" if spec in section.trains else "; never trained on"))
    return lines + [""]


def _header(section: Section) -> list[str]:
    return ["| segmenter | strategy | trained on | "
            + " | ".join(f"scored on {md(section.column_labels[c])}" for c in section.tests) + " |",
            "| --- | --- | --- | " + " | ".join("---" for _ in section.tests) + " |"]


def _lines(section: Section) -> list[tuple[str, str, str]]:
    """The matrices' lines in board order: (row, strategy, training data) for each strategy a row ran and each
    dataset the row trained on, so every strategy of a row shows the same training data."""
    out = []
    for row in section.rows:
        cols = [c for c in section.cols if (row, c) in section.place]
        trains = {train for c in cols for train, _ in section.place[(row, c)]}
        out += [(row, col, train) for col in cols for train in section.trains if train in trains]
    return out


def _render_section(section: Section, metric: str, baselines: tuple[str, ...], pool_environments: bool) -> list[str]:
    """One section: the legend, the cells' matrix (a line per segmenter row, strategy and training data, a column
    per test data) and one difference matrix per baseline."""
    out = [
        f"## Cross-dataset (profile `{md(section.profile)}`, protocol v{md(section.version)})",
        "",
        f"Trained on one dataset (the line's), scored on another (the column's): mean per-image "
        f"{metric.replace('_', ' ')}, mean ± standard deviation over seeds, n = number of seeds. Each cell is the "
        "cell of that (training, test) pair's table above, the same runs and numbers; – : no runs. A segmenter "
        "row is one design, the same in every cell: runs that differ in anything but the data are other rows, "
        "named by what differs. Datasets are compared by content and named by their registered name (with what "
        "tells two of one name apart):",
        "",
        *_legend(section),
        *_header(section),
    ]
    for row, col, train in _lines(section):
        line = [row, col, md(section.labels[train])]
        for test in section.tests:
            found = section.table_cell((row, col), train, test)
            values = found[0].cells[found[1]] if found else None
            line.append(f"{mean_sd(values)} (n={len(values)})" if values else "–")
        out.append("| " + " | ".join(line) + " |")
    out.append("")
    for baseline in baselines:
        out += _differences(section, baseline, metric, pool_environments)
    return out


def _differences(section: Section, baseline: str, metric: str, pool_environments: bool) -> list[str]:
    """The difference matrix from ``baseline``: a line per (row, strategy, training data) with a comparison on some
    pair, a column per test data; nothing when no cell has one."""
    lines = []
    for row, col, train in _lines(section):
        texts, any_shown = [], False
        for test in section.tests:
            found = section.table_cell((row, col), train, test)
            if found is None or base_column(found[0].members[found[1]]) == baseline:
                texts.append("–")
                continue
            diff = difference(found[0], found[1], baseline)
            texts.append("–" if diff is None else _difference_text(found[0], found[1], diff, pool_environments))
            any_shown = any_shown or diff is not None
        if any_shown:
            lines.append("| " + " | ".join([row, col, md(section.labels[train]), *texts]) + " |")
    if not lines:
        return []
    return [
        f"Gain over `{md(baseline)}` trained and scored on the same pair (same segmenter row, same test images), "
        f"mean per-image {metric.replace('_', ' ')}: the difference, its 95% interval over seeds and test images "
        "(`*`: it excludes zero) and the seeds compared, exactly as in that pair's table above (which also has the "
        "image-only interval, the MDE and the paper's gain); – : no runs of the strategy, or none of the baseline "
        "with the row's settings, on that pair.",
        "",
        *_header(section),
        *lines,
        "",
    ]
