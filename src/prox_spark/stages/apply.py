"""Apply stored programs with the interpreter, on Spark, with no model at all."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from prox_spark.generation.counting import token_counts_with
from prox_spark.program import (
    CORPUS_STATUSES,
    DEFAULT_CHUNK_POLICY,
    DROPPED,
    FAILED,
    KEPT,
    ChunkPolicy,
    refine_document,
    run_doc_program,
)
from prox_spark.schema import (
    APPLY_RESULT,
    CHUNK_ERROR,
    CHUNK_FAILURE,
    CHUNK_PROGRAMS,
    CHUNK_TRUNCATED,
    DOC_ERROR,
    DOC_FAILURE,
    DOC_PROGRAM,
    DOC_TRUNCATED,
    REFINED_TEXT,
    RESULT_FIELDS,
    TEXT,
)
from prox_spark.stages.base import Stage

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# What a release bumps when the interpreter's results change for the same
# programs and policy (part of the `apply` stage fingerprint).
OUTPUT_VERSION = 1


def _as_list(value: object) -> list[str] | None:
    if value is None:
        return None
    return [str(v) for v in value if v is not None]  # type: ignore[attr-defined]


def _flag(value: object) -> bool:
    # Arrow boolean columns reach pandas as numpy.bool_, which is not a bool.
    return isinstance(value, bool | int | np.bool_) and bool(value)


def _flags(value: object) -> list[bool]:
    return [] if value is None else [_flag(v) for v in value]  # type: ignore[attr-defined]


def _failure(doc: object, chunk: object) -> str | None:
    for kind in (doc, chunk):
        if isinstance(kind, str) and kind:
            return kind
    return None


def _column(values: pd.Series | None, n: int) -> list[Any]:
    return [None] * n if values is None else list(values)


def apply_batch(
    texts: pd.Series,
    doc_programs: pd.Series,
    chunk_programs: pd.Series,
    policy: ChunkPolicy,
    tokenizer: str | None,
    *,
    failures: tuple[pd.Series | None, pd.Series | None] = (None, None),
    truncated: tuple[pd.Series | None, pd.Series | None] = (None, None),
) -> pd.DataFrame:
    """Interpreter results for one Arrow batch (plain pandas, testable without Spark).

    `failures` are the doc and chunk passes' failure kinds per row (a row
    with one is "failed", its text as it was); `truncated` their flags of
    programs cut at the token limit (a bool per row for the doc pass, a
    list per row for the chunk pass), each counted as one program error.
    Returns `text` (null when dropped) and the `RESULT_FIELDS`;
    token counts use the engine's encoding of `tokenizer`, counting only
    rows in the corpus after.
    """
    n = len(texts)
    doc_failures, chunk_failures = (_column(f, n) for f in failures)
    doc_cut, chunk_cut = (_column(t, n) for t in truncated)
    rows = []
    for k, (text, doc, chunks) in enumerate(zip(texts, doc_programs, chunk_programs,
                                                 strict=True)):
        text = text if isinstance(text, str) else None
        doc = doc if isinstance(doc, str) else None
        cut_chunks = _flags(chunk_cut[k])
        r = refine_document(text, doc, _as_list(chunks), policy,
                            failure=_failure(doc_failures[k], chunk_failures[k]),
                            doc_truncated=_flag(doc_cut[k]), chunk_truncated=cut_chunks)
        in_corpus = r.status in CORPUS_STATUSES
        rows.append(
            (None if r.status == DROPPED else r.text, r.status, r.reason,
             _flag(doc_cut[k]) or any(cut_chunks), r.errors,
             list(r.error_messages) or None, r.lines_removed, r.normalizations,
             r.words_before, r.words_after if in_corpus else 0)
        )
    out = pd.DataFrame(rows, columns=["text", *list(RESULT_FIELDS)[:-2]])
    before = [t if isinstance(t, str) else "" for t in texts]
    after = [t if isinstance(t, str) and s in CORPUS_STATUSES else ""
             for t, s in zip(out["text"], out["status"], strict=True)]
    counted = token_counts_with(tokenizer, before)
    out["tokens_before"] = counted
    out["tokens_after"] = None if counted is None else _counts_after(tokenizer, before, after,
                                                                      counted)
    return out


def _counts_after(tokenizer: str, before: list[str], after: list[str],
                  counted: list[int]) -> list[int]:
    """Tokens of each text after, counting only the texts a program changed
    (an unchanged text has its count before; an empty one has none)."""
    changed = [k for k, (b, a) in enumerate(zip(before, after, strict=True)) if a and a != b]
    recounted = dict(zip(changed, token_counts_with(tokenizer, [after[k] for k in changed])
                         or [], strict=True))
    return [recounted.get(k, c if a else 0)
            for k, (a, c) in enumerate(zip(after, counted, strict=True))]


@dataclass
class ProgramApplier(Stage):
    """Re-run the interpreter over stored `doc_program` / `chunk_programs`.

    Needs the text the model stages saw as `text` (the source text, or, when
    line-editing rule stages such as C4 ran before the models, the text after
    them: replay their `rule_edits` programs first); writes `refined_text`
    (null when dropped or failed) and the result columns: `status`,
    `drop_reason`, `truncated`, errors, words and tokens. Rows a model pass
    could not refine (`doc_failure` / `chunk_failure`) come out "failed".
    Loads no model: use it to try
    another policy on a refined table joined back to its source. `tokenizer`
    (a model directory or id) only adds token counts.

    Example::

        df.transform(ProgramApplier(ChunkPolicy(max_errors=0)))
    """

    policy: ChunkPolicy = field(default_factory=lambda: DEFAULT_CHUNK_POLICY)
    tokenizer: str | None = None

    needs: ClassVar[tuple[str, ...]] = (TEXT,)
    adds: ClassVar[tuple[str, ...]] = (REFINED_TEXT, *RESULT_FIELDS)

    def _transform(self, df: DataFrame) -> DataFrame:
        from pyspark.sql import functions as F
        from pyspark.sql.functions import pandas_udf

        policy, tokenizer = self.policy, self.tokenizer

        @pandas_udf(APPLY_RESULT)  # type: ignore[call-overload]
        def prox_apply(
            batches: Iterator[tuple[pd.Series, ...]],
        ) -> Iterator[pd.DataFrame]:
            for texts, docs, chunks, doc_fail, chunk_fail, doc_cut, chunk_cut in batches:
                yield apply_batch(texts, docs, chunks, policy, tokenizer,
                                  failures=(doc_fail, chunk_fail),
                                  truncated=(doc_cut, chunk_cut))

        inputs = {DOC_PROGRAM: "string", CHUNK_PROGRAMS: "array<string>",
                  DOC_ERROR: "string", CHUNK_ERROR: "string", DOC_FAILURE: "string",
                  CHUNK_FAILURE: "string", DOC_TRUNCATED: "boolean",
                  CHUNK_TRUNCATED: "array<boolean>"}
        for name, kind in inputs.items():
            if name not in df.columns:
                df = df.withColumn(name, F.lit(None).cast(kind))
        applied = df.withColumn(
            "_applied", prox_apply(F.col(TEXT), F.col(DOC_PROGRAM), F.col(CHUNK_PROGRAMS),
                                   F.col(DOC_FAILURE), F.col(CHUNK_FAILURE),
                                   F.col(DOC_TRUNCATED), F.col(CHUNK_TRUNCATED))
        )
        existing = [c for c in (REFINED_TEXT, *RESULT_FIELDS) if c in df.columns]
        return applied.drop(*existing).select(
            "*",
            F.col("_applied.text").alias(REFINED_TEXT),
            *[F.col(f"_applied.{c}").alias(c) for c in RESULT_FIELDS],
        ).drop("_applied")


def doc_statuses(texts: Sequence[Any], programs: Sequence[Any],
                 failures: Sequence[str | None] | None = None) -> list[str]:
    """"kept" or "dropped" per row from its document-level program;
    "failed" where `failures` names why the model gave no answer."""
    out = []
    failures = failures if failures is not None else [None] * len(texts)
    for text, program, failure in zip(texts, programs, failures, strict=True):
        if failure is not None and isinstance(text, str) and text.strip():
            out.append(FAILED)
        elif not isinstance(text, str) or not text.strip():
            out.append(DROPPED)
        elif not isinstance(program, str):
            out.append(KEPT)
        else:
            out.append(run_doc_program(text, program).status)
    return out
