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

import base64
import html
import io
import re
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.errors import BenchError
from bench.results.grouping import group_tables
from bench.results.leaderboard import _curve_info, _order, cell_members, render, render_quality, table_order
from bench.results.stats import _unit_order, unit_means, unit_of

Recompute = Callable[[dict[str, Any], list[np.ndarray]], list[np.ndarray]]
"""``(record, images) -> masks``: a finished run's (or ensemble's) binary masks for ``images`` (RGB arrays at their
original size), computed from its weights as its scoring computed them; raises :class:`BenchError` when it cannot."""

HostFactory = Callable[[], Any]
"""Gives the plugin host (called only when the gallery needs a record's test data)."""

GALLERY = 6
"""Worst images shown per cell by default (``--gallery``)."""
THUMB_WIDTH = 256
JPEG_QUALITY = 82


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


# ------------------------------------------------------------------------------------- markdown to HTML


@dataclass
class Block:
    """One block of the renderers' markdown: a heading (``level``), a paragraph, a table (``rows``, the header
    first) or a list (``rows``, one item each)."""

    kind: str
    text: str = ""
    level: int = 0
    rows: list[list[str]] = field(default_factory=list)


def _cells(line: str) -> list[str]:
    """A markdown table line's cells, ``\\|`` (an escaped pipe inside a cell) kept in its cell."""
    parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [p.strip().replace("\\|", "|") for p in parts]


def parse_markdown(text: str) -> list[Block]:
    """The blocks of the markdown the leaderboard and claims renderers write (headings, paragraphs, pipe tables,
    ``-`` lists): their whole syntax, nothing more."""
    blocks: list[Block] = []
    paragraph: list[str] = []
    lines = text.splitlines()

    def flush() -> None:
        if paragraph:
            blocks.append(Block("p", " ".join(paragraph)))
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            flush()
            i += 1
        elif line.startswith("#"):
            flush()
            level = len(line) - len(line.lstrip("#"))
            blocks.append(Block("h", line[level:].strip(), level))
            i += 1
        elif line.startswith("|"):
            flush()
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = _cells(lines[i])
                if not (cells and all(re.fullmatch(r":?-{3,}:?", c) for c in cells)):
                    rows.append(cells)
                i += 1
            blocks.append(Block("table", rows=rows))
        elif line.startswith("- "):
            flush()
            items = []
            while i < len(lines) and lines[i].strip().startswith("- "):
                items.append([lines[i].strip()[2:]])
                i += 1
            blocks.append(Block("ul", rows=items))
        else:
            paragraph.append(line)
            i += 1
    flush()
    return blocks


def inline(text: str) -> str:
    """A markdown span as HTML: `code` and **bold**; everything else escaped once (the renderers' ``md()`` entity
    escapes are undone first, so that ``&lt;`` in a record reads ``<``, not ``&amp;lt;``)."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick is a character
        parts[-2:] = [parts[-2] + "`" + parts[-1]]
    out = []
    for i, part in enumerate(parts):
        escaped = esc(html.unescape(part))
        out.append(f"<code>{escaped}</code>" if i % 2 else
                   re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped))
    return "".join(out)


def plain(text: str) -> str:
    """A markdown span as plain text (for the table of contents and titles), not yet escaped."""
    return html.unescape(text.replace("`", "").replace("**", ""))


VERDICT_CLASSES = (("supported", "ok"), ("contradicted", "bad"), ("smaller", "warn"), ("equivalent", "warn"),
                   ("not resolvable", "open"), ("not run", "none"))


def table_html(rows: list[list[str]], verdicts: bool = False) -> str:
    """A table block as HTML in a horizontally scrolling box; with ``verdicts``, the last column is coloured by
    its verdict."""
    if not rows:
        return ""
    head = "".join(f"<th>{inline(c)}</th>" for c in rows[0])
    body = []
    for row in rows[1:]:
        cells = []
        for j, c in enumerate(row):
            cls = ""
            if verdicts and j == len(row) - 1:
                cls = next((f' class="v-{k}"' for prefix, k in VERDICT_CLASSES if plain(c).startswith(prefix)), "")
            cells.append(f"<td{cls}>{inline(c)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>\n' + "\n".join(body)
            + "\n</tbody></table></div>")


def block_html(block: Block, verdicts: bool = False) -> str:
    if block.kind == "p":
        return f"<p>{inline(block.text)}</p>"
    if block.kind == "ul":
        return "<ul>" + "".join(f"<li>{inline(item[0])}</li>" for item in block.rows) + "</ul>"
    if block.kind == "table":
        return table_html(block.rows, verdicts)
    return f"<p><strong>{inline(block.text)}</strong></p>"  # a heading the caller did not place


# ------------------------------------------------------------------------------------------ figures


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def img(data: bytes, mime: str, alt: str) -> str:
    return f'<img src="{data_uri(data, mime)}" alt="{esc(alt)}">'


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


def _ticks(low: float, high: float, target: int = 6) -> list[float]:
    span = high - low
    raw = span / target
    magnitude = 10 ** np.floor(np.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = np.ceil(low / step) * step
    return [round(float(v), 10) for v in np.arange(first, high + step / 1000, step)]


@dataclass
class ForestRow:
    """One strategy's difference from the baseline: the seed x image interval (``None``: one seed), the image-only
    one, and the paper's gain for the row."""

    label: str
    difference: float
    low: float | None
    high: float | None
    image_low: float
    image_high: float
    gain: float | None
    significant: bool


