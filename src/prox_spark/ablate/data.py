"""Each variant's training sample: read with the pipeline's readers, cleared
of the reference documents, tokenized on the executors, and taken in id-hash
order until exactly `tokens` tokens (packed: BOS, the document, EOS).

The order is the SHA-256 of the document id, so the sample is the same on
every run and does not depend on how the source is partitioned or sorted; a
variant's sample grows as a prefix when `tokens` grows. A document is left
out when its text, whitespace-collapsed and lower-cased, equals a reference
document's (the held-out set must be unseen).

Records the readers turn into error rows (malformed lines, null ids, text
that is not a string) and documents with no text are not training text: they
are counted (`VariantStats.skipped`) and left out.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from prox_spark.ablate.config import AblateConfig, Variant
from prox_spark.config import InputConfig
from prox_spark.errors import ConfigError, SourceError, first_line
from prox_spark.io.sources import read_source, resolve_duplicate_ids
from prox_spark.program.results import CORPUS_STATUSES
from prox_spark.run.refined_table import RefinedTable
from prox_spark.schema import SOURCE_ERROR

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

# The refined table's columns a prox-spark output always has.
REFINED_MARKERS = ("id", "text", "status", "fingerprint", "content_hash")
TOKEN_DTYPE = np.uint32


@dataclass(frozen=True)
class VariantStats:
    """What a variant holds and what was taken: `documents` and `tokens`
    available (BOS and EOS included), `skipped` records that are not
    training text (error rows, empty text), `excluded` documents also in the
    reference set; `sampled_documents` and `sampled_tokens` (= the budget)
    taken; `epochs` = sampled / available tokens when repeated, else the share
    of the available tokens used (below 1)."""

    name: str
    documents: int
    tokens: int
    skipped: int
    excluded: int
    sampled_documents: int
    sampled_tokens: int
    epochs: float


def normalized_text_hash(text: Column) -> Column:
    """SHA-256 of the text lower-cased with whitespace runs collapsed: the
    key that matches a training document to a reference document."""
    from pyspark.sql import functions as F

    return F.sha2(F.lower(F.trim(F.regexp_replace(text, r"\s+", " "))), 256)


def _source_documents(spark: SparkSession, source: InputConfig, where: str
                      ) -> tuple[DataFrame, DataFrame]:
    """(documents with id and text, every record with an `_usable` flag)."""
    from pyspark.sql import functions as F

    try:
        df = read_source(spark, source)
    except SourceError as exc:
        raise SourceError(where, str(exc).split(": ", 1)[-1]) from None
    resolved = resolve_duplicate_ids(df, source)
    usable = F.col(SOURCE_ERROR).isNull() & F.col("text").isNotNull() & (
        F.length(F.trim(F.col("text"))) > 0)
    flagged = resolved.select("id", "text", usable.alias("_usable"))
    return flagged.where("_usable").select("id", "text"), flagged


def _table_documents(spark: SparkSession, variant: Variant, where: str
                     ) -> tuple[DataFrame, DataFrame]:
    """The final text of a refined table's rows in the corpus (kept, edited,
    reverted); ConfigError when the table is not a prox-spark output."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    assert variant.table is not None
    try:
        df = RefinedTable(spark, variant.table).read()
        columns = set(df.columns)
    except AnalysisException as exc:
        raise ConfigError(where, f"cannot read {variant.table} as a Delta table: "
                                 f"{first_line(exc)}") from None
    missing = [c for c in REFINED_MARKERS if c not in columns]
    if missing:
        raise ConfigError(where, f"{variant.table} is not a prox-spark refined table (no "
                                 f"{', '.join(missing)} column)")
    usable = F.col("status").isin(*CORPUS_STATUSES) & F.col("text").isNotNull() & (
        F.length(F.trim(F.col("text"))) > 0)
    flagged = df.select("id", "text", usable.alias("_usable"))
    return flagged.where("_usable").select("id", "text"), flagged


def variant_documents(spark: SparkSession, variant: Variant, where: str
                      ) -> tuple[DataFrame, DataFrame]:
    """(documents `id, text`, all records flagged `_usable`) of a variant."""
    if variant.source is not None:
        return _source_documents(spark, variant.source, f"{where}.input")
    return _table_documents(spark, variant, f"{where}.table")


def reference_documents(spark: SparkSession, reference: InputConfig) -> DataFrame:
    """The reference set's documents (`id, text, _key`), ConfigError when it
    holds none."""
    from pyspark.sql import functions as F

    docs, _ = _source_documents(spark, reference, "ablate.eval.reference")
    docs = docs.withColumn("_key", F.sha2(F.col("id"), 256))
    if docs.limit(1).count() == 0:
        raise ConfigError("ablate.eval.reference", f"{reference.ref} holds no document with "
                                                   "text")
    return docs


def without_reference(docs: DataFrame, reference: DataFrame | None) -> DataFrame:
    """`docs` minus those whose normalized text is a reference document's."""
    from pyspark.sql import functions as F

    if reference is None:
        return docs
    held_out = reference.select(normalized_text_hash(F.col("text")).alias("_text_key"))
    return (docs.withColumn("_text_key", normalized_text_hash(F.col("text")))
            .join(F.broadcast(held_out.distinct()), "_text_key", "left_anti")
            .drop("_text_key"))


def in_sample_order(docs: DataFrame) -> DataFrame:
    """`docs` with `_key` (SHA-256 of the id), ordered by it (ties: the text)."""
    from pyspark.sql import functions as F

    return docs.withColumn("_key", F.sha2(F.col("id"), 256)).orderBy("_key", "text")


