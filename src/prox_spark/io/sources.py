"""Read a source (JSONL, Parquet, Delta, a catalog table, a Delta change feed)
into the one shape the pipeline works on, without losing a row.

Every source becomes `SOURCE_SCHEMA`: `id` (never null), `text`,
`content_hash`, `source_error` (why the row cannot be refined, else null),
and ordering helpers for duplicate-id resolution. A malformed JSONL line,
invalid UTF-8, a missing or null id, or text that is not a string becomes an
error row (see `records.parse_line`); nothing is silently dropped or merged.

    >>> df = read_source(spark, config.input)  # doctest: +SKIP
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

import pandas as pd

from prox_spark.errors import SourceError, first_line
from prox_spark.io.delta import table_properties, table_version
from prox_spark.io.records import Record, line_id, parse_line
from prox_spark.params import Doc
from prox_spark.refs import TableRef
from prox_spark.schema import SOURCE_ERROR

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

SourceFormat = Literal["delta", "parquet", "jsonl"]
FORMATS: tuple[str, ...] = typing.get_args(SourceFormat)


@dataclass(frozen=True)
class InputConfig:
    """Where the documents come from and how bad or repeated records are handled.

    Declared here, beside the reader it drives, so that io/ needs nothing
    from `config` (which re-exports it and parses it from `input:`). The
    fields declared with a `Doc` are the keys of that section.
    `on_duplicate_id`: records sharing an id with different texts become one
    error row (`error`), or the first read wins (`first`), or the one with the
    largest `last_by` column wins. `on_source_delete`: what a document that
    left the source does to its refined row (`delete` it, or `keep` it).
    """

    ref: TableRef
    format: Annotated[SourceFormat, Doc("how the source is stored")] = "delta"
    id_column: Annotated[str | None, Doc(
        "the source's id column (null: ids are derived from the text)")] = "id"
    text_column: Annotated[str, Doc("the source's text column")] = "text"
    cast_text: Annotated[bool, Doc("read a non-string text column as text")] = False
    change_feed: Annotated[bool, Doc("read the Delta source's change data feed")] = False
    on_duplicate_id: Annotated[Literal["error", "first", "last_by"], Doc(
        "what records sharing an id become: `error` stops the run, `first` keeps the "
        "first one read, `{last_by: COLUMN}` the one with the largest COLUMN")] = "error"
    last_by: str | None = None
    on_source_delete: Annotated[Literal["delete", "keep"], Doc(
        "what a document that left the source does to its refined row")] = "delete"
    extra_columns: tuple[str, ...] = ()


ORDER = "_order"
SORT_NUM = "_sort_num"
SORT_STR = "_sort_str"
SOURCE_SCHEMA = (
    f"id string, text string, content_hash string, {SOURCE_ERROR} string, "
    f"{ORDER} long, {SORT_NUM} double, {SORT_STR} string"
)
_PARSED_SCHEMA = (
    f"id string, text string, {SOURCE_ERROR} string, {SORT_NUM} double, {SORT_STR} string"
)


def _content_hash() -> Column:
    from pyspark.sql import functions as F

    return F.when(F.col(SOURCE_ERROR).isNull(), F.sha2(F.coalesce(F.col("text"), F.lit("")), 256)
                  ).otherwise(F.sha2(F.concat(F.lit("\u0000error:"), F.col(SOURCE_ERROR)), 256))


def _finish(df: DataFrame, extra: tuple[str, ...] = ()) -> DataFrame:
    return df.select("id", "text", _content_hash().alias("content_hash"), SOURCE_ERROR,
                     ORDER, SORT_NUM, SORT_STR, *extra)


def read_jsonl(spark: SparkSession, path: str, inp: InputConfig) -> DataFrame:
    """JSONL lines parsed one by one in Python (exact types, raw bytes for bad lines)."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    id_column, text_column = inp.id_column, inp.text_column
    cast_text, sort_column = inp.cast_text, inp.last_by

    @pandas_udf(_PARSED_SCHEMA)  # type: ignore[call-overload]
    def prox_parse_jsonl(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        for lines in batches:
            rows = []
            for raw in lines:
                rec = parse_line(raw, id_column, text_column, cast_text=cast_text,
                                 sort_column=sort_column)
                if rec is None:  # whitespace Spark's filter let through
                    rec = Record(line_id(raw or b""), None, "blank line")
                rows.append((rec.id, rec.text, rec.error, rec.sort_num, rec.sort_str))
            yield pd.DataFrame(rows, columns=["id", "text", SOURCE_ERROR, SORT_NUM, SORT_STR])

    lines = spark.read.text(path).select(
        F.col("value").cast("binary").alias("raw"),
        F.monotonically_increasing_id().alias(ORDER),
    )
    # Blank lines are not records: drop them before parsing so every parsed
    # row lines up with its input row.
    lines = lines.where(F.col("raw").cast("string").rlike(r"\S"))
    parsed = lines.select(ORDER, prox_parse_jsonl(F.col("raw")).alias("r"))
    return _finish(parsed.select("r.*", ORDER))


def _text_column(df: DataFrame, inp: InputConfig) -> tuple[Column, Column]:
    """(text, error) columns for a typed source: strings as they are; other
    types are an error per row unless `cast_text` asks for their string form."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, MapType, StringType, StructType

    kind = df.schema[inp.text_column].dataType
    col = F.col(inp.text_column)
    if isinstance(kind, StringType):
        # Parquet and Delta may hold bytes that are not UTF-8; Python
        # cannot take them, so such a row is an error row, not a failed job.
        return col, F.when(~F.is_valid_utf8(col), F.lit(
            "text is not valid UTF-8 (invalid bytes or a lone surrogate in the source)"))
    if inp.cast_text:
        cast = F.to_json(col) if isinstance(kind, ArrayType | MapType | StructType) \
            else col.cast("string")
        return cast, F.lit(None).cast("string")
    return F.lit(None).cast("string"), F.lit(
        f"text is a {kind.simpleString()}, not a string "
        "(set input.cast_text: true to refine its string form)")


def id_type(df: DataFrame, id_column: str | None) -> str | None:
    """The Spark type of a typed source's id column (`bigint`, `double`,
    `string`, ...), or None without one: what a commit records, so a later
    run can tell that the column's type changed."""
    if id_column is None or id_column not in df.columns:
        return None
    return str(df.schema[id_column].dataType.simpleString())