def forest_svg(rows: list[ForestRow], baseline: str, metric: str) -> str:
    """An inline SVG forest plot: each row's difference (dot), its 95% seed x image interval (bar; dark when it
    excludes zero), the image-only interval (thin grey line), the paper's gain (orange diamond), the zero line."""
    char, row_h, top, plot_w, right, axis_h = 7.2, 22, 34, 440, 20, 44
    labels = [r.label if len(r.label) <= 60 else r.label[:57] + "..." for r in rows]
    label_w = int(min(max(len(s) for s in labels) * char + 16, 460))
    values = [0.0] + [v for r in rows for v in (r.difference, r.low, r.high, r.image_low, r.image_high, r.gain)
                      if v is not None]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.06 or 0.01
    lo, hi = lo - pad, hi + pad
    width, height = label_w + plot_w + right, top + row_h * len(rows) + axis_h

    def x(v: float) -> float:
        return round(label_w + (v - lo) / (hi - lo) * plot_w, 1)

    ticks = _ticks(lo, hi)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 0.01
    decimals = max(0, -int(np.floor(np.log10(step) + 1e-9))) + (1 if f"{step:.10g}".rstrip("0").endswith("25") else 0)
    bottom = top + row_h * len(rows)
    out = [f'<svg class="forest" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="forest plot: differences from {esc(baseline)}">']
    legend = [("bar", "95% interval, seeds × images (dark: excludes 0)"), ("line", "image-only interval"),
              ("dot", "difference"), ("diamond", "paper's gain")]
    lx, ly = 8, 14
    for kind, text in legend:
        if kind == "bar":
            out.append(f'<rect x="{lx}" y="{ly - 4}" width="18" height="8" fill="#4c72b0"/>')
        elif kind == "line":
            out.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 18}" y2="{ly}" stroke="#b0b0b0" stroke-width="2"/>')
        elif kind == "dot":
            out.append(f'<circle cx="{lx + 9}" cy="{ly}" r="3.5" fill="#1a2e5a"/>')
        else:
            out.append(f'<path d="M{lx + 9} {ly - 5} L{lx + 14} {ly} L{lx + 9} {ly + 5} L{lx + 4} {ly} Z" '
                       'fill="#dd8452"/>')
        out.append(f'<text x="{lx + 23}" y="{ly + 4}" class="small">{esc(text)}</text>')
        lx += 34 + int(len(text) * 6.2)
    for t in ticks:
        out.append(f'<line x1="{x(t)}" y1="{top - 4}" x2="{x(t)}" y2="{bottom}" stroke="#e6e6e6"/>')
        out.append(f'<text x="{x(t)}" y="{bottom + 15}" text-anchor="middle" class="small">'
                   f'{f"{t:+.{decimals}f}" if t else "0"}</text>')
    for i, (r, label) in enumerate(zip(rows, labels)):
        y = top + row_h * i + row_h / 2
        if i % 2 == 0:
            out.append(f'<rect x="0" y="{top + row_h * i}" width="{width}" height="{row_h}" fill="#f6f8fb"/>')
        title = f"<title>{esc(r.label)}</title>" if label != r.label else ""
        out.append(f'<text x="{label_w - 8}" y="{y + 4}" text-anchor="end">{title}{esc(label)}</text>')
        out.append(f'<line x1="{x(r.image_low)}" y1="{y}" x2="{x(r.image_high)}" y2="{y}" stroke="#b0b0b0" '
                   'stroke-width="2"/>')
        if r.low is not None and r.high is not None:
            colour = "#4c72b0" if r.significant else "#a9bddc"
            out.append(f'<rect x="{x(r.low)}" y="{y - 4}" width="{round(x(r.high) - x(r.low), 1)}" height="8" '
                       f'fill="{colour}"><title>{esc(r.label)}: {r.difference:+.4f} [{r.low:+.4f}, {r.high:+.4f}]'
                       '</title></rect>')
        else:
            note, after = "one seed: no seed interval", x(max(r.image_high, r.difference)) + 6
            if after + len(note) * 6.2 > width:  # no room on the right: on the left of the interval
                out.append(f'<text x="{x(min(r.image_low, r.difference)) - 6}" y="{y + 4}" text-anchor="end" '
                           f'class="small">{note}</text>')
            else:
                out.append(f'<text x="{after}" y="{y + 4}" class="small">{note}</text>')
        if r.gain is not None:
            gx = x(r.gain)
            out.append(f'<path d="M{gx} {y - 7} L{gx + 6} {y} L{gx} {y + 7} L{gx - 6} {y} Z" fill="#dd8452">'
                       f'<title>paper: {r.gain:+.3f}</title></path>')
        out.append(f'<circle cx="{x(r.difference)}" cy="{y}" r="3.5" fill="#1a2e5a"/>')
    out.append(f'<line x1="{x(0.0)}" y1="{top - 4}" x2="{x(0.0)}" y2="{bottom}" stroke="#444" stroke-width="1.2"/>')
    out.append(f'<line x1="{label_w}" y1="{bottom}" x2="{label_w + plot_w}" y2="{bottom}" stroke="#888"/>')
    out.append(f'<text x="{label_w + plot_w / 2}" y="{bottom + 34}" text-anchor="middle" class="small">difference '
               f'in mean per-image {esc(metric.replace("_", " "))} from {esc(baseline)} (strategy − baseline)</text>')
    out.append("</svg>")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------- the board


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


