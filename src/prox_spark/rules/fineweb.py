"""FineWeb quality rules (Penedo et al. 2024) with datatrove's defaults and codes."""

from __future__ import annotations

from typing import Annotated

from prox_spark.params import Doc, Range
from prox_spark.rules.result import KEEP, RuleResult
from prox_spark.rules.text import duplicates, is_terminal_punctuation, split_words


def fineweb_quality(
    text: str,
    *,
    line_punct_thr: Annotated[float | None, Range(0, 1), Doc(
        "smallest share of lines ending in terminal punctuation")] = 0.12,
    line_punct_exclude_zero: Annotated[bool, Doc(
        "keep documents where no line ends in punctuation")] = False,
    short_line_thr: Annotated[float | None, Range(0, 1), Doc(
        "largest share of short lines")] = 0.67,
    short_line_length: Annotated[int, Range(0), Doc(
        "a line this many characters or fewer is short")] = 30,
    char_duplicates_ratio: Annotated[float | None, Range(0, 1), Doc(
        "largest share of characters in repeated lines")] = 0.01,
    new_line_ratio: Annotated[float | None, Range(0), Doc("most newlines per word")] = 0.3,
) -> RuleResult:
    """Drop documents where few lines end in terminal punctuation, most lines
    are short, lines repeat, or newlines outnumber words (lists).
    """
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return RuleResult("empty")
    if line_punct_thr is not None:
        ratio = sum(is_terminal_punctuation(line[-1]) for line in lines) / len(lines)
        if ratio < line_punct_thr and not (ratio == 0 and line_punct_exclude_zero):
            return RuleResult("line_punct_ratio")
    if short_line_thr is not None:
        ratio = sum(len(line) <= short_line_length for line in lines) / len(lines)
        if ratio > short_line_thr:
            return RuleResult("short_line_ratio")
    if char_duplicates_ratio is not None:
        repeated = duplicates(lines)[1]
        if repeated / len(text.replace("\n", "")) > char_duplicates_ratio:
            return RuleResult("char_dup_ratio")
    if new_line_ratio is not None:
        words = split_words(text)
        if not words or text.count("\n") / len(words) > new_line_ratio:
            return RuleResult("list_ratio")
    return KEEP
