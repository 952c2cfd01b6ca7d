"""A document's original text as HTML with what its programs did marked:
removed lines struck through, normalized strings as the old text struck
through followed by the new text inserted, a dropped
document struck through whole with its reason. Plain Python.

    >>> html = highlight("Home | About\\nA real line.", None, ["remove_lines(0, 0)"], "edited")
    >>> '<del class="removed"' in html
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from prox_spark.program import DROPPED, REVERTED, Normalize, RemoveLines, parse_program


def _removed_lines(chunk_programs: Sequence[str | None] | None, lines: int
           ) -> tuple[set[int], list[tuple[str, str]]]:
    removed: set[int] = set()
    sources: list[tuple[str, str]] = []
    for program in chunk_programs or ():
        for call in parse_program(program).calls:
            if isinstance(call, RemoveLines):
                end = lines - 1 if call.end is None else call.end
                removed.update(range(call.start, end + 1))
            elif isinstance(call, Normalize) and call.source:
                sources.append((call.source, call.target))
    return removed, sources


def _highlight_line(line: str, sources: list[tuple[str, str]]) -> str:
    """`line` escaped, with every occurrence of a normalized string shown as
    the old text struck through and the new text (if any) inserted."""
    out, i = [], 0
    while i < len(line):
        hit = next(((s, t) for s, t in sources if line.startswith(s, i)), None)
        if hit is None:
            out.append(escape(line[i]))
            i += 1
        else:
            old, new = hit
            out.append(f'<del class="normalized">{escape(old)}</del>')
            if new:
                out.append(f'<ins class="normalized">{escape(new)}</ins>')
            i += len(old)
    return "".join(out)


def highlight(original: str | None, doc_program: str | None,
              chunk_programs: Sequence[str | None] | None, status: str | None,
              reason: str | None = None, rule_programs: Sequence[str] = ()) -> str:
    """The original text as a `<pre class="doc">` with the edits marked.

    Line numbers of later programs refer to the text the earlier ones left;
    they are marked on the original, which is exact when at most one stage
    edited lines before the model stages (the common C4-then-ProX set-up)."""
    if original is None:
        return '<pre class="doc missing">(original text not available)</pre>'
    if status == DROPPED and reason:
        return (f'<pre class="doc"><del class="dropped" title="{escape(reason)}">'
                f"{escape(original)}</del></pre>")
    programs = [*rule_programs, *([] if status == REVERTED else chunk_programs or [])]
    removed, sources = _removed_lines(programs, original.count("\n") + 1)
    if status == DROPPED and not removed and not sources:
        return f'<pre class="doc"><del class="dropped">{escape(original)}</del></pre>'
    lines = []
    for number, line in enumerate(original.split("\n")):
        if number in removed:
            lines.append(f'<del class="removed" data-line="{number}">{escape(line)}</del>')
        else:
            lines.append(_highlight_line(line, sources))
    return '<pre class="doc">' + "\n".join(lines) + "</pre>"
