"""An ablation's report: one self-contained HTML page to open offline.

Built from the result rows alone (see `prox_spark.ablate.stats`), so a report
can be written again at any time from the results table. It shows, against
the baseline (the first variant): each variant's final values with the
difference's 95% interval and a verdict (within noise, better, worse), the
training tokens each variant needs to reach the baseline's final value, and
inline SVG curves over training tokens. No scripts, no fetches.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from prox_spark.ablate.stats import (
    AGGREGATE_METRIC,
    AGGREGATE_NAME,
    AGGREGATE_TASK,
    REFERENCE_TASK,
    TRAIN_TASK,
    Comparison,
    aggregate_rows,
    compare,
    curves,
    higher_is_better,
    is_choice_task,
    tokens_to_match,
)
from prox_spark.report.svg import line_chart

Row = Mapping[str, Any]
Pair = tuple[str, str]

AGGREGATE: Pair = (AGGREGATE_TASK, AGGREGATE_NAME)
BITS_PER_BYTE: Pair = (REFERENCE_TASK, "bits_per_byte")
TRAIN_LOSS: Pair = (TRAIN_TASK, "loss")
CHOICE_METRICS = ("acc", AGGREGATE_METRIC)

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}
.charts{display:block}svg.chart{display:block;width:100%;height:auto;margin:10px 0}
.chart .title{font-weight:600;font-size:13px}.chart .tick{font-size:11px;fill:#555}
.chart .value{font-size:11px;fill:#222}
.verdict.better{color:#1d5e12}.verdict.worse{color:#a33}.verdict.within-noise{color:#666}
.meta{color:#666;font-size:12px}code{font-size:12px}
"""


def _order(rows: Sequence[Row], variants: Sequence[str]) -> list[str]:
    """`variants`, then any variant the rows hold that the list does not name."""
    order = list(variants)
    for row in rows:
        if str(row["variant"]) not in order:
            order.append(str(row["variant"]))
    return order


def _pairs(rows: Sequence[Row]) -> list[Pair]:
    """The (task, metric) pairs compared: the aggregate, bits per byte, then
    each multiple-choice task's acc and acc_norm; only those the rows hold."""
    present = {(str(r["task"]), str(r["metric"])) for r in rows}
    tasks = sorted({t for t, m in present if is_choice_task(t) and m in CHOICE_METRICS})
    wanted = [AGGREGATE, BITS_PER_BYTE, *((t, m) for t in tasks for m in CHOICE_METRICS)]
    return [pair for pair in wanted if pair in present]


def _direction(metric: str) -> str:
    return "higher is better" if higher_is_better(metric) else "lower is better"


def _verdict(comparison: Comparison, baseline: str) -> str:
    if comparison.variant == baseline:
        return "baseline"
    if comparison.diff is None:
        return "no baseline"
    if comparison.within_noise:
        return "within noise"
    return "better" if comparison.better else "worse"


def _final_row(comparison: Comparison, baseline: str, epochs: float | None) -> str:
    seeds = f"{comparison.seeds} seed{'s' if comparison.seeds != 1 else ''}"
    diff = ""
    if comparison.diff is not None:
        diff = f"{comparison.diff:+.4f} [{comparison.low:+.4f}, {comparison.high:+.4f}]"
    verdict = _verdict(comparison, baseline)
    repeated = (f' <span class="meta">(its sample repeated {epochs:.1f} times)</span>'
                if epochs is not None and epochs > 1 else "")
    return (f"<tr><td>{escape(comparison.variant)}</td><td>{comparison.mean:.4f} ({seeds})</td>"
            f'<td>{diff}</td><td class="verdict {verdict.replace(" ", "-")}">{verdict}'
            f"{repeated}</td></tr>")


