"""Exact and near (MinHash + LSH) deduplication as Spark stages.

A duplicate keeps its row: its text becomes null, its status "dropped", and
`duplicate_of` names the document kept for its cluster (chosen by
`priority`, any orderable column, nulls last, then by id). Only Spark and
Delta are needed.

Both stages compare the same simplified text (`simplify`, after datatrove's
`simplify_text`) and store what they compared (`dedup_hash`, `minhash`) with
the row. A text whose simplified form is empty (emoji, punctuation, nothing)
is never a duplicate. Near duplicates form clusters as connected components
of the similar pairs (as datatrove's and NeMo Curator's MinHash dedup do),
so a chain a~b~c keeps one document and names it for both others. Given
`existing` (rows already refined, e.g. the refined table), documents are
also compared with those, and an existing document always wins: a new copy
of last week's page is the one dropped. In a run the stage is built once
and `stages.chain.StageChain.apply` gives it each batch's `existing`.

Dedup keeps the first document of each cluster among those that reach it:
run it after the stages that drop documents (see conf/rules_only.yaml).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import numpy as np
import pandas as pd
import regex

from prox_spark.params import Doc, Range, check_fields
from prox_spark.schema import DEDUP_HASH, DUPLICATE_OF, ID, MINHASH, RULE_EDITS, STATUS
from prox_spark.stages.base import Stage
from prox_spark.stages.rule_stages import current_text_column, record_edit, word_count_column

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

_PRIORITY = Doc("a source column; among copies the lowest value is kept (then the lowest id)")
_NON_WORD = regex.compile(r"[^\p{L}\p{M}\p{N}\s]+")
_SPACES = regex.compile(r"\s+")
# Accents on Latin, Greek and Cyrillic letters are dropped, as datatrove does
# for every combining mark; elsewhere (Devanagari vowel signs, Thai, ...) a
# mark is part of the letter and changes the word, so it is kept.
_ACCENTS = regex.compile(r"([\p{Latin}\p{Greek}\p{Cyrillic}])\p{Mn}+")


def simplify(text: str) -> str:
    """The text both dedup stages compare: lower case, every character that
    is not a letter, mark or digit turned into a space, whitespace collapsed,
    accents of Latin, Greek and Cyrillic letters removed.

    Follows datatrove's `simplify_text` (lowercase, punctuation to spaces,
    whitespace, diacritics) except that digits are kept and combining marks
    are removed only where they are accents: "यह किला है।" (fort) and
    "यह केला है।" (banana) stay different.

        >>> simplify("Héllo,  World! 42")
        'hello world 42'
        >>> simplify("👍 !!") == ""
        True
    """
    text = _SPACES.sub(" ", _NON_WORD.sub(" ", text.lower())).strip()
    return unicodedata.normalize("NFC", _ACCENTS.sub(r"\1", unicodedata.normalize("NFD", text)))


def dedup_hash(text: str | None) -> str | None:
    """sha256 of the simplified text (None for null text, and for a text
    whose simplified form is empty: it is compared with nothing)."""
    if not isinstance(text, str):
        return None
    simple = simplify(text)
    if not simple:
        return None
    return hashlib.sha256(simple.encode("utf-8", "replace")).hexdigest()


def _keepers(existing: DataFrame, column: str) -> DataFrame:
    """Rows of `existing` that a new document may duplicate: not duplicates themselves."""
    from pyspark.sql import functions as F

    if column not in existing.columns:
        return None
    keep = existing.where(F.col(column).isNotNull())
    if DUPLICATE_OF in existing.columns:
        keep = keep.where(F.col(DUPLICATE_OF).isNull())
    return keep.select(F.col(ID), F.col(column))


def _drop_duplicates(df: DataFrame, stage: str, duplicate_of: Column, column: str
                     ) -> DataFrame:
    from pyspark.sql import functions as F

    is_dup = duplicate_of.isNotNull()
    program = F.when(is_dup, F.concat(F.lit("drop_doc()  # duplicate of "), duplicate_of))
    words = word_count_column(F.col(column))
    earlier = F.col(DUPLICATE_OF) if DUPLICATE_OF in df.columns else F.lit(None)
    df = df.withColumn(DUPLICATE_OF, F.coalesce(earlier, duplicate_of).cast("string"))
    return record_edit(
        df, stage, column, F.when(is_dup, F.lit(None).cast("string")).otherwise(F.col(column)),
        program, F.when(is_dup, F.lit(f"{stage}")), is_dup, F.when(is_dup, words).otherwise(0),
        F.lit(None),
    )


@dataclass
class ExactDedup(Stage):
    """Keep one document per simplified-text hash; `priority` is a column
    (lower value kept first; default: the id). Rows of `existing` (with a
    `dedup_hash` column) are compared too and always kept.

    Example::

        df.transform(ExactDedup(existing=spark.read.format("delta").load(refined)))
    """

    priority: Annotated[str | None, _PRIORITY] = None
    existing: Any = None

    stage_name: ClassVar[str] = "exact_dedup"
    adds: ClassVar[tuple[str, ...]] = (DUPLICATE_OF, DEDUP_HASH, RULE_EDITS, STATUS)
    context_fields: ClassVar[tuple[str, ...]] = ("existing",)
    source_columns: ClassVar[tuple[str, ...]] = ("priority",)
    # The `stage` its `rule_edits` entries and drop reasons carry (older than
    # the YAML name `exact_dedup`; stored tables hold it).
    edit_name: ClassVar[str] = "exact_duplicate"

    def __post_init__(self) -> None:
        check_fields(self)

    def _transform(self, df: DataFrame) -> DataFrame:
        from pyspark.sql import Window
        from pyspark.sql import functions as F
        from pyspark.sql.functions import pandas_udf

        @pandas_udf("string")  # type: ignore[call-overload]
        def prox_dedup_hash(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
            for texts in batches:
                yield pd.Series([dedup_hash(t) for t in texts], dtype="object")

        self.require(df, self.priority)
        column = current_text_column(df.columns)
        df = df.withColumn(DEDUP_HASH, prox_dedup_hash(F.col(column))).withColumn(
            "_new", F.lit(1))
        both = df
        old = _keepers(self.existing, DEDUP_HASH) if self.existing is not None else None
        if old is not None:
            # Materialize once: the batch is read twice below (its keys pick
            # the old rows to compare), and may carry model columns that must
            # not be computed again.
            df = both = df.localCheckpoint()
            keys = F.broadcast(df.select(DEDUP_HASH).where(F.col(DEDUP_HASH).isNotNull())
                               .distinct())
            old = old.join(keys, DEDUP_HASH, "left_semi").withColumn("_new", F.lit(0))
            both = df.unionByName(old, allowMissingColumns=True)
        # One row per key; a null hash (null text) is compared with nothing.
        key = F.coalesce(F.col(DEDUP_HASH), F.concat(F.lit("\u0000"), F.col(ID)))
        order = [F.col("_new").asc()]
        if self.priority:
            order.append(F.col(self.priority).asc_nulls_last())
        window = Window.partitionBy(key).orderBy(*order, F.col(ID).asc())
        first = F.first(F.col(ID)).over(window)
        duplicate_of = F.when(F.col(DEDUP_HASH).isNotNull() & (first != F.col(ID)), first)
        marked = (both.withColumn("_dup_of", duplicate_of)
                  .where(F.col("_new") == 1).drop("_new"))
        return _drop_duplicates(marked, self.edit_name, F.col("_dup_of"), column).drop("_dup_of")


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
    estimated Jaccard similarity reaches `threshold` are linked, and each
    connected component of links (a cluster, as in datatrove and NeMo
    Curator) keeps one document: the lowest `priority` (any orderable column,
    nulls last), then the lowest id. The others name it in `duplicate_of`.
    Rows of `existing` (with a `minhash` column made with the same bands,
    rows and seed) are matched too and always kept. The similar pairs are
    collected to the driver to resolve the clusters (about one per duplicate).
    """

    threshold: Annotated[float, Range(0, 1, open_low=True), Doc(
        "estimated Jaccard similarity at or above which documents are duplicates")] = 0.8
    ngram: Annotated[int, Range(1), Doc("words per shingle")] = 5
    bands: Annotated[int, Range(1), Doc("LSH bands (more bands find less similar pairs)")] = 14
    rows: Annotated[int, Range(1), Doc("signature rows per band")] = 8
    seed: Annotated[int, Doc(
        "seed of the MinHash permutations (keep it to compare with stored rows)")] = 1
    priority: Annotated[str | None, _PRIORITY] = None
    existing: Any = None

    stage_name: ClassVar[str] = "near_dedup"
    adds: ClassVar[tuple[str, ...]] = (DUPLICATE_OF, MINHASH, RULE_EDITS, STATUS)
    context_fields: ClassVar[tuple[str, ...]] = ("existing",)
    source_columns: ClassVar[tuple[str, ...]] = ("priority",)
    # The `stage` its `rule_edits` entries and drop reasons carry (see ExactDedup).
    edit_name: ClassVar[str] = "near_duplicate"

    def __post_init__(self) -> None:
        check_fields(self)

    def _transform(self, df: DataFrame) -> DataFrame:
        from pyspark.sql import functions as F
        from pyspark.sql.functions import pandas_udf

        self.require(df, self.priority)
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
        df = df.withColumn(MINHASH, prox_minhash(F.col(column))).localCheckpoint()
        sigs = df.select(F.col(ID).alias("_id"), F.col(MINHASH).alias("_sig"),
                         F.lit(1).alias("_new")).where(F.col("_sig").isNotNull())
        banding = F.posexplode(F.expr(
            f"transform(sequence(0, {self.bands - 1}), i -> "
            f"xxhash64(slice(_sig, i * {rows} + 1, {rows})))")).alias("_band", "_bucket")
        bands = sigs.select("_id", "_sig", "_new", banding)
        old = _keepers(self.existing, MINHASH) if self.existing is not None else None
        if old is not None:
            # Only old documents sharing a bucket with a new one can match.
            old = old.where(F.size(MINHASH) == num_perm).select(
                F.col(ID).alias("_id"), F.col(MINHASH).alias("_sig"), F.lit(0).alias("_new"))
            buckets = F.broadcast(bands.select("_band", "_bucket").distinct())
            bands = bands.unionByName(old.select("_id", "_sig", "_new", banding)
                                      .join(buckets, ["_band", "_bucket"], "left_semi"))
        left, right = bands.alias("l"), bands.alias("r")
        lc, rc = (lambda n: F.col(f"l.{n}")), (lambda n: F.col(f"r.{n}"))
        pairs = left.join(
            right,
            (lc("_band") == rc("_band")) & (lc("_bucket") == rc("_bucket"))
            & (lc("_id") < rc("_id")) & ((lc("_new") == 1) | (rc("_new") == 1)),
        ).select(lc("_id").alias("a"), rc("_id").alias("b"),
                 lc("_sig").alias("ls"), rc("_sig").alias("rs")).dropDuplicates(["a", "b"])
        similar = pairs.where(F.expr(
            f"size(filter(zip_with(ls, rs, (x, y) -> x = y), z -> z)) / {num_perm}"
        ) >= F.lit(self.threshold)).select("a", "b")
        edges = [(r.a, r.b) for r in similar.collect()]
        keeper = self._cluster_keepers(df, old, edges)
        best = df.sparkSession.createDataFrame(list(keeper.items()),
                                               "_dup_id string, _dup_of string")
        marked = df.join(best, df[ID] == best["_dup_id"], "left").drop("_dup_id")
        return _drop_duplicates(marked, self.edit_name, F.col("_dup_of"), column).drop("_dup_of")

    def _cluster_keepers(self, df: DataFrame, old: DataFrame | None,
                         edges: list[tuple[str, str]]) -> dict[str, str]:
        """{new duplicate id: its cluster's keeper} for the similar pairs
        `edges`: old documents first, then the lowest priority (nulls last),
        then the lowest id."""
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        if not edges:
            return {}
        spark = df.sparkSession
        nodes = spark.createDataFrame([(i,) for i in {n for e in edges for n in e}], "_id string")
        prio = F.col(self.priority) if self.priority else F.lit(None)
        keys = df.select(F.col(ID).alias("_id"), F.lit(1).alias("_new"), prio.alias("_prio"))
        if old is not None:
            kind = df.schema[self.priority].dataType if self.priority else None
            none = F.lit(None).cast(kind) if kind is not None else F.lit(None)
            keys = keys.unionByName(old.select("_id", F.lit(0).alias("_new"),
                                               none.alias("_prio")))
        order = Window.orderBy(F.col("_new"), F.col("_prio").asc_nulls_last(), F.col("_id"))
        ranked = (keys.join(F.broadcast(nodes), "_id")
                  .withColumn("_rank", F.row_number().over(order)).collect())
        rank = {r._id: r._rank for r in ranked}
        new = {r._id for r in ranked if r._new == 1}
        return {node: best for node, best in clusters(edges, rank.__getitem__).items()
                if node in new and node != best}


def clusters(edges: Iterable[tuple[str, str]], key: Any) -> dict[str, str]:
    """{node: the node with the smallest `key` in its connected component},
    for every node of the undirected graph `edges` (union-find).

        >>> clusters([("b", "c"), ("a", "b"), ("x", "y")], str)
        {'b': 'a', 'c': 'a', 'a': 'a', 'x': 'x', 'y': 'x'}
    """
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            if key(rb) < key(ra):
                ra, rb = rb, ra
            parent[rb] = ra
    return {node: root(node) for node in list(parent)}
