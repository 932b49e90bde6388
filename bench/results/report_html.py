"""The report's HTML: markdown tables and paragraphs (as ``bench leaderboard`` and ``bench claims`` print them)
turned into escaped HTML, inlined images, the style sheet and the table of contents."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from typing import Any





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


def toc(entries: list[tuple[int, str, str]]) -> str:
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


