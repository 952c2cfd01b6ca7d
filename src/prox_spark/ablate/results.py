"""The ablation's results table (Delta): one row per (variant, seed,
fingerprint, training tokens, task, metric).

Rows are written with a MERGE that inserts only the keys the table does not
hold, so a resumed or repeated ablation, or two at once, writes each row once.
`fingerprint` identifies the proxy (sample, tokenizer, recipe, seed): rows of
an older fingerprint stay in the table but are not this ablation's results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prox_spark.io.delta import (
    delta_table,
    ensure_table,
    read_table,
    table_exists,
    with_conflict_retries,
)
from prox_spark.refs import TableRef

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

RESULTS_SCHEMA = (
    "variant string, seed int, fingerprint string, tokens long, step int, final boolean, "
    "task string, metric string, value double, stderr double, examples long, chance double, "
    "epochs double, parameters long, train_seconds double, written_at timestamp"
)
KEY = ("variant", "seed", "fingerprint", "tokens", "task", "metric")


def write_rows(spark: SparkSession, ref: TableRef, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` whose key the table does not hold yet (one commit;
    retried on a conflict with a concurrent writer)."""
    if not rows:
        return
    ensure_table(spark, ref, RESULTS_SCHEMA)
    now = datetime.now(UTC)
    data = [{**row, "written_at": row.get("written_at") or now} for row in rows]
    frame = spark.createDataFrame(data, RESULTS_SCHEMA)
    condition = " AND ".join(f"t.{k} = s.{k}" for k in KEY)

    def merge(_: int) -> None:
        (delta_table(spark, ref).alias("t").merge(frame.alias("s"), condition)
         .whenNotMatchedInsertAll().execute())

    with_conflict_retries(merge, retries=5, what=f"writing results to {ref}")


def read_rows(spark: SparkSession, ref: TableRef,
              fingerprints: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows of the table (only those of `fingerprints` when given), as dicts;
    [] when the table does not exist."""
    from pyspark.sql import functions as F

    if not table_exists(spark, ref):
        return []
    df = read_table(spark, ref)
    if fingerprints is not None:
        df = df.where(F.col("fingerprint").isin(*fingerprints))
    return [r.asDict() for r in df.orderBy(*KEY).collect()]


def finished(rows: Sequence[Mapping[str, Any]], fingerprint: str) -> bool:
    """True when the rows hold the final point of the proxy `fingerprint`."""
    return any(r["fingerprint"] == fingerprint and r["final"] for r in rows)


def evaluated_steps(rows: Sequence[Mapping[str, Any]], fingerprint: str) -> set[int]:
    """The steps of the proxy `fingerprint` whose rows are written."""
    return {int(r["step"]) for r in rows if r["fingerprint"] == fingerprint}


def measured_flops_per_second(rows: Sequence[Mapping[str, Any]]) -> float | None:
    """Training FLOP/s (6 x parameters x tokens / seconds) of the finished
    proxies in `rows`, their median; None when there is none."""
    rates = sorted(6.0 * r["parameters"] * r["tokens"] / r["train_seconds"] for r in rows
                   if r["final"] and r["task"] == "train" and r.get("train_seconds")
                   and r.get("parameters"))
    if not rates:
        return None
    return rates[len(rates) // 2]