def canonical_id(df: DataFrame, id_column: str, where: TableRef) -> Column:
    """The id column as the string the refined table keys on, the same
    whatever numeric type holds it: an integral float or decimal is the
    integer (`1.0` and `1` are both "1"; a pandas integer column turns into
    `double` once it holds a NaN), NaN and infinities are no id.

    Raises `SourceError` (naming the column) when a floating or decimal id
    is not integral (1.5): it cannot be one stable string, so the source
    must cast it. Checking this scans the id column once.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import DecimalType, DoubleType, FloatType

    kind = df.schema[id_column].dataType
    col = F.col(id_column)
    if isinstance(kind, FloatType | DoubleType):
        finite = ~F.isnan(col) & (F.abs(col) != F.lit(float("inf")))
        whole = col.try_cast("decimal(38,0)")
        fractional = finite & ((col % 1) != 0)  # floor() of a double is a bigint: overflows
        # Beyond 38 digits (1e300) there is no integer string: no id.
        canonical = F.when(finite, whole.cast("string"))
    elif isinstance(kind, DecimalType) and kind.scale > 0:
        whole = col.try_cast(f"decimal({kind.precision},0)")
        fractional = col != whole
        canonical = whole.cast("string")
    else:
        return col.cast("string")
    bad = df.where(fractional).select(col.cast("string").alias("v")).first()
    if bad is not None:
        raise SourceError("input.id_column", (
            f"column {id_column!r} of {where} is {kind.simpleString()} and holds the "
            f"non-integral id {bad.v}: such an id has no stable string form. Cast the "
            "column in the source (to bigint, or to string and keep it a string)"))
    return canonical


def normalize_typed(df: DataFrame, inp: InputConfig, where: TableRef) -> DataFrame:
    """A Parquet/Delta/catalog frame as `SOURCE_SCHEMA` (ids and texts checked per row)."""
    from pyspark.sql import functions as F

    if inp.text_column not in df.columns:
        raise SourceError("input.text_column", f"column {inp.text_column!r} not found in "
                          f"{where}; columns are {', '.join(df.columns) or '(none)'}")
    if inp.id_column is not None and inp.id_column not in df.columns:
        raise SourceError("input.id_column", f"column {inp.id_column!r} not found in {where}; "
                          f"columns are {', '.join(df.columns)}")
    for column in inp.extra_columns:
        if column not in df.columns:
            raise SourceError("stages", f"column {column!r} (a stage's priority) not found in "
                              f"{where}; columns are {', '.join(df.columns)}")
    if inp.last_by is not None and inp.last_by not in df.columns:
        raise SourceError("input.on_duplicate_id", f"column {inp.last_by!r} not found in "
                          f"{where}; columns are {', '.join(df.columns)}")
    text, error = _text_column(df, inp)
    row_id = F.concat(F.lit("row:"), F.substring(F.sha2(F.to_json(F.struct(
        *[F.col(c) for c in df.columns])), 256), 1, 32))
    if inp.id_column is None:
        ident = F.when(error.isNull(), F.sha2(F.coalesce(text, F.lit("")), 256)).otherwise(row_id)
        id_error = F.lit(None).cast("string")
    else:
        raw_id = canonical_id(df, inp.id_column, where)
        bad = raw_id.isNull() | (F.trim(raw_id) == "")
        garbled = ~F.is_valid_utf8(raw_id)
        ident = F.when(bad | garbled, row_id).otherwise(raw_id)
        id_error = (F.when(bad, F.lit(f"record has no {inp.id_column} (null or empty)"))
                    .when(garbled, F.lit(f"record has no usable {inp.id_column} "
                                         f"({inp.id_column} is not valid UTF-8)")))
    source_error = F.coalesce(id_error, error)
    sort = F.col(inp.last_by) if inp.last_by else None
    out = df.select(
        ident.alias("id"),
        F.when(source_error.isNull(), text).alias("text"),
        source_error.alias(SOURCE_ERROR),
        F.monotonically_increasing_id().alias(ORDER),
        (sort.cast("double") if sort is not None else F.lit(None).cast("double")).alias(SORT_NUM),
        (F.make_valid_utf8(sort.cast("string")) if sort is not None
         else F.lit(None).cast("string")).alias(SORT_STR),
        *inp.extra_columns,
    )
    return _finish(out, inp.extra_columns)


def load_typed(spark: SparkSession, ref: TableRef, fmt: str,
               version: int | None = None) -> DataFrame:
    """The raw frame of a Delta/Parquet path or a catalog table (optionally at a version)."""
    reader = spark.read
    if version is not None:
        reader = reader.option("versionAsOf", version)
    if ref.table is not None:
        return reader.table(ref.table)
    return reader.format(fmt).load(ref.path)


def read_source(spark: SparkSession, inp: InputConfig, version: int | None = None
                ) -> DataFrame:
    """The whole source as `SOURCE_SCHEMA` (a Delta source at `version` if given)."""
    from pyspark.errors import AnalysisException

    try:
        if inp.ref.table is None and inp.format == "jsonl":
            return read_jsonl(spark, str(inp.ref.path), inp)
        return normalize_typed(load_typed(spark, inp.ref, inp.format, version), inp, inp.ref)
    except AnalysisException as exc:
        raise SourceError("input", f"cannot read {inp.ref} as {inp.format}: "
                          f"{first_line(exc)}") from None


@dataclass(frozen=True)
class Changes:
    """What a Delta change feed says happened since the last refresh."""

    upserts: DataFrame
    deleted_ids: DataFrame
    from_version: int
    to_version: int


def read_changes(spark: SparkSession, inp: InputConfig, from_version: int, to_version: int
                 ) -> Changes:
    """Rows inserted or updated, and ids deleted, in versions (from, to] of a CDF source.

    The latest change of each id wins: a row deleted and inserted again is an upsert.
    Without an id column (ids are content hashes) `deleted_ids` also holds the
    old texts of updated rows: candidates, which the caller keeps when the same
    text is still in the source.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    reader = (spark.read.format("delta").option("readChangeFeed", "true")
              .option("startingVersion", from_version + 1)
              .option("endingVersion", to_version))
    raw = reader.table(inp.ref.table) if inp.ref.table else reader.load(inp.ref.path)
    if inp.id_column is None:
        # Ids come from the text: an update's old text is an id that may have
        # left the source (the caller keeps it when the text is still there).
        old_texts = raw.where(F.col("_change_type").isin("delete", "update_preimage"))
    raw = raw.where(F.col("_change_type") != "update_preimage")
    if inp.id_column is not None:
        key = F.col(inp.id_column).cast("string")
        latest = Window.partitionBy(key).orderBy(
            F.col("_commit_version").desc(),
            (F.col("_change_type") == "delete").cast("int").asc())
        raw = raw.withColumn("_rank", F.row_number().over(latest)).where("_rank = 1")
    deletes = raw.where(F.col("_change_type") == "delete") if inp.id_column is not None \
        else old_texts
    upserts = raw.where(F.col("_change_type") != "delete").drop(
        "_change_type", "_commit_version", "_commit_timestamp", "_rank")
    data_columns = [c for c in deletes.columns
                    if c not in ("_change_type", "_commit_version", "_commit_timestamp", "_rank")]
    deleted = normalize_typed(deletes.select(*data_columns), inp, inp.ref).select("id")
    return Changes(normalize_typed(upserts, inp, inp.ref), deleted, from_version, to_version)


