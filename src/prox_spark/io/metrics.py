"""What a run and each of its committed batches did: figures, the run summary,
and the metrics table.

Each batch's figures are written into the same Delta commit as its rows (the
commit's `userMetadata`), so they can never disagree with the table: the
metrics table is brought up to date from the refined table's history
(`sync_metrics`), idempotently, after every batch and at the start of every
run. A kill between a commit and its metrics row loses nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from prox_spark.io.delta import append_rows, committed_metadata, read_table, table_exists
from prox_spark.program.results import STATUSES
from prox_spark.refs import TableRef
from prox_spark.schema import columns

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Per model stage: rows the model answered now, rows that took the stage's
# stored output (see `stages.reuse`).
REUSE_COUNTS = ("doc_recomputed", "doc_reused", "chunk_recomputed", "chunk_reused")
USAGE = ("doc_prompt_tokens", "doc_generate_seconds", "chunk_prompt_tokens",
         "chunk_generate_seconds")
_SPLIT = ("new_documents", "changed_documents", "refreshed_documents")
_SUMS = ("program_errors", "rows_with_errors", "invalid_rows", "tokens_before", "tokens_after",
         "words_before", "words_after", *REUSE_COUNTS, *USAGE, *_SPLIT)
METRICS_SCHEMA = (
    "kind string, run_id string, batch int, batches int, commit_version long, "
    "run_at timestamp, fingerprint string, documents_in long, already_refined long, "
    "refined long, kept long, edited long, dropped long, reverted long, failed long, "
    "program_errors long, "
    "rows_with_errors long, invalid_rows long, duplicate_records long, conflicting_ids long, "
    "deleted long, tokens_before long, tokens_after long, words_before long, words_after long, "
    "wall_seconds double, documents_per_second double, rule_stats string, source_version long, "
    "source string, settings string, versions string, doc_recomputed long, doc_reused long, "
    "chunk_recomputed long, chunk_reused long, doc_prompt_tokens long, "
    "doc_generate_seconds double, chunk_prompt_tokens long, chunk_generate_seconds double, "
    "new_documents long, changed_documents long, refreshed_documents long"
)
METRICS_COLUMNS = tuple(columns(METRICS_SCHEMA))
MARKER = "prox_spark"


class StageStats(NamedTuple):
    """What one rule or dedup stage did to the documents of a batch or run."""

    stage: str
    dropped: int
    edited: int
    words_removed: int
    tokens_removed: int


@dataclass(frozen=True)
class BatchStats:
    """Figures of one batch of refined rows (what its commit changed)."""

    refined: int = 0
    kept: int = 0
    edited: int = 0
    dropped: int = 0
    reverted: int = 0
    failed: int = 0
    program_errors: int = 0
    rows_with_errors: int = 0
    invalid_rows: int = 0
    tokens_before: int = 0
    tokens_after: int = 0
    words_before: int = 0
    words_after: int = 0
    doc_recomputed: int = 0
    doc_reused: int = 0
    chunk_recomputed: int = 0
    chunk_reused: int = 0
    # Sent to the engines now (see `stages.model_usage`).
    doc_prompt_tokens: int = 0
    doc_generate_seconds: float = 0.0
    chunk_prompt_tokens: int = 0
    chunk_generate_seconds: float = 0.0
    # The rows split as `prox-spark plan` splits the work: ids the refined
    # table did not hold when the run planned, ids whose text changed, the
    # same text refined again. Counted on the rows committed, so the rows of
    # runs at once add up.
    new_documents: int = 0
    changed_documents: int = 0
    refreshed_documents: int = 0
    by_stage: tuple[StageStats, ...] = ()

    def __add__(self, other: BatchStats) -> BatchStats:
        stages: dict[str, list[int]] = {}
        for s in (*self.by_stage, *other.by_stage):
            acc = stages.setdefault(s.stage, [0, 0, 0, 0])
            for i, v in enumerate(s[1:]):
                acc[i] += v
        sums = {k: getattr(self, k) + getattr(other, k)
                for k in ("refined", *STATUSES, *_SUMS)}
        return BatchStats(**sums, by_stage=tuple(
            StageStats(name, *v) for name, v in sorted(stages.items())))

    def rule_stats(self) -> str:
        return json.dumps({s.stage: {"dropped": s.dropped, "edited": s.edited,
                                     "words_removed": s.words_removed,
                                     "tokens_removed": s.tokens_removed}
                           for s in self.by_stage}, sort_keys=True)


def _reuse_sums(refined: DataFrame) -> list[Any]:
    """Per model stage, rows it reached that the model answered now
    (`*_recomputed`) and rows that took its stored output (`*_reused`)."""
    from pyspark.sql import functions as F

    if "stage_inputs" not in refined.columns:
        return [F.lit(0).alias(name) for name in REUSE_COUNTS]
    out = []
    for prefix, stage in (("doc", "prox_doc"), ("chunk", "prox_chunk")):
        reached = F.coalesce(F.col("stage_inputs")[stage].isNotNull(), F.lit(False))
        reused = F.coalesce(F.array_contains(F.col("reused"), stage), F.lit(False))
        out += [F.sum((reached & ~reused).cast("long")).alias(f"{prefix}_recomputed"),
                F.sum((reached & reused).cast("long")).alias(f"{prefix}_reused")]
    return out


def batch_stats(refined: DataFrame, previous: DataFrame | None = None) -> BatchStats:
    """Count statuses, errors, words, tokens and per-stage edits of refined
    rows, and split them into new / changed / refreshed documents against
    `previous` (id, previous_content_hash: what the refined table held when
    the run planned; None: it held nothing)."""
    from pyspark.sql import functions as F

    row = refined.agg(
        F.count(F.lit(1)).alias("refined"),
        *[F.sum((F.col("status") == s).cast("long")).alias(s) for s in STATUSES],
        F.sum("errors").alias("program_errors"),
        F.sum(F.col("error").isNotNull().cast("long")).alias("rows_with_errors"),
        F.sum(F.col("invalid").cast("long")).alias("invalid_rows"),
        *[F.sum(c).alias(c) for c in ("tokens_before", "tokens_after",
                                      "words_before", "words_after")],
        *_reuse_sums(refined),
    ).collect()[0]
    by_stage = tuple(
        StageStats(r.stage, int(r.dropped or 0), int(r.edited or 0), int(r.words or 0),
                   int(r.tokens or 0))
        for r in refined.select(F.explode("rule_edits").alias("e"))
        .groupBy(F.col("e.stage").alias("stage"))
        .agg(F.sum(F.col("e.reason").isNotNull().cast("long")).alias("dropped"),
             F.sum(F.col("e.reason").isNull().cast("long")).alias("edited"),
             F.sum("e.words_removed").alias("words"),
             F.sum("e.tokens_removed").alias("tokens"))
        .orderBy("stage").collect()
    )
    counts = {k: int(v or 0) for k, v in row.asDict().items()}
    new, changed = counts["refined"], 0
    if previous is not None and counts["refined"]:
        new, changed = new_and_changed(refined, previous)
    return BatchStats(**counts, new_documents=new, changed_documents=changed,
                      refreshed_documents=counts["refined"] - new - changed, by_stage=by_stage)


def new_and_changed(rows: DataFrame, previous: DataFrame) -> tuple[int, int]:
    """(ids of `rows` that `previous` lacks, ids whose `content_hash`
    differs from `previous_content_hash`), for rows (id, content_hash) and
    `previous` (id, previous_content_hash): the split of work into new,
    changed and refreshed (the rest) that plans and batches report."""
    from pyspark.sql import functions as F

    old = F.col("previous_content_hash")
    row = (rows.select("id", "content_hash").join(previous, "id", "left")
           .agg(F.sum(old.isNull().cast("long")).alias("new"),
                F.sum((old != F.col("content_hash")).cast("long")).alias("changed"))
           .collect()[0])
    return int(row.new or 0), int(row.changed or 0)


@dataclass(frozen=True)
class RunSummary(BatchStats):
    """What a run did: the totals of its batches, plus what it read and deleted.
    `refined` counts documents that went through the stages now, `batches`
    the batches this run committed, `skipped_batches` those another run
    started at the same time committed first."""

    fingerprint: str = ""
    documents_in: int = 0
    already_refined: int = 0
    wall_seconds: float = 0.0
    duplicate_records: int = 0
    conflicting_ids: int = 0
    deleted: int = 0
    batches: int = 0
    skipped_batches: int = 0
    source_version: int | None = None
    run_id: str = ""
    notes: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, stats: BatchStats, **fields: Any) -> RunSummary:
        values = {f.name: getattr(stats, f.name) for f in dataclasses.fields(BatchStats)}
        return cls(**{**values, **fields})

    @property
    def documents_per_second(self) -> float:
        return self.refined / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def render(self) -> str:
        kept_share = (self.tokens_after / self.tokens_before * 100) if self.tokens_before else 0
        return "\n".join([
            "prox-spark run summary",
            f"  documents in      {self.documents_in:>10,}"
            f"   (already refined, skipped: {self.already_refined:,})",
            *([f"  invalid records   {self.invalid_rows:>10,}   (kept as error rows; see "
               "`error`)"] if self.invalid_rows else []),
            *([f"  duplicate ids     {self.duplicate_records:>10,}   extra records of ids read "
               f"more than once (one row per id; {self.conflicting_ids:,} "
               f"{'id' if self.conflicting_ids == 1 else 'ids'} with differing texts)"]
              if self.duplicate_records else []),
            f"  refined now       {self.refined:>10,}   in {self.batches:,} batch(es)"
            + (f" ({self.skipped_batches:,} more committed by another run)"
               if self.skipped_batches else ""),
            *([f"    of which        {self.new_documents:,} new, {self.changed_documents:,} "
               f"changed, {self.refreshed_documents:,} refreshed (same text, refined again)"]
              if self.refined else []),
            f"    kept            {self.kept:>10,}",
            f"    edited          {self.edited:>10,}",
            f"    dropped         {self.dropped:>10,}",
            f"    reverted        {self.reverted:>10,}",
            f"    failed          {self.failed:>10,}"
            + ("   (not refined; see `error`, retried on the next run)" if self.failed else ""),
            *([f"  deleted           {self.deleted:>10,}   (gone from the source)"]
              if self.deleted else []),
            f"  program errors    {self.program_errors:>10,}"
            "   (calls the interpreter could not apply; each row's `errors`)",
            *([f"  rows with error   {self.rows_with_errors:>10,}   (failed or invalid; see "
               "`error`)"] if self.rows_with_errors else []),
            *([f"  tokens before     {self.tokens_before:>10,}",
               f"  tokens after      {self.tokens_after:>10,}   ({kept_share:.1f}% kept)"]
              if self.tokens_before else []),
            f"  words before      {self.words_before:>10,}",
            f"  words after       {self.words_after:>10,}",
            *[line for label, now_, reused, tokens, seconds in (
                ("doc model", self.doc_recomputed, self.doc_reused, self.doc_prompt_tokens,
                 self.doc_generate_seconds),
                ("chunk model", self.chunk_recomputed, self.chunk_reused,
                 self.chunk_prompt_tokens, self.chunk_generate_seconds))
              if now_ or reused
              for line in (
                f"  {label:<17} {now_:>10,} model answers, {reused:,} stored reused",
                *([f"    prompt tokens   {tokens:>10,}   sent in {seconds:,.1f} s of "
                   f"generation ({tokens / seconds:,.0f} tokens/s per engine)"]
                  if tokens and seconds > 0 else []))],
            f"  wall time         {self.wall_seconds:>10.1f} s"
            f"   ({self.documents_per_second:.2f} documents/s)",
            *[f"  {s.stage:<17} {s.dropped:>10,} dropped, {s.edited:,} edited, "
              f"{s.words_removed:,} words"
              + (f" / {s.tokens_removed:,} tokens" if s.tokens_removed else "") + " removed"
              for s in self.by_stage],
            f"  fingerprint       {self.fingerprint}",
            *[f"  note: {n}" for n in self.notes],
        ])


def now() -> datetime:
    """The current time, timezone-aware UTC: Spark stores it as the same
    instant whatever the machine's or session's time zone (a naive value
    would be read as local time)."""
    return datetime.now(UTC)


def _utc(value: str) -> datetime:
    """An ISO timestamp from commit metadata as aware UTC (commits written
    by older versions hold naive UTC)."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# The key of a commit's metadata recording the source id column's type, which