def tokenized(docs: DataFrame, tokenizer_json: str, eos_id: int,
              bos_id: int | None = None) -> DataFrame:
    """`docs` with `ids` (array<int>): BOS (when the tokenizer has one), the
    text's token ids (special-token text read as text), then EOS: each
    document as the proxies see it and as lm-eval scores text (after one BOS).
    Tokenized by a pandas UDF on the executors."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("array<int>")  # type: ignore[call-overload]
    def prox_tokenize(texts: pd.Series) -> pd.Series:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(tokenizer_json)
        tok.encode_special_tokens = True
        encoded = tok.encode_batch([t or "" for t in texts], add_special_tokens=False)
        head = [] if bos_id is None else [bos_id]
        return pd.Series([[*head, *e.ids, eos_id] for e in encoded])

    return docs.withColumn("ids", prox_tokenize(F.col("text")))


def texts_for_tokenizer(docs: DataFrame, chars: int) -> list[str]:
    """The first documents in sample order, up to about `chars` characters:
    what a shared tokenizer is trained on."""
    out, total = [], 0
    for row in in_sample_order(docs).select("text").toLocalIterator():
        out.append(row["text"])
        total += len(row["text"])
        if total >= chars:
            break
    return out


def count(docs: DataFrame, flagged: DataFrame, ids: DataFrame, reference: DataFrame | None
          ) -> tuple[int, int, int, int]:
    """(documents, tokens, skipped records, excluded documents) of a variant."""
    from pyspark.sql import functions as F

    totals = ids.agg(F.count(F.lit(1)).alias("n"),
                     F.coalesce(F.sum(F.size("ids")), F.lit(0)).alias("t")).collect()[0]
    skipped = flagged.where(~F.col("_usable")).count()
    excluded = docs.count() - int(totals["n"]) if reference is not None else 0
    return int(totals["n"]), int(totals["t"]), int(skipped), excluded


def pack(stream: Iterable[list[int]], tokens: int) -> tuple[np.ndarray, int, int]:
    """The first `tokens` ids of the concatenated documents of `stream`
    (the last document cut where the budget ends) as a uint32 array, with
    (documents used, ids read). Short when the stream ends first."""
    out = np.empty(tokens, dtype=TOKEN_DTYPE)
    filled = documents = 0
    for ids in stream:
        take = min(len(ids), tokens - filled)
        out[filled:filled + take] = ids[:take]
        filled += take
        documents += 1
        if filled >= tokens:
            break
    return out[:filled], documents, filled


def repeat_to(array: np.ndarray, tokens: int) -> np.ndarray:
    """`array` repeated (whole passes, then a prefix) to exactly `tokens` ids."""
    reps = -(-tokens // len(array))
    return np.tile(array, reps)[:tokens]


def sample_variant(spark: SparkSession, config: AblateConfig, index: int, tokenizer: Any,
                   reference: DataFrame | None) -> tuple[np.ndarray, VariantStats]:
    """A variant's packed training tokens (exactly `config.tokens`) and its
    figures. ConfigError when it holds no document, or fewer tokens than the
    budget without `allow_repeat`."""
    variant = config.variants[index]
    where = f"ablate.variants[{index}]"
    docs, flagged = variant_documents(spark, variant, where)
    docs = docs.repartition(config.partitions)
    kept = without_reference(docs, reference)
    ids = tokenized(kept, tokenizer.backend_tokenizer.to_str(), tokenizer.eos_token_id,
                    tokenizer.bos_token_id)
    ids = ids.persist()
    try:
        ordered = in_sample_order(ids).select("ids")
        array, used, _ = pack((r["ids"] for r in ordered.toLocalIterator()), config.tokens)
        documents, available, skipped, excluded = count(docs, flagged, ids, reference)
    finally:
        ids.unpersist()
    if documents == 0:
        raise ConfigError(where, f"variant {variant.name!r} holds no document with text "
                                 f"({skipped:,} records skipped, {excluded:,} also in the "
                                 "reference set)")
    if len(array) < config.tokens:
        if not config.allow_repeat:
            raise ConfigError("ablate.tokens", f"variant {variant.name!r} holds {available:,} "
                              f"tokens in {documents:,} documents, fewer than the "
                              f"{config.tokens:,} asked for (set ablate.allow_repeat: true to "
                              "repeat it, or lower ablate.tokens)")
        array = repeat_to(array, config.tokens)
    epochs = config.tokens / available
    return array, VariantStats(variant.name, documents, available, skipped, excluded,
                               min(used, documents), config.tokens, epochs)


def save_sample(array: np.ndarray, folder: Path, name: str) -> tuple[Path, str]:
    """Write a packed sample as `<name>-<sha12>.npy` (kept if already there);
    returns its path and the SHA-256 of its ids."""
    digest = hashlib.sha256(np.ascontiguousarray(array, dtype=TOKEN_DTYPE).tobytes()).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{digest[:12]}.npy"
    if not path.is_file():
        tmp = folder / f".{path.stem}.{os.getpid()}.tmp.npy"
        np.save(tmp, array.astype(TOKEN_DTYPE))
        tmp.replace(path)
    return path, digest


def reference_jsonl(reference: DataFrame, limit: int, path: Path) -> int:
    """Write the first `limit` reference documents (in id-hash order) as the
    JSONL lm-eval reads; returns how many."""
    rows = reference.orderBy("_key").select("id", "text").limit(limit).collect()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return len(rows)
