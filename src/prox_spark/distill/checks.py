"""Execute-to-check: a teacher's chunk answer becomes a label only if it runs.

Pure Python, no Spark; `annotate` calls these once per chunk, so nothing here
raises on a bad answer: the result is a `ChunkLabel` whose `reason` says why
the example was discarded. Parsing is `prox_spark.program.parse_program`'s
and execution the interpreter's (`run_chunk_program`), so a label means what
it will mean in production. The checks follow ProX's recipe (paper section 4:
each call is checked for syntax and for doing what it claims) and, for
rewrites, RefineX's deletion-only derivation::

    >>> chunk = "[037]Home | Blog\\n[038]Bread needs time. Read more\\n[039]Knead it well."
    >>> derive_rewrite(chunk, "Bread needs time.\\nKnead it well.").program
    'remove_lines(line_start=37, line_end=37)\\nnormalize(source_str=" Read more", target_str="")'
    >>> check_calls(chunk, "remove_lines(line_start=1, line_end=2)").reason
    'no valid call: line range outside the chunk [037]-[039]'
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from prox_spark.generation.prompts import PROMPT_HEAD, PROMPT_TAIL
from prox_spark.program import (
    DEFAULT_CHUNK_POLICY,
    DROPPED,
    Call,
    ChunkPolicy,
    DropDoc,
    KeepChunk,
    KeepDoc,
    Normalize,
    RemoveLines,
    parse_program,
    refine_document,
    run_chunk_program,
)

KEEP_CHUNK = "keep_chunk()"
_NUMBERED = re.compile(r"\[(\d{3,})\](.*)", re.DOTALL)
# Executing a chunk's program needs a document whose line numbers are the
# chunk's: lines before the chunk and one after it are filled with a
# character the chunk does not hold (so no normalize can touch them), which
# also keeps the word count above zero so the policy never drops the test text.
_PADS = "\ue000\ue001\ue002\ue003"
_CHECK_POLICY = ChunkPolicy(max_errors=0, min_kept_ratio=0.0, min_words=0)
# Larger ambiguous blocks of a rewrite are aligned greedily instead of optimally.
_MAX_ALIGN_CELLS = 4000


@dataclass(frozen=True)
class ChunkLabel:
    """The checked label of one chunk.

    `program` is the merged program of the surviving calls (remove_lines
    first, in line order, then normalize in the teacher's order;
    "keep_chunk()" when the teacher asked for no edit), or None when the
    example is discarded; `reason` says why (None when valid);
    `discarded_calls` holds "call  # reason" for every call dropped on the way
    (a valid example may have some).
    """

    program: str | None
    reason: str | None = None
    discarded_calls: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return self.program is not None


def _discard(reason: str, dropped: Iterable[str] = ()) -> ChunkLabel:
    return ChunkLabel(None, reason, tuple(dropped))


def chunk_lines(chunk: str) -> dict[int, str]:
    """The lines of a line-numbered chunk by their document line number.

    ``"[037]foo\\n[038]bar"`` -> ``{37: "foo", 38: "bar"}``, in order. Raises
    ValueError when the chunk is empty, a line lacks its ``[NNN]`` number,
    or the numbers are not consecutive (`prompts.chunk_document` always
    makes consecutive ones).
    """
    if not isinstance(chunk, str) or not chunk:
        raise ValueError("empty chunk")
    lines: dict[int, str] = {}
    last = -1
    for k, line in enumerate(chunk.split("\n")):
        match = _NUMBERED.fullmatch(line)
        if match is None:
            raise ValueError(f"line {k} of the chunk has no [NNN] number: {line[:40]!r}")
        number = int(match.group(1))
        if lines and number != last + 1:
            raise ValueError(f"line numbers jump from [{last:03d}] to [{number:03d}]")
        lines[number] = match.group(2)
        last = number
    return lines


def chunk_of_prompt(prompt: str) -> str:
    """The numbered chunk inside a chunk-level refiner prompt
    (`prompts.chunk_prompt`'s output); raises ValueError for any other text."""
    head, tail = PROMPT_HEAD + "[doc]\n", "\n[/doc]" + PROMPT_TAIL
    if not prompt.startswith(head) or not prompt.endswith(tail) \
            or len(prompt) < len(head) + len(tail):
        raise ValueError("not a chunk-level prompt ([doc]...[/doc] in the refiner's chat format)")
    return prompt[len(head):len(prompt) - len(tail)]


def _pad_for(text: str) -> str | None:
    return next((p for p in _PADS if p not in text), None)


def execute_on_chunk(lines: dict[int, str], program: str) -> tuple[list[str] | None, str | None]:
    """Run `program` with the interpreter on the chunk's lines at their
    document line numbers: (the chunk's lines after it, None), or (None, why
    it does not execute cleanly: any interpreter error)."""
    body = "\n".join(lines.values())
    pad = _pad_for(body + program)
    if pad is None:
        return None, "the chunk holds every padding character"
    first = next(iter(lines))
    text = "\n".join([pad] * first + [body, pad])
    result = run_chunk_program(text, program, policy=_CHECK_POLICY)
    if result.errors:
        return None, "; ".join(result.error_messages)
    out = result.text.split("\n")
    if out[:first] != [pad] * first or out[-1:] != [pad]:
        return None, "the program edits outside the chunk"
    return out[first:-1], None


def _merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _runs(numbers: Iterable[int]) -> list[tuple[int, int]]:
    return _merge_ranges((n, n) for n in numbers)


def _program(ranges: Sequence[tuple[int, int]], norms: Sequence[Normalize]) -> str:
    calls = [str(RemoveLines(a, b)) for a, b in ranges] + [str(n) for n in norms]
    return "\n".join(calls) if calls else KEEP_CHUNK


def _snippet(answer: str, function: str, position: int) -> str:
    """The text of a refused call: from its function name to the end of its line."""
    start = answer.rfind(function, 0, position + len(function))
    start = position if start < 0 else start
    end = answer.find("\n", start)
    text = answer[start:] if end < 0 else answer[start:end]
    text = text.strip()
    return text if len(text) <= 80 else text[:77] + "..."


def _reason_of(dropped_call: str) -> str:
    return dropped_call.rsplit("  # ", 1)[-1]


def _answered_lines(chunk: str, answer: str | None) -> dict[int, str] | ChunkLabel:
    """The chunk's numbered lines, or the discard of an empty answer or an
    unreadable chunk (what every teacher answer is checked for first)."""
    if answer is None or not answer.strip():
        return _discard("empty answer")
    try:
        return chunk_lines(chunk)
    except ValueError as exc:
        return _discard(f"bad chunk: {exc}")


def _checked_calls(calls: Iterable[Call], first: int, last: int, text: str,
                   dropped: list[str]) -> tuple[list[tuple[int, int]], list[Normalize], bool]:
    """Each call of an answer checked on its own against the chunk (lines
    `first`..`last`, contents `text`): the line ranges to remove, the
    distinct normalizes whose source is in the chunk, and whether the answer
    said `keep_chunk()`. A refused call is appended to `dropped` with why."""
    ranges: list[tuple[int, int]] = []
    norms: list[Normalize] = []
    keep = False
    for call in calls:
        if isinstance(call, KeepChunk):
            keep = True
        elif isinstance(call, DropDoc | KeepDoc):
            dropped.append(f"{call}  # not a chunk-level call")
        elif isinstance(call, RemoveLines):
            if call.end is None:
                ranges.append((first, last))
            elif call.start < first or call.end > last:
                dropped.append(
                    f"{call}  # line range outside the chunk [{first:03d}]-[{last:03d}]")
            else:
                ranges.append((call.start, call.end))
        elif not call.source.strip():
            dropped.append(f"{call}  # empty source_str")
        elif call.source not in text:
            dropped.append(f"{call}  # source_str not in the chunk")
        elif call not in norms:
            norms.append(call)
    return ranges, norms, keep


def _effective_normalizes(norms: Sequence[Normalize], current: str, dropped: list[str]
                          ) -> tuple[list[Normalize], str]:
    """The normalizes that still change `current` (the chunk once its lines
    are removed) when run in order, and the text they leave; the others are
    appended to `dropped` with why."""
    effective: list[Normalize] = []
    for norm in norms:
        replaced = current.replace(norm.source, norm.target)
        if replaced == current:
            dropped.append(f"{norm}  # source_str only in removed lines or already normalized")
        else:
            effective.append(norm)
            current = replaced
    return effective, current


def check_calls(chunk: str, answer: str | None) -> ChunkLabel:
    """Validate a `calls`-mode teacher answer for one line-numbered chunk.

    Every call is checked on its own and dropped with a reason when: our
    parser cannot read it (cut off, wrong arguments, empty normalize
    source); it is not a chunk-level call; its `remove_lines` range leaves
    the chunk's line numbers; its `normalize` source is not in the chunk's
    text (line contents, without the ``[NNN]`` numbers), or is gone once the
    calls before it ran (only in removed lines, or already normalized away).
    ``remove_lines(all=True)`` means the chunk's own lines. Survivors are
    merged into one program: overlapping or adjacent ranges joined, in line
    order, then the distinct normalizes in order; it is executed on the
    chunk (no interpreter error allowed). Discarded examples: an empty
    answer ("empty answer"), an answer with no call at all ("unparsable
    answer"), an answer whose every call was dropped ("no valid call: <the
    first call's reason>"). Never raises.
    """
    lines = _answered_lines(chunk, answer)
    if isinstance(lines, ChunkLabel):
        return lines
    first, last = next(iter(lines)), next(reversed(lines))
    parsed = parse_program(answer)
    dropped = [f"{_snippet(answer, e.function, e.position)}  # unparsable call: {e.message}"
               for e in parsed.errors]
    text = "\n".join(lines.values())
    ranges, norms, keep = _checked_calls(parsed.calls, first, last, text, dropped)
    ranges = _merge_ranges(ranges)
    removed = {n for a, b in ranges for n in range(a, b + 1)}
    current = "\n".join(line for n, line in lines.items() if n not in removed)
    effective, current = _effective_normalizes(norms, current, dropped)
    if not ranges and not effective:
        if dropped:
            return _discard(f"no valid call: {_reason_of(dropped[0])}", dropped)
        if keep:
            return ChunkLabel(KEEP_CHUNK)
        return _discard("unparsable answer")
    program = _program(ranges, effective)
    after, error = execute_on_chunk(lines, program)
    if after is None or "\n".join(after) != current:
        return _discard(f"merged program does not execute as checked: {error or 'other text'}",
                        dropped)
    return ChunkLabel(program, None, tuple(dropped))


def _clean_rewrite(rewritten: str) -> list[str]:
    """The teacher's lines: without a code fence or <text> tags around them,
    without leading and trailing blank lines."""
    body = rewritten.strip("\r\n")
    stripped = body.strip()
    if stripped.startswith("```") and stripped.endswith("```") and "\n" in stripped:
        body = stripped[stripped.index("\n") + 1:-3]
    elif stripped.startswith("<text>") and stripped.endswith("</text>"):
        body = stripped[len("<text>"):-len("</text>")]
    return body.strip("\r\n").split("\n")


def _is_deletion_of(new: str, old: str) -> bool:
    """True when `new` is `old` with some characters deleted."""
    if len(new) > len(old):
        return False
    rest = iter(old)
    return all(char in rest for char in new)


def _align_block(olds: list[str], news: list[str]) -> list[int] | None:
    """For each new line, the index of the old line it was cut from (in
    order, each old line used once), preferring the most similar pairs;
    None when some new line is not a deletion of any available old line."""
    n, m = len(olds), len(news)
    if n * m > _MAX_ALIGN_CELLS:
        out, i = [], 0
        for new in news:
            while i < n and not _is_deletion_of(new, olds[i]):
                i += 1
            if i == n:
                return None
            out.append(i)
            i += 1
        return out
    impossible = float("-inf")
    score = [[impossible] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        score[i][0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, min(i, m) + 1):
            best = score[i - 1][j]
            if score[i - 1][j - 1] > impossible and _is_deletion_of(news[j - 1], olds[i - 1]):
                pair = SequenceMatcher(None, olds[i - 1], news[j - 1], autojunk=False).ratio()
                best = max(best, score[i - 1][j - 1] + pair)
            score[i][j] = best
    if score[n][m] == impossible:
        return None
    out = [0] * m
    i, j = n, m
    while j > 0:
        if score[i][j] == score[i - 1][j]:
            i -= 1
        else:
            out[j - 1] = i - 1
            i, j = i - 1, j - 1
    return out


def _align(olds: list[str], news: list[str]) -> list[int] | None:
    """For each new line, the index of the old line it was cut from, or None
    when the rewrite is not a deletion of the chunk's lines. difflib aligns
    the lines; where it pairs a line with the wrong copy of a repeated line
    (and so sees an insertion) the whole chunk is aligned again by
    `_align_block`, whose greedy fallback finds an alignment whenever one exists."""
    out: list[int] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, olds, news, autojunk=False).get_opcodes():
        if tag == "equal":
            out.extend(range(i1, i2))
        elif tag in ("replace", "insert"):
            block = _align_block(olds[i1:i2], news[j1:j2]) if tag == "replace" else None
            if block is None:
                return _align_block(olds, news)
            out.extend(i1 + k for k in block)
    return out


def _deleted_spans(old: str, new: str) -> list[tuple[int, int]]:
    """Maximal runs of `old` (start, end) whose deletion leaves `new`
    (`new` must be a deletion of `old`)."""
    ops = SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
    if all(tag in ("equal", "delete") for tag, *_ in ops):
        return [(i1, i2) for tag, i1, i2, _, _ in ops if tag == "delete"]
    spans: list[tuple[int, int]] = []
    j = 0
    for i, char in enumerate(old):
        if j < len(new) and char == new[j]:
            j += 1
        elif spans and spans[-1][1] == i:
            spans[-1] = (spans[-1][0], i + 1)
        else:
            spans.append((i, i + 1))
    return spans


def _best_span(line: str, start: int, end: int, low: int, high: int, kept_text: str
               ) -> tuple[int, int]:
    """Among the equivalent positions of a deleted span (sliding it along a
    repeated pattern leaves the same line, within the kept characters
    between `low` and `high`), the one a `normalize` can express best: not
    whitespace-only, then occurring least often in the kept text (every
    occurrence is replaced)."""
    candidates = [(start, end)]
    s, e = start, end
    while s - 1 >= low and line[s - 1] == line[e - 1]:
        s, e = s - 1, e - 1
        candidates.append((s, e))
    s, e = start, end
    while e < high and line[s] == line[e]:
        s, e = s + 1, e + 1
        candidates.append((s, e))

    def cost(span: tuple[int, int]) -> tuple[bool, int]:
        source = line[span[0]:span[1]]
        return not source.strip(), kept_text.count(source)

    return min(candidates, key=cost)


def _deleted_sources(olds: Sequence[str], edits: Sequence[tuple[int, str]],
                     numbers: Sequence[int], kept_text: str) -> list[str] | ChunkLabel:
    """The distinct spans the teacher deleted inside kept lines (`edits`:
    line index, new text), each placed where it is least ambiguous, longest
    first; or the discard of a span that is only whitespace."""
    sources: list[str] = []
    for index, new in edits:
        old = olds[index]
        spans = _deleted_spans(old, new)
        for k, (start, end) in enumerate(spans):
            low = spans[k - 1][1] + 1 if k else 0
            high = spans[k + 1][0] - 1 if k + 1 < len(spans) else len(old)
            s, e = _best_span(old, start, end, low, high, kept_text)
            source = old[s:e]
            if not source.strip():
                return _discard(f"rewrite deletes only whitespace in line [{numbers[index]:03d}]"
                                " (a normalize source cannot be whitespace)")
            if source not in sources:
                sources.append(source)
    # A span that is part of a longer deleted span elsewhere must run after it.
    sources.sort(key=len, reverse=True)
    return sources


def derive_rewrite(chunk: str, rewritten: str | None) -> ChunkLabel:
    """Derive a deletion-only program from a `rewrite`-mode teacher answer.

    The teacher's lines (a code fence or ``<text>`` tags around them and
    blank lines at either end are not content) are aligned with the chunk's
    lines by difflib; lines are compared without trailing whitespace, which
    teachers and detokenizers do not keep. Deleted runs of lines become
    `remove_lines` with the document's line numbers; a kept line whose new
    text is the old one with spans deleted gives one
    ``normalize(source_str=<span>, target_str="")`` per distinct span (each
    span placed, among its equivalent positions, where it is not
    whitespace-only and occurs least often, as a normalize replaces every
    occurrence; longer sources run first). Discarded: "empty answer"; "rewrite adds text: ..." for
    any inserted, changed or reordered text; "rewrite deletes only
    whitespace ..." (a normalize source cannot be whitespace); "derived
    program does not reproduce the rewrite: ..." when the program, executed
    by the interpreter on the chunk, does not give exactly the teacher's
    lines (e.g. a deleted span also occurs in kept text). Never raises.
    """
    lines = _answered_lines(chunk, rewritten)
    if isinstance(lines, ChunkLabel):
        return lines
    numbers = list(lines)
    olds = [line.rstrip() for line in lines.values()]
    news = [line.rstrip() for line in _clean_rewrite(rewritten)]
    matched = _align(olds, news)
    if matched is None:
        bad = next((n for n in news if not any(_is_deletion_of(n, o) for o in olds)), None)
        return _discard(f"rewrite adds text: {bad[:60]!r}" if bad is not None
                        else "rewrite adds text: its lines are not in the chunk's order")
    used = set(matched)
    removed = [i for i in range(len(olds)) if i not in used]
    edits = [(i, news[j]) for j, i in enumerate(matched) if olds[i] != news[j]]
    gone = set(removed)
    kept_text = "\n".join(lines[numbers[i]] for i in range(len(olds)) if i not in gone)
    sources = _deleted_sources(olds, edits, numbers, kept_text)
    if isinstance(sources, ChunkLabel):
        return sources
    program = _program(_runs(numbers[i] for i in removed), [Normalize(s) for s in sources])
    after, error = execute_on_chunk(lines, program)
    if after is None:
        return _discard(f"derived program does not reproduce the rewrite: {error}")
    got = [line.rstrip() for line in after]
    if got != news:
        where = next((k for k, (a, b) in enumerate(zip(got, news, strict=False)) if a != b),
                     min(len(got), len(news)))
        want = news[where] if where < len(news) else "<end>"
        have = got[where] if where < len(got) else "<end>"
        return _discard("derived program does not reproduce the rewrite: "
                        f"line {where + 1} is {have[:40]!r}, the teacher wrote {want[:40]!r}")
    return ChunkLabel(program)


def check_document(text: str, chunk_programs: Sequence[str],
                   policy: ChunkPolicy = DEFAULT_CHUNK_POLICY) -> str | None:
    """Why a document the doc label kept would be deleted by its merged chunk
    programs under `policy` (the production path, `refine_document`), or
    None when it survives. A document the policy drops even unedited (too
    few words) gets its own reason."""
    if text is None or not text.strip():
        return "empty document"
    result = refine_document(text, None, list(chunk_programs), policy)
    if result.status != DROPPED:
        return None
    words = len(text.split())
    if refine_document(text, None, [], policy).status == DROPPED:
        return (f"the chunk policy drops this document even unedited ({words} words, "
                f"min_words {policy.min_words})")
    lenient = ChunkPolicy(policy.max_errors, 0.0, 0)
    left = run_chunk_program(text, "\n".join(p for p in chunk_programs if p),
                             policy=lenient).words_after
    return f"chunk programs delete the kept document ({left} of {words} words left)"


def example_key(task: str, prompt: str, completion: str) -> str:
    """sha256 hex of (task, prompt, completion): equal examples share a key (dedup)."""
    blob = json.dumps([task, prompt, completion], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()
