"""The last step of a refinement: every row in the refined table's shape.

After the configured stages, `finish_rows` applies the stored programs when
only the doc model ran (or sets the statuses when no model ran), makes a
document a rule edited "edited", counts the final words and tokens (unless
the interpreter's counts are already final), says why each dropped or
failed row is not in the corpus (`drop_reason`), and selects
`schema.REFINED_TYPES` plus `invalid`, the unreadable source records
included as dropped rows carrying their error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pandas as pd

from prox_spark.counts import word_count
from prox_spark.generation.counting import token_counts_with
from prox_spark.program import CORPUS_STATUSES, DROPPED, FAILED, ChunkPolicy
from prox_spark.program.results import EMPTY_TEXT_REASON, INVALID_RECORD_REASON
from prox_spark.schema import (
    CHUNK_ERROR,
    DOC_ERROR,
    DOC_PROGRAM,
    DROP_REASON,
    REFINED_TEXT,
    REFINED_TYPES,
    RULE_EDITS,
    RULE_ERROR,
    SOURCE_ERROR,
    STATUS,
    TEXT,
    TRUNCATED,
)
from prox_spark.stages.apply import ProgramApplier
from prox_spark.stages.base import status_expr
from prox_spark.stages.rule_stages import word_count_column

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# The source text, kept beside the text the stages change (for `words_before`).
ORIGINAL_TEXT = "_original_text"

__all__ = ["ORIGINAL_TEXT", "finish_rows"]


def finish_rows(valid: DataFrame, invalid: DataFrame | None, policy: ChunkPolicy,
                tokenizer: str | None, *, counted: bool) -> DataFrame:
    """`valid` (rows through the stages) and `invalid` (source records that
    could not be read, with a `source_error`) as refined rows: the columns
    of `REFINED_TYPES` plus `invalid`. `tokenizer` (a model directory or id,
    or None) counts tokens; `counted` says the interpreter's word and token
    counts are final (no stage after it changed the text)."""
    from pyspark.sql import functions as F

    if REFINED_TEXT not in valid.columns:
        if DOC_PROGRAM in valid.columns:
            valid = valid.transform(ProgramApplier(policy, tokenizer=tokenizer))
            counted = True
        else:
            valid = _rules_only_result(valid)
    if RULE_EDITS in valid.columns:
        # A rule's line edits make an otherwise untouched document "edited".
        line_edit = F.exists(F.col(RULE_EDITS), lambda e: e["reason"].isNull())
        valid = valid.withColumn(STATUS, status_expr(F.lit(False), line_edit, F.col(STATUS)))
    if not counted:
        valid = _final_counts(valid, tokenizer)
    errors = F.concat_ws("; ", *[F.col(c) for c in (RULE_ERROR, DOC_ERROR, CHUNK_ERROR)
                                 if c in valid.columns])
    computed = {
        TEXT: F.col(REFINED_TEXT),
        "error": F.when(errors != "", errors),
        DROP_REASON: _drop_reason(valid),
        TRUNCATED: F.coalesce(F.col(TRUNCATED), F.lit(False)) if TRUNCATED in valid.columns
        else F.lit(False),
        "fingerprint": F.lit(None), "refined_at": F.lit(None),
    }
    out = _shaped(valid, computed, invalid=False)
    if invalid is None:
        return out
    fixed = {STATUS: F.lit(DROPPED), "error": F.col(SOURCE_ERROR), "errors": F.lit(0),
             TEXT: F.lit(None), DROP_REASON: F.lit(INVALID_RECORD_REASON),
             TRUNCATED: F.lit(False)}
    return out.unionByName(_shaped(invalid, fixed, invalid=True))


def _shaped(df: DataFrame, values: dict[str, Column], *, invalid: bool) -> DataFrame:
    from pyspark.sql import functions as F

    return df.select(*[
        (values[name] if name in values else
         F.col(name) if name in df.columns else F.lit(None)).cast(kind).alias(name)
        for name, kind in REFINED_TYPES.items()
    ], F.lit(invalid).alias("invalid"))


def _drop_reason(df: DataFrame) -> Column:
    """Why a dropped or failed row is not in the corpus (null for the others)."""
    from pyspark.sql import functions as F

    rule: Any = F.lit(None)
    if RULE_EDITS in df.columns:
        drops = F.filter(F.col(RULE_EDITS), lambda e: e["reason"].isNotNull())
        rule = F.get(drops, 0)["reason"]
    model = F.col(DROP_REASON) if DROP_REASON in df.columns else F.lit(None)
    return (F.when(F.col(STATUS) == F.lit(FAILED), F.coalesce(model, rule))
            .when(F.col(STATUS) == F.lit(DROPPED),
                  F.coalesce(rule, model, F.lit(EMPTY_TEXT_REASON))))


def _final_counts(df: DataFrame, tokenizer: str | None) -> DataFrame:
    """`words_after` (and `tokens_after`, when tokens are counted) of the
    final text, after every stage; 0 for rows not in the corpus (dropped,
    failed)."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    tokenizer = tokenizer if "tokens_after" in df.columns else None
    corpus = set(CORPUS_STATUSES)

    @pandas_udf("words int, tokens int")  # type: ignore[call-overload]
    def prox_counts(batches: Iterator[tuple[pd.Series, pd.Series]]) -> Iterator[pd.DataFrame]:
        for texts, statuses in batches:
            final = [t if isinstance(t, str) and s in corpus else ""
                     for t, s in zip(texts, statuses, strict=True)]
            tokens = token_counts_with(tokenizer, final) or [None] * len(final)
            yield pd.DataFrame({"words": [word_count(t) for t in final], "tokens": tokens})

    out = df.withColumn("_counts", prox_counts(F.col(REFINED_TEXT), F.col(STATUS)))
    out = out.withColumn("words_after", F.col("_counts.words"))
    if tokenizer is not None:
        out = out.withColumn("tokens_after", F.col("_counts.tokens"))
    return out.drop("_counts")


def _rules_only_result(df: DataFrame) -> DataFrame:
    """Status and `words_before` when no model stage ran (text as the rules
    left it); `words_after` is counted by `_final_counts`."""
    from pyspark.sql import functions as F

    out = df.withColumn(REFINED_TEXT, F.col(TEXT))
    if STATUS not in out.columns:
        out = out.withColumn(STATUS, status_expr(F.col(REFINED_TEXT).isNull(), F.lit(False)))
    source_text = F.col(ORIGINAL_TEXT) if ORIGINAL_TEXT in out.columns else F.col(TEXT)
    return (out.withColumn("words_before", word_count_column(source_text))
            .withColumn("errors", F.lit(0)))
