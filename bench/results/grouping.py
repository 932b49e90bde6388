"""Grouping: which records share a table, a row and a column, and how their labels are made.

The analysis the renderers share (the leaderboard, claims, scalability and ensembles): tables by training and
test data (compared by content), profile and protocol; rows by segmenter setting, columns by strategy; labels
that name what differs between identities that would otherwise share a cell. It renders nothing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Callable

import numpy as np

from bench.config import profiles
from bench.results.records import gen_label
from bench.results.reader import normalise, run_environment
from bench.results.stats import unit_of


def md(text: Any) -> str:
    """``text`` safe inside a markdown table cell or heading: no pipe, newline or HTML can break or inject."""
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
            .replace("`", "'").replace("\r", " ").replace("\n", " "))


def mean_sd(values: list[float]) -> str:
    """A cell's mean ± standard deviation over seeds; one value has no standard deviation, so it is shown alone."""
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{np.mean(values):.4f} ± {float(np.std(values, ddof=1)):.4f}"


BASELINE = "real only"
MATCHED = "real only (matched steps)"
"""The compute-matched control: real data for as many optimizer steps as the two-phase schedule takes."""
BASELINES = (BASELINE, MATCHED)
LABELLED = frozenset({"gen", "schedule", "seg", "loss", "strategy"})
"""Settings the row and column labels already name; never repeated in a label's parentheses."""
DERIVED = frozenset({"train data", "test data"})
"""Content hashes: named in a label only when no setting explains why two runs differ."""


def strategy(run: dict[str, Any]) -> str:
    """Column label: ``real only`` for no generator, the generators, and the schedule when not default."""
    if run.get("strategy"):
        return run["strategy"]
    if not run["gen"]:
        return {"real-only": BASELINE, "real-only-matched": MATCHED}.get(run["schedule"],
                                                                          f"none ({run['schedule']})")
    label = gen_label(run["gen"])
    return label if run["schedule"] == "two-phase" else f"{label} ({run['schedule']})"


def row_label(run: dict[str, Any]) -> str:
    """Row label: the segmenter, with its loss when it is not the segmenter's default."""
    default = run.get("loss_default")
    return run["seg"] if run["loss"] == default else f"{run['seg']} [{run['loss']}]"