# the next run compares its source with (`run.refined_table.RefinedTable.recorded_id_type`).
ID_TYPE = "id_type"


def _id_type(id_type: str | None) -> dict[str, str]:
    return {} if id_type is None else {ID_TYPE: id_type}


def batch_metadata(run_id: str, batch: int, batches: int, fingerprint: str,
                   stats: BatchStats, wall_seconds: float, id_type: str | None = None
                   ) -> dict[str, Any]:
    """What a batch's commit carries, to become its metrics row (and the
    source id type it was made from, when typed)."""
    return {MARKER: "batch", "run_id": run_id, "batch": batch, "batches": batches,
            "fingerprint": fingerprint, "wall_seconds": round(wall_seconds, 3),
            "run_at": now().isoformat(),
            **{k: v for k, v in asdict(stats).items() if k != "by_stage"},
            "rule_stats": stats.rule_stats(), **_id_type(id_type)}


def delete_metadata(run_id: str, fingerprint: str, deleted: int,
                    id_type: str | None = None) -> dict[str, Any]:
    return {MARKER: "delete", "run_id": run_id, "fingerprint": fingerprint,
            "deleted": deleted, "run_at": now().isoformat(), **_id_type(id_type)}


def _metrics_row(version: int, meta: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(METRICS_COLUMNS)
    for key in METRICS_COLUMNS:
        if key in meta:
            row[key] = meta[key]
    row["kind"] = meta[MARKER]
    row["commit_version"] = version
    try:
        row["run_at"] = _utc(meta.get("run_at", ""))
    except ValueError:
        row["run_at"] = now()
    seconds = float(meta.get("wall_seconds") or 0)
    row["wall_seconds"] = seconds
    row["documents_per_second"] = (meta.get("refined", 0) / seconds) if seconds else 0.0
    return row


def _app_id(output: TableRef) -> str:
    return "prox-spark-metrics:" + hashlib.sha256(str(output).encode()).hexdigest()[:16]


def sync_metrics(spark: SparkSession, output: TableRef, metrics: TableRef) -> int:
    """Append a metrics row for every batch or delete commit of `output` not yet
    recorded; exactly once (keyed by commit version). Returns rows appended."""
    from pyspark.sql import functions as F

    last = -1
    if table_exists(spark, metrics):
        table = read_table(spark, metrics)
        if "commit_version" in table.columns:
            got = table.agg(F.max("commit_version")).collect()[0][0]
            last = -1 if got is None else int(got)
    commits = [(v, m) for v, m in committed_metadata(spark, output, last) if MARKER in m]
    if not commits:
        return 0
    rows = [_metrics_row(v, m) for v, m in commits]
    append_rows(spark, rows, METRICS_SCHEMA, metrics, app_id=_app_id(output),
                txn_version=max(v for v, _ in commits))
    return len(rows)


def run_row(summary: RunSummary) -> dict[str, Any]:
    """The metrics row of a whole run (kind `run`)."""
    fields = asdict(replace(summary, by_stage=()))
    row = {k: fields.get(k) for k in METRICS_COLUMNS}
    row.update(kind="run", run_at=now(), documents_per_second=summary.documents_per_second,
               rule_stats=BatchStats(by_stage=summary.by_stage).rule_stats())
    return row


def last_source_version(spark: SparkSession, metrics: TableRef, fingerprint: str) -> int | None:
    """The source version the last complete run with this fingerprint refreshed up to."""
    from pyspark.sql import functions as F

    if not table_exists(spark, metrics):
        return None
    table = read_table(spark, metrics)
    if "source_version" not in table.columns or "kind" not in table.columns:
        return None
    got = (table.where((F.col("kind") == "run") & (F.col("fingerprint") == fingerprint))
           .agg(F.max("source_version")).collect()[0][0])
    return None if got is None else int(got)


def measured_rates(spark: SparkSession, metrics: TableRef) -> dict[str, tuple[float, int]]:
    """Per model stage ("prox_doc", "prox_chunk"), the prompt tokens per
    second of generation its engines reached over the batches recorded in
    the metrics table, and how many batches measured it (stages with no
    recorded generation are left out). One engine works on one GPU, so this
    is prompt tokens per GPU-second."""
    from pyspark.sql import functions as F

    if not table_exists(spark, metrics):
        return {}
    table = read_table(spark, metrics)
    if not set(USAGE) <= set(table.columns):
        return {}
    aggs = []
    for prefix in ("doc", "chunk"):
        seconds = F.col(f"{prefix}_generate_seconds")
        aggs += [F.sum(F.when(seconds > 0, F.col(f"{prefix}_prompt_tokens"))).alias(f"{prefix}_t"),
                 F.sum(F.when(seconds > 0, seconds)).alias(f"{prefix}_s"),
                 F.count(F.when(seconds > 0, F.lit(1))).alias(f"{prefix}_n")]
    row = table.where(F.col("kind") == "batch").agg(*aggs).collect()[0]
    out = {}
    for prefix, stage in (("doc", "prox_doc"), ("chunk", "prox_chunk")):
        tokens, seconds, n = row[f"{prefix}_t"], row[f"{prefix}_s"], row[f"{prefix}_n"]
        if tokens and seconds:
            out[stage] = (float(tokens) / float(seconds), int(n))
    return out
