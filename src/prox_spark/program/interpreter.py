"""Apply parsed programs to documents, with the reference policy.

Document level: the first `drop_doc()` or `keep_doc()` decides; no valid
decision keeps the document.

Chunk level (the document's chunk programs joined by newlines):

1. line removals are checked against the original line count: a range that
   starts past the last line is an error and ignored, one that ends past it is
   an error and clipped;
2. with more than `max_errors` errors the program is ignored ("reverted");
3. otherwise the named original lines (0-based, ``text.split("\\n")``) are
   removed and every `normalize` is applied in program order;
4. the word-count rules of `ChunkPolicy` may then drop the document.

Normalizations run after the removals so that a replacement containing a
newline cannot shift the line numbers the program refers to; for
replacements within lines (all real outputs) the order makes no difference.
"""

from __future__ import annotations

from collections.abc import Sequence

from prox_spark.counts import word_count
from prox_spark.program.calls import DropDoc, KeepDoc, Normalize, RemoveLines
from prox_spark.program.parser import parse_program
from prox_spark.program.policy import DEFAULT_CHUNK_POLICY, ChunkPolicy
from prox_spark.program.results import (
    DOC_MODEL_REASON,
    DROPPED,
    KEPT,
    MIN_KEPT_RATIO_REASON,
    MIN_WORDS_REASON,
    ProgramResult,
    decide_status,
)

NO_CALL = "no recognizable call in the output"


def run_doc_program(text: str, program: str, *, keep_by_default: bool = True) -> ProgramResult:
    """Apply a document-level program: the first valid decision wins.

    An output with no call at all is one error (`NO_CALL`) and keeps the
    document (`keep_by_default`): it is recorded, never a silent keep. A
    dropped document's `reason` is "doc_model".

    Example::

        run_doc_program(doc, "drop_doc()").status   # "dropped"
    """
    text = text or ""
    parsed = parse_program(program)
    keep = keep_by_default
    for call in parsed.calls:
        if isinstance(call, DropDoc | KeepDoc):
            keep = isinstance(call, KeepDoc)
            break
    words = word_count(text)
    messages = tuple(str(e) for e in parsed.errors)
    if not parsed.calls and not parsed.errors:
        messages = (f"doc program: {NO_CALL}: {_excerpt(program)}",)
    if keep:
        return ProgramResult(text, KEPT, len(messages), 0, 0, words, words, messages)
    return ProgramResult("", DROPPED, len(messages), 0, 0, words, 0, messages,
                         DOC_MODEL_REASON)


def _excerpt(program: str | None, limit: int = 80) -> str:
    text = (program or "").strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    ranges.sort()
    merged = [ranges[0]]
    for start, end in ranges[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end + 1:
            if end > last_end:
                merged[-1] = (last_start, end)
        else:
            merged.append((start, end))
    return merged


def _remove(text: str, ranges: list[tuple[int, int]]) -> tuple[str, int]:
    lines = text.split("\n")
    kept: list[str] = []
    cursor = 0
    removed = 0
    for start, end in _merge(ranges):
        kept.extend(lines[cursor:start])
        removed += end - start + 1
        cursor = end + 1
    kept.extend(lines[cursor:])
    return "\n".join(kept), removed


def _policy(policy: ChunkPolicy | None, max_errors: int | None,
            min_kept_ratio: float | None, min_words: int | None) -> ChunkPolicy:
    """`policy` (default: the reference's) with the thresholds given one by one."""
    policy = policy or DEFAULT_CHUNK_POLICY
    if max_errors is None and min_kept_ratio is None and min_words is None:
        return policy
    return ChunkPolicy(
        policy.max_errors if max_errors is None else max_errors,
        policy.min_kept_ratio if min_kept_ratio is None else min_kept_ratio,
        policy.min_words if min_words is None else min_words,
    )


def _edits(calls: Sequence[object], last_line: int, messages: list[str]
           ) -> tuple[list[tuple[int, int]], list[Normalize]]:
    """The line ranges to remove (clipped to `last_line`) and the
    normalizations of a program's calls; a range past the end is noted in
    `messages` (each note counts as an error)."""
    ranges: list[tuple[int, int]] = []
    normalizations: list[Normalize] = []
    for call in calls:
        if isinstance(call, Normalize):
            normalizations.append(call)
        elif isinstance(call, RemoveLines):
            if call.end is None:
                ranges.append((0, last_line))
            elif call.start > last_line:
                messages.append(f"{call}: starts past the last line {last_line}; ignored")
            elif call.end > last_line:
                messages.append(f"{call}: ends past the last line {last_line}; clipped")
                ranges.append((call.start, last_line))
            else:
                ranges.append((call.start, call.end))
    return ranges, normalizations


def run_chunk_program(
    text: str,
    program: str,
    *,
    max_errors: int | None = None,
    min_kept_ratio: float | None = None,
    min_words: int | None = None,
    policy: ChunkPolicy | None = None,
    extra_errors: Sequence[str] = (),
) -> ProgramResult:
    """Apply a document's chunk-level programs (joined by newlines) to it.

    Thresholds default to the reference policy; pass them one by one or as a
    `ChunkPolicy`. `extra_errors` are errors found outside the program text
    (a program cut at the token limit, an output with no call); each counts
    towards `max_errors` like a parse error. A policy drop says which rule
    dropped it in `reason` ("chunk_policy:min_kept_ratio" or
    "chunk_policy:min_words").

    Example::

        run_chunk_program(doc, "remove_lines(line_start=0, line_end=2)").text
    """
    policy = _policy(policy, max_errors, min_kept_ratio, min_words)
    text = text or ""
    parsed = parse_program(program)
    messages = [*extra_errors, *(str(e) for e in parsed.errors)]
    ranges, normalizations = _edits(parsed.calls, text.count("\n"), messages)
    errors = len(messages)
    words_before = word_count(text)

    refined = text
    removed = applied = 0
    reverted = errors > policy.max_errors
    if not reverted:
        if ranges:
            refined, removed = _remove(refined, ranges)
        for norm in normalizations:
            replaced = refined.replace(norm.source, norm.target)
            if replaced != refined:
                applied += 1
                refined = replaced
    words_after = words_before if refined is text else word_count(refined)

    too_little_kept = (
        not reverted
        and words_before > 0
        and words_after / words_before <= policy.min_kept_ratio
    )
    if too_little_kept or words_after <= policy.min_words:
        reason = MIN_KEPT_RATIO_REASON if too_little_kept else MIN_WORDS_REASON
        return ProgramResult(
            "", DROPPED, errors, removed, applied, words_before, 0, tuple(messages), reason
        )
    status = decide_status(dropped=False, reverted=reverted, changed=refined != text)
    return ProgramResult(
        refined, status, errors, removed, applied, words_before, words_after, tuple(messages)
    )
