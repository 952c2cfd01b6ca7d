"""What a corpus consumer reads: the refined rows that are in the corpus.

A refined table keeps every input row for auditing; only the statuses in
`CORPUS_STATUSES` (kept, edited, reverted) are corpus. Dropped rows have no
text; failed rows keep their unrefined text (so they can be retried) and must
never be read as refined.

    >>> read_corpus(spark, TableRef(path="/data/refined")).select("id", "text")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prox_spark.io.delta import read_table
from prox_spark.program.results import CORPUS_STATUSES
from prox_spark.refs import TableRef

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def corpus_rows(refined: DataFrame) -> DataFrame:
    """The rows of a refined table (or batch) that are in the corpus."""
    from pyspark.sql import functions as F

    return refined.where(F.col("status").isin(*CORPUS_STATUSES))


def read_corpus(spark: SparkSession, ref: TableRef) -> DataFrame:
    """The corpus rows of the refined table `ref` (all its columns)."""
    return corpus_rows(read_table(spark, ref))
