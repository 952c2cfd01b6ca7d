"""Static bar and line charts as inline SVG: no JavaScript, no fonts or files to fetch.

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

Line charts draw one curve per series over a shared x axis, with a shaded
band (say, the lowest to the highest seed) around each curve:

    >>> svg = line_chart("Loss", {"a": [(0, 2.0, 1.9, 2.1), (10, 1.5, 1.5, 1.5)],
    ...                           "b": [(0, 2.1, 2.1, 2.1)]})
    >>> svg.count('class="line"'), svg.count('class="band"'), svg.count('class="point"')
    (2, 1, 3)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
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
# Line charts.
AXIS_W = 80            # column of y tick labels left of the plot
RIGHT_W = 20
PLOT_H = 260
TICKS = 5              # about this many ticks per axis


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


def _ticks(lo: float, hi: float, count: int = TICKS) -> tuple[list[float], float]:
    """About `count` round values in [lo, hi], 1, 2 or 5 times a power of ten
    apart, and that step (0 for an empty range: the one tick is `lo`)."""
    if hi <= lo:
        return [lo], 0.0
    raw = (hi - lo) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    return [i * step for i in range(first, last + 1)], step


def _tick_label(value: float, step: float, top: float) -> str:
    """`value` shortened like 1.2M or 500k (by the axis' largest magnitude
    `top`), with just the decimals that tell ticks `step` apart."""
    if step <= 0:
        return _short(value) if value >= 0 else f"-{_short(-value)}"
    if value == 0:
        return "0"
    scale, suffix = (1e6, "M") if top >= 1e6 else (1e3, "k") if top >= 1e4 else (1.0, "")
    decimals = max(0, -math.floor(math.log10(step / scale) + 1e-9))
    return f"{value / scale:,.{decimals}f}{suffix}"


def _y_range(series: Mapping[str, Sequence[tuple[float, float, float, float]]]
             ) -> tuple[float, float]:
    """The y axis' range: every y, low and high, with 5% room either side
    (5% of the value, or 1, for a flat series)."""
    ys = [float(v) for points in series.values() for p in points for v in p[1:]] or [0.0]
    lo, hi = min(ys), max(ys)
    pad = (hi - lo) * 0.05 or abs(lo) * 0.05 or 1.0
    return lo - pad, hi + pad


def _scale(lo: float, hi: float, start: float, end: float) -> Callable[[float], float]:
    """Maps [lo, hi] onto [start, end]; an empty range maps to the middle."""
    if hi <= lo:
        return lambda _value: (start + end) / 2
    return lambda value: start + (value - lo) / (hi - lo) * (end - start)


def _legend(series: Mapping[str, Sequence[tuple[float, float, float, float]]],
            y: float) -> str:
    """Series names in COLORS order, each after a short line of its colour
    and before its last y value (`class="value"`)."""
    parts, x = [], float(AXIS_W)
    for s, (name, points) in enumerate(series.items()):
        color = COLORS[s % len(COLORS)]
        last = f"{float(points[-1][1]):.4g}" if points else ""
        parts.append(f'<line x1="{x:.1f}" y1="{y - 4}" x2="{x + 16:.1f}" y2="{y - 4}" '
                     f'stroke="{color}" stroke-width="2"/><text x="{x + 20:.1f}" y="{y}" '
                     f'class="tick legend">{escape(name)}</text><text '
                     f'x="{x + 24 + CHAR_W * len(name):.1f}" y="{y}" class="value">{last}</text>')
        x += 24 + CHAR_W * (len(name) + len(last)) + 24
    return "".join(parts)


def _labelled_ticks(bounds: tuple[float, float]) -> list[tuple[float, str]]:
    """(value, label) of each tick of an axis spanning `bounds`."""
    ticks, step = _ticks(*bounds)
    top = max(abs(bounds[0]), abs(bounds[1]))
    return [(value, _tick_label(value, step, top)) for value in ticks]


def _axes(xs: tuple[float, float], ys: tuple[float, float], to_x: Callable[[float], float],
          to_y: Callable[[float], float], box: tuple[float, float, float, float]) -> str:
    """Both axes of the plot `box` (left, top, right, bottom), with ticks,
    tick labels and light grid lines across at the y ticks."""
    left, top, right, bottom = box
    parts = [f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#888"/>'
             f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#888"/>']
    for value, label in _labelled_ticks(ys):
        y = to_y(value)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
                     f"{label}</text>")
    for value, label in _labelled_ticks(xs):
        x = to_x(value)
        parts.append(f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" '
                     f'stroke="#888"/><text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" '
                     f'class="tick">{label}</text>')
    return "".join(parts)


def _series(name: str, color: str, points: Sequence[tuple[float, float, float, float]],
            to_x: Callable[[float], float], to_y: Callable[[float], float]) -> str:
    """One series: its band (when low and high differ anywhere), its line and
    a marker at every point."""
    parts = []
    if any(low != high for _, _, low, high in points):
        edge = [(x, high) for x, _, _, high in points] + [(x, low) for x, _, low, _ in
                                                          reversed(points)]
        corners = " ".join(f"{to_x(x):.1f},{to_y(y):.1f}" for x, y in edge)
        parts.append(f'<polygon class="band" points="{corners}" fill="{color}" '
                     f'fill-opacity="0.15" stroke="none" data-series="{escape(name)}"/>')
    line = " ".join(f"{to_x(x):.1f},{to_y(y):.1f}" for x, y, _, _ in points)
    parts.append(f'<polyline class="line" points="{line}" fill="none" stroke="{color}" '
                 f'stroke-width="2" data-series="{escape(name)}"/>')
    for x, y, low, high in points:
        parts.append(f'<circle class="point" cx="{to_x(x):.1f}" cy="{to_y(y):.1f}" r="3" '
                     f'fill="{color}" data-series="{escape(name)}" data-x="{x:.10g}" '
                     f'data-y="{y:.10g}"><title>{escape(name)} at {_short(float(x))}: {y:.4g} '
                     f"({low:.4g} to {high:.4g})</title></circle>")
    return "".join(parts)


def line_chart(title: str, series: Mapping[str, Sequence[tuple[float, float, float, float]]],
               *, x_label: str = "training tokens", y_label: str = "",
               chart_id: str = "") -> str:
    """Lines over a shared x axis: each series is a list of (x, y, low, high),
    drawn as a `<polyline class="line">` through its (x, y), a marker
    (`class="point"`, with `data-x`/`data-y`) at each point, and a
    `<polygon class="band">` from low to high when they differ anywhere.
    A single point or a flat series is drawn in the middle of its range."""
    names = list(series)
    xs_all = [float(p[0]) for points in series.values() for p in points] or [0.0]
    xs = (min(xs_all), max(xs_all))
    ys = _y_range(series)
    legend_y = TITLE_H + 4
    top = legend_y + LINE_H + (LINE_H + 4 if y_label else 4)
    box = (float(AXIS_W), float(top), float(WIDTH - RIGHT_W), float(top + PLOT_H))
    to_x = _scale(*xs, box[0] + 8, box[2] - 8)
    to_y = _scale(*ys, box[3], box[1])
    height = box[3] + 40
    parts = [_legend(series, legend_y)]
    if y_label:
        parts.append(f'<text x="{AXIS_W}" y="{top - 6}" class="tick">{escape(y_label)}</text>')
    parts.append(_axes(xs, ys, to_x, to_y, box))
    for s, name in enumerate(names):
        parts.append(_series(name, COLORS[s % len(COLORS)], series[name], to_x, to_y))
    parts.append(f'<text x="{(box[0] + box[2]) / 2:.1f}" y="{box[3] + 34}" '
                 f'text-anchor="middle" class="tick">{escape(x_label)}</text>')
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
            f'width="100%" viewBox="0 0 {WIDTH} {height:.0f}" '
            f'preserveAspectRatio="xMinYMin meet" role="img" aria-label="{escape(title)}">'
            f'<text x="0" y="16" class="title">{escape(title)}</text>')
    return head + "".join(parts) + "</svg>"
