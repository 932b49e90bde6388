"""Results as data (`bench results`, `bench leaderboard --format csv|json`): on the committed records, the rows
are the records the leaderboard counts, the numbers are the markdown's, and README's pandas example reproduces a
board cell."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.results.export import BOARD_COLUMNS, IMAGE_COLUMNS, RUN_COLUMNS
from bench.results.reader import load_records
from conftest import ROOT, bench_cli, bench_main

BOARDS = ROOT / "leaderboards"
FIXTURE = BOARDS / "fixture" / "records"
ISIC = BOARDS / "isic2017-quick" / "records"


def _csv(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text))


@pytest.fixture(scope="module")
def isic_board() -> str:
    return bench_main("leaderboard", "--runs", str(ISIC)).stdout


def test_a_row_per_record_the_leaderboard_counts_through_the_command(tmp_path):
    records, _ = load_records(FIXTURE, "jaccard")
    proc = bench_cli("results", "--runs", str(FIXTURE))
    runs = _csv(proc.stdout)
    assert len(runs) == len(records) == 12
    assert list(runs.columns) == list(RUN_COLUMNS)
    by_path = {r["_path"]: r for r in records}
    assert set(runs.record) == set(by_path)
    for row in runs.itertuples():
        record = by_path[row.record]
        assert row.identity == record["identity"]["hash"]
        assert row.seed == record["run"]["seed"] and row.segmenter == "unet" and row.kind == "run"
        assert row.jaccard == record["summary"]["jaccard"]  # CSV keeps every digit
        assert row.n_images == record["summary"]["n_images"] and row.total_s == record["timings"]["total_s"]
        assert row.test_fingerprint == record["data_fingerprint"]["test"]
        assert (row.device, row.precision) == ("cpu", "fp32") and row.torch == record["env"]["torch"]
    assert sorted(runs.column.unique()) == ["dcgan", "dcgan+lapgan", "lapgan", "real only"]


def test_isic_rows_match_the_boards_records_ensembles_and_environments_included():
    records, warnings = load_records(ISIC, "jaccard")
    runs = _csv(bench_main("results", "--runs", str(ISIC)).stdout)
    board = _csv(bench_main("leaderboard", "--runs", str(ISIC), "--format", "csv").stdout)
    cells = board.drop_duplicates(["data", "row", "column"])
    assert len(runs) == len(records) == cells.n_records.sum() == 59
    assert (runs.kind == "ensemble").sum() == 8 and runs.member_seeds.dropna().eq("0+1+2").all()
    assert set(runs[runs.column == "ddpm"].environment) == {"cuda bf16, torch 2.11"}
    cuda = board[(board.row == "unet") & (board.column == "ddpm") & (board.baseline == "real only")]
    assert cuda.baseline_column.item() == "real only (environment cuda bf16, torch 2.11)"  # its own environment
    assert set(runs.table_data) == {"isic2017:/work/shared/data/isic2017"}  # both data paths: one table
    for (row, col), group in runs.groupby(["row", "column"]):
        assert len(group) == cells[(cells.row == row) & (cells.column == col)].n_records.item()


def test_per_image_rows_and_json_are_the_per_image_scores():
    records, _ = load_records(FIXTURE, "jaccard")
    images = _csv(bench_main("results", "--runs", str(FIXTURE), "--per-image").stdout)
    assert list(images.columns) == list(IMAGE_COLUMNS)
    assert len(images) == sum(len(r["per_image"]) for r in records)
    rows = json.loads(bench_main("results", "--runs", str(FIXTURE), "--per-image", "--format", "json").stdout)
    assert len(rows) == len(images) and list(rows[0]) == list(IMAGE_COLUMNS)
    first = next(r for r in records if r["_path"] == rows[0]["record"])
    assert rows[0]["image"] == first["per_image"][0]["id"] and rows[0]["tp"] == first["per_image"][0]["tp"]
    assert rows[0]["jaccard"] == first["per_image"][0]["jaccard"]
    # a record's mean per-image score is its summary
    for path, group in images.groupby("record"):
        record = next(r for r in records if r["_path"] == path)
        assert group.jaccard.mean() == pytest.approx(record["summary"]["jaccard"], abs=1e-9)


def test_csv_round_trips_and_json_is_the_same_table(tmp_path):
    out = tmp_path / "runs.csv"
    bench_main("results", "--runs", str(FIXTURE), "--out", str(out))
    from_csv = pd.read_csv(out)
    rows = json.loads(bench_main("results", "--runs", str(FIXTURE), "--format", "json").stdout)
    from_json = pd.DataFrame(rows, columns=list(RUN_COLUMNS))
    assert list(from_csv.columns) == list(from_json.columns) == list(RUN_COLUMNS)
    for column in RUN_COLUMNS:
        a, b = from_csv[column], from_json[column]
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
            assert a.astype(float).fillna(-1.0).tolist() == b.astype(float).fillna(-1.0).tolist(), column
        else:
            assert a.isna().tolist() == b.isna().tolist(), column
            assert [str(x) for x in a.dropna()] == [str(x) for x in b.dropna()], column
    assert from_csv.augment[0] == rows[0]["augment"] and json.loads(rows[0]["augment"])["flip"] is True


def _markdown_tables(text: str) -> dict[str, list[list[str]]]:
    """The first table's cells, each baseline's comparison rows and the distribution rows of a one-table board."""
    out: dict[str, list[list[str]]] = {"cells": [], "distribution": []}
    section = "cells"
    for line in text.split("## Generator quality")[0].splitlines():
        if line.startswith("Difference from `"):
            section = line.split("`")[1]
            out[section] = []
        elif line.startswith("Per-image Jaccard distribution"):
            section = "distribution"
        elif line.startswith("| ") and not line.startswith("| segmenter") and not line.startswith("| ---"):
            out[section].append([c.strip() for c in line.strip("|").split(" | ")])
    return out


def _signed(value: float) -> str:
    return f"{value:+.4f}"


def test_board_data_has_the_markdowns_numbers(isic_board):
    board = _csv(bench_main("leaderboard", "--runs", str(ISIC), "--format", "csv").stdout)
    as_json = pd.DataFrame(json.loads(bench_main("leaderboard", "--runs", str(ISIC), "--format", "json").stdout))
    assert list(board.columns) == list(as_json.columns) == list(BOARD_COLUMNS)
    assert board.difference.fillna(9).tolist() == pytest.approx(as_json.difference.fillna(9).tolist(), abs=1e-15)
    tables = _markdown_tables(isic_board)
    header = next(line for line in isic_board.splitlines() if line.startswith("| segmenter | real only"))
    cols = [c.strip() for c in header.strip("|").split(" | ")][1:]
    cells = board.drop_duplicates(["row", "column"]).set_index(["row", "column"])
    shown = 0
    for row, *values in tables["cells"]:
        for col, text in zip(cols, values):
            if text == "–":
                assert (row, col) not in cells.index
                continue
            cell = cells.loc[(row, col)]
            sd = "" if pd.isna(cell.sd) else f" ± {cell.sd:.4f}"
            assert text == f"{cell['mean']:.4f}{sd} (n={cell.n_seeds})", (row, col)
            shown += 1
    assert shown == len(cells) == 21
    compared = 0
    for baseline in ("real only", "real only (matched steps)"):
        for row, strategy, diff, interval, image, seeds, mde, gain, for_gain, wins in tables[baseline]:
            col = strategy.split(" (ran on ")[0]
            data = board[(board.row == row) & (board.column == col) & (board.baseline == baseline)]
            assert len(data) == 1, (row, col, baseline)
            d = data.iloc[0]
            assert diff == _signed(d.difference)
            if pd.isna(d.ci_low):
                assert interval.startswith("none: one seed") and d.note.startswith("no seed interval")
            else:
                assert interval == f"[{_signed(d.ci_low)}, {_signed(d.ci_high)}]{' *' if d.significant else ''}"
                assert (d.p < 0.05) == bool(d.significant)
            assert image == (f"[{_signed(d.image_ci_low)}, {_signed(d.image_ci_high)}]"
                             f"{' *' if d.image_significant else ''}")
            assert seeds.split(" ")[0] == str(int(d.compared_seeds))
            assert ("paired" in seeds) == (bool(d.paired) and seeds != "1")  # one seed a side: just "1"
            assert mde == ("–" if pd.isna(d.mde) else f"{d.mde:.4f}")
            assert gain == ("–" if pd.isna(d.paper_gain) else f"{d.paper_gain:+.3f}")
            if re.fullmatch(r"\d+", for_gain):
                assert int(for_gain) == d.seeds_for_paper_gain
            else:
                assert pd.isna(d.seeds_for_paper_gain)
                if "allow" in for_gain:
                    assert for_gain.endswith(f"allow {d.image_mde:.4f})")
            assert wins == ("–" if pd.isna(d.new_seed_wins) else f"{d.new_seed_wins:.2f}")
            compared += 1
    assert compared == board.baseline.notna().sum() == 22
    for row, col, images, below6, below7, hist in tables["distribution"]:
        cell = cells.loc[(row, col)]
        assert [int(images), int(below6), int(below7)] == [cell.images, cell["below_0.6"], cell["below_0.7"]]
        assert hist == " ".join(str(cell[f"hist_{i}"]) for i in range(10))


def test_readme_example_reproduces_the_boards_cell(tmp_path, monkeypatch, isic_board):
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- results-as-data example")[1].split("<!-- end of example -->")[0]
    code = block.split("```python\n")[1].split("```")[0]
    assert len(code.strip().splitlines()) == 5
    bench_cli("results", "--runs", str(ISIC), "--out", str(tmp_path / "runs.csv"))
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})
    row = next(line for line in isic_board.splitlines() if line.startswith("| cdnn3 |"))
    real_only = row.strip("|").split(" | ")[1].strip()
    assert printed.getvalue().strip() == real_only == "0.6425 ± 0.0479 (n=5)"
    assert "the board's 0.6425 ± 0.0479 (n=5)" in code


def test_out_is_never_replaced_without_overwrite(tmp_path):
    out = tmp_path / "runs.csv"
    out.write_text("mine\n")
    proc = bench_main("results", "--runs", str(FIXTURE), "--out", str(out), check=False)
    assert proc.returncode != 0 and "--overwrite" in proc.stderr and out.read_text() == "mine\n"
    proc = bench_main("leaderboard", "--runs", str(FIXTURE), "--format", "json", "--out", str(out), check=False)
    assert proc.returncode != 0 and out.read_text() == "mine\n"
    bench_main("results", "--runs", str(FIXTURE), "--out", str(out), "--overwrite")
    assert len(pd.read_csv(out)) == 12
    bench_main("leaderboard", "--runs", str(FIXTURE), "--format", "json", "--out", str(out), "--overwrite")
    assert {r["column"] for r in json.loads(out.read_text())} == {"real only", "dcgan", "lapgan", "dcgan+lapgan"}


def test_parquet_needs_out_and_an_engine(tmp_path, monkeypatch):
    proc = bench_main("results", "--runs", str(FIXTURE), "--format", "parquet", check=False)
    assert proc.returncode != 0 and "--out" in proc.stderr
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "fastparquet", None)
    out = tmp_path / "runs.parquet"
    proc = bench_main("results", "--runs", str(FIXTURE), "--format", "parquet", "--out", str(out), check=False)
    assert proc.returncode != 0 and not out.exists()
    assert "pip install pyarrow" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_parquet_round_trip(tmp_path):
    pytest.importorskip("pyarrow")
    out = tmp_path / "images.parquet"
    bench_main("results", "--runs", str(FIXTURE), "--format", "parquet", "--out", str(out), "--per-image")
    table = pd.read_parquet(out)
    expected = _csv(bench_main("results", "--runs", str(FIXTURE), "--per-image").stdout)
    assert list(table.columns) == list(IMAGE_COLUMNS) and len(table) == len(expected)
    assert table.jaccard.tolist() == expected.jaccard.tolist() and table.image.tolist() == expected.image.tolist()
    assert table.seed.tolist() == expected.seed.tolist()


def test_board_data_refuses_plots(tmp_path):
    proc = bench_main("leaderboard", "--runs", str(FIXTURE), "--format", "csv", "--plots", "--out",
                      str(tmp_path / "b.csv"), check=False)
    assert proc.returncode != 0 and "--plots" in proc.stderr


def test_an_empty_folder_gives_the_header_and_a_warning(tmp_path):
    proc = bench_main("results", "--runs", str(tmp_path))
    assert proc.stdout.strip() == ",".join(RUN_COLUMNS) and "no finished runs" in proc.stderr
    assert json.loads(bench_main("results", "--runs", str(tmp_path), "--format", "json").stdout) == []
    assert Path(tmp_path).is_dir()


def test_skipped_records_are_named_on_stderr_as_the_leaderboard_names_them(tmp_path):
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(FIXTURE, runs)
    broken = runs / "broken" / "seed_0" / "results.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json")
    proc = bench_main("results", "--runs", str(runs))
    board = bench_main("leaderboard", "--runs", str(runs))
    assert len(_csv(proc.stdout)) == 12 and str(broken) in proc.stderr and "skipped" in proc.stderr
    assert [line for line in proc.stderr.splitlines() if "skipped" in line] == \
        [line for line in board.stderr.splitlines() if "skipped" in line]
