"""`RefinedTable`: every read and write a run makes of the refined table,
in one place (as delta's `DeltaTable` is for one Delta table).

    >>> table = RefinedTable(spark, config.output)  # doctest: +SKIP
    >>> table.exists()  # doctest: +SKIP

The planner asks it what is done, failed, stale or gone; the batches ask it
for dedup keys, stored model output, failed attempts and what other writers
committed; and it deletes gone ids and merges each batch. Nothing else in
`run/` reads or writes the refined table; the commands above the run
(annotate's `table` teacher, ablation variants) read it through
`read` and `exists`. The run report (`report/`, below `run/`) and a corpus
consumer (`io.corpus`) read refined tables as any Delta table.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prox_spark.io.delta import (
    committed_metadata,
    delete_ids,
    ensure_table,
    merge_batch,
    read_table,
    rows_changed_by_others,
    table_exists,
    table_version,
    with_conflict_retries,
)
from prox_spark.io.metrics import ID_TYPE, delete_metadata
from prox_spark.program.results import FAILED
from prox_spark.refs import TableRef
from prox_spark.schema import ATTEMPTS, REFINED_SCHEMA, STATUS
from prox_spark.stages.reuse import stored_outputs

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("prox_spark")
DEDUP_KEYS = ("id", "dedup_hash", "minhash", "duplicate_of")
"""The columns of refined rows the dedup stages compare new documents with."""


@dataclass(frozen=True)
class RefinedTable:
    """The refined Delta table at `ref`, as seen through `spark`."""

    spark: SparkSession
    ref: TableRef

    def _rows(self) -> DataFrame:
        return read_table(self.spark, self.ref)

    def read(self) -> DataFrame:
        """Every row, for a reader outside the run: a `table` teacher, an
        ablation variant (AnalysisException when there is no table)."""
        return self._rows()

    def exists(self) -> bool:
        """Whether the table has been created."""
        return table_exists(self.spark, self.ref)

    def version(self) -> int | None:
        """The table's latest version (None: no table)."""
        return table_version(self.spark, self.ref)

    def ensure(self) -> None:
        """Create the table (refined schema) unless it exists."""
        ensure_table(self.spark, self.ref, REFINED_SCHEMA)

    def ids(self) -> DataFrame:
        """Every stored id."""
        return self._rows().select("id")

    def has_other_fingerprints(self, fp: str) -> bool:
        """Whether some row was refined with a fingerprint other than `fp`."""
        from pyspark.sql import functions as F

        return bool(self._rows().where(
            F.col("fingerprint").isNull() | (F.col("fingerprint") != fp)).limit(1).count())

    def retryable_ids(self, fp: str, max_attempts: int) -> DataFrame:
        """Ids of rows stored "failed" with `fp` tried fewer than `max_attempts` times."""
        from pyspark.sql import functions as F

        table = self._rows()
        if ATTEMPTS not in table.columns:
            return table.where(F.lit(False)).select("id")
        return table.where(
            (F.col("fingerprint") == fp) & (F.col(STATUS) == F.lit(FAILED))
            & (F.coalesce(F.col(ATTEMPTS), F.lit(1)) < F.lit(max_attempts))).select("id")

    def done(self, fp: str, retry: DataFrame) -> DataFrame:
        """(id, content_hash) of the rows refined with `fp`, less the ids in `retry`."""
        from pyspark.sql import functions as F

        return (self._rows().where(F.col("fingerprint") == fp).select("id", "content_hash")
                .join(retry, "id", "left_anti"))

    def stale_duplicates(self, gone: DataFrame) -> DataFrame | None:
        """Ids of duplicates whose keeper is among the ids `gone` (None: no
        dedup decisions stored)."""
        from pyspark.sql import functions as F

        table = self._rows()
        if "duplicate_of" not in table.columns:
            return None
        return (table.where(F.col("duplicate_of").isNotNull())
                .join(gone.select(F.col("id").alias("duplicate_of")), "duplicate_of")
                .select("id"))

    def previous_hashes(self, pending: DataFrame) -> DataFrame:
        """(id, previous_content_hash) of the `pending` ids the table holds."""
        from pyspark.sql import functions as F

        return (self._rows().select("id", F.col("content_hash").alias("previous_content_hash"))
                .join(pending.select("id"), "id", "left_semi"))

    def recorded_id_type(self) -> str | None:
        """The source id type the latest commit that recorded one was made
        from (None: no table, or written before ids were recorded)."""
        for _, meta in reversed(committed_metadata(self.spark, self.ref, -1)):
            if isinstance(meta.get(ID_TYPE), str):
                return str(meta[ID_TYPE])
        return None

    def dedup_keys(self, later: DataFrame, in_flight: DataFrame | None = None) -> DataFrame:
        """Refined rows new documents are deduplicated against (`existing`):
        the table, minus the pending documents this run has not committed yet
        (`later`), plus `in_flight`: the refined rows of a batch being
        committed while the next one is refined (its ids are in `later`, so
        the table's copy of them is never counted twice)."""
        table = self._rows()
        keep = [c for c in DEDUP_KEYS if c in table.columns]
        rows = table.select(*keep).join(later.select("id"), "id", "left_anti")
        if in_flight is not None:
            rows = rows.unionByName(in_flight.select(*keep))
        return rows

    def stored_outputs(self) -> DataFrame | None:
        """What the model stages may reuse (see `stages.reuse.stored_outputs`)."""
        return stored_outputs(self._rows())

    def not_done_since(self, rows: DataFrame, fp: str, since: Any) -> DataFrame:
        """`rows` minus those another run committed (same content and `fp`)
        at or after `since`."""
        from pyspark.sql import functions as F

        done = (self._rows()
                .where((F.col("fingerprint") == fp) & (F.col("refined_at") >= F.lit(since)))
                .select("id", "content_hash"))
        return rows.join(done, ["id", "content_hash"], "left_anti")

    def changed_by_others(self, after_version: int | None, run_id: str) -> bool:
        """Whether a commit after `after_version` not made by `run_id` may
        have changed rows (reads the history only)."""
        return rows_changed_by_others(self.spark, self.ref, after_version, run_id)

    def failed_attempts(self, fp: str) -> DataFrame:
        """(id, content_hash, _previous): the rows stored "failed" with `fp`
        and how many runs tried them (checkpointed)."""
        from pyspark.sql import functions as F

        table = self._rows()
        if ATTEMPTS not in table.columns:
            return self.spark.createDataFrame(
                [], "id string, content_hash string, _previous int").localCheckpoint(eager=True)
        return (table.where((F.col("fingerprint") == F.lit(fp))
                            & (F.col(STATUS) == F.lit(FAILED)))
                .select("id", "content_hash",
                        F.coalesce(F.col(ATTEMPTS), F.lit(1)).alias("_previous"))
                .localCheckpoint(eager=True))

    def delete_gone(self, ids: DataFrame, *, run_id: str, fp: str, id_type: str | None,
                    retries: int) -> int:
        """Delete the rows whose ids are in `ids`; returns how many this call
        deleted. The rows still present are counted inside each attempt, so
        of two runs deleting at once one deletes them and the other counts 0."""
        def delete(_: int) -> int:
            present = ids.join(self.ids(), "id", "left_semi").localCheckpoint(eager=True)
            count = present.count()
            if count:
                delete_ids(self.spark, self.ref, present,
                           metadata=delete_metadata(run_id, fp, count, id_type))
            return int(count)

        return with_conflict_retries(delete, retries=retries,
                                     what="deleting rows gone from the source", log=log.warning)

    def merge(self, rows: DataFrame, *, app_id: str, txn_version: int,
              metadata: Mapping[str, Any], id_range: tuple[str, str | None]) -> None:
        """Upsert one batch of refined rows, exactly once (`io.delta.merge_batch`)."""
        merge_batch(self.spark, rows, self.ref, app_id=app_id, txn_version=txn_version,
                    metadata=metadata, id_range=id_range)