def by_environment(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stand-ins of ``records`` for labelling whose identity includes the environment: runs of one experiment on
    two machines (a GPU in bf16, a CPU in fp32) are then two cells, each labelled with its environment."""
    out = []
    for record in records:
        env = run_environment(record)
        ident = record["identity"]
        out.append({**record, "identity": {"hash": f"{ident['hash']} on {env}",
                                           "settings": {**ident["settings"], "environment": env}}})
    return out


def in_environment_of(candidates: list[Any], other: Any, cells: dict[Any, list[dict[str, Any]]]) -> Any:
    """Of ``candidates`` (cells of one experiment run in several environments), the one in ``other``'s
    environment; when none is, the one with the most seeds. Shared by the board and the claims, so a strategy is
    compared with the same baseline cell in both."""
    def env(cell: Any) -> set[str]:
        return {run_environment(r) for r in cells[cell]}
    same = [c for c in candidates if env(c) == env(other)]
    return same[0] if same else max(candidates, key=lambda c: len({unit_of(r) for r in cells[c]}))


def axis(key: str) -> str:
    """Where a differing setting is named: generator settings (and an ensemble's members, which set its
    strategy) in the column, the rest in the row."""
    if key in profiles.BY_NAME:
        return profiles.BY_NAME[key].axis
    return "column" if key.endswith(" generator") or key in ("members", "member seeds", "environment") else "row"


def _show(value: Any) -> str:
    if value is None:
        return "–"
    text = str(value)
    return text[:8] if len(text) >= 12 and all(c in "0123456789abcdef" for c in text) else text


UNSTATED: dict[str, str] = {"curve_split": "scored", "encoder_weights": "none"}
"""Settings a record states only when they are not the default (so that older identities stay the same), and
what their absence means: a run without ``curve_split`` is a ``scored`` run, which differs from a holdout; one
without ``encoder_weights`` started from random weights."""


def _settings(record: dict[str, Any]) -> dict[str, Any]:
    """A record's identity settings with :data:`UNSTATED` defaults filled in."""
    return {**UNSTATED, **record["identity"]["settings"]} if record["run"].get("kind") != "ensemble" \
        else record["identity"]["settings"]


def _suffix(settings: dict[str, Any], keys: list[str]) -> str:
    keys = [k for k in keys if k in settings]
    return md(" (" + ", ".join(f"{k} {_show(settings[k])}" for k in keys) + ")") if keys else ""


def _differing(records: list[dict[str, Any]], derived: bool) -> list[str]:
    """Settings (in first-seen order) that take more than one value among the records that have them: the
    configuration's (``derived=False``) or the content hashes (``derived=True``)."""
    order: dict[str, None] = {}
    values: dict[str, set[str]] = defaultdict(set)
    for record in records:
        for key, value in _settings(record).items():
            if key in LABELLED or (key in DERIVED) != derived:
                continue
            order.setdefault(key)
            values[key].add(repr(value))
    return [k for k in order if len(values[k]) > 1]


def _set_differently(records: list[dict[str, Any]]) -> list[str]:
    """Configuration settings (first-seen order) that the records which set them (a value, not ``None``) set to
    more than one value: a real-only run has no GAN settings, which is no difference from a GAN run's."""
    order: dict[str, None] = {}
    values: dict[str, set[str]] = defaultdict(set)
    for record in records:
        for key, value in record["identity"]["settings"].items():
            if key in LABELLED or key in DERIVED or value is None:
                continue
            order.setdefault(key)
            values[key].add(repr(value))
    return [k for k in order if len(values[k]) > 1]


def distinct_labels(records: list[dict[str, Any]], row_of: Callable[[dict[str, Any]], str],
                    col_of: Callable[[dict[str, Any]], str], ignore: frozenset[str] = frozenset(),
                    axis_of: Callable[[str], str] = axis) -> list[tuple[str, str]]:
    """A ``(row, column)`` label per record such that records sharing a label share an identity (they may
    differ only in their seed): labels that would pool different experiments name the differing settings.

    Row settings must agree along a whole row (its cells are compared with each other); column settings
    within a cell. ``ignore`` names settings that vary by design (the x axis of a curve).
    """
    base = [(row_of(r), col_of(r)) for r in records]
    by_row: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_cell: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for record, (row, col) in zip(records, base):
        by_row[row].append(record)
        by_cell[(row, col)].append(record)
    row_keys = {row: [k for k in _differing(rs, False) if k not in ignore and axis_of(k) == "row"]
                for row, rs in by_row.items()}
    col_keys: dict[str, list[str]] = defaultdict(list)
    for (_, col), rs in by_cell.items():
        for k in _differing(rs, False):
            if k == "member seeds" and _disjoint_members(rs):  # independent replicates of one ensemble design
                continue
            if k not in ignore and axis_of(k) == "column" and k not in col_keys[col]:
                col_keys[col].append(k)
    for row, rs in by_row.items():  # columns of one row are compared: name a setting their runs set differently
        for k in _set_differently(rs):  # protocol settings only: an ensemble's members differ by design
            if k in ignore or axis_of(k) != "column" or k not in profiles.BY_NAME:
                continue
            for (r, col), cell in by_cell.items():
                if r == row and k not in col_keys[col] and any(
                        x["identity"]["settings"].get(k) is not None for x in cell):
                    col_keys[col].append(k)

    usual = Counter(r["identity"]["settings"].get("environment") for r in records).most_common(1)
    usual_env = usual[0][0] if usual else None

    def shown(record: dict[str, Any], keys: list[str]) -> list[str]:
        """The keys named in a label; the environment only when it is not the table's usual one (runs on
        another device are the exception, named; the rest keep their plain label)."""
        return [k for k in keys if k != "environment" or record["identity"]["settings"].get(k) != usual_env]

    def label() -> list[tuple[str, str]]:
        return [(row + _suffix(_settings(r), shown(r, row_keys[row])),
                 col + _suffix(_settings(r), shown(r, col_keys[col]))) for r, (row, col) in zip(records, base)]

    labels = label()
    clashes = _clashes(records, labels)
    if clashes:  # same settings, other data or generator weights: name the content hashes too
        for members in clashes.values():
            row, col = base[members[0]]
            for k in _differing([records[i] for i in members], True):
                target = col_keys[col] if axis_of(k) == "column" else row_keys[row]
                if k not in ignore and k not in target:
                    target.append(k)
        labels = label()
        clashes = _clashes(records, labels)
    return [(row + f" [{r['identity']['hash'][:8]}]" if (row, col) in clashes else row, col)
            for r, (row, col) in zip(records, labels)]


def _disjoint_members(records: list[dict[str, Any]]) -> bool:
    """Whether ensembles of one identity share no member seed: then each is one unit of a cell (``bench ensemble
    --groups``); ensembles that share some seeds are not independent and stay apart, labelled by their seeds."""
    by_identity: dict[str, list[set[str]]] = defaultdict(list)
    for r in records:  # ensembles of other identities are told apart by other settings (thresholds, members)
        by_identity[r["identity"]["hash"]].append(set(str(r["identity"]["settings"].get("member seeds", "")).split("+")))
    return all(a.isdisjoint(b) for sets in by_identity.values() for i, a in enumerate(sets) for b in sets[i + 1:])


def _clashes(records: list[dict[str, Any]], labels: list[tuple[str, str]]) -> dict[tuple[str, str], list[int]]:
    """Labels shared by records of more than one identity, with the indices of those records."""
    cells: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, cell in enumerate(labels):
        cells[cell].append(i)
    return {cell: members for cell, members in cells.items()
            if len({records[i]["identity"]["hash"] for i in members}) > 1}


_SIDES = (("data", "train", "data_name"), ("test", "test", "test_name"))


def group_tables(records: list[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    """Records (normalised) by table: same training data, test data and split, profile and protocol version.

    Data is compared by content: specs whose splits have equal fingerprints (the same files at another path)
    share a table, named by the spec most of its records use. A record without a fingerprint for a side (an
    ensemble has no training fingerprint) takes the name its spec has among the others.
    """
    records = [normalise(r) for r in records]
    votes: dict[tuple, Counter] = defaultdict(Counter)
    for record in records:
        fps = record.get("data_fingerprint") or {}
        for side, fp, name in _SIDES:
            if fps.get(fp):
                votes[(side, record["run"].get(name), fps[fp])][record["run"][side]] += 1
    canonical = {(side, spec): min(counter, key=lambda s: (-counter[s], s))
                 for (side, _, _), counter in votes.items() for spec in counter}
    tables: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        run = record["run"]
        data, test = (canonical.get((side, run[side]), run[side]) for side, _, _ in _SIDES)
        tables[(data, test, record["runtime"].get("test_split"), run["profile"], run.get("protocol_version"))].append(
            record)
    return tables
