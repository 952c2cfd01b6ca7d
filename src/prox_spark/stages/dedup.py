"""Exact and near (MinHash + LSH) deduplication as Spark stages.

A duplicate keeps its row: its text becomes null, its status "dropped", and
`duplicate_of` names the document it duplicates (the one kept in its group,
chosen by `priority`, then by id). Only Spark and Delta are needed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from prox_spark.stages.base import ID, Stage
from prox_spark.stages.rule_stages import current_text_column, record_edit

DUPLICATE_OF = "duplicate_of"
_NON_WORD = re.compile(r"[^\w\s]+")
_SPACES = re.compile(r"\s+")


def simplify(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed: the text compared."""
    return _SPACES.sub(" ", _NON_WORD.sub(" ", text.lower())).strip()


def _mark(df, stage: str, duplicate_of, column: str):  # type: ignore[no-untyped-def]
    from pyspark.sql import functions as F

    is_dup = duplicate_of.isNotNull()
    program = F.when(is_dup, F.concat(F.lit("drop_doc()  # duplicate of "), duplicate_of))
    words = F.size(F.split(F.trim(F.coalesce(F.col(column), F.lit(""))), r"\s+"))
    df = df.withColumn(DUPLICATE_OF, duplicate_of)
    return record_edit(
        df, stage, column, F.when(is_dup, F.lit(None).cast("string")).otherwise(F.col(column)),
        program, F.when(is_dup, F.lit(f"{stage}")), is_dup, F.when(is_dup, words).otherwise(0),
        F.lit(None),
    )


@dataclass
class ExactDedup(Stage):
    """Keep one document per normalized-text hash; `priority` is a column
    (lower value kept first; default: the id)."""

    priority: str | None = None

    def transform(self, df):  # type: ignore[no-untyped-def]
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        column = current_text_column(df.columns)
        norm = F.trim(F.regexp_replace(
            F.regexp_replace(F.lower(F.col(column)), r"[^\p{L}\p{N}\s]+", " "), r"\s+", " "))
        key = F.when(F.col(column).isNotNull(), F.sha2(norm, 256))
        order = [F.col(self.priority).asc_nulls_last()] if self.priority else []
        window = Window.partitionBy("_dedup_key").orderBy(*order, F.col(ID).asc())
        df = df.withColumn("_dedup_key", key)
        first = F.first(F.col(ID)).over(window)
        duplicate_of = F.when(
            F.col("_dedup_key").isNotNull() & (first != F.col(ID)), first
        )
        return _mark(df, "exact_duplicate", duplicate_of, column).drop("_dedup_key")


_PRIME = 4_294_967_291  # largest prime below 2**32: a*h + b stays within uint64


def _hash_params(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, _PRIME, size=num_perm, dtype=np.uint64)
    b = rng.integers(0, _PRIME, size=num_perm, dtype=np.uint64)
    return a, b


def minhash_signature(text: str | None, ngram: int, a: np.ndarray, b: np.ndarray
                      ) -> list[int] | None:
    """MinHash of the word `ngram`-shingles of the simplified text (None if empty)."""
    if not isinstance(text, str):
        return None
    words = simplify(text).split()
    if not words:
        return None
    shingles = {" ".join(words[i:i + ngram]) for i in range(max(1, len(words) - ngram + 1))}
    hashes = np.fromiter(
        (int.from_bytes(hashlib.blake2b(s.encode("utf-8", "replace"), digest_size=4).digest(),
                        "little") for s in shingles),
        dtype=np.uint64, count=len(shingles),
    )
    permuted = (a[:, None] * hashes[None, :] + b[:, None]) % np.uint64(_PRIME)
    return permuted.min(axis=1).astype(np.int64).tolist()


@dataclass
class NearDedup(Stage):
    """MinHash + LSH banding over word 5-gram shingles; documents whose
    estimated Jaccard similarity reaches `threshold` are duplicates of the
    best-priority document they match."""

    threshold: float = 0.8
    ngram: int = 5
    bands: int = 14
    rows: int = 8
    seed: int = 1
    priority: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.ngram < 1 or self.bands < 1 or self.rows < 1:
            raise ValueError("ngram, bands and rows must be >= 1")

    def transform(self, df):  # type: ignore[no-untyped-def]
        from pyspark.sql import functions as F
        from pyspark.sql.functions import pandas_udf

        column = current_text_column(df.columns)
        num_perm = self.bands * self.rows
        a, b = _hash_params(num_perm, self.seed)
        ngram, rows = self.ngram, self.rows

        @pandas_udf("array<long>")  # type: ignore[call-overload]
        def prox_minhash(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
            for texts in batches:
                yield pd.Series([minhash_signature(t, ngram, a, b) for t in texts])

        # Materialize once: the input is read twice below, and may carry
        # non-deterministic model columns that must not be computed again.
        df = df.localCheckpoint()
        prio = F.col(self.priority) if self.priority else F.lit(0)
        sigs = df.select(
            F.col(ID).alias("_id"), prio.alias("_prio"), prox_minhash(F.col(column)).alias("_sig")
        ).where(F.col("_sig").isNotNull())
        bands = sigs.select(
            "_id", "_prio", "_sig",
            F.posexplode(F.expr(
                f"transform(sequence(0, {self.bands - 1}), i -> "
                f"xxhash64(slice(_sig, i * {rows} + 1, {rows})))"
            )).alias("_band", "_bucket"),
        )
        left, right = bands.alias("l"), bands.alias("r")
        pairs = left.join(
            right,
            (F.col("l._band") == F.col("r._band")) & (F.col("l._bucket") == F.col("r._bucket"))
            & ((F.col("l._prio") < F.col("r._prio"))
               | ((F.col("l._prio") == F.col("r._prio")) & (F.col("l._id") < F.col("r._id")))),
        ).select(F.col("l._id").alias("keep"), F.col("r._id").alias("dup"),
                 F.col("l._prio").alias("kp"), F.col("l._sig").alias("ls"),
                 F.col("r._sig").alias("rs")).dropDuplicates(["keep", "dup"])
        similar = pairs.withColumn(
            "_sim",
            F.expr(f"size(filter(zip_with(ls, rs, (x, y) -> x = y), z -> z)) / {num_perm}"),
        ).where(F.col("_sim") >= F.lit(self.threshold))
        best = similar.groupBy("dup").agg(
            F.min(F.struct("kp", "keep")).alias("_best")
        ).select(F.col("dup").alias("_dup_id"), F.col("_best.keep").alias("_dup_of"))
        marked = df.join(best, df[ID] == best["_dup_id"], "left").drop("_dup_id")
        return _mark(marked, "near_duplicate", F.col("_dup_of"), column).drop("_dup_of")
