"""How closely a student refiner follows its teacher, the way ProX reports it.

Pure Python. The paper's validation figures for the 0.3B refiners are F1
82.6 (doc) and 75.2 (chunk) against the teacher's held-out labels
(`prox-programs.md` section 5); `PAPER_DOC_F1` and `PAPER_CHUNK_F1` hold them
for comparison. Student outputs are read exactly as production reads them:
`parse_program`, and for the doc decision `run_doc_program` (the first
decision wins; none keeps the document).

Every precision, recall and F1 here is micro-averaged, and by convention a
score with no positives on either side (nothing to find, nothing found) is
1.0, while found-nothing-of-something or found-something-of-nothing is 0.0::

    >>> doc_scores([("drop_doc()", "drop_doc()"), ("keep_doc()", "drop_doc()")]).precision
    0.5
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prox_spark.distill.checks import chunk_lines
from prox_spark.program import (
    DROPPED,
    Call,
    DropDoc,
    KeepDoc,
    Normalize,
    RemoveLines,
    parse_program,
    run_doc_program,
)

PAPER_DOC_F1 = 0.826
PAPER_CHUNK_F1 = 0.752


@dataclass(frozen=True)
class DocScores:
    """Doc level, positive class `drop_doc`: precision, recall, F1 of the
    student's drops against the teacher's; `accuracy` of keep/drop;
    `parse_rate` the share of student outputs holding a decision and no
    refused call; `n` examples."""

    n: int
    precision: float
    recall: float
    f1: float
    parse_rate: float
    accuracy: float


@dataclass(frozen=True)
class ChunkScores:
    """Chunk level: precision, recall, F1 of the removed lines (document line
    numbers, clipped to the chunk); F1 of the normalized source strings;
    `exact_match` the share of outputs whose calls equal the teacher's;
    `parse_rate` the share of outputs with at least one call and no refused
    call; `n` examples."""

    n: int
    line_precision: float
    line_recall: float
    line_f1: float
    normalize_f1: float
    exact_match: float
    parse_rate: float


def _prf(hits: int, found: int, wanted: int) -> tuple[float, float, float]:
    """(precision, recall, F1) from true positives, predicted and actual positives."""
    if found == 0 and wanted == 0:
        return 1.0, 1.0, 1.0
    precision = hits / found if found else 0.0
    recall = hits / wanted if wanted else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _drops(program: str | None) -> bool:
    # A one-word placeholder: the decision does not depend on the text.
    return run_doc_program("x", program or "").status == DROPPED


def _doc_parses(program: str | None) -> bool:
    parsed = parse_program(program)
    return not parsed.errors and any(isinstance(c, DropDoc | KeepDoc) for c in parsed.calls)


def doc_scores(pairs: Iterable[tuple[str, str | None]]) -> DocScores:
    """Score (teacher completion, student output) pairs of doc examples.

    The positive class is `drop_doc`. A student output that is None (no
    generation) or holds no decision counts as keep, as the interpreter
    treats it, and against `parse_rate`. Raises ValueError on no pairs.
    """
    n = hits = found = wanted = agree = parsed = 0
    for teacher, student in pairs:
        n += 1
        truth, guess = _drops(teacher), _drops(student)
        hits += truth and guess
        found += guess
        wanted += truth
        agree += truth == guess
        parsed += _doc_parses(student)
    if n == 0:
        raise ValueError("doc_scores: no examples to score")
    precision, recall, f1 = _prf(hits, found, wanted)
    return DocScores(n, precision, recall, f1, parsed / n, agree / n)


def _chunk_range(chunk: str) -> tuple[int, int]:
    lines = chunk_lines(chunk)
    return next(iter(lines)), next(reversed(lines))


def _removed(calls: Iterable[Call], first: int, last: int) -> set[int]:
    lines: set[int] = set()
    for call in calls:
        if isinstance(call, RemoveLines):
            end = last if call.end is None else min(call.end, last)
            lines.update(range(max(call.start, first), end + 1))
    return lines


def _sources(calls: Iterable[Call]) -> set[str]:
    return {c.source for c in calls if isinstance(c, Normalize)}


def chunk_scores(triples: Iterable[tuple[str, str, str | None]]) -> ChunkScores:
    """Score (numbered chunk, teacher completion, student output) triples.

    Removed lines are sets of document line numbers per example, clipped to
    the chunk's lines (``remove_lines(all=True)`` is every line of it);
    normalize sources are sets of strings per example; both micro-averaged
    over all examples. `exact_match`: the student's parsed calls equal the
    teacher's, in order, and none was refused. An output that is None or
    unparsable removes and normalizes nothing. Raises ValueError on no
    triples or a chunk that is not line-numbered.
    """
    n = exact = parsed_ok = 0
    line_hits = line_found = line_wanted = 0
    norm_hits = norm_found = norm_wanted = 0
    for chunk, teacher, student in triples:
        n += 1
        first, last = _chunk_range(chunk)
        truth, guess = parse_program(teacher), parse_program(student)
        t_lines, g_lines = _removed(truth.calls, first, last), _removed(guess.calls, first, last)
        line_hits += len(t_lines & g_lines)
        line_found += len(g_lines)
        line_wanted += len(t_lines)
        t_norm, g_norm = _sources(truth.calls), _sources(guess.calls)
        norm_hits += len(t_norm & g_norm)
        norm_found += len(g_norm)
        norm_wanted += len(t_norm)
        ok = bool(guess.calls) and not guess.errors
        parsed_ok += ok
        exact += ok and guess.calls == truth.calls
    if n == 0:
        raise ValueError("chunk_scores: no examples to score")
    precision, recall, f1 = _prf(line_hits, line_found, line_wanted)
    normalize_f1 = _prf(norm_hits, norm_found, norm_wanted)[2]
    return ChunkScores(n, precision, recall, f1, normalize_f1, exact / n, parsed_ok / n)
