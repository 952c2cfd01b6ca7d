"""The two model stages: document-level keep/drop, chunk-level line edits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pandas as pd

from prox_spark.engine import CHUNK_MAX_NEW_TOKENS, DOC_MAX_NEW_TOKENS, EngineConfig
from prox_spark.program import DEFAULT_CHUNK_POLICY, ChunkPolicy
from prox_spark.prompts import CHUNK_MAX_TOKENS, DOC_MAX_TOKENS
from prox_spark.stages.apply import ProgramApplier, doc_status_batch
from prox_spark.stages.base import (
    CHUNK_ERROR,
    CHUNK_PROGRAMS,
    DOC_ERROR,
    DOC_PROGRAM,
    DOC_STATUS,
    STATUS,
    TEXT,
    Stage,
    is_dropped,
)
from prox_spark.udfs import DEFAULT_MAX_DOC_CHARS, chunk_programs_udf, doc_program_udf


@dataclass
class DocRefiner(Stage):
    """Generate each document's keep/drop program and decide.

    Adds `doc_program`, `doc_error` and `doc_status` ("kept" / "dropped").

    Example::

        kept = df.transform(DocRefiner(EngineConfig(model="gair-prox/web-doc-refining-lm")))
    """

    engine: EngineConfig
    max_prompt_tokens: int = DOC_MAX_TOKENS
    max_new_tokens: int = DOC_MAX_NEW_TOKENS

    def transform(self, df):  # type: ignore[no-untyped-def]
        from pyspark.sql import functions as F
        from pyspark.sql.functions import pandas_udf

        @pandas_udf("string")  # type: ignore[call-overload]
        def prox_doc_status(
            batches: Iterator[tuple[pd.Series, pd.Series]],
        ) -> Iterator[pd.Series]:
            for texts, programs in batches:
                yield doc_status_batch(texts, programs)

        generate = doc_program_udf(
            self.engine,
            max_prompt_tokens=self.max_prompt_tokens,
            max_new_tokens=self.max_new_tokens,
        )
        # A row a rule stage already dropped is not sent, and is no error.
        ruled_out = is_dropped(df, STATUS)
        out = df.withColumn("_doc", generate(F.when(~ruled_out, F.col(TEXT))))
        out = out.select(
            "*",
            F.col("_doc.program").alias(DOC_PROGRAM),
            F.when(~ruled_out, F.col("_doc.error")).alias(DOC_ERROR),
        ).drop("_doc")
        return out.withColumn(DOC_STATUS, prox_doc_status(F.col(TEXT), F.col(DOC_PROGRAM)))


@dataclass
class ChunkRefiner(Stage):
    """Generate chunk programs for documents not dropped, then apply everything.

    Skips rows whose `doc_status` is "dropped" (no model call), adds
    `chunk_programs` and `chunk_error`, then runs `ProgramApplier` with
    `policy` to add `refined_text` and the result columns.
    """

    engine: EngineConfig
    policy: ChunkPolicy = field(default_factory=lambda: DEFAULT_CHUNK_POLICY)
    max_chunk_tokens: int = CHUNK_MAX_TOKENS
    max_new_tokens: int = CHUNK_MAX_NEW_TOKENS
    max_doc_chars: int = DEFAULT_MAX_DOC_CHARS
    count_tokens: bool = True

    def transform(self, df):  # type: ignore[no-untyped-def]
        from pyspark.sql import functions as F

        generate = chunk_programs_udf(
            self.engine,
            max_chunk_tokens=self.max_chunk_tokens,
            max_new_tokens=self.max_new_tokens,
            max_doc_chars=self.max_doc_chars,
        )
        dropped = is_dropped(df, DOC_STATUS, STATUS)
        # Dropped documents reach the UDF as nulls, which it skips for free.
        out = df.withColumn("_chunk", generate(F.when(~dropped, F.col(TEXT))))
        out = out.select(
            "*",
            F.col("_chunk.programs").alias(CHUNK_PROGRAMS),
            F.when(~dropped, F.col("_chunk.error")).alias(CHUNK_ERROR),
        ).drop("_chunk")
        tokenizer = self.engine.tokenizer_name if self.count_tokens else None
        return out.transform(ProgramApplier(self.policy, tokenizer))
