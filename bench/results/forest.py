"""Forest plots of a difference table as inline SVG: each strategy's difference from the baseline with its
seed x image interval, the image-only interval, the zero line and the paper's gain."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


from bench.results.report_html import esc


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


