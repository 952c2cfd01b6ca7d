"""What a refresh has to do: the source resolved to one row per id, the rows
to refine now, the refined rows to delete, and the batches to commit.

Pending = source rows whose (id, content hash) is not in the refined table
with this run's fingerprint, plus the rows whose dedup decision went stale
(their keeper changed or left the source), plus the rows stored "failed"
(not refined) tried fewer than `max_attempts` times. Batches are ranges of ids in
sorted order, so a run started again after a kill cuts the remaining
documents into exactly the batches it would have committed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prox_spark.config import InputConfig, PipelineConfig
from prox_spark.errors import SourceError, first_line
from prox_spark.io.metrics import last_source_version, new_and_changed
from prox_spark.io.sources import (
    COPIES,
    TEXTS,
    Changes,
    has_change_feed,
    id_type,
    load_typed,
    read_changes,
    read_source,
    resolve_duplicate_ids,
    source_version,
)
from prox_spark.run.refined_table import RefinedTable

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """The work of one run, decided before any stage runs."""

    source: DataFrame          # one row per id (persisted)
    pending: DataFrame         # rows to refine now (persisted)
    deleted: DataFrame | None  # ids of refined rows to delete
    documents_in: int
    pending_count: int
    waiting_count: int         # pending before --limit
    bounds: list[str]          # first id of each batch
    duplicate_records: int
    conflicting_ids: int
    deleted_count: int
    source_version: int | None
    mode: str                  # "full" or "change feed"
    read_after: int | None = None  # changes were read after this version (None: full read)
    # (id, previous_content_hash) of the pending ids the refined table held
    # (checkpointed; None: no table): what a batch's rows are split against.
    previous: DataFrame | None = None
    new: int = 0               # pending ids the refined table does not hold
    changed: int = 0           # pending ids whose text differs from the table's
    id_type: str | None = None  # the source id column's type; commits record it

    @property
    def refreshed(self) -> int:
        """Pending documents with the text the table holds, refined again
        (other settings, a failed row retried, a stale dedup decision)."""
        return self.pending_count - self.new - self.changed

    @property
    def refreshed_to(self) -> int | None:
        """The source version a later change-feed run may start after: the
        one read when every pending document is refined now, else the one
        this run started after (documents left beyond --limit or the CPU
        sample must be seen again)."""
        if self.waiting_count > self.pending_count:
            return self.read_after
        return self.source_version

    def batch(self, k: int) -> DataFrame:
        """The pending rows of batch `k` (0-based): ids in [bounds[k], bounds[k+1])."""
        from pyspark.sql import functions as F

        rows = self.pending.where(F.col("id") >= F.lit(self.bounds[k]))
        if k + 1 < len(self.bounds):
            rows = rows.where(F.col("id") < F.lit(self.bounds[k + 1]))
        return rows

    def unpersist(self) -> None:
        self.source.unpersist()


def batch_bounds(ids: DataFrame, every: int) -> list[str]:
    """The first id of every `every`-sized run of sorted ids."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    numbered = ids.select("id").withColumn(
        "_n", F.row_number().over(Window.orderBy("id")) - 1)
    rows = numbered.where(F.col("_n") % every == 0).orderBy("id").collect()
    return [r.id for r in rows]


def _incremental_from(spark: SparkSession, config: PipelineConfig, table: RefinedTable,
                      fp: str) -> int | None:
    """The source version to read changes after, or None for a full read."""
    inp = config.input
    if not inp.change_feed or not table.exists():
        return None
    last = last_source_version(spark, config.metrics, fp)
    if last is None:
        return None
    if table.has_other_fingerprints(fp):
        log.info("some refined rows have another fingerprint: reading the whole source")
        return None
    return last


@dataclass
class _Read:
    """What this run read of the source: every row (`changes` None and not
    `up_to_date`), the changes after version `start`, or nothing, the change
    feed having nothing after `start`."""

    raw: DataFrame
    mode: str
    version: int | None = None
    start: int | None = None
    changes: Changes | None = None
    up_to_date: bool = False

    @property
    def whole_source(self) -> bool:
        return self.changes is None and not self.up_to_date


