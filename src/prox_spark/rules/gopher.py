"""Gopher quality and repetition rules (Rae et al. 2021, table A1), with
datatrove's defaults and reason codes. Every threshold is a keyword; None
disables that rule."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Annotated

from prox_spark.params import Doc, Range
from prox_spark.rules.result import KEEP, RuleResult
from prox_spark.rules.text import duplicates, is_punctuation, split_words

STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")


def _line_shape(lines: list[str], max_bullet_lines_ratio: float | None,
                max_ellipsis_lines_ratio: float | None) -> str | None:
    """The reason `gopher_quality` drops a document for the share of its
    lines that start with a bullet or end with an ellipsis, or None."""
    if not lines:
        return None
    if max_bullet_lines_ratio:
        bullets = sum(line.lstrip().startswith(("•", "-")) for line in lines)
        if bullets / len(lines) > max_bullet_lines_ratio:
            return "gopher_too_many_bullets"
    if max_ellipsis_lines_ratio:
        ellipses = sum(line.rstrip().endswith(("...", "…")) for line in lines)
        if ellipses / len(lines) > max_ellipsis_lines_ratio:
            return "gopher_too_many_end_ellipsis"
    return None


def gopher_quality(
    text: str,
    *,
    min_doc_words: Annotated[int | None, Range(0), Doc(
        "fewest words (punctuation-only tokens not counted) a kept document has")] = 50,
    max_doc_words: Annotated[int | None, Range(0, at_least="min_doc_words"), Doc(
        "most words a kept document has")] = 100_000,
    min_avg_word_length: Annotated[float | None, Range(0), Doc(
        "shortest mean word length kept")] = 3,
    max_avg_word_length: Annotated[float | None, Range(0, at_least="min_avg_word_length"), Doc(
        "longest mean word length kept")] = 10,
    max_symbol_word_ratio: Annotated[float | None, Range(0), Doc(
        'most "#" or ellipses per word')] = 0.1,
    max_bullet_lines_ratio: Annotated[float | None, Range(0, 1), Doc(
        "largest share of lines that start with a bullet")] = 0.9,
    max_ellipsis_lines_ratio: Annotated[float | None, Range(0, 1), Doc(
        "largest share of lines that end with an ellipsis")] = 0.3,
    min_alpha_words_ratio: Annotated[float | None, Range(0, 1), Doc(
        "smallest share of words with a letter (datatrove: max_non_alpha_words_ratio)")] = 0.8,
    min_stop_words: Annotated[int | None, Range(0), Doc(
        "fewest distinct stop words a kept document has")] = 2,
    stop_words: Annotated[Iterable[str], Doc("the stop words counted by min_stop_words")] = (
        STOP_WORDS),
) -> RuleResult:
    """Drop documents that are too short or long, have odd word lengths, too
    many symbols, bullets or ellipses, too few alphabetic words or stop words.
    """
    words = split_words(text)
    n_words = len(words)
    content = [w for w in words if not all(is_punctuation(c) for c in w)]
    n_content = len(content)
    if min_doc_words and n_content < min_doc_words:
        return RuleResult("gopher_short_doc")
    if max_doc_words and n_content > max_doc_words:
        return RuleResult("gopher_long_doc")
    if n_content:
        avg = sum(len(w) for w in content) / n_content
        if min_avg_word_length and avg < min_avg_word_length:
            return RuleResult("gopher_below_avg_threshold")
        if max_avg_word_length and avg > max_avg_word_length:
            return RuleResult("gopher_above_avg_threshold")
    if max_symbol_word_ratio and n_words:
        if text.count("#") / n_words > max_symbol_word_ratio:
            return RuleResult("gopher_too_many_hashes")
        if (text.count("...") + text.count("…")) / n_words > max_symbol_word_ratio:
            return RuleResult("gopher_too_many_ellipsis")
    reason = _line_shape(text.splitlines(), max_bullet_lines_ratio, max_ellipsis_lines_ratio)
    if reason is not None:
        return RuleResult(reason)
    if min_alpha_words_ratio and n_words:
        alpha = sum(any(c.isalpha() for c in w) for w in words)
        if alpha / n_words < min_alpha_words_ratio:
            return RuleResult("gopher_below_alpha_threshold")
    if min_stop_words and len(set(stop_words).intersection(words)) < min_stop_words:
        return RuleResult("gopher_enough_stop_words")
    return KEEP


_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile(r"\n+")


def _top_ngram_chars(words: Sequence[str], n: int) -> int:
    grams = Counter(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
    gram, count = grams.most_common(1)[0]
    return len(gram) * count


def _repeated_ngram_chars(words: Sequence[str], n: int) -> int:
    """Characters covered by n-grams (joined without spaces) seen before,
    skipping over a repeat once it is counted."""
    seen: set[str] = set()
    chars = i = 0
    last = len(words) - n
    while i <= last:
        gram = "".join(words[i:i + n])
        if gram in seen:
            chars += len(gram)
            i += n
        else:
            seen.add(gram)
            i += 1
    return chars


def gopher_repetition(
    text: str,
    *,
    dup_line_frac: Annotated[float | None, Range(0, 1), Doc(
        "largest share of lines that repeat an earlier line")] = 0.3,
    dup_para_frac: Annotated[float | None, Range(0, 1), Doc(
        "largest share of paragraphs that repeat an earlier one")] = 0.3,
    dup_line_char_frac: Annotated[float | None, Range(0, 1), Doc(
        "largest share of characters in repeated lines")] = 0.2,
    dup_para_char_frac: Annotated[float | None, Range(0, 1), Doc(
        "largest share of characters in repeated paragraphs")] = 0.2,
    top_n_grams: Annotated[Sequence[tuple[int, float]], Doc(
        "(n, share) pairs: most characters the commonest n-gram may cover")] = (
        (2, 0.2), (3, 0.18), (4, 0.16)),
    dup_n_grams: Annotated[Sequence[tuple[int, float]], Doc(
        "(n, share) pairs: most characters repeated n-grams may cover")] = (
        (5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)),
) -> RuleResult:
    """Drop documents made of repeated paragraphs, lines or word n-grams.
    """
    if not text:
        return RuleResult("empty")
    paragraphs = _PARAGRAPHS.split(text.strip())
    dups, chars = duplicates(paragraphs)
    if dup_para_frac and dups / len(paragraphs) > dup_para_frac:
        return RuleResult("dup_para_frac")
    if dup_para_char_frac and chars / len(text) > dup_para_char_frac:
        return RuleResult("dup_para_char_frac")
    lines = _LINES.split(text)
    dups, chars = duplicates(lines)
    if dup_line_frac and dups / len(lines) > dup_line_frac:
        return RuleResult("dup_line_frac")
    if dup_line_char_frac and chars / len(text) > dup_line_char_frac:
        return RuleResult("dup_line_char_frac")
    words = split_words(text)
    for n, limit in top_n_grams:
        if len(words) >= n and _top_ngram_chars(words, n) / len(text) > limit:
            return RuleResult(f"top_{n}_gram")
    for n, limit in dup_n_grams:
        if _repeated_ngram_chars(words, n) / len(text) > limit:
            return RuleResult(f"duplicated_{n}_n_grams")
    return KEEP
