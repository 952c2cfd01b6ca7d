"""Token counts of texts under a refining model's tokenizer, for statistics.

Tokens are the model's, without special tokens (`prompts.token_counts`), so
the counts every stage reports agree with what the engine is sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from prox_spark.generation.engine import counting_tokenizer
from prox_spark.generation.prompts import token_counts


def token_counts_with(tokenizer: str | None, texts: Sequence[str]) -> list[int] | None:
    """Tokens of each text under `tokenizer` (a model directory or id), or
    None when there is none to count with or it cannot be loaded (a
    statistic never fails a task) or there is nothing to count."""
    if tokenizer is None or not texts:
        return None
    tok = counting_tokenizer(tokenizer)
    if tok is None:
        return None
    return list(token_counts(texts, tok))