def _final_table(rows: Sequence[Row], order: Sequence[str], pair: Pair,
                 epochs: Mapping[str, float]) -> str:
    """One variant per row: final mean over seeds, difference to the baseline
    with its 95% interval, verdict (with the epochs of a repeated sample)."""
    task, metric = pair
    body = "".join(_final_row(c, order[0], epochs.get(c.variant))
                   for c in compare(rows, order, task, metric))
    return (f"<h3>{escape(task)} / {escape(metric)} <small>({_direction(metric)})</small></h3>"
            f'<table id="final-{escape(task)}-{escape(metric)}"><tr><th>variant</th>'
            f"<th>final mean (seeds)</th><th>difference to {escape(order[0])} [95% interval]</th>"
            f"<th>verdict</th></tr>{body}</table>")


def _final_tokens(rows: Sequence[Row], variant: str, pair: Pair) -> int | None:
    """The most training tokens at which `variant` has a final `pair` row."""
    tokens = [int(r["tokens"]) for r in rows if r["variant"] == variant and r["final"]
              and (r["task"], r["metric"]) == pair]
    return max(tokens) if tokens else None


def _match_cell(tokens: int | None, base: int | None) -> str:
    if tokens is None:
        return "<td>not reached</td>"
    share = f" ({tokens / base:.2f}x)" if base else ""
    return f"<td>{tokens:,}{share}</td>"


def _match_table(rows: Sequence[Row], order: Sequence[str], meta: Mapping[str, Any]) -> str:
    """Per variant, the training tokens at which its mean curve first reaches
    the baseline's final value, for the aggregate and bits per byte."""
    pairs = [p for p in (AGGREGATE, BITS_PER_BYTE) if p in _pairs(rows)]
    if not pairs:
        return "<p>Neither the aggregate nor bits per byte has results yet.</p>"
    matches = {p: tokens_to_match(rows, order, *p) for p in pairs}
    bases = {p: _final_tokens(rows, order[0], p) or meta.get("tokens") for p in pairs}
    head = "".join(f"<th>{escape(t)} / {escape(m)}</th>" for t, m in pairs)
    body = "".join(f"<tr><td>{escape(v)}</td>"
                   + "".join(_match_cell(matches[p][v], bases[p]) for p in pairs) + "</tr>"
                   for v in order)
    return (f"<p class=\"meta\">Training tokens at which a variant's mean curve first reaches "
            f"the final value of {escape(order[0])}, interpolated linearly between evaluation "
            f"points, and as a share of {escape(order[0])}'s training tokens (below 1x: fewer "
            f'tokens for the same quality).</p><table id="match"><tr><th>variant</th>{head}'
            f"</tr>{body}</table>")


def _chart(rows: Sequence[Row], order: Sequence[str], pair: Pair) -> str:
    task, metric = pair
    lines = curves(rows, task, metric)
    series = {v: [(p.tokens, p.mean, p.low, p.high) for p in lines[v]]
              for v in order if v in lines}
    if not series:
        return ""
    title = (f"{task}: {metric} (on each variant's own sample: not comparable across variants)"
             if task == "train" else f"{task}: {metric} ({_direction(metric)})")
    return line_chart(title, series, y_label=metric,
                      chart_id=f"curve-{task}-{metric}")


def _meta_line(meta: Mapping[str, Any]) -> str:
    """Output table, tokens per variant, seeds, proxy size and shape."""
    parts = []
    if meta.get("output"):
        parts.append(f"results <code>{escape(str(meta['output']))}</code>")
    if meta.get("tokens") is not None:
        parts.append(f"{int(meta['tokens']):,} training tokens per variant")
    if meta.get("seeds"):
        parts.append("seeds " + ", ".join(escape(str(s)) for s in meta["seeds"]))
    if meta.get("parameters") is not None:
        parts.append(f"proxy of {int(meta['parameters']):,} parameters")
    if meta.get("model"):
        parts.append(escape(", ".join(f"{k}={v}" for k, v in dict(meta["model"]).items())))
    return f'<p class="meta">{" · ".join(parts)}</p>' if parts else ""


