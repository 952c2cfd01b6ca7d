"""What each teacher says about one document, as calls on its original lines.

Pure Python, no Spark: `annotate` runs these per row inside its tasks.

- `rules_teacher`: the configured rule stages, in order. A drop becomes the
  doc label `drop_doc()`; line removals (C4's, a datatrove filter's) become
  `remove_lines` calls on the *original* line numbers even when an earlier
  rule already removed lines, because the refiner reads the original.
- `table_teacher`: the programs stored in a refined table (the released
  models' output, for instance): the doc program, and the chunk programs
  joined into calls on global line numbers (they are global already).

Either way the doc-level calls are then cut into the student's chunks by
`calls_for_chunk`, so the labels follow the student's own chunking.

    >>> from prox_spark.rules import QUALITY_RULES
    >>> text = "Home | News\\n" + "A line that ends well and says something useful.\\n" * 6
    >>> label = rules_teacher(text, [("c4_quality", QUALITY_RULES["c4_quality"], {})])
    >>> label.doc, [str(c) for c in label.calls][:1]
    ('keep_doc()', ['remove_lines(line_start=0, line_end=0)'])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prox_spark.distill.checks import chunk_lines
from prox_spark.program import (
    Call,
    DropDoc,
    Normalize,
    RemoveLines,
    parse_program,
    run_chunk_program,
)
from prox_spark.rules.result import as_rule_result, line_ranges
from prox_spark.stages.rule_stages import APPLY_ALL

DROP, KEEP, KEEP_CHUNK = "drop_doc()", "keep_doc()", "keep_chunk()"

Rule = tuple[str, Callable[..., Any], Mapping[str, Any]]


@dataclass(frozen=True)
class TeacherLabel:
    """A teacher's answer for one document.

    `doc` is `drop_doc()` or `keep_doc()` (None: no usable doc label, see
    `reason`); `calls` are chunk-level calls on the original line numbers
    (None: no usable chunk labels, see `reason`); `raw` is what the teacher
    said, kept in the SFT table for audit."""

    doc: str | None
    calls: tuple[Call, ...] | None
    raw: str
    reason: str | None = None


def rules_teacher(text: str, rules: Sequence[Rule]) -> TeacherLabel:
    """Run `rules` ((name, function, params), in order) on `text`.

    A rule that raises leaves no label (reason says which rule), since a
    label a rule could not decide would be a guess."""
    lines = text.split("\n")
    original = list(range(len(lines)))
    removed: list[int] = []
    normalizations: list[Normalize] = []
    raw: list[str] = []
    current = text
    for name, fn, params in rules:
        try:
            result = as_rule_result(fn(current, **params), name)
        except Exception as exc:
            return TeacherLabel(None, None, "\n".join(raw),
                                f"{name} failed: {type(exc).__name__}: {exc}"[:300])
        if result.dropped:
            raw.append(result.program)
            return TeacherLabel(DROP, (), "\n".join(raw))
        if not (result.removed or result.normalizations):
            continue
        raw.append(f"# {name}\n{result.program}")
        if any("\n" in n.source or "\n" in n.target for n in result.normalizations):
            return TeacherLabel(KEEP, None, "\n".join(raw),
                                f"{name} rewrote text across lines; no chunk label")
        gone = set()
        for call in result.removed:
            end = len(original) - 1 if call.end is None else min(call.end, len(original) - 1)
            gone.update(range(call.start, end + 1))
        removed.extend(original[i] for i in sorted(gone) if i < len(original))
        original = [o for i, o in enumerate(original) if i not in gone]
        normalizations.extend(result.normalizations)
        current = run_chunk_program(current, result.program, **APPLY_ALL).text
    calls = (*line_ranges(sorted(set(removed))), *normalizations)
    return TeacherLabel(KEEP, calls, "\n".join(raw) or KEEP)


def table_teacher(doc_program: str | None, chunk_programs: Sequence[str] | None) -> TeacherLabel:
    """The programs a refined table stored for one document as labels.

    A doc program with `drop_doc()` is a drop; any other doc program (or
    none, when only the chunk stage ran) a keep. Chunk programs are joined:
    their line numbers are global already."""
    raw_doc = doc_program or ""
    chunks = [p for p in (chunk_programs or []) if p is not None]
    raw = raw_doc + ("\n---\n" + "\n---\n".join(chunks) if chunks else "")
    if doc_program is not None:
        parsed = parse_program(doc_program)
        if any(isinstance(c, DropDoc) for c in parsed.calls):
            return TeacherLabel(DROP, (), raw)
    if chunk_programs is None:
        return TeacherLabel(KEEP, None, raw, "no chunk programs stored for this document")
    calls = tuple(c for p in chunks for c in parse_program(p).calls
                  if isinstance(c, RemoveLines | Normalize))
    return TeacherLabel(KEEP, calls, raw)


def calls_for_chunk(chunk: str, calls: Sequence[Call]) -> str:
    """The part of a document's calls that falls into one chunk, as the
    program a refiner should write for it (`keep_chunk()` when none).

    Ranges are clipped to the chunk; a `normalize` goes to every chunk whose
    lines contain its source (it replaces every occurrence)."""
    lines = chunk_lines(chunk)
    first, last = min(lines), max(lines)
    body = "\n".join(lines.values())
    out: list[str] = []
    for call in calls:
        if isinstance(call, RemoveLines):
            end = last if call.end is None else call.end
            lo, hi = max(call.start, first), min(end, last)
            if lo <= hi:
                out.append(str(RemoveLines(lo, hi)))
        elif isinstance(call, Normalize) and call.source and call.source in body:
            out.append(str(call))
    return "\n".join(out) if out else KEEP_CHUNK
