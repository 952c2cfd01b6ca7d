"""The annotate report: one self-contained HTML page next to the SFT table
(`<sft_table>_reports/annotate-<time>.html`) with the label distribution,
the discards by reason and sample examples with what their programs do
(removed lines struck through, normalized strings highlighted).
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prox_spark.distill.checks import chunk_of_prompt
from prox_spark.distill.config import DistillConfig
from prox_spark.distill.summary import AnnotateSummary
from prox_spark.program import Normalize, RemoveLines, parse_program
from prox_spark.report.svg import bar_chart

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
.charts{display:flex;flex-direction:column;gap:12px}.chart{width:100%;height:auto}
.chart .title{font-weight:600;font-size:13px}.chart .tick{font-size:10px;fill:#555}
pre.doc{white-space:pre-wrap;background:#fafafa;border:1px solid #eee;padding:8px}
del.removed{background:#fde2e2;color:#a33}mark.normalized{background:#fff1a8}
.example{margin:14px 0}.meta{color:#666;font-size:12px}code{font-size:12px}
"""


def chunk_of(prompt: str) -> str:
    """The numbered chunk of a chunk prompt (the prompt itself if it is none)."""
    try:
        return chunk_of_prompt(prompt)
    except ValueError:
        return prompt


def chunk_html(chunk: str, program: str | None) -> str:
    """A numbered chunk with what `program` does to it marked."""
    calls = parse_program(program).calls if program else ()
    removed: set[int] = set()
    sources = [c.source for c in calls if isinstance(c, Normalize) and c.source]
    out = []
    for line in chunk.split("\n"):
        number = int(line[1:line.index("]")]) if line.startswith("[") and "]" in line else -1
        for call in calls:
            if isinstance(call, RemoveLines) and call.start <= number <= \
                    (call.end if call.end is not None else number):
                removed.add(number)
        text = escape(line)
        for source in sources:
            text = text.replace(escape(source), f'<mark class="normalized">{escape(source)}</mark>')
        out.append(f'<del class="removed">{text}</del>' if number in removed else text)
    return '<pre class="doc">' + "\n".join(out) + "</pre>"


def _example(row: Any) -> str:
    body = chunk_html(chunk_of(row["prompt"] or ""), row["completion"]) if row["task"] == "chunk" \
        else f'<pre class="doc">{escape((row["prompt"] or "")[:3000])}</pre>'
    status = "valid" if row["valid"] else f"discarded: {row['reason']}"
    return (f'<div class="example"><h3>{escape(row["id"])} <small>{escape(row["task"])}'
            f'{"" if row["chunk_index"] is None else " " + str(row["chunk_index"])} · '
            f'{escape(status)}</small></h3>{body}<div class="meta">completion:<pre><code>'
            f'{escape(row["completion"] or "(none)")}</code></pre>teacher said:<pre><code>'
            f'{escape((row["teacher_output"] or "")[:2000])}</code></pre></div></div>')


def render(summary: AnnotateSummary, samples: list[Any]) -> str:
    """The page for one annotation."""
    labels = sorted(summary.labels)
    reasons = sorted(summary.discards, key=lambda r: -summary.discards[r])
    charts = [
        bar_chart("Valid examples by label", labels or ["(none)"],
                  {"examples": [summary.labels[k] for k in labels] or [0]},
                  chart_id="labels"),
        bar_chart("Discarded examples by reason", reasons or ["(none)"],
                  {"examples": [summary.discards[r] for r in reasons] or [0]},
                  chart_id="discards"),
    ]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>prox-spark annotate</title>
<style>{_CSS}</style></head><body>
<h1>Annotation of {escape(summary.table)} (version {summary.version})</h1>
<pre>{escape(summary.render())}</pre>
<h2>Plots</h2><div class="charts">{"".join(charts)}</div>
<h2>Sample examples</h2>
{"".join(_example(r) for r in samples) or "<p>No examples.</p>"}
</body></html>
"""


def write_annotate_report(written: DataFrame, summary: AnnotateSummary,
                          config: DistillConfig, per_kind: int = 3) -> Path | None:
    """Write the page for a path SFT table; None for a catalog table."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if config.sft_table.path is None or "://" in config.sft_table.path:
        return None
    w = Window.partitionBy("task", "valid").orderBy(F.sha2(F.col("id"), 256), "chunk_index")
    samples = (written.withColumn("_n", F.row_number().over(w)).where(F.col("_n") <= per_kind)
               .orderBy("task", F.col("valid").desc(), "id", "chunk_index").collect())
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = Path(config.sft_table.path.rstrip("/") + "_reports") / f"annotate-{stamp}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(summary, samples), encoding="utf-8")
    return target