def _read(spark: SparkSession, config: PipelineConfig, table: RefinedTable, fp: str) -> _Read:
    """The source, or only its changes since the last run when the change
    feed allows (the whole source when the changes cannot be read)."""
    inp = config.input
    if not inp.change_feed:
        return _Read(read_source(spark, inp, None), "full")
    if not has_change_feed(spark, inp.ref):
        raise SourceError("input.change_feed", f"{inp.ref} does not have "
                          "delta.enableChangeDataFeed=true; enable it on the source or "
                          "set change_feed: false")
    version = source_version(spark, inp.ref)
    start = _incremental_from(spark, config, table, fp)
    if start is not None and start >= version:
        return _Read(read_source(spark, inp, version).limit(0),
                     f"change feed, nothing after version {version}", version, start,
                     up_to_date=True)
    if start is not None:
        try:
            changes = read_changes(spark, inp, start, version)
            return _Read(changes.upserts, f"change feed, versions {start + 1}..{version}",
                         version, start, changes)
        except Exception as exc:  # e.g. change files vacuumed, CDF enabled later
            log.warning("cannot read the change feed after version %d (%s); reading the "
                        "whole source instead", start, first_line(exc))
    return _Read(read_source(spark, inp, version), "full", version, start)


def _snapshot(spark: SparkSession, inp: InputConfig, read: _Read) -> DataFrame:
    """The whole source as of the version read, one row per id."""
    return resolve_duplicate_ids(read_source(spark, inp, read.version), inp)


def _deleted(spark: SparkSession, inp: InputConfig, read: _Read, table: RefinedTable,
             source: DataFrame) -> DataFrame | None:
    """Ids of refined rows whose documents left the source (None: keep them)."""
    if inp.on_source_delete != "delete" or read.up_to_date:
        return None
    if read.changes is None:
        return table.ids().join(source.select("id"), "id", "left_anti")
    deleted = read.changes.deleted_ids.join(table.ids(), "id")
    if inp.id_column is None:
        current = read_source(spark, inp, read.version).select("id")
        deleted = deleted.join(current, "id", "left_anti")
    return deleted


def _pending(spark: SparkSession, config: PipelineConfig, table: RefinedTable, fp: str,
             read: _Read, source: DataFrame) -> tuple[DataFrame, DataFrame | None]:
    """(rows to refine, ids to delete) against the refined table: new or
    changed documents, failed ones to retry and duplicates whose keeper went."""
    inp = config.input
    if not table.exists():
        return source, None
    retry = table.retryable_ids(fp, config.max_attempts)
    done = table.done(fp, retry)
    pending = source.join(done, on=["id", "content_hash"], how="left_anti")
    deleted = _deleted(spark, inp, read, table, source)
    gone = pending.select("id")
    if deleted is not None:
        gone = gone.unionByName(deleted.select("id"))
    stale = table.stale_duplicates(gone)
    if stale is not None:
        rows = source if read.changes is None else _snapshot(spark, inp, read)
        pending = pending.unionByName(
            rows.join(stale, "id").join(pending.select("id"), "id", "left_anti"))
    if read.changes is not None:
        # Failed rows to retry are not among the changes: take them from
        # the source as of this version.
        snapshot = _snapshot(spark, inp, read)
        pending = pending.unionByName(
            snapshot.join(retry, "id").join(pending.select("id"), "id", "left_anti"))
    return pending, deleted