def _epochs(rows: Sequence[Row], meta: Mapping[str, Any]) -> dict[str, float]:
    """Passes over each variant's sample: from `meta`, else the rows' largest."""
    epochs: dict[str, float] = {}
    for row in rows:
        if row.get("epochs") is not None:
            epochs[str(row["variant"])] = max(float(row["epochs"]),
                                              epochs.get(str(row["variant"]), 0.0))
    epochs.update({str(k): float(v) for k, v in dict(meta.get("epochs") or {}).items()})
    return epochs


def _head(rows: Sequence[Row], meta: Mapping[str, Any]) -> str:
    """Title, meta line, the notes to read first and any repeated variant."""
    title = escape(str(meta.get("title") or "prox-spark ablation"))
    parts = [f"<h1>{title}</h1>", _meta_line(meta)]
    notes = [str(n) for n in meta.get("notes") or ()]
    if notes:
        items = "".join(f"<li>{escape(n)}</li>" for n in notes)
        parts.append(f'<h2>Read this first</h2><ul id="notes">{items}</ul>')
    repeated = {v: e for v, e in _epochs(rows, meta).items() if e > 1}
    if repeated:
        named = ", ".join(f"{escape(v)} ({e:.2f} epochs)" for v, e in repeated.items())
        parts.append(f'<p id="repeated">Repeated data, more than one pass over the sample: '
                     f"{named}.</p>")
    return "".join(parts)


def _results(rows: Sequence[Row], order: Sequence[str], meta: Mapping[str, Any]) -> str:
    """The final values, tokens to match and curves sections."""
    pairs = _pairs(rows)
    epochs = _epochs(rows, meta)
    tables = "".join(_final_table(rows, order, p, epochs) for p in pairs)
    charts = "".join(_chart(rows, order, p) for p in [*pairs, TRAIN_LOSS])
    return (f'<h2>Final values</h2><p class="meta">Mean over seeds of each variant\'s last '
            f"evaluation. The 95% interval of the difference is taken seed by seed when the "
            f"variants share their seeds (a seed fixes the init and the data order), else from "
            f"both variants' spread over seeds, plus the sampling error over examples, with "
            f"Student's t for the seeds (12.7 for two seeds, so two seeds show only large "
            f"differences). With one seed it holds the sampling error only: seed-to-seed "
            f"noise is not in it. A difference whose interval holds 0 is within noise.</p>"
            f"{tables or '<p>No final values yet.</p>'}"
            f"<h2>Tokens to match</h2>{_match_table(rows, order, meta)}"
            f'<h2>Curves</h2><p class="meta">Lines are the mean over seeds; the shaded band '
            f'spans the lowest to the highest seed.</p><div class="charts">{charts}</div>')


def render_report(rows: Iterable[Row], variants: Sequence[str], meta: Mapping[str, Any]) -> str:
    """The ablation report as one self-contained HTML page. `variants[0]` is
    the baseline; `meta` may hold title, output, tokens, seeds, model,
    parameters, epochs, notes and settings (each optional)."""
    raw = list(rows)
    every = [*raw, *aggregate_rows(raw)]
    order = _order(every, variants)
    body = (_results(every, order, meta) if every and order else
            '<p id="empty">No results yet: the ablation has written no evaluation.</p>')
    settings = json.dumps(meta.get("settings") or {}, indent=2, default=str, sort_keys=True)
    title = escape(str(meta.get("title") or "prox-spark ablation"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title><style>{CSS}</style></head>
<body>
{_head(raw, meta)}
{body}
<h2>Settings</h2><pre><code id="settings">{escape(settings)}</code></pre>
</body></html>
"""


def write_report(path: str | Path, rows: Iterable[Row], variants: Sequence[str],
                 meta: Mapping[str, Any]) -> Path:
    """Render the report and write it to `path` (its folders made); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(rows, variants, meta), encoding="utf-8")
    return target
