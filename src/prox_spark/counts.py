"""How words are counted, in one place, for every stage and the run.

A word is what Python's `str.split()` separates (a null or blank text has
none); tokens are counted by `generation.counting.token_counts_with`.
Spark columns are counted by the same Python function
(`stages.rule_stages.word_count_column`), so a count never depends on which
path computed it.

    >>> word_count("  two\\u00a0words\\n"), word_count(""), word_count(None)
    (2, 0, 0)
"""

from __future__ import annotations


def word_count(text: str | None) -> int:
    """Words in `text`; 0 for a null or blank text."""
    return len(text.split()) if isinstance(text, str) else 0
