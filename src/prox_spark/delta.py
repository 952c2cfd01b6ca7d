"""Everything that reads or writes tables: sources in, the refined table out.

The only module that knows about Delta. A table is named by a `TableRef`
(a path or a catalog name, validated by `config`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

REFINED_SCHEMA = (
    "id string, text string, status string, doc_program string, "
    "chunk_programs array<string>, errors int, lines_removed int, normalizations int, "
    "words_before int, words_after int, tokens_before int, tokens_after int, error string, "
    "rule_edits array<struct<stage:string,program:string,reason:string,words_removed:int,"
    "tokens_removed:int>>, "
    "duplicate_of string, content_hash string, fingerprint string, refined_at timestamp"
)

def _columns(schema: str) -> dict[str, str]:
    """Top-level "name type" pairs of a DDL schema string (types may nest commas)."""
    out: dict[str, str] = {}
    depth, start = 0, 0
    for i, ch in enumerate(schema + ","):
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "," and depth == 0:
            name, kind = schema[start:i].strip().split(" ", 1)
            out[name] = kind
            start = i + 1
    return out


REFINED_TYPES = _columns(REFINED_SCHEMA)
REFINED_COLUMNS = tuple(REFINED_TYPES)


@dataclass(frozen=True)
class TableRef:
    """A table by location (`path`) or by catalog name (`table`); exactly one is set."""

    path: str | None = None
    table: str | None = None

    def __str__(self) -> str:
        return self.path or self.table or "?"


def read_source(
    spark: SparkSession,
    ref: TableRef,
    fmt: str,
    id_column: str | None,
    text_column: str,
) -> DataFrame:
    """Read a Delta, Parquet or JSONL source as (id string, text string, content_hash).

    Without an id column the id is derived from the content (sha256 of the
    text), so re-reading the same corpus gives the same ids.
    """
    from pyspark.sql import functions as F

    if ref.table is not None:
        df = spark.read.table(ref.table)
    elif fmt == "jsonl":
        df = spark.read.json(ref.path)
    else:
        df = spark.read.format(fmt).load(ref.path)
    if text_column not in df.columns:
        raise ValueError(
            f"input.text_column: column {text_column!r} not found in {ref}; "
            f"columns are {', '.join(df.columns)}"
        )
    text = F.col(text_column).cast("string")
    content_hash = F.sha2(F.coalesce(text, F.lit("")), 256)
    if id_column and id_column in df.columns:
        ident = F.col(id_column).cast("string")
    elif id_column and id_column != "id":
        raise ValueError(f"input.id_column: column {id_column!r} not found in {ref}")
    else:
        ident = content_hash
    return df.select(
        ident.alias("id"), text.alias("text"), content_hash.alias("content_hash")
    )


def is_delta_dir(path: Path) -> bool:
    """True when a local directory holds a Delta table (has a transaction log)."""
    return (path / "_delta_log").is_dir()


def table_exists(spark: SparkSession, ref: TableRef) -> bool:
    from delta.tables import DeltaTable

    if ref.table is not None:
        return bool(spark.catalog.tableExists(ref.table))
    return bool(DeltaTable.isDeltaTable(spark, ref.path))


def read_table(spark: SparkSession, ref: TableRef) -> DataFrame:
    if ref.table is not None:
        return spark.read.table(ref.table)
    return spark.read.format("delta").load(ref.path)


def _write_new(df: DataFrame, ref: TableRef, mode: str = "errorifexists") -> None:
    writer = df.write.format("delta").mode(mode)
    if ref.table is not None:
        writer.saveAsTable(ref.table)
    else:
        writer.save(ref.path)


def merge_refined(spark: SparkSession, df: DataFrame, ref: TableRef) -> None:
    """Upsert refined rows by `id`: new ids are inserted; an existing id is
    updated only when its content or fingerprint changed. Re-running the same
    job therefore leaves the table as it was."""
    from delta.tables import DeltaTable

    df = df.select(*REFINED_COLUMNS)
    if not table_exists(spark, ref):
        _write_new(df, ref)
        return
    target = (
        DeltaTable.forName(spark, ref.table)
        if ref.table is not None
        else DeltaTable.forPath(spark, ref.path)
    )
    (
        target.alias("t")
        .merge(df.alias("s"), "t.id = s.id")
        .whenMatchedUpdateAll(
            condition="t.content_hash <> s.content_hash OR t.fingerprint <> s.fingerprint"
        )
        .whenNotMatchedInsertAll()
        .execute()
    )


def append_row(spark: SparkSession, row: dict[str, Any], schema: str, ref: TableRef) -> None:
    """Append one row (run metrics) to a Delta table, creating it if needed."""
    df = spark.createDataFrame([row], schema)
    _write_new(df, ref, mode="append")


def table_version(spark: SparkSession, ref: TableRef) -> int | None:
    """The latest Delta version of a table, or None if it does not exist."""
    from delta.tables import DeltaTable

    if not table_exists(spark, ref):
        return None
    table = (
        DeltaTable.forName(spark, ref.table)
        if ref.table is not None
        else DeltaTable.forPath(spark, ref.path)
    )
    return int(table.history(1).collect()[0]["version"])
