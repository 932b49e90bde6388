"""Cross-dataset evaluation: the board's train x test matrices show exactly the cells and difference rows of the
(training data, test data) tables, keep untrained pairs empty, name a dataset by its content, never pool runs
of other settings or environments, and are in the board's data. Real (tiny) training on two fixture datasets."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench.config.run import RunOptions
from bench.plugin.host import get_host
from bench.results.crossdata import dataset_labels
from bench.results.export import BOARD_COLUMNS
from bench.results.grouping import md
from bench.results.leaderboard import render
from bench.results.reader import load_records
from bench.train.run import execute
from conftest import bench_main

A = "fixture?n=16&size=48x64"
B = "fixture?n=16&seed=1&size=48x64"
B_AGAIN = "fixture?n=16&n_test=8&seed=1&size=48x64"
"""The same pairs as B under another spec (8 test pairs is the fixture's own number for n=16): one dataset (equal
fingerprints)."""
STEPS = {"size": "32x48", "width": 0.25, "batch_size": 4, "lr": 0.003, "epochs": 4, "synthetic_epochs": 1,
         "finetune_epochs": 3}
LA, LB = "fixture", "fixture (seed=1)"
"""The matrix's labels of A and B: one registered name, told apart by the option that differs."""
ROW, OTHER = "unet (lr 0.003)", "unet (lr 0.001)"


def train(out: Path, gen: str, data: str, test: str, seed: int, **overrides) -> dict:
    options = RunOptions(gen=gen, seg="unet", data=data, test=test, out=out, seed=seed,
                         overrides={**STEPS, **overrides})
    return execute(get_host(), options, log=lambda m: None)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Real only and the ellipses control, seeds 0 and 1: trained on A and scored on A and on B (a model is scored
    on another test set only by its own run: there is no `bench evaluate`), trained on B and scored on B (seed 1
    under B's other spec), never trained on B and scored on A; and real only at another learning rate on B."""
    out = tmp_path_factory.mktemp("cross") / "runs"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 14 tiny runs: a second thread only waits, for seconds a step when the CPUs are shared
    try:
        for gen in ("none", "ellipses"):
            for seed in (0, 1):
                train(out, gen, A, A, seed)
                train(out, gen, A, B, seed)
                other = B if seed == 0 else B_AGAIN
                train(out, gen, other, other, seed)
        for seed in (0, 1):
            train(out, "none", B, B, seed, lr=0.001)
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def board(runs) -> str:
    return bench_main("leaderboard", "--runs", str(runs)).stdout


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split(" | ")]


def pair_tables(board: str) -> dict[tuple[str, str], dict[str, dict[tuple[str, str], list[str]]]]:
    """Each (training spec, test spec) table of the board (specs as printed): its cells and its difference rows
    from real only, by (row, column)."""
    out: dict[tuple[str, str], dict[str, dict[tuple[str, str], list[str]]]] = {}
    data, table, section, cols = None, None, "", []
    for line in board.split("## Cross-dataset")[0].splitlines():
        if line.startswith("## "):
            data = line[3:].split(" (profile ")[0].split(", scored on ")[0]
        elif line.startswith("Mean per-image"):
            test = line.split(" split of `")[1].split("`")[0]
            table = out.setdefault((data, test), {"cells": {}, "diffs": {}})
            section = "cells"
        elif line.startswith("Difference from `real only`"):
            section = "diffs"
        elif line.startswith("Per-image Jaccard distribution"):
            section = ""
        elif line.startswith("| segmenter | ") and section == "cells":
            cols = _cells(line)[1:]
        elif line.startswith("| ") and not line.startswith(("| segmenter", "| ---")) and table is not None:
            cells = _cells(line)
            if section == "cells":
                table["cells"].update({(cells[0], col): [text] for col, text in zip(cols, cells[1:])})
            elif section == "diffs":
                table["diffs"][(cells[0], cells[1])] = cells[2:]
    return out


def matrices(board: str) -> dict[str, dict]:
    """The cross-dataset section: the legend (label -> spec as printed), the cells and the differences from real
    only, by (row, strategy, training label, test label)."""
    text = board.split("## Cross-dataset", 1)[1]
    legend: dict[str, str] = {}
    cells: dict[tuple[str, str, str, str], str] = {}
    diffs: dict[tuple[str, str, str, str], str] = {}
    target, tests = cells, []
    for line in text.splitlines():
        if line.startswith("- `"):
            label, spec = line[3:].split("`: `", 1)
            legend[label] = spec.split("`")[0]
        elif line.startswith("Gain over `real only`"):
            target = diffs
        elif line.startswith("| segmenter | strategy | trained on |"):
            tests = [c.removeprefix("scored on ") for c in _cells(line)[3:]]
        elif line.startswith("| ") and not line.startswith("| ---"):
            row, col, trained, *values = _cells(line)
            target.update({(row, col, trained, test): value for test, value in zip(tests, values)})
    return {"legend": legend, "cells": cells, "diffs": diffs}