def has_change_feed(spark: SparkSession, ref: TableRef) -> bool:
    """True when a Delta source has `delta.enableChangeDataFeed=true`."""
    value = table_properties(spark, ref).get("delta.enableChangeDataFeed", "false")
    return value.lower() == "true"


def source_version(spark: SparkSession, ref: TableRef) -> int:
    """The latest version of a Delta source."""
    version = table_version(spark, ref)
    if version is None:
        raise SourceError("input", f"{ref} is not a Delta table")
    return version


COPIES = "_copies"
TEXTS = "_texts"


def resolve_duplicate_ids(df: DataFrame, inp: InputConfig) -> DataFrame:
    """One row per id, by `input.on_duplicate_id`.

    Records repeating an id with the same text are one document. With
    different texts: `error` makes the id an error row (no text is chosen
    silently), `first` keeps the first record read, `last_by` the record
    with the largest value of that column. `_copies` and `_texts` say how
    many records and distinct texts the id had, for the run summary.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_id = Window.partitionBy("id")
    if inp.on_duplicate_id == "last_by":
        order = [F.col(SORT_NUM).desc_nulls_last(), F.col(SORT_STR).desc_nulls_last(),
                 F.col(ORDER).desc()]
    else:
        order = [F.col(ORDER).asc()]
    ranked = (df.withColumn(COPIES, F.count(F.lit(1)).over(by_id))
              .withColumn(TEXTS, F.size(F.collect_set("content_hash").over(by_id)))
              .withColumn("_hashes", F.array_sort(F.collect_set("content_hash").over(by_id)))
              .withColumn("_rank", F.row_number().over(by_id.orderBy(*order)))
              .where(F.col("_rank") == 1))
    if inp.on_duplicate_id == "error":
        conflict = F.col(TEXTS) > 1
        message = F.format_string(
            "id appears in %d records with %d different texts; none was refined "
            "(set input.on_duplicate_id to first or last_by: COLUMN to pick one)",
            F.col(COPIES), F.col(TEXTS))
        ranked = (ranked
                  .withColumn(SOURCE_ERROR, F.when(conflict, message)
                              .otherwise(F.col(SOURCE_ERROR)))
                  .withColumn("text", F.when(conflict, F.lit(None)).otherwise(F.col("text")))
                  .withColumn("content_hash", F.when(
                      conflict, F.sha2(F.concat_ws(",", F.col("_hashes")), 256))
                      .otherwise(F.col("content_hash"))))
    return ranked.drop("_rank", "_hashes")
