"""Static bar charts as inline SVG: no JavaScript, no fonts or files to fetch.

    >>> svg = bar_chart("Documents", ["kept", "dropped"], {"documents": [3, 1]})
    >>> svg.count('class="bar"')
    2
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

COLORS = ("#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377")


def bar_chart(title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]], *,
              chart_id: str = "", width: int = 640, height: int = 260) -> str:
    """Grouped vertical bars: one group per label, one bar per series.

    Every bar is a `<rect class="bar">` carrying `data-label`, `data-series`
    and `data-value`, so a test (or a reader of the source) can count them.
    """
    names = list(series)
    top = max([v for values in series.values() for v in values] + [0]) or 1
    left, bottom, plot_h = 56, 48, height - 48 - 30
    plot_w = width - left - 16
    group = plot_w / max(1, len(labels))
    bar = max(2.0, (group * 0.8) / max(1, len(names)))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}">',
             f'<text x="{left}" y="18" class="title">{escape(title)}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 16}" '
             f'y2="{height - bottom}" stroke="#888"/>',
             f'<text x="{left - 6}" y="{30 + 4}" text-anchor="end" class="tick">'
             f'{_short(top)}</text>',
             f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" class="tick">0</text>']
    for g, label in enumerate(labels):
        x0 = left + g * group + group * 0.1
        for s, name in enumerate(names):
            value = float(series[name][g])
            h = plot_h * value / top
            x = x0 + s * bar
            y = height - bottom - h
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar - 1:.1f}" '
                f'height="{h:.1f}" fill="{COLORS[s % len(COLORS)]}" '
                f'data-label="{escape(label)}" data-series="{escape(name)}" '
                f'data-value="{value:g}"><title>{escape(label)} / {escape(name)}: '
                f'{value:,.0f}</title></rect>')
        parts.append(f'<text x="{x0 + group * 0.4:.1f}" y="{height - bottom + 14}" '
                     f'text-anchor="middle" class="tick">{escape(label[:18])}</text>')
    if len(names) > 1:
        for s, name in enumerate(names):
            x = left + s * 130
            parts.append(f'<rect x="{x}" y="{height - 16}" width="10" height="10" '
                         f'fill="{COLORS[s % len(COLORS)]}"/><text x="{x + 14}" '
                         f'y="{height - 7}" class="tick">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _short(value: float) -> str:
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:g}"