def table_row(train: str, row: str) -> str:
    """The row a matrix row is in a pair's table: B's tables also hold the other learning rate, so they name it;
    A's tables do not."""
    return row if train == LB else "unet"


def test_the_matrix_cells_are_the_pair_tables_cells(board):
    tables, matrix = pair_tables(board), matrices(board)
    spec = {label: s for label, s in matrix["legend"].items()}
    assert spec == {LA: md(A), LB: md(B)}
    shown = 0
    for (row, col, train, test), text in matrix["cells"].items():
        table = tables.get((spec[train], spec[test]))
        if table is None:  # B -> A: nothing was trained on B and scored on A
            assert (train, test) == (LB, LA) and text == "–"
            continue
        expected = table["cells"].get((table_row(train, row), col), ["–"])[0]
        assert text == expected, (row, col, train, test)
        shown += text != "–"
    assert shown == 7  # real only and ellipses on A->A, A->B, B->B; the other learning rate on B->B
    assert matrix["cells"][(ROW, "real only", LA, LB)].endswith("(n=2)")


def test_the_difference_matrix_is_the_pair_tables_difference_rows(board):
    tables, matrix = pair_tables(board), matrices(board)
    spec = matrix["legend"]
    assert set(matrix["diffs"]) == {(ROW, "ellipses", LA, LA), (ROW, "ellipses", LA, LB), (ROW, "ellipses", LB, LA),
                                    (ROW, "ellipses", LB, LB)}
    compared = 0
    for (row, col, train, test), text in matrix["diffs"].items():
        table = tables.get((spec[train], spec[test]))
        if table is None:
            assert text == "–"
            continue
        diff, interval, _, seeds, *_ = table["diffs"][(table_row(train, row), col)]
        assert text == f"{diff} {interval}; seeds {seeds}", (row, col, train, test)
        assert seeds == "2 paired"
        compared += 1
    assert compared == 3


def test_a_pair_without_runs_stays_empty_and_one_pair_has_no_section(runs, board):
    matrix = matrices(board)
    assert {v for (_, _, train, test), v in matrix["cells"].items() if (train, test) == (LB, LA)} == {"–"}
    records, _ = load_records(runs, "jaccard")
    one_pair = [r for r in records if r["run"]["data"] == A and r["run"]["test"] == A]
    assert "Cross-dataset" not in render(one_pair)


def test_two_specs_of_the_same_files_are_one_dataset(board):
    matrix = matrices(board)
    assert set(matrix["legend"]) == {LA, LB}  # B_AGAIN is B: no third dataset, row or column
    legend = next(line for line in board.splitlines() if line.startswith(f"- `{LB}`"))
    assert f"the same files as `{md(B_AGAIN)}`" in legend
    # seed 0 trained on B, seed 1 on B_AGAIN: one cell of two seeds
    assert matrix["cells"][(ROW, "real only", LB, LB)].endswith("(n=2)")
    assert matrix["cells"][(ROW, "ellipses", LB, LB)].endswith("(n=2)")


def test_runs_of_other_settings_are_other_rows_never_pooled(board):
    matrix = matrices(board)
    rows = {row for row, *_ in matrix["cells"]}
    assert rows == {ROW, OTHER}  # "unet" alone would pool the two learning rates
    assert matrix["cells"][(OTHER, "real only", LB, LB)].endswith("(n=2)")
    assert {key: v for key, v in matrix["cells"].items() if key[0] == OTHER} == {  # trained on B only
        (OTHER, "real only", LB, LA): "–", (OTHER, "real only", LB, LB): matrix["cells"][(OTHER, "real only", LB, LB)]}
    assert "(n=4)" not in board


