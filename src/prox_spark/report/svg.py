"""Static bar charts as inline SVG: no JavaScript, no fonts or files to fetch.

Horizontal grouped bars, so category labels have room: each label is wrapped
onto as many lines as it needs (never cut) in a column on the left, each bar
carries its value at its end, and the chart scales to the page's full width
(`viewBox`, width 100%). Every position is computed here, so no two labels
can overlap: each row's band is as tall as its wrapped label or its bars.

    >>> svg = bar_chart("Documents", ["kept", "dropped"], {"documents": [3, 1]})
    >>> svg.count('class="bar"')
    2
    >>> wrap("chunk_policy:min_kept_ratio", 12)
    ['chunk_policy', ':min_kept', '_ratio']
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html import escape

COLORS = ("#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377")
# Layout in SVG units (the chart is drawn 1000 wide and scaled to the page).
WIDTH = 1000
LABEL_W = 240          # column of category labels
VALUE_W = 90           # room right of the longest bar for its value
CHAR_W = 6.6           # a generous average advance of an 11 px sans-serif glyph
LINE_H = 14
BAR_H = 16
ROW_GAP = 10
TITLE_H = 26


def wrap(label: str, width: int) -> list[str]:
    """`label` in lines of at most `width` characters: broken at spaces, or
    before `:`/`_`/`-`/`/` inside a word, or inside a piece longer than a
    line. Nothing is dropped: the lines hold every character of `label`."""
    lines: list[str] = []
    current = ""
    for word in label.split():
        for index, piece in enumerate(p for p in re.split(r"(?=[:_/-])", word) if p):
            glue = " " if index == 0 and current else ""
            while len(piece) > width:
                if current:
                    lines.append(current)
                    current, glue = "", ""
                lines.append(piece[:width])
                piece = piece[width:]
            if current and len(current) + len(glue) + len(piece) > width:
                lines.append(current)
                current = piece
            else:
                current += glue + piece
    if current:
        lines.append(current)
    return lines or [""]


def bar_chart(title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]], *,
              chart_id: str = "") -> str:
    """Grouped horizontal bars: one row per label, one bar per series.

    Every bar is a `<rect class="bar">` carrying `data-label`, `data-series`
    and `data-value`, so a test (or a reader of the source) can count them;
    every value is also written as text at the bar's end (`class="value"`).
    """
    names = list(series)
    top = max([float(v) for values in series.values() for v in values] + [0.0]) or 1.0
    plot_x = LABEL_W + 10
    plot_w = WIDTH - plot_x - VALUE_W
    chars = int((LABEL_W - 8) // CHAR_W)
    parts: list[str] = []
    y = TITLE_H
    if len(names) > 1:
        x = float(plot_x)
        for s, name in enumerate(names):
            parts.append(f'<rect x="{x:.1f}" y="{y - 10}" width="10" height="10" '
                         f'fill="{COLORS[s % len(COLORS)]}"/><text x="{x + 14:.1f}" y="{y}" '
                         f'class="tick legend">{escape(name)}</text>')
            x += 14 + CHAR_W * len(name) + 24
        y += LINE_H + 4
    y += 4
    for g, label in enumerate(labels):
        lines = wrap(label, chars)
        row_h = max(len(names) * BAR_H, len(lines) * LINE_H) + ROW_GAP
        spans = "".join(f'<tspan x="{LABEL_W}" dy="{0 if i == 0 else LINE_H}">{escape(line)}'
                        f"</tspan>" for i, line in enumerate(lines))
        parts.append(f'<text x="{LABEL_W}" y="{y + 12}" text-anchor="end" class="tick label">'
                     f"{spans}</text>")
        for s, name in enumerate(names):
            value = float(series[name][g])
            w = plot_w * value / top
            by = y + s * BAR_H
            parts.append(
                f'<rect class="bar" x="{plot_x}" y="{by:.1f}" width="{w:.1f}" '
                f'height="{BAR_H - 2}" fill="{COLORS[s % len(COLORS)]}" '
                f'data-label="{escape(label)}" data-series="{escape(name)}" '
                f'data-value="{value:g}"><title>{escape(label)} / {escape(name)}: '
                f'{value:,.0f}</title></rect>'
                f'<text x="{plot_x + w + 4:.1f}" y="{by + BAR_H - 5:.1f}" class="value">'
                f"{_short(value)}</text>")
        y += row_h
    height = y + 4
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
            f'width="100%" viewBox="0 0 {WIDTH} {height}" preserveAspectRatio="xMinYMin meet" '
            f'role="img" aria-label="{escape(title)}">'
            f'<text x="0" y="16" class="title">{escape(title)}</text>'
            f'<line x1="{plot_x}" y1="{TITLE_H - 4}" x2="{plot_x}" y2="{height - 4}" '
            f'stroke="#888"/>')
    return head + "".join(parts) + "</svg>"


def _short(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:,.1f}M"
    if value >= 1e4:
        return f"{value / 1e3:,.1f}k"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