class ScoredImages:
    """The test images and truth masks of records, read through the plugin host once per (spec, split) and
    checked against the record's test fingerprint."""

    def __init__(self, host: HostFactory | None) -> None:
        self.host = host
        self.splits: dict[tuple[str, str], Any] = {}
        self.index: dict[tuple[str, str], dict[str, int]] = {}
        self.failed: dict[tuple[str, str], str] = {}

    def lookup(self, record: dict[str, Any]) -> tuple[Any, dict[str, int]] | str:
        """``(split, id -> index)`` for the images ``record`` scored, or why they cannot be read here."""
        from bench.plugin.build import load_dataset

        run, runtime = record["run"], record.get("runtime") or {}
        fold = bool(run.get("fold"))
        spec, name = (run["data"], "train") if fold else (run["test"], str(runtime.get("test_split")))
        key = (spec, name)
        if key in self.failed:
            return self.failed[key]
        if key not in self.splits:
            if self.host is None:
                self.failed[key] = "no plugin host to read the test data"
                return self.failed[key]
            try:
                split = load_dataset(self.host(), spec, "--test").split(name)
            except (BenchError, OSError, KeyError, ValueError) as exc:
                self.failed[key] = f"test data {spec} (split {name}) not readable here: {exc}"
                return self.failed[key]
            self.splits[key] = split
            self.index[key] = {image_id: i for i, image_id in enumerate(split.ids())}
        split = self.splits[key]
        expected = (record.get("data_fingerprint") or {}).get("test")
        if not fold and expected and split.fingerprint() != expected:
            return (f"test data {spec} (split {name}) changed since the run (fingerprint {split.fingerprint()}, "
                    f"recorded {expected})")
        return split, self.index[key]


def _folder(record: dict[str, Any]) -> Path:
    return Path(record["_path"]).parent


def _saved(record: dict[str, Any], image_id: str) -> Path | None:
    path = _folder(record) / "predictions" / f"{image_id}_segmentation.png"
    return path if path.is_file() else None


def _weights(record: dict[str, Any]) -> str | None:
    """Why ``record``'s masks cannot be recomputed from weights here (``None``: they can be tried)."""
    run = record["run"]
    if run.get("kind") == "ensemble":
        if (run.get("tuning") or {}).get("method") == "cross-fitted":
            return "a cross-fitted ensemble (each fold has its own thresholds)"
        missing = [m.get("path") for m in run.get("members", [])
                   if not (Path(str(m.get("path"))) / "checkpoints" / "final.pt").is_file()]
        return f"member weights missing ({missing[0]}/checkpoints/final.pt)" if missing else None
    return None if (_folder(record) / "checkpoints" / "final.pt").is_file() else "no checkpoints/final.pt"


