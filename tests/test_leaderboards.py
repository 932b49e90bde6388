"""The committed leaderboards: each is what `bench leaderboard` renders from the records beside it, and the
quick fixture rows named in leaderboards/fixture/regression.json still score within tolerance (the CI check);
the real-only row is the default quick protocol, so it also shows that quick training learns."""

import json
from pathlib import Path

import pytest

from conftest import bench_cli, bench_main

BOARDS = Path(__file__).resolve().parent.parent / "leaderboards"
MARKER = "<!-- rendered by bench leaderboard from the records below; do not edit under this line -->"
REGRESSION = BOARDS / "fixture" / "regression.json"


def boards():
    return sorted(p for p in BOARDS.glob("*.md") if (BOARDS / p.stem / "records").is_dir())


@pytest.mark.parametrize("board", boards(), ids=lambda p: p.name)
def test_a_committed_leaderboard_is_what_its_records_render(board, tmp_path):
    text = board.read_text()
    assert MARKER in text, f"{board}: the rendered part must follow the line {MARKER}"
    out = tmp_path / board.name
    bench_main("leaderboard", "--runs", str(board.parent / board.stem / "records"), "--out", str(out), "--plots")
    assert text.split(MARKER, 1)[1].strip() == out.read_text().strip(), (
        f"{board} is out of date: rerun the command in its header")


CLAIMS_MARKER = "<!-- rendered by bench claims from the records of the board; do not edit under this line -->"


@pytest.mark.parametrize("claims", sorted(BOARDS.glob("*-claims.md")), ids=lambda p: p.name)
def test_committed_claims_are_what_the_board_records_render(claims):
    text = claims.read_text()
    assert CLAIMS_MARKER in text, f"{claims}: the rendered part must follow the line {CLAIMS_MARKER}"
    records = BOARDS / claims.stem.removesuffix("-claims") / "records"
    rendered = bench_main("claims", "--runs", str(records)).stdout
    assert text.split(CLAIMS_MARKER, 1)[1].strip() == rendered.strip(), (
        f"{claims} is out of date: rerun `bench claims --runs {records.relative_to(BOARDS.parent)}`")


def regression_rows():
    spec = json.loads(REGRESSION.read_text())
    return [(row, spec["tolerance"]) for row in spec["rows"]]


@pytest.mark.parametrize("row,tolerance", regression_rows(), ids=lambda r: r["name"] if isinstance(r, dict) else "")
def test_quick_fixture_rows_do_not_fall_below_the_committed_baseline(row, tolerance, tmp_path):
    committed = json.loads((BOARDS / "fixture" / "records" / row["record"]).read_text())["summary"]["jaccard"]
    proc = bench_cli(*row["command"].split()[1:], "--out", str(tmp_path), env={"BENCH_CACHE_DIR": str(tmp_path / "c")})
    path = proc.stdout.split("record: ")[1].strip()
    now = json.loads(Path(path).read_text())["summary"]["jaccard"]
    assert now > 0.35  # well above the centred-ellipse answer (about 0.21 on the fixture): it learns
    assert now >= committed - tolerance, (
        f"{row['name']}: Jaccard {now:.4f} is below the committed {committed:.4f} by more than the tolerance "
        f"{tolerance} ({row['command']}); see leaderboards/fixture.md for how the tolerance was chosen")


def test_the_same_data_at_another_path_shares_a_table_and_other_data_never_does(tmp_path):
    source = BOARDS / "isic2017-quick" / "records" / "isic2017-ebc4804e" / "quick" / "none__unet__real-only__bce"
    for seed in (0, 1):
        record = json.loads((source / f"seed_{seed}" / "results.json").read_text())
        if seed == 1:
            record["run"]["data"] = record["run"]["test"] = "isic2017:/elsewhere/isic2017"
        folder = tmp_path / "runs" / f"seed_{seed}"
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(record))
    board = bench_cli("leaderboard", "--runs", str(tmp_path / "runs")).stdout
    assert board.count("\n## isic2017:") == 1 and "The same data (equal fingerprints) also at: `isic2017:" in board
    assert "(n=2)" in board
    moved = tmp_path / "runs" / "seed_1" / "results.json"
    record = json.loads(moved.read_text())
    record["data_fingerprint"]["train"] = "0" * 16  # other training images at that path: another table
    moved.write_text(json.dumps(record))
    board = bench_cli("leaderboard", "--runs", str(tmp_path / "runs")).stdout
    assert board.count("\n## isic2017:") == 2 and "also at" not in board and "(n=2)" not in board
