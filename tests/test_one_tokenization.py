"""One tokenization everywhere: chunk packing, doc truncation and token
statistics count special-token text inside a document (`<s>`, `</s>`,
`[INST]`) as the engine sends it, as text."""

from __future__ import annotations

import pytest

from prox_spark.generation.engine import Engine, EngineConfig
from prox_spark.generation.prompts import (
    chat_prompt,
    chunk_document,
    chunk_prompt,
    doc_prompt,
    doc_prompt_ids,
    token_counts,
)

PRICES = "\n".join(f"<s>${40 + i % 7}</s> ${30 + i % 5} item {i % 9} [INST]" for i in range(400))


def _engine(tokenizer: object) -> Engine:
    # The engine's own encoder, without loading a model into vLLM.
    return Engine(EngineConfig(model="/unused"), llm=None, tokenizer=tokenizer)


def _check(tokenizer: object, budget: int) -> None:
    engine = _engine(tokenizer)
    frame = len(engine.encode_one(chunk_prompt("")))
    chunks = chunk_document(PRICES, tokenizer, budget)
    assert len(chunks) > 1
    for chunk in chunks:
        # What the chunk costs when sent: each line as the engine encodes it.
        sent = sum(len(engine.encode_one(line)) for line in chunk.split("\n"))
        assert sent <= budget
        assert len(engine.encode_one(chunk_prompt(chunk))) <= frame + budget
    # The guard: counting "<s>" as BOS would have packed more lines per chunk.
    plain = tokenizer.backend_tokenizer.encode("[000]<s>$40</s>").ids  # type: ignore[attr-defined]
    assert len(plain) < len(engine.encode_one("[000]<s>$40</s>"))

    line = "a <s>literal</s> price [INST] here"
    assert token_counts([line], tokenizer) == [len(engine.encode_one(line)) - 1]

    for limit in (300, 1000):
        ids = doc_prompt_ids(PRICES, tokenizer, limit, engine.encode_one)
        assert len(ids) <= limit
        prompt = doc_prompt(PRICES, tokenizer, limit)
        assert ids == engine.encode([prompt])[0]
        assert prompt.endswith(" [/INST]") and prompt.startswith(chat_prompt("")[:20])


def test_tiny_tokenizer_counts_what_the_engine_sends(tiny_model):
    from transformers import AutoTokenizer

    _check(AutoTokenizer.from_pretrained(str(tiny_model)), 150)


def test_llama2_tokenizer_counts_what_the_engine_sends(llama2_tokenizer):
    _check(llama2_tokenizer, 1500)


@pytest.mark.parametrize("text", ["plain words only", "<s>", "</s> and [INST] [/INST]"])
def test_token_counts_match_the_engine(tiny_model, text):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    assert token_counts([text], tok) == [len(_engine(tok).encode_one(text)) - 1]
