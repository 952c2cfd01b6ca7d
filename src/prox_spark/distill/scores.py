"""How closely a student refiner follows its teacher, read as a run applies it.

Pure Python. The paper's validation figures for the 0.3B refiners are F1
82.6 (doc, the `drop_doc` class) and 75.2 (chunk, removed lines) against the
teacher's held-out labels (`prox-programs.md` section 5); `PAPER_DOC_F1` and
`PAPER_CHUNK_F1` hold them for comparison.

Student outputs are read by the project's own interpreter, as a run reads
them (`refine_document`): the first doc decision wins, none keeps the
document; a chunk output with more errors than `policy.max_errors` (refused
calls, a cut at the token limit, no call at all) is ignored and so edits
nothing, whatever calls it holds.

Precision, recall and F1 are micro-averaged. A measure with nothing to
measure (precision with nothing found, recall with nothing to find, F1 with
neither) is None, shown as "n/a", never 1 or 0::

    >>> doc_scores([("drop_doc()", "drop_doc()"), ("keep_doc()", "drop_doc()")]).precision
    0.5
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from prox_spark.distill.checks import chunk_lines
from prox_spark.program import (
    DEFAULT_CHUNK_POLICY,
    DROPPED,
    REVERTED,
    Call,
    ChunkPolicy,
    DropDoc,
    KeepDoc,
    Normalize,
    RemoveLines,
    parse_program,
    refine_document,
)

PAPER_DOC_F1 = 0.826
PAPER_CHUNK_F1 = 0.752
DROP = "drop_doc()"
KEEP = "keep_doc()"
REMOVE_NOTHING = "keep_chunk()"
REMOVE_EVERYTHING = "remove_lines(all=True)"
NO_OUTPUT = "no output (generation failed or the prompt did not fit)"
NO_DECISION = "no drop_doc() or keep_doc() call"
NO_CALL = "no call"
# Lines past the chunk a student may name before the placeholder document
# stops growing (a run knows the document; evaluation knows only the chunk).
_MARGIN = 10_000
_SHOWN_CHARS = 160


@dataclass(frozen=True)
class Failures:
    """Why outputs were not read cleanly: `kinds` (grouped error message,
    count), commonest first, and up to two `examples` (shortened outputs)."""

    kinds: tuple[tuple[str, int], ...] = ()
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class DocScores:
    """Doc level. `precision`, `recall`, `f1` are of the `drop_doc` class
    (the paper's measure), `keep_*` of the `keep_doc` class, each None when
    there is nothing to measure; `drops` / `keeps` the teacher's counts
    (support); `accuracy` of keep/drop; `parse_rate` the share of outputs
    holding a decision and no error; `truncated` the number of outputs cut
    at the token limit; `n` examples."""

    n: int
    precision: float | None
    recall: float | None
    f1: float | None
    keep_precision: float | None
    keep_recall: float | None
    keep_f1: float | None
    drops: int
    keeps: int
    accuracy: float
    parse_rate: float
    truncated: int = 0
    failures: Failures = field(default_factory=Failures)


@dataclass(frozen=True)
class ChunkScores:
    """Chunk level, each output as a run applies it. Removed lines (document
    line numbers clipped to the chunk) and normalized source strings:
    precision, recall, F1 (None with nothing to measure); `lines_removed` /
    `normalizations` the teacher's counts (support); `exact_match` the share
    of outputs applied with calls equal to the teacher's; `parse_rate` the
    share with a call and no error; `ignored` outputs the run would not apply
    (more than `policy.max_errors` errors); `truncated` outputs cut at the
    token limit; `n` examples."""

    n: int
    line_precision: float | None
    line_recall: float | None
    line_f1: float | None
    normalize_precision: float | None
    normalize_recall: float | None
    normalize_f1: float | None
    lines_removed: int
    normalizations: int
    exact_match: float
    parse_rate: float
    ignored: int = 0
    truncated: int = 0
    failures: Failures = field(default_factory=Failures)


@dataclass
class _Tally:
    hits: int = 0
    found: int = 0
    wanted: int = 0

    def add(self, truth: set[int] | set[str], guess: set[int] | set[str]) -> None:
        self.hits += len(truth & guess)  # type: ignore[operator]
        self.found += len(guess)
        self.wanted += len(truth)

    def prf(self) -> tuple[float | None, float | None, float | None]:
        """(precision, recall, F1); None where the ratio has nothing to count."""
        precision = self.hits / self.found if self.found else None
        recall = self.hits / self.wanted if self.wanted else None
        total = self.found + self.wanted
        return precision, recall, (2 * self.hits / total if total else None)


def error_kind(message: str) -> str:
    """An interpreter error message without its particulars (where, which
    chunk, quoted text, numbers), so that alike errors group together."""
    message = re.sub(r"^(chunk \d+|doc program): ", "", message)
    message = re.sub(r" at offset \d+", "", message)
    message = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "'…'", message)
    return re.sub(r"\d+", "N", message)


def shorten(output: str | None, limit: int = _SHOWN_CHARS) -> str:
    """One line of at most about `limit` characters showing an output."""
    if output is None:
        return "(no output)"
    text = output.strip().replace("\n", "\\n")
    return text if len(text) <= limit else f"{text[:limit]}… ({len(output)} characters)"


def _failures(failed: Sequence[tuple[str | None, Sequence[str]]], top: int = 3) -> Failures:
    counts = Counter(error_kind(m) for _, messages in failed for m in messages)
    return Failures(tuple(counts.most_common(top)), tuple(shorten(o) for o, _ in failed[:2]))


def _doc_reading(output: str | None, cut: bool) -> tuple[bool, tuple[str, ...]]:
    """(drops, errors) of a doc output as a run reads it."""
    if output is None:
        return False, (NO_OUTPUT,)
    # A one-word placeholder: the decision does not depend on the text.
    result = refine_document("x", output, None, doc_truncated=cut)
    errors = result.error_messages
    if not errors and not any(isinstance(c, DropDoc | KeepDoc)
                              for c in parse_program(output).calls):
        errors = (NO_DECISION,)
    return result.status == DROPPED, errors


def doc_scores(pairs: Iterable[tuple[str, str | None]], *, cut: Sequence[bool] = ()
               ) -> DocScores:
    """Score (teacher completion, student output) pairs of doc examples;
    `cut[k]` says output k was cut at the token limit (an error, as in a run).

    An output that is None (no generation) or holds no decision counts as
    keep, as the interpreter treats it, and against `parse_rate`. Raises
    ValueError on no pairs.
    """
    drop, keep = _Tally(), _Tally()
    n = agree = truncated = 0
    failed: list[tuple[str | None, Sequence[str]]] = []
    for k, (teacher, student) in enumerate(pairs):
        n += 1
        was_cut = k < len(cut) and cut[k]
        truncated += was_cut
        truth = _doc_reading(teacher, False)[0]
        guess, errors = _doc_reading(student, was_cut)
        drop.add({0} if truth else set(), {0} if guess else set())
        keep.add(set() if truth else {0}, set() if guess else {0})
        agree += truth == guess
        if errors:
            failed.append((student, errors))
    if n == 0:
        raise ValueError("doc_scores: no examples to score")
    return DocScores(n, *drop.prf(), *keep.prf(), drop.wanted, keep.wanted, agree / n,
                     (n - len(failed)) / n, truncated, _failures(failed))


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


def applied_calls(output: str | None, last: int, policy: ChunkPolicy = DEFAULT_CHUNK_POLICY,
                  cut: bool = False) -> tuple[tuple[Call, ...], tuple[str, ...]]:
    """(the calls a run applies, errors) of one chunk output whose chunk
    ends at document line `last`: no call when the run ignores the output.

    The run's own path decides (`refine_document` with the chunk output as
    the document's one chunk program) on a placeholder document long enough
    for every line the output names, so errors that depend on the unknown
    document (a range past its end) are not counted; the word-count rules
    (a document question) are left out.
    """
    if output is None:
        return (), (NO_OUTPUT,)
    calls = parse_program(output).calls
    named = [n for c in calls if isinstance(c, RemoveLines) for n in (c.start, c.end)
             if n is not None]
    top = min(max([last, *named]), last + _MARGIN)
    lenient = replace(policy, min_kept_ratio=0.0, min_words=0)
    result = refine_document("\n".join(["w"] * (top + 1)), None, [output], lenient,
                             chunk_truncated=[cut])
    errors = result.error_messages or (() if calls else (NO_CALL,))
    return (() if result.status == REVERTED else calls), errors


def chunk_scores(triples: Iterable[tuple[str, str, str | None]], *, cut: Sequence[bool] = (),
                 policy: ChunkPolicy = DEFAULT_CHUNK_POLICY) -> ChunkScores:
    """Score (numbered chunk, teacher completion, student output) triples;
    `cut[k]` says output k was cut at the token limit.

    Each student output counts as the run under `policy` applies it (see
    `applied_calls`): an ignored output removes and normalizes nothing.
    Removed lines are sets of document line numbers per example, clipped to
    the chunk's lines (``remove_lines(all=True)`` is every line of it);
    normalize sources are sets of strings per example; both micro-averaged.
    Raises ValueError on no triples or a chunk that is not line-numbered.
    """
    lines, norms = _Tally(), _Tally()
    n = exact = ignored = truncated = 0
    failed: list[tuple[str | None, Sequence[str]]] = []
    for k, (chunk, teacher, student) in enumerate(triples):
        n += 1
        first, last = _chunk_range(chunk)
        was_cut = k < len(cut) and cut[k]
        truncated += was_cut
        truth = parse_program(teacher).calls
        guess, errors = applied_calls(student, last, policy, was_cut)
        ignored += student is not None and not guess and bool(parse_program(student).calls)
        lines.add(_removed(truth, first, last), _removed(guess, first, last))
        norms.add(_sources(truth), _sources(guess))
        exact += not errors and guess == truth
        if errors:
            failed.append((student, errors))
    if n == 0:
        raise ValueError("chunk_scores: no examples to score")
    return ChunkScores(n, *lines.prf(), *norms.prf(), lines.wanted, norms.wanted, exact / n,
                       (n - len(failed)) / n, ignored, truncated, _failures(failed))


def majority_decision(teachers: Iterable[str]) -> str:
    """The commoner of the teacher's decisions (`drop_doc()` or `keep_doc()`,
    keep on a tie): the answer of the trivial doc student."""
    drops = keeps = 0
    for teacher in teachers:
        dropped = _doc_reading(teacher, False)[0]
        drops += dropped
        keeps += not dropped
    return DROP if drops > keeps else KEEP


def doc_beats(student: DocScores, trivial: DocScores) -> bool:
    """The student's F1 is at least the trivial student's on each class the
    teacher labelled, and above it on one (answering like the trivial
    student never beats it)."""
    pairs = [(s, t) for s, t, support in ((student.f1, trivial.f1, student.drops),
                                          (student.keep_f1, trivial.keep_f1, student.keeps))
             if support]
    return bool(pairs) and all((s or 0.0) >= (t or 0.0) for s, t in pairs) and \
        any((s or 0.0) > (t or 0.0) for s, t in pairs)


def chunk_beats(student: ChunkScores, *trivial: ChunkScores) -> bool:
    """The student's removed-lines F1 is above every trivial student's; never
    when the teacher removed no line (nothing to measure)."""
    if not student.lines_removed or student.line_f1 is None:
        return False
    return all(student.line_f1 > (t.line_f1 or 0.0) for t in trivial)