def plan(spark: SparkSession, config: PipelineConfig, fp: str,
         table: RefinedTable | None = None) -> Plan:
    """Read the source and decide what this run refines, deletes and commits
    against the refined `table` (default: `config.output`)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    table = table or RefinedTable(spark, config.output)
    read = _read(spark, config, table, fp)
    current_type = _source_id_type(spark, config.input, read.version)
    source = resolve_duplicate_ids(read.raw, config.input).persist(StorageLevel.MEMORY_AND_DISK)
    counts = source.agg(
        F.count(F.lit(1)).alias("ids"), F.sum(F.col(COPIES) - 1).alias("extra"),
        F.sum((F.col(TEXTS) > 1).cast("long")).alias("conflicts")).collect()[0]
    if not read.up_to_date:
        _check_id_type(spark, config, table, read, source, current_type)
    pending, deleted = _pending(spark, config, table, fp, read, source)
    waiting = None
    if config.limit is not None:
        waiting = pending.count()
        pending = pending.orderBy("id").limit(config.limit)
    # Checkpointed, not just cached: a cached plan that reads the refined
    # table is recomputed by Spark after each of our own writes to it, and
    # would then see the deletes and batches of this very run.
    pending = pending.localCheckpoint(eager=True)
    pending_count = pending.count()
    deleted_count = 0
    if deleted is not None:
        deleted = deleted.select("id").distinct().localCheckpoint(eager=True)
        deleted_count = deleted.count()
    bounds = batch_bounds(pending, config.commit_every) if pending_count else []
    previous, new, changed = _previous(table, pending, pending_count)
    return Plan(source, pending, deleted if deleted_count else None, int(counts.ids or 0),
                pending_count, pending_count if waiting is None else waiting, bounds,
                int(counts.extra or 0), int(counts.conflicts or 0), deleted_count,
                read.version, read.mode, None if read.whole_source else read.start,
                previous, new, changed, current_type)


def _source_id_type(spark: SparkSession, inp: InputConfig, version: int | None) -> str | None:
    """The id column's type of a typed source (None for JSONL, whose ids are
    typed per line, or without an id column). Reads the schema only."""
    if inp.id_column is None or (inp.ref.table is None and inp.format == "jsonl"):
        return None
    return id_type(load_typed(spark, inp.ref, inp.format, version), inp.id_column)


def _check_id_type(spark: SparkSession, config: PipelineConfig, table: RefinedTable,
                   read: _Read, source: DataFrame, current: str | None) -> None:
    """Refuse a run whose source id column changed type in a way that changes
    stored ids (string "1.0" after bigint 1): it would delete those rows and
    refine their documents again as new, the whole model bill, and every id
    downstream would change. Integral floats are already the integer (see
    `io.sources.canonical_id`), so int -> double -> int passes. Error rows
    keyed by a hash of the whole record (`row:...`) are not ids of the source
    and are left out. Raises `SourceError` naming the column."""
    from pyspark.sql import functions as F

    inp = config.input
    if current is None or not table.exists():
        return
    before = table.recorded_id_type()
    if before is None or before == current:
        return
    rows = source if read.whole_source else _snapshot(spark, inp, read)
    lost = (table.ids()
            .where(~F.col("id").startswith("row:"))
            .join(rows.select("id"), "id", "left_anti"))
    examples = [r.id for r in lost.limit(3).collect()]
    if not examples:
        return
    raise SourceError("input.id_column", (
        f"column {inp.id_column!r} of {inp.ref} changed type from {before} to {current} since "
        f"the refined table was written, and stored ids are not in the source as {current} "
        f"(e.g. {', '.join(repr(e) for e in examples)}): this run would delete those rows and "
        f"refine their documents again under new ids. Cast the column in the source back to "
        f"{before} (or rebuild the refined table on purpose); nothing was written"))


def _previous(table: RefinedTable, pending: DataFrame, pending_count: int
              ) -> tuple[DataFrame | None, int, int]:
    """(the refined table's content hash of each pending id it holds,
    checkpointed; pending ids it lacks; pending ids whose hash differs): the
    plan's split of the work, and what each batch's rows are split against
    when counted (`io.metrics.batch_stats`). The rest are refreshed: the
    same text refined again."""
    if not pending_count or not table.exists():
        return None, pending_count, 0
    previous = table.previous_hashes(pending).localCheckpoint(eager=True)
    return previous, *new_and_changed(pending, previous)