def test_runs_of_another_environment_are_their_own_cells(runs):
    records, _ = load_records(runs, "jaccard")
    moved = []
    for record in records:
        if record["run"]["gen"] == [] and record["run"]["data"] == A and record["run"].get("lr") == 0.003:
            copied = copy.deepcopy(record)
            copied["env"]["device"], copied["runtime"]["step"]["amp"] = "cuda", "bf16"
            moved.append(copied)
    assert len(moved) == 4  # real only on A->A and A->B, seeds 0 and 1
    board = render(records + moved)
    matrix = matrices(board)
    gpu = next(col for _, col, *_ in matrix["cells"] if col.startswith("real only (environment cuda bf16"))
    for test in (LA, LB):
        assert matrix["cells"][(ROW, gpu, LA, test)].endswith("(n=2)")
        assert matrix["cells"][(ROW, "real only", LA, test)].endswith("(n=2)")  # the CPU seeds alone
    assert matrix["cells"][(ROW, gpu, LB, LB)] == "–"
    tables = pair_tables(board)
    for test in (LA, LB):  # ellipses (CPU) is compared with the CPU baseline, as in the pair's table
        diff, interval, _, seeds, *_ = tables[(md(A), matrix["legend"][test])]["diffs"][("unet", "ellipses")]
        assert matrix["diffs"][(ROW, "ellipses", LA, test)] == f"{diff} {interval}; seeds {seeds}"


def _signed(value: float) -> str:
    return f"{value:+.4f}"


def test_the_boards_data_holds_the_matrix_numbers(runs, board):
    data = pd.read_csv(io.StringIO(bench_main("leaderboard", "--runs", str(runs), "--format", "csv").stdout))
    as_json = pd.DataFrame(json.loads(bench_main("leaderboard", "--runs", str(runs), "--format", "json").stdout))
    assert list(data.columns) == list(as_json.columns) == list(BOARD_COLUMNS)
    assert data.table.tolist() == as_json.table.tolist()
    main, cross = data[data.table == "main"], data[data.table == "cross-dataset"]
    assert len(main) == len(cross)  # every matrix cell is a pair table's cell, once per baseline compared
    matrix = matrices(board)
    cells = cross.drop_duplicates(["row", "column", "train_label", "test_label"]).set_index(
        ["row", "column", "train_label", "test_label"])
    shown = 0
    for key, text in matrix["cells"].items():
        if text == "–":
            assert key not in cells.index
            continue
        cell = cells.loc[key]
        assert text == f"{cell['mean']:.4f} ± {cell.sd:.4f} (n={cell.n_seeds})", key
        assert (cell.data, cell.test) == ({LA: A, LB: B}[key[2]], {LA: A, LB: B}[key[3]])
        shown += 1
    assert shown == len(cells) == 7
    compared = 0
    for (row, col, train, test), text in matrix["diffs"].items():
        if text == "–":
            continue
        d = cross[(cross.row == row) & (cross.column == col) & (cross.train_label == train)
                  & (cross.test_label == test) & (cross.baseline == "real only")].iloc[0]
        star = " *" if d.significant else ""
        assert text == (f"{_signed(d.difference)} [{_signed(d.ci_low)}, {_signed(d.ci_high)}]{star}; "
                        f"seeds {int(d.compared_seeds)} paired")
        assert d.baseline_column == "real only" and d.paired
        same = main[(main.data == d.data) & (main.test == d.test) & (main.column == col)
                    & (main.baseline == "real only")].iloc[0]
        assert (same.difference, same.ci_low, same.ci_high, same.p) == (d.difference, d.ci_low, d.ci_high, d.p)
        compared += 1
    assert compared == 3


@pytest.mark.parametrize("specs,labels", [
    (["isic2017:/data/isic2017", "ph2:/data/ph2"], ["isic2017", "ph2"]),
    (["fixture?n=16&seed=0", "fixture?n=16&seed=1"], ["fixture (seed=0)", "fixture (seed=1)"]),
    (["isic2017:/a/x/isic2017", "isic2017:/b/x/isic2017", "ph2:/b/ph2"],
     ["isic2017 (a/x/isic2017)", "isic2017 (b/x/isic2017)", "ph2"]),
    (["fixture", "fixture?seed=1"], ["fixture", "fixture (seed=1)"]),
])
def test_dataset_labels_are_the_name_and_what_tells_two_apart(specs, labels):
    assert [dataset_labels(specs)[s] for s in specs] == labels


def test_each_pair_table_has_its_own_heading_naming_its_test_data(board):
    headings = [line for line in board.splitlines() if line.startswith("## ")]
    assert len(headings) == len(set(headings))
    assert any(h.startswith(f"## {md(A)}, scored on {md(B)} (profile") for h in headings)
    assert any(h.startswith(f"## {md(A)} (profile") for h in headings)  # scored on its own data: named once
