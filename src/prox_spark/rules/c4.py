"""C4 quality rules (Raffel et al. 2020) as datatrove applies them: line-level
removals plus whole-document drops, with datatrove's defaults and reason codes.

Lines are the document's ``"\\n"``-separated lines, so the emitted
`remove_lines` calls address the same lines as every other program (datatrove
splits on all of Python's line boundaries, which differs only for texts
holding \\r, \\v, \\f or Unicode line separators).
"""

from __future__ import annotations

import re
from typing import Annotated, NamedTuple

from prox_spark.params import Doc, Range
from prox_spark.program.calls import Normalize
from prox_spark.rules.result import RuleResult, line_ranges
from prox_spark.rules.text import count_sentences

CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
END_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies",
                  "use of cookies", "use cookies")


class _C4Lines(NamedTuple):
    """The line rules of `c4_quality` (see its parameters)."""

    remove_citations: bool
    filter_no_terminal_punct: bool
    min_words_per_line: int | None
    max_word_length: int | None
    filter_lorem_ipsum: bool
    filter_javascript: bool
    filter_curly_bracket: bool
    filter_policy: bool


def _scan(text: str, rules: _C4Lines, count_sentences_kept: bool
          ) -> tuple[list[int], set[str], int, str | None]:
    """(removed line indices, citations of kept lines, sentences of kept
    lines, the reason a document-level rule dropped it or None), line by
    line in datatrove's order: the first rule that fires decides a line."""
    removed: list[int] = []
    citations: set[str] = set()
    sentences = 0
    for index, raw in enumerate(text.split("\n")):
        line = raw.strip()
        words = line.split()
        if rules.max_word_length is not None and any(
                len(w) > rules.max_word_length for w in words):
            removed.append(index)
            continue
        found = CITATION.findall(line) if rules.remove_citations else []
        if found:
            line = CITATION.sub("", line)
        if rules.filter_no_terminal_punct and (
            not line.endswith(END_PUNCTUATION) or line.endswith("...")
        ):
            removed.append(index)
            continue
        if rules.min_words_per_line is not None and len(words) < rules.min_words_per_line:
            removed.append(index)
            continue
        lowered = line.lower()
        if rules.filter_lorem_ipsum and "lorem ipsum" in lowered:
            return removed, citations, sentences, "lorem_ipsum"
        if rules.filter_javascript and "javascript" in lowered:
            removed.append(index)
            continue
        if rules.filter_curly_bracket and "{" in line:
            return removed, citations, sentences, "curly_bracket"
        if rules.filter_policy and any(p in lowered for p in POLICY_PHRASES):
            removed.append(index)
            continue
        if count_sentences_kept:
            sentences += count_sentences(line)
        citations.update(c for c in found if c.strip())
    return removed, citations, sentences, None


def c4_quality(
    text: str,
    *,
    remove_citations: Annotated[bool, Doc(
        "delete Wikipedia-style citation marks such as [1]")] = True,
    filter_no_terminal_punct: Annotated[bool, Doc(
        "remove lines that do not end in terminal punctuation")] = True,
    min_num_sentences: Annotated[int | None, Range(0), Doc(
        "fewest sentences a kept document has (datatrove's -1 or null: off)")] = 5,
    min_words_per_line: Annotated[int | None, Range(0), Doc(
        "remove lines with fewer words (-1 or null: off)")] = 3,
    max_word_length: Annotated[int | None, Range(1), Doc(
        "remove lines with a longer word (-1 or null: off)")] = 1000,
    filter_lorem_ipsum: Annotated[bool, Doc('drop documents containing "lorem ipsum"')] = True,
    filter_javascript: Annotated[bool, Doc("remove lines mentioning javascript")] = True,
    filter_curly_bracket: Annotated[bool, Doc(
        "drop documents containing a curly bracket")] = True,
    filter_policy: Annotated[bool, Doc(
        "remove lines about cookie, privacy or terms policies")] = True,
) -> RuleResult:
    """Remove lines without terminal punctuation, with few words, mentioning
    javascript or cookie/terms policies; drop pages with lorem ipsum, curly
    brackets or fewer than `min_num_sentences` sentences left.
    """
    lines = _C4Lines(remove_citations, filter_no_terminal_punct, min_words_per_line,
                     max_word_length, filter_lorem_ipsum, filter_javascript,
                     filter_curly_bracket, filter_policy)
    removed, citations, sentences, dropped = _scan(text, lines, min_num_sentences is not None)
    if dropped is not None:
        return RuleResult(dropped)
    if min_num_sentences is not None and sentences < min_num_sentences:
        return RuleResult("too_few_sentences")
    return RuleResult(
        None, line_ranges(removed), tuple(Normalize(c, "") for c in sorted(citations))
    )
