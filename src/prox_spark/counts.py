"""How words and tokens are counted, in one place, for every stage and the run.

A word is what Python's `str.split()` separates (a null or blank text has
none); tokens are the refining model's, without special tokens, counted by
`prompts.token_counts`. Spark columns are counted by the same Python
function (`stages.rule_stages.word_count_column`), so a count never depends
on which path computed it.

    >>> word_count("  two\\u00a0words\\n"), word_count(""), word_count(None)
    (2, 0, 0)
"""

from __future__ import annotations

from collections.abc import Sequence


def word_count(text: str | None) -> int:
    """Words in `text`; 0 for a null or blank text."""
    return len(text.split()) if isinstance(text, str) else 0


def token_counts_with(tokenizer: str | None, texts: Sequence[str]) -> list[int] | None:
    """Tokens of each text under `tokenizer` (a model directory or id), or
    None when there is none to count with or it cannot be loaded (a
    statistic never fails a task) or there is nothing to count."""
    if tokenizer is None or not texts:
        return None
    from prox_spark.generation.engine import counting_tokenizer

    tok = counting_tokenizer(tokenizer)
    if tok is None:
        return None
    from prox_spark.generation.prompts import token_counts

    return list(token_counts(texts, tok))

