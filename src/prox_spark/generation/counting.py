"""Tokens counted with a model's tokenizer, without an engine: of texts
(`token_counts_with`, the one token count every stage uses) and of the
prompts the model stages would send (`PromptCounter`).

`PromptCounter` builds the same prompts the engine's batches build
(`batch.prepare_doc`, `batch.prepare_chunks`) and tokenizes them as the
engine does (the model's own tokenizer, BOS first), so a plan's token
counts match what a run sends. The dry run uses it on each executor.

    >>> counter = PromptCounter()
    >>> counter.doc_tokens("hello", "path/to/model", 2048)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prox_spark.generation.engine import counting_tokenizer, get_tokenizer
from prox_spark.generation.prompts import (
    TextEncoding,
    chunk_document,
    chunk_prompt,
    doc_prompt_ids,
    text_encoding,
    token_counts,
)

Encode = Callable[[str], list[int]]


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


class PromptCounter:
    """Counts prompt tokens per document; tokenizers are loaded once each."""

    def __init__(self) -> None:
        self._encoders: dict[str, tuple[TextEncoding, Encode]] = {}

    def encoding(self, tokenizer: str) -> tuple[TextEncoding, Encode]:
        """(the text encoding prompts are cut with, the engine's encoder:
        the prompt's ids with BOS first) of the tokenizer `tokenizer`."""
        if tokenizer not in self._encoders:
            tok = text_encoding(get_tokenizer(tokenizer))
            bos = tok.bos_token_id

            def encode(prompt: str, tok: Any = tok, bos: Any = bos) -> list[int]:
                ids = tok.encode(prompt, add_special_tokens=False)
                return ids if bos is None else [bos, *ids]

            self._encoders[tokenizer] = (tok, encode)
        return self._encoders[tokenizer]

    def doc_tokens(self, text: str, tokenizer: str, max_prompt_tokens: int) -> int:
        """Tokens of the document prompt of `text` (cut to fit, as sent)."""
        tok, encode = self.encoding(tokenizer)
        return len(doc_prompt_ids(text, tok, max_prompt_tokens, encode))

    def chunk_tokens(self, text: str, tokenizer: str, max_prompt_tokens: int,
                     max_doc_chars: int) -> int:
        """Tokens of all chunk prompts of `text`; 0 for a document longer
        than `max_doc_chars` (not sent: too large)."""
        if len(text) > max_doc_chars:
            return 0
        tok, encode = self.encoding(tokenizer)
        return sum(len(encode(chunk_prompt(c)))
                   for c in chunk_document(text, tok, max_prompt_tokens))
