"""One document's final result from its document-level and chunk-level programs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from prox_spark.counts import word_count
from prox_spark.program.interpreter import NO_CALL, run_chunk_program, run_doc_program
from prox_spark.program.parser import parse_program
from prox_spark.program.policy import DEFAULT_CHUNK_POLICY, ChunkPolicy
from prox_spark.program.results import (
    DROPPED,
    EMPTY_TEXT_REASON,
    FAILED,
    KEPT,
    ProgramResult,
    failed_reason,
)

TRUNCATED = "the program was cut at the token limit (max_new_tokens)"


def _chunk_notes(chunk_programs: Sequence[str | None], truncated: Sequence[bool]
                 ) -> list[str]:
    """Errors of chunk programs that the joined program cannot show: an
    output with no call at all, and a program cut at the token limit (one
    error per cut program; a call left incomplete by the cut is that same
    error, so it is not counted again)."""
    notes = []
    for k, program in enumerate(chunk_programs):
        if not program or not program.strip():
            continue
        parsed = parse_program(program)
        if not parsed.calls and not parsed.errors:
            text = program.strip()
            notes.append(f"chunk {k}: {NO_CALL}: {text[:80]!r}")
        cut = k < len(truncated) and truncated[k]
        if cut and not any("cut off" in e.message for e in parsed.errors[-1:]):
            notes.append(f"chunk {k}: {TRUNCATED}")
    return notes


def refine_document(
    text: str | None,
    doc_program: str | None,
    chunk_programs: Sequence[str | None] | None,
    policy: ChunkPolicy = DEFAULT_CHUNK_POLICY,
    *,
    failure: str | None = None,
    doc_truncated: bool = False,
    chunk_truncated: Sequence[bool] = (),
) -> ProgramResult:
    """Apply the doc decision, then (if kept) the chunk programs joined by newlines.

    Missing programs mean "that pass did not run": no doc program keeps the
    document, no chunk programs leave it as it is. Null or blank text is
    dropped (reason "empty_text"). `failure` (a kind such as
    "engine_start") means a model pass could not refine the document: the
    result is "failed" with the text as it was and reason `failed:<kind>`.
    A program cut at the token limit (`doc_truncated`, or
    `chunk_truncated[k]` for chunk program k) counts one error.

    Example::

        refine_document(doc, "keep_doc()", ["remove_lines(0, 1)"]).status  # "edited"
    """
    if text is None or not text.strip():
        return ProgramResult("", DROPPED, 0, reason=EMPTY_TEXT_REASON)
    if failure is not None:
        words = word_count(text)
        return ProgramResult(text, FAILED, 0, 0, 0, words, words, (),
                             failed_reason(failure))
    doc = run_doc_program(text, doc_program) if doc_program is not None else None
    if doc is not None and doc_truncated:
        doc = replace(doc, errors=doc.errors + 1,
                      error_messages=(f"doc program: {TRUNCATED}", *doc.error_messages))
    doc_errors = doc.errors if doc is not None else 0
    if doc is not None and doc.status == DROPPED:
        return doc
    if chunk_programs is None:
        words = doc.words_before if doc is not None else word_count(text)
        messages = doc.error_messages if doc is not None else ()
        return ProgramResult(text, KEPT, doc_errors, 0, 0, words, words, messages)
    joined = "\n".join(p for p in chunk_programs if p)
    notes = _chunk_notes(chunk_programs, chunk_truncated)
    result = run_chunk_program(text, joined, policy=policy, extra_errors=notes)
    if not doc_errors:
        return result
    assert doc is not None
    return replace(result, errors=result.errors + doc_errors,
                   error_messages=doc.error_messages + result.error_messages)
