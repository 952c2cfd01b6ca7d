"""One document's final result from its document-level and chunk-level programs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from prox_spark.program.interpreter import run_chunk_program, run_doc_program
from prox_spark.program.policy import DEFAULT_CHUNK_POLICY, ChunkPolicy
from prox_spark.program.results import DROPPED, KEPT, ProgramResult


def refine_document(
    text: str | None,
    doc_program: str | None,
    chunk_programs: Sequence[str | None] | None,
    policy: ChunkPolicy = DEFAULT_CHUNK_POLICY,
) -> ProgramResult:
    """Apply the doc decision, then (if kept) the chunk programs joined by newlines.

    Missing programs mean "that pass did not run": no doc program keeps the
    document, no chunk programs leave it as it is. Null or blank text is dropped.

    Example::

        refine_document(doc, "keep_doc()", ["remove_lines(0, 1)"]).status  # "edited"
    """
    if text is None or not text.strip():
        return ProgramResult("", DROPPED, 0)
    doc = run_doc_program(text, doc_program) if doc_program is not None else None
    doc_errors = doc.errors if doc is not None else 0
    if doc is not None and doc.status == DROPPED:
        return doc
    if chunk_programs is None:
        words = doc.words_before if doc is not None else len(text.split())
        return ProgramResult(text, KEPT, doc_errors, 0, 0, words, words)
    joined = "\n".join(p for p in chunk_programs if p)
    result = run_chunk_program(text, joined, policy=policy)
    if not doc_errors:
        return result
    return replace(result, errors=result.errors + doc_errors,
                   error_messages=doc.error_messages + result.error_messages)
