"""``bench report``: one self-contained HTML file from a runs folder: the leaderboard's tables (cells, differences
with a forest plot each, Fig. 7 with its histograms and training curves), the generator-quality tables, the
verdicts of ``bench claims`` and a failure gallery (each cell's worst test images with truth and prediction drawn
over them), under a header that says what it was made from.

Nothing is fetched when the file is opened: no script, no external style sheet, font or image; every figure is a
``data:`` URI (matplotlib PNGs, JPEG thumbnails) or inline SVG (the forest plots). The tables are the markdown of
``leaderboard.render``, ``leaderboard.render_quality`` and ``claims.render`` turned into HTML (so the numbers are
the ones ``bench leaderboard`` and ``bench claims`` print), every text from a record escaped with ``html.escape``.

The gallery draws a record's ``predictions/<id>_segmentation.png`` (``--save-predictions``) or, given a
:data:`Recompute` (the command passes one: the run's ``checkpoints/final.pt`` applied as ``bench predict``
applies it), a mask recomputed from its weights; the image and truth come from the record's test data, read
through the plugin host and checked against the record's fingerprint. Without either, it lists the worst image ids
with their scores. Given the same records and ``made=None``, the same file is written byte for byte on one
installation (PNGs carry no software version or time; matplotlib's text rendering may differ across versions).
"""

from __future__ import annotations

import html
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from bench.results.grouping import group_tables
from bench.results.leaderboard import _curve_info, _order, cell_members, render, render_quality, table_order
from bench.results.stats import unit_means, unit_of
from bench.results.report_html import Block, STYLE, block_html, esc, img, inline, parse_markdown, plain, toc
from bench.results.forest import ForestRow, forest_svg
from bench.results.gallery import GALLERY, HostFactory, Recompute, ScoredImages, gallery_cell


def cell_figures(cell: tuple[str, str], records: list[dict[str, Any]], metric: str) -> list[tuple[str, bytes]]:
    """A cell's pooled per-image Jaccard histogram (Fig. 7) and seed-averaged training curves (Fig. 5) as PNG bytes,
    drawn by ``results/plots.py`` as ``bench leaderboard --plots`` draws them; ``(caption, png)`` each."""
    from bench.results.plots import curve_source, jaccard_histogram, training_curves

    row, col = plain(cell[0]), plain(cell[1])
    title = f"{row} · {col} · {len(records)} seed{'s' if len(records) > 1 else ''}"
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        hist = jaccard_histogram([r["jaccard"] for rec in records for r in rec["per_image"]], title,
                                 Path(tmp) / "histogram.png")
        out.append(("per-image Jaccard histogram, seeds pooled", hist.read_bytes()))
        infos = [_curve_info(rec) for rec in records]
        curves = training_curves([rec.get("history", []) for rec in records], f"{row} · {col}",
                                 Path(tmp) / "curves.png", infos)
        if curves is not None:
            out.append((f"training curves; the curve on {curve_source(infos)}", curves.read_bytes()))
    return out


@dataclass
class BoardTable:
    """One table of the board, grouped as ``bench leaderboard`` groups it."""

    key: tuple
    members: dict[tuple[str, str], list[dict[str, Any]]]
    rows: list[str]
    cols: list[str]
    cells: dict[tuple[str, str], list[float]]

    def ordered(self) -> list[tuple[str, str]]:
        return [(r, c) for r in self.rows for c in self.cols if (r, c) in self.members]


def board_tables(records: list[dict[str, Any]], metric: str) -> list[BoardTable]:
    """The board's tables in its order, each with its cells (``leaderboard.cell_members``)."""
    tables = group_tables(records)
    out = []
    for key in sorted(tables, key=table_order):
        members = cell_members(tables[key])
        cells = {cell: unit_means(rs, metric) for cell, rs in members.items()}
        out.append(BoardTable(key, members, sorted({r for r, _ in cells}), _order({c for _, c in cells}), cells))
    return out


def forest_rows(table: BoardTable, baseline: str, metric: str) -> list[ForestRow]:
    """The numbers of a difference table (``export._comparison``, which the CSV/JSON board uses), in board order."""
    from bench.results.export import _comparison
    from bench.results.leaderboard import cell_samples

    samples = cell_samples(table.members, metric)
    out = []
    for row, col in table.ordered():
        c = _comparison(row, col, baseline, table.rows, table.cols, table.members, table.cells, samples)
        if not c or c.get("difference") is None:
            continue
        out.append(ForestRow(f"{plain(row)} · {plain(col)}", c["difference"], c["ci_low"], c["ci_high"], c["image_ci_low"],
                             c["image_ci_high"], c["paper_gain"], bool(c["significant"])))
    return out


