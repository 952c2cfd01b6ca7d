"""Everything that reads or writes tables: sources in, the refined table out.

The only module that knows about Delta. A table is named by a `TableRef`
(a path or a catalog name, validated by `config`; see `refs`). Conflicts
between concurrent writers are retried here (`with_conflict_retries`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from prox_spark.errors import CommitConflict, first_line
from prox_spark.refs import TableRef
from prox_spark.schema import REFINED_COLUMNS, columns

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

T = TypeVar("T")
_log = logging.getLogger(__name__)


def table_exists(spark: SparkSession, ref: TableRef) -> bool:
    from delta.tables import DeltaTable

    if ref.table is not None:
        return bool(spark.catalog.tableExists(ref.table))
    return bool(DeltaTable.isDeltaTable(spark, ref.path))


def read_table(spark: SparkSession, ref: TableRef) -> DataFrame:
    if ref.table is not None:
        return spark.read.table(ref.table)
    return spark.read.format("delta").load(ref.path)


def delta_table(spark: SparkSession, ref: TableRef) -> Any:
    """delta-spark's `DeltaTable` for `ref` (by catalog name or path), for
    MERGE, DELETE and history."""
    from delta.tables import DeltaTable

    if ref.table is not None:
        return DeltaTable.forName(spark, ref.table)
    return DeltaTable.forPath(spark, ref.path)


def sql_identifier(ref: TableRef) -> str:
    """The table in SQL: a validated catalog name, or delta.`path` with backticks escaped."""
    if ref.table is not None:
        return ref.table
    return "delta.`" + str(ref.path).replace("`", "``") + "`"


_CONFLICTS = (
    "ConcurrentAppendException", "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException", "ConcurrentTransactionException",
    "ConcurrentWriteException", "MetadataChangedException", "ProtocolChangedException",
    "DeltaConcurrentModificationException", "FileAlreadyExistsException",
    "DELTA_CONCURRENT", "DELTA_PROTOCOL_CHANGED", "DELTA_METADATA_CHANGED",
    "DELTA_TABLE_ALREADY_EXISTS", "DELTA_PATH_EXISTS",
    # Seen by the loser of two first runs while the winner is mid-creation.
    "DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION",
)


def is_conflict(exc: BaseException) -> bool:
    """True for Delta's optimistic-concurrency conflicts (another writer won).

    delta-spark's Python package does not ship its exception classes for the
    classic (non-Connect) API, so the Java class or error class is matched by name.
    """
    text = f"{type(exc).__name__}: {exc}"
    return any(name in text for name in _CONFLICTS)


def with_conflict_retries(action: Callable[[int], T], *, retries: int, what: str,
                          log: Callable[[str], None] | None = None) -> T:
    """Run `action(attempt)`; on a Delta conflict, wait a little and run it again.

    After `retries` retries the last conflict is raised as `CommitConflict`.
    Each retry is reported to `log` (default: this module's logger, as a warning).
    """
    report = log or _log.warning
    for attempt in range(retries + 1):
        try:
            return action(attempt)
        except Exception as exc:
            if not is_conflict(exc):
                raise
            if attempt == retries:
                raise CommitConflict(
                    f"{what}: another writer kept committing to the same table; gave up after "
                    f"{retries} retries ({first_line(exc)}). Nothing of this batch was "
                    "written; run the job again (committed batches are kept)."
                ) from None
            report(f"{what}: conflict with a concurrent writer ({first_line(exc)}); "
                   f"retry {attempt + 1} of {retries}")
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _struct(spark: SparkSession, schema: str) -> Any:
    return spark.createDataFrame([], schema).schema


def ensure_table(spark: SparkSession, ref: TableRef, schema: str,
                 properties: Mapping[str, str] | None = None) -> None:
    """Create the Delta table if missing and add any column of `schema` it lacks.

    Safe when several jobs start at once: a concurrent creation or schema
    change is re-checked, never raised. Adding columns is a metadata-only
    commit (no data file is rewritten); existing rows read them as null.
    """
    from delta.tables import DeltaTable

    key = (str(ref), schema)
    if key in _ENSURED and table_exists(spark, ref):
        return
    wanted = columns(schema)

    def create(_: int) -> None:
        if table_exists(spark, ref):
            return
        builder = DeltaTable.createIfNotExists(spark).addColumns(_struct(spark, schema))
        builder = builder.tableName(ref.table) if ref.table else builder.location(str(ref.path))
        for key, value in (properties or {}).items():
            builder = builder.property(key, value)
        builder.execute()

    def evolve(_: int) -> None:
        have = {f.name for f in read_table(spark, ref).schema.fields}
        missing = [f"`{name}` {kind}" for name, kind in wanted.items() if name not in have]
        if missing:
            spark.sql(f"ALTER TABLE {sql_identifier(ref)} ADD COLUMNS ({', '.join(missing)})")

    for attempt in range(10):
        try:
            # Two runs starting at once both create the table: expected, quiet.
            with_conflict_retries(create, retries=5, what=f"creating {ref}", log=_log.debug)
            with_conflict_retries(evolve, retries=5, what=f"adding columns to {ref}",
                                  log=_log.debug)
            break
        except Exception as exc:
            # Another job creating the table at this moment: its first
            # commit is not readable yet, by this job's creation (which saw
            # the log directory) or its read (waited out for up to ~45 s: a
            # loaded machine takes that long).
            if not is_missing(exc) or attempt == 9:
                raise
            time.sleep(min(0.5 * 2 ** attempt, 8.0))
    _ENSURED.add(key)


def is_missing(exc: BaseException) -> bool:
    """True for Delta's "no table there" errors."""
    return "DELTA_TABLE_NOT_FOUND" in f"{type(exc).__name__}: {exc}"


# Tables this process has already created or upgraded (schema, location).
_ENSURED: set[tuple[str, str]] = set()


@contextmanager
def _session_confs(spark: SparkSession, confs: Mapping[str, str | None]) -> Iterator[None]:
    for key, value in confs.items():
        if value is not None:
            spark.conf.set(key, value)
    try:
        yield
    finally:
        for key in confs:
            spark.conf.unset(key)


TXN_APP_ID = "spark.databricks.delta.write.txnAppId"
TXN_VERSION = "spark.databricks.delta.write.txnVersion"
USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"


def merge_batch(spark: SparkSession, df: DataFrame, ref: TableRef, *, app_id: str,
                txn_version: int, metadata: Mapping[str, Any],
                id_range: tuple[str, str | None] | None = None) -> None:
    """Upsert one batch of refined rows by `id`, exactly once.

    The commit carries `(app_id, txn_version)`: Delta skips a MERGE whose pair
    it has already committed, so a retried batch is never applied twice. The
    batch's figures ride in the same commit (`userMetadata`), so the metrics
    can always be rebuilt from the table's history (`committed_batches`).

    `id_range` = (first, next) (next None: to the end) says every id of `df`
    is in [first, next). It goes into the merge condition, so Delta's data
    skipping reads only the table files whose ids overlap the range (a
    table written batch by batch keeps each batch's ids in its own files)
    and a concurrent commit into other ranges is not a conflict.
    """
    from pyspark.sql import functions as F

    df = df.select(*REFINED_COLUMNS)
    condition = F.col("t.id") == F.col("s.id")
    if id_range is not None:
        first, after = id_range
        condition = condition & (F.col("t.id") >= F.lit(first))
        if after is not None:
            condition = condition & (F.col("t.id") < F.lit(after))
    with _session_confs(spark, {TXN_APP_ID: app_id, TXN_VERSION: str(txn_version),
                                USER_METADATA: json.dumps(dict(metadata), sort_keys=True)}):
        (
            delta_table(spark, ref).alias("t")
            .merge(df.alias("s"), condition)
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        )


def delete_ids(spark: SparkSession, ref: TableRef, ids: DataFrame, *,
               metadata: Mapping[str, Any]) -> None:
    """Delete the rows whose `id` is in `ids` (one commit, with `metadata`)."""
    with _session_confs(spark, {USER_METADATA: json.dumps(dict(metadata), sort_keys=True)}):
        (
            delta_table(spark, ref).alias("t")
            .merge(ids.select("id").distinct().alias("s"), "t.id = s.id")
            .whenMatchedDelete()
            .execute()
        )


def committed_metadata(spark: SparkSession, ref: TableRef, after_version: int
                       ) -> list[tuple[int, dict[str, Any]]]:
    """(version, userMetadata as a dict) of the commits after `after_version`
    whose metadata is a JSON object (what `merge_batch`/`delete_ids` wrote)."""
    from pyspark.sql import functions as F

    if not table_exists(spark, ref):
        return []
    rows = (delta_table(spark, ref).history()
            .where(F.col("version") > after_version)
            .where(F.col("userMetadata").isNotNull())
            .select("version", "userMetadata").orderBy("version").collect())
    out = []
    for row in rows:
        try:
            meta = json.loads(row.userMetadata)
        except ValueError:
            continue
        if isinstance(meta, dict):
            out.append((int(row.version), meta))
    return out


# Delta history operations that change no row.
_NO_ROW_CHANGE = ("CREATE TABLE", "ADD COLUMNS", "CHANGE COLUMN", "SET TBLPROPERTIES",
                  "UNSET TBLPROPERTIES", "UPGRADE PROTOCOL", "OPTIMIZE", "VACUUM START",
                  "VACUUM END")


def rows_changed_by_others(spark: SparkSession, ref: TableRef, after_version: int | None,
                           run_id: str) -> bool:
    """Whether a commit after `after_version` (None: any) may have changed
    rows and was not made by run `run_id` (whose commits' userMetadata name
    it, see `merge_batch`/`delete_ids`). Reads only the table's history."""
    from pyspark.sql import functions as F

    if not table_exists(spark, ref):
        return False
    rows = (delta_table(spark, ref).history()
            .where(F.col("version") > (-1 if after_version is None else after_version))
            .select("operation", "userMetadata").collect())
    for row in rows:
        if row.operation in _NO_ROW_CHANGE:
            continue
        try:
            meta = json.loads(row.userMetadata) if row.userMetadata else None
        except ValueError:
            meta = None
        if not (isinstance(meta, dict) and meta.get("run_id") == run_id):
            return True
    return False


def append_rows(spark: SparkSession, rows: list[dict[str, Any]], schema: str, ref: TableRef,
                *, app_id: str | None = None, txn_version: int | None = None) -> None:
    """Append rows to a Delta table (created or upgraded first); with
    `app_id`/`txn_version`, an append already committed is skipped."""
    ensure_table(spark, ref, schema)
    writer = spark.createDataFrame(rows, schema).write.format("delta").mode("append")
    if app_id is not None and txn_version is not None:
        writer = writer.option("txnAppId", app_id).option("txnVersion", txn_version)
    _save(writer, ref)


def _save(writer: Any, ref: TableRef) -> None:
    """Run a DataFrameWriter against `ref` (a catalog name or a path)."""
    if ref.table is not None:
        writer.saveAsTable(ref.table)
    else:
        writer.save(ref.path)


def table_properties(spark: SparkSession, ref: TableRef) -> dict[str, str]:
    """The table properties of a Delta table ({} if it does not exist)."""
    if not table_exists(spark, ref):
        return {}
    row = delta_table(spark, ref).detail().select("properties").collect()[0]
    return dict(row.properties or {})


def table_version(spark: SparkSession, ref: TableRef) -> int | None:
    """The latest Delta version of a table, or None if it does not exist."""
    if not table_exists(spark, ref):
        return None
    return int(delta_table(spark, ref).history(1).collect()[0]["version"])


def overwrite_table(df: DataFrame, ref: TableRef) -> None:
    """Replace a Delta table's content (and schema) with `df` in one commit;
    readers see the old version or the new one, never a mix."""
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    _save(writer, ref)
