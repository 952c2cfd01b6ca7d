"""Apply stored programs with the interpreter, on Spark, with no model at all."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from prox_spark.program import (
    DEFAULT_CHUNK_POLICY,
    DROPPED,
    KEPT,
    ChunkPolicy,
    refine_document,
    run_doc_program,
)
from prox_spark.schema import APPLY_RESULT
from prox_spark.stages.base import (
    CHUNK_ERROR,
    CHUNK_PROGRAMS,
    DOC_ERROR,
    DOC_PROGRAM,
    REFINED_TEXT,
    RESULT_FIELDS,
    TEXT,
    Stage,
)


def _as_list(value: object) -> list[str] | None:
    if value is None:
        return None
    return [str(v) for v in value if v is not None]  # type: ignore[attr-defined]


def apply_batch(
    texts: pd.Series,
    doc_programs: pd.Series,
    chunk_programs: pd.Series,
    policy: ChunkPolicy,
    tokenizer: str | None,
) -> pd.DataFrame:
    """Interpreter results for one Arrow batch (plain pandas, testable without Spark)."""
    rows = []
    for text, doc, chunks in zip(texts, doc_programs, chunk_programs, strict=True):
        text = text if isinstance(text, str) else None
        doc = doc if isinstance(doc, str) else None
        r = refine_document(text, doc, _as_list(chunks), policy)
        rows.append(
            (None if r.status == DROPPED else r.text, r.status, r.errors,
             list(r.error_messages) or None, r.lines_removed, r.normalizations,
             r.words_before, r.words_after)
        )
    out = pd.DataFrame(rows, columns=["text", *list(RESULT_FIELDS)[:-2]])
    out["tokens_before"] = None
    out["tokens_after"] = None
    if tokenizer is not None and len(out):
        from prox_spark.engine import get_tokenizer
        from prox_spark.prompts import token_counts

        tok = get_tokenizer(tokenizer)
        before = [t if isinstance(t, str) else "" for t in texts]
        after = [t if isinstance(t, str) else "" for t in out["text"]]
        out["tokens_before"] = token_counts(before, tok)
        out["tokens_after"] = token_counts(after, tok)
    return out


@dataclass
class ProgramApplier(Stage):
    """Re-run the interpreter over stored `doc_program` / `chunk_programs`.

    Needs the text the model stages saw as `text` (the source text, or, when
    line-editing rule stages such as C4 ran before the models, the text after
    them: replay their `rule_edits` programs first); writes `refined_text`
    (null when dropped) and the result columns. Loads no model: use it to try
    another policy on a refined table joined back to its source. `tokenizer`
    (a model directory or id) only adds token counts.

    Example::

        df.transform(ProgramApplier(ChunkPolicy(max_errors=0)))
    """

    policy: ChunkPolicy = field(default_factory=lambda: DEFAULT_CHUNK_POLICY)
    tokenizer: str | None = None

    def transform(self, df):  # type: ignore[no-untyped-def]
        from pyspark.sql import functions as F
        from pyspark.sql.functions import pandas_udf

        policy, tokenizer = self.policy, self.tokenizer

        @pandas_udf(APPLY_RESULT)  # type: ignore[call-overload]
        def prox_apply(
            batches: Iterator[tuple[pd.Series, pd.Series, pd.Series]],
        ) -> Iterator[pd.DataFrame]:
            for texts, docs, chunks in batches:
                yield apply_batch(texts, docs, chunks, policy, tokenizer)

        for name, kind in ((DOC_PROGRAM, "string"), (CHUNK_PROGRAMS, "array<string>"),
                           (DOC_ERROR, "string"), (CHUNK_ERROR, "string")):
            if name not in df.columns:
                df = df.withColumn(name, F.lit(None).cast(kind))
        applied = df.withColumn(
            "_applied", prox_apply(F.col(TEXT), F.col(DOC_PROGRAM), F.col(CHUNK_PROGRAMS))
        )
        existing = [c for c in (REFINED_TEXT, *RESULT_FIELDS) if c in df.columns]
        return applied.drop(*existing).select(
            "*",
            F.col("_applied.text").alias(REFINED_TEXT),
            *[F.col(f"_applied.{c}").alias(c) for c in RESULT_FIELDS],
        ).drop("_applied")


def doc_statuses(texts: Sequence[Any], programs: Sequence[Any]) -> list[str]:
    """"kept" or "dropped" per row from its document-level program."""
    out = []
    for text, program in zip(texts, programs, strict=True):
        if not isinstance(text, str) or not text.strip():
            out.append(DROPPED)
        elif not isinstance(program, str):
            out.append(KEPT)
        else:
            out.append(run_doc_program(text, program).status)
    return out