class Page:
    """The HTML being written, and its table of contents (level, anchor, title)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.toc: list[tuple[int, str, str]] = []

    def add(self, *parts: str) -> None:
        self.parts.extend(parts)

    def heading(self, level: int, anchor: str, title_html: str, toc: bool = True) -> None:
        self.parts.append(f'<h{level} id="{anchor}">{title_html}</h{level}>')
        if toc:
            self.toc.append((level, anchor, html.unescape(re.sub(r"<[^>]+>", "", title_html))))


def _board(page: Page, records: list[dict[str, Any]], quality: list[dict[str, Any]], metric: str,
           tables: list[BoardTable]) -> list[str]:
    """The leaderboard's markdown as HTML, with a forest plot after each difference table and the figures after
    each Fig. 7 table. Returns each table's title (HTML) for the gallery's headings."""
    text = render(records, metric)
    if quality:
        text = text.rstrip("\n") + "\n\n" + render_quality(quality)
    page.heading(2, "board", "Leaderboard")
    titles: list[str] = []
    t = q = 0
    table: BoardTable | None = None
    pending: list[Block] = []
    sub = 0
    for block in parse_markdown(text):
        if block.kind == "h" and block.level == 1:
            continue
        if block.kind == "h":
            page.add(*(block_html(b) for b in pending))
            pending = []
            if block.text.startswith("Generator quality"):
                q += 1
                table = None
                page.heading(3, f"quality-{q}", inline(block.text))
            else:
                t += 1
                table = tables[t - 1] if t <= len(tables) else None
                titles.append(inline(block.text))
                page.heading(3, f"table-{t}", inline(block.text))
            sub = 0
            continue
        if block.kind == "p":
            pending.append(block)
            continue
        if block.kind != "table" or table is None or not block.rows:
            page.add(*(block_html(b) for b in pending + [block]))
            pending = []
            continue
        header = [plain(c) for c in block.rows[0]]
        sub += 1
        anchor = f"table-{t}-{sub}"
        if header[:3] == ["segmenter", "strategy", "difference"]:
            said = " ".join(plain(b.text) for b in pending)
            found = re.match(r"Difference from (.+?) \(same segmenter", said)
            baseline = found.group(1) if found else None
            page.heading(4, anchor, f"Difference from {esc(baseline)}" if baseline else "Differences")
            page.add(*(block_html(b) for b in pending), block_html(block))
            drawn = forest_rows(table, baseline, metric) if baseline else []
            if drawn:
                page.add(f'<figure class="forest">{forest_svg(drawn, baseline or "", metric)}<figcaption>Forest plot '
                         f'of the table above: each strategy minus the same segmenter\'s <code>{esc(baseline)}</code>'
                         '.</figcaption></figure>')
        elif header[:3] == ["segmenter", "strategy", "images"]:
            page.heading(4, anchor, "Fig. 7: per-image distribution, histograms and training curves")
            page.add(*(block_html(b) for b in pending), block_html(block))
            page.add(_figures(table, metric))
        else:
            page.heading(4, anchor, "Cells: mean ± sd over seeds (n)")
            page.add(*(block_html(b) for b in pending), block_html(block))
        pending = []
    page.add(*(block_html(b) for b in pending))
    return titles


def _figures(table: BoardTable, metric: str) -> str:
    out = ['<div class="figures">']
    for cell in table.ordered():
        figs = cell_figures(cell, table.members[cell], metric)
        out.append('<figure class="cell">' + "".join(img(png, "image/png", f"{plain(cell[0])} · {plain(cell[1])}: {caption}")
                                                     for caption, png in figs)
                   + f"<figcaption>{inline(cell[0])} · {inline(cell[1])}: "
                   + "; ".join(esc(caption) for caption, _ in figs) + "</figcaption></figure>")
    out.append("</div>")
    return "\n".join(out)


def _claims(page: Page, records: list[dict[str, Any]], metric: str) -> None:
    from bench.results.claims import render as render_claims

    page.heading(2, "claims", "Claims of the paper")
    c = 0
    for block in parse_markdown(render_claims(records, metric)):
        if block.kind == "h" and block.level == 1:
            continue
        if block.kind == "h":
            c += 1
            page.heading(3, f"claims-{c}", inline(block.text))
            continue
        page.add(block_html(block, verdicts=True))


# --------------------------------------------------------------------------------------------- gallery


def _gallery(page: Page, tables: list[BoardTable], titles: list[str], n: int, metric: str, host: HostFactory | None,
             recompute: Recompute | None) -> None:
    page.heading(2, "gallery", "Failure gallery")
    if n <= 0:
        page.add("<p>Not drawn (<code>--gallery 0</code>).</p>")
        return
    page.add(f"<p>For every cell, its {n} worst test images by mean per-image {esc(metric)} over its seeds, each drawn "
             "from the seed that scored lowest on it among those whose masks are here: the truth outlined "
             '<span class="truth">green</span>, the prediction tinted and outlined <span class="pred">red</span> '
             "(the mask the run scored: its <code>predictions/&lt;id&gt;_segmentation.png</code> when it ran with "
             "<code>--save-predictions</code>, else recomputed from its <code>checkpoints/final.pt</code>). "
             "Without either, the worst ids are listed with their scores.</p>")
    images = ScoredImages(host)
    for t, table in enumerate(tables, start=1):
        page.heading(3, f"gallery-{t}", titles[t - 1] if t <= len(titles) else esc(" ".join(map(str, table.key))))
        for r, row in enumerate(table.rows, start=1):
            page.heading(4, f"gallery-{t}-{r}", inline(row))
            for col in table.cols:
                if (row, col) not in table.members:
                    continue
                records = table.members[(row, col)]
                page.add('<div class="gcell">', gallery_cell(inline(col), records, n, metric, images, recompute),
                         "</div>")


# --------------------------------------------------------------------------------------------- header


def _short(commit: Any) -> str:
    text = str(commit)
    return text[:7] + ("+dirty" if text.endswith("+dirty") else "") if len(text) >= 12 else text


def _header(page: Page, runs: Path, records: list[dict[str, Any]], warnings: list[str],
            made: dict[str, str] | None) -> None:
    from bench.results.reader import run_environment

    ensembles = sum(1 for r in records if r["run"].get("kind") == "ensemble")
    envs = [r.get("env") or {} for r in records]
    versions = sorted({str(e.get("skinbench")) for e in envs if e.get("skinbench")})
    commits = sorted({_short(e.get("git")) for e in envs if e.get("git")})
    protocols = sorted({str(r["run"].get("protocol_version")) for r in records})
    devices = sorted({run_environment(r) for r in records})
    facts = [
        f"<li>Records: <strong>{len(records)}</strong> finished under <code>{esc(runs)}</code> "
        f"({len(records) - ensembles} runs, {ensembles} ensembles), protocol v{esc(', v'.join(protocols))}.</li>",
        f"<li>Made by skinbench {esc(', '.join(versions) or 'unknown')} at commits "
        f"{', '.join(f'<code>{esc(c)}</code>' for c in commits) or 'not recorded'} (the records' <code>env</code>), "
        f"on {esc('; '.join(devices))}.</li>",
        "<li>Rendered by <code>bench report</code>" + (
            f" (skinbench {esc(made['version'])}, commit <code>{esc(_short(made['commit']))}</code>) on "
            f"{esc(made['time'])}."
            if made else " with <code>--reproducible</code>: when and by which version it was rendered is left out, "
                         "so the same records render the same file.") + "</li>",
    ]
    if warnings:
        facts.append(f"<li>Skipped {len(warnings)} file{'s' if len(warnings) > 1 else ''}: <ul>"
                     + "".join(f"<li>{esc(w)}</li>" for w in warnings) + "</ul></li>")
    page.add(f"<ul class=\"facts\">{''.join(facts)}</ul>")
    rows = []
    for r in sorted(records, key=lambda r: str(r["_path"])):
        path = Path(r["_path"])
        try:
            shown = path.relative_to(runs)
        except ValueError:
            shown = path
        rows.append(f"<tr><td><code>{esc(shown.as_posix())}</code></td><td>{esc(r['identity']['hash'][:8])}</td>"
                    f"<td>{esc(unit_of(r))}</td><td>{esc(_short((r.get('env') or {}).get('git')))}</td>"
                    f"<td>{float(r['summary']['jaccard']):.4f}</td></tr>")
    page.add('<details><summary>The records</summary><div class="scroll"><table><thead><tr><th>record</th>'
             "<th>identity</th><th>seed</th><th>commit</th><th>jaccard</th></tr></thead><tbody>"
             + "\n".join(rows) + "</tbody></table></div></details>")


def render_report(runs: Path, records: list[dict[str, Any]], quality: list[dict[str, Any]] | None = None,
                  warnings: list[str] | None = None, metric: str = "jaccard", gallery: int = GALLERY,
                  host: HostFactory | None = None, recompute: Recompute | None = None,
                  made: dict[str, str] | None = None) -> str:
    """The report of ``records`` (``load_records(runs, metric)``) as one HTML document. ``made`` (``version``,
    ``commit``, ``time``) says when and by what it was rendered; ``None`` leaves that out (a reproducible file).
    ``host`` and ``recompute`` let the gallery read test data and recompute masks from weights."""
    page = Page()
    tables = board_tables(records, metric)
    body = Page()
    titles = _board(body, records, quality or [], metric, tables) if records else []
    if not records:
        body.heading(2, "board", "Leaderboard")
        body.add("<p>No finished runs found.</p>")
    _claims(body, records, metric)
    _gallery(body, tables, titles, gallery, metric, host, recompute)
    _header(page, runs, records, warnings or [], made)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>skinbench report: {esc(runs)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>skinbench report: <code>{esc(runs)}</code></h1>",
        *page.parts,
        toc(body.toc),
        *body.parts,
        "</body>",
        "</html>",
        "",
    ])