def _edge(mask: np.ndarray) -> np.ndarray:
    """The outline of a binary mask, about two pixels wide (along the image's border too, where the mask touches it)."""
    m = np.pad(mask, 1)
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    edge = mask & ~inner
    e = np.pad(edge, 1)
    return edge | e[:-2, 1:-1] | e[2:, 1:-1] | e[1:-1, :-2] | e[1:-1, 2:]


def overlay(image: np.ndarray, truth: np.ndarray, pred: np.ndarray, width: int = THUMB_WIDTH) -> bytes:
    """A JPEG thumbnail ``width`` pixels wide: the image, the prediction tinted and outlined red, the truth outlined
    green (on top)."""
    from PIL import Image

    h, w = truth.shape
    size = (width, max(1, round(h * width / w)))
    rgb = image if image.ndim == 3 else np.stack([image] * 3, axis=-1)
    thumb = np.asarray(Image.fromarray(rgb[..., :3].astype(np.uint8)).resize(size, Image.Resampling.BILINEAR),
                       dtype=np.float32)

    def small(mask: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 127

    t, p = small(truth), small(pred)
    thumb[p] = thumb[p] * 0.6 + np.array([255.0, 0.0, 0.0]) * 0.4
    thumb[_edge(p)] = (255, 40, 40)
    thumb[_edge(t)] = (0, 230, 0)
    buf = io.BytesIO()
    Image.fromarray(thumb.round().astype(np.uint8)).save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buf.getvalue()


def _jaccard(truth: np.ndarray, pred: np.ndarray) -> float:
    union = np.count_nonzero(truth | pred)
    return 1.0 if union == 0 else np.count_nonzero(truth & pred) / union


def gallery_cell(label: str, records: list[dict[str, Any]], n: int, metric: str, images: ScoredImages,
                 recompute: Recompute | None) -> str:
    """A cell's ``n`` worst test images (lowest mean ``metric`` over its seeds), each drawn from the seed that did
    worst on it among those with a saved or recomputable prediction; or one line saying why none can be drawn,
    with the worst ids and their scores."""
    from PIL import Image

    by_image: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
    for record in records:
        for row in record["per_image"]:
            by_image[row["id"]].append((float(row[metric]), record))
    mean = {i: float(np.mean([s for s, _ in v])) for i, v in by_image.items()}
    worst = sorted(mean, key=lambda i: (mean[i], i))[:n]
    units = len({unit_of(r) for r in records})
    listed = ", ".join(f"<code>{esc(i)}</code> {mean[i]:.4f}" for i in worst)
    over = f"mean {esc(metric)} over {units} seed{'s' if units > 1 else ''}"

    def usable(record: dict[str, Any]) -> bool:
        return (_folder(record) / "predictions").is_dir() or (recompute is not None and _weights(record) is None)

    if not any(usable(r) for r in records):
        why = "No saved predictions (<code>--save-predictions</code>)" + (
            " or weights (<code>checkpoints/final.pt</code>)" if recompute is not None else
            " (masks are not recomputed from weights here)")
        return (f'<p class="nothing"><strong>{label}</strong>: {why} under these records; the {len(worst)} worst '
                f"images ({over}): {listed}.</p>")
    shots, problems = [], []
    refused: dict[int, str] = {}
    for image_id in worst:
        candidates = sorted(by_image[image_id], key=lambda sr: (sr[0], _unit_order(unit_of(sr[1]))))
        shown = None
        for score, record in candidates:
            if id(record) in refused or not usable(record):
                continue
            found = images.lookup(record)
            if isinstance(found, str):
                refused[id(record)] = found
                continue
            split, index = found
            if image_id not in index:
                refused[id(record)] = f"{image_id} is not in the test data"
                continue
            image, truth = split.load(index[image_id])
            truth = np.asarray(truth) > 0
            saved = _saved(record, image_id)
            try:
                if saved is not None:
                    pred = np.asarray(Image.open(saved).convert("L")) > 127
                    how = "saved prediction"
                elif recompute is not None and _weights(record) is None:
                    pred = np.asarray(recompute(record, [np.asarray(image)])[0]).astype(bool)
                    how = "recomputed from its weights"
                else:
                    continue
            except (BenchError, OSError, ValueError, RuntimeError) as exc:
                refused[id(record)] = str(exc)
                continue
            if pred.shape != truth.shape:
                refused[id(record)] = f"its mask of {image_id} is {pred.shape[1]}x{pred.shape[0]}, the image " \
                                      f"{truth.shape[1]}x{truth.shape[0]}"
                continue
            shown = (score, record, image, truth, pred, how)
            break
        if shown is None:
            problems.append(image_id)
            continue
        score, record, image, truth, pred, how = shown
        drawn = _jaccard(truth, pred)
        check = f" (the mask shown: {drawn:.4f})" if metric == "jaccard" and abs(drawn - score) > 5e-4 else ""
        shots.append(f'<figure class="shot">{img(overlay(np.asarray(image), truth, pred), "image/jpeg", image_id)}'
                     f"<figcaption><code>{esc(image_id)}</code><br>{esc(unit_of(record))}: {esc(metric)} {score:.4f}"
                     f"{check}<br>{f'{over}: {mean[image_id]:.4f}<br>' if units > 1 else ''}"
                     f"<span class=\"small\">{how}</span>"
                     "</figcaption></figure>")
    out = [f"<h5>{label}</h5>"]
    if shots:
        out.append('<div class="gallery">' + "\n".join(shots) + "</div>")
    if problems:
        reasons = sorted(set(refused.values()))
        named = ", ".join(f"<code>{esc(i)}</code> {mean[i]:.4f}" for i in problems)
        out.append(f'<p class="nothing">Not drawn: {named}' + (f" ({esc('; '.join(reasons))})" if reasons else "")
                   + ".</p>")
    return "\n".join(out)


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


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 0 auto; max-width: 1500px; padding: 1rem 2rem 4rem; color: #1d1f23; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 2px solid #d8dde6; padding-bottom: 0.2rem; margin-top: 2.5rem; }
h3 { margin-top: 2rem; } h4 { margin: 1.4rem 0 0.4rem; } h5 { margin: 0.6rem 0 0.3rem; font-size: 0.95rem; }
p { max-width: 110ch; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.88em;
       background: #f1f3f6; padding: 0 0.2em; border-radius: 3px; }
.scroll { overflow-x: auto; margin: 0.5rem 0 1rem; }
table { border-collapse: collapse; font-size: 0.86rem; }
th, td { border: 1px solid #d8dde6; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #eef1f6; position: sticky; top: 0; }
tbody tr:nth-child(even) { background: #f8f9fb; }
td.v-ok { background: #dff3e3; } td.v-bad { background: #f8dcdc; } td.v-warn { background: #fdf1d6; }
td.v-open { background: #eef1f6; } td.v-none { color: #777; }
nav.toc { background: #f8f9fb; border: 1px solid #d8dde6; border-radius: 6px; padding: 0.6rem 1.2rem; }
nav.toc ul { margin: 0.1rem 0; padding-left: 1.2rem; } nav.toc li { margin: 0.1rem 0; }
figure { margin: 0; }
figure.forest { margin: 0.5rem 0 1.5rem; overflow-x: auto; }
figure.forest figcaption, figure.cell figcaption, figure.shot figcaption { font-size: 0.8rem; color: #444; }
svg.forest { font-size: 12px; font-family: inherit; } svg.forest .small { font-size: 10.5px; fill: #444; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 1rem; }
figure.cell { border: 1px solid #e3e6ec; border-radius: 6px; padding: 0.5rem; }
figure.cell img { max-width: 100%; height: auto; display: block; margin: 0 auto 0.3rem; }
.gallery { display: flex; flex-wrap: wrap; gap: 0.6rem; }
figure.shot { width: 256px; } figure.shot img { width: 256px; height: auto; display: block; border-radius: 3px; }
.gcell { margin: 0 0 1rem; } .small { font-size: 0.78rem; color: #555; }
p.nothing { font-size: 0.86rem; color: #444; }
.truth { color: #0a8a0a; font-weight: 600; } .pred { color: #d22; font-weight: 600; }
ul.facts { padding-left: 1.2rem; } details { margin: 0.6rem 0 1.2rem; }
"""


def _toc(entries: list[tuple[int, str, str]]) -> str:
    """Nested lists of links to every heading (``h2`` at the top)."""
    out = ['<nav class="toc" id="contents"><strong>Contents</strong>']
    open_levels: list[int] = []
    for level, anchor, title in entries:
        while open_levels and open_levels[-1] > level:
            out.append("</li></ul>")
            open_levels.pop()
        if open_levels and open_levels[-1] == level:
            out.append("</li>")
        else:
            out.append("<ul>")
            open_levels.append(level)
        out.append(f'<li><a href="#{anchor}">{esc(title)}</a>')
    out.append("</li></ul>" * len(open_levels) + "</nav>")
    return "".join(out)


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
        _toc(body.toc),
        *body.parts,
        "</body>",
        "</html>",
        "",
    ])
