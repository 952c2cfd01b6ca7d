"""Prompt tokens the model stages would send, counted without an engine.

`PromptCounter` builds the same prompts the engine's batches build
(`batch.prepare_doc`, `batch.prepare_chunks`) and tokenizes them as the
engine does (the model's own tokenizer, BOS first), so a plan's token
counts match what a run sends. The dry run uses it on each executor.

    >>> counter = PromptCounter()
    >>> counter.doc_tokens("hello", "path/to/model", 2048)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prox_spark.generation.engine import get_tokenizer
from prox_spark.generation.prompts import (
    TextEncoding,
    chunk_document,
    chunk_prompt,
    doc_prompt_ids,
    text_encoding,
)

Encode = Callable[[str], list[int]]


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
