"""Prompt builders: exact strings, bounds, and chunking identical to the plain rule.

Every count is checked against the engine's encoding (`text_encoding`: special-
token text in a document is text), the one the engine sends."""

from __future__ import annotations

import random

import pytest

from prox_spark.generation.prompts import (
    PROMPT_HEAD,
    PROMPT_TAIL,
    TextEncoding,
    chunk_document,
    chunk_prompt,
    doc_prompt,
    prompt_length,
    text_encoding,
)
from prox_spark.testing.naive_chunker import naive_chunks

HEAD = (
    "[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant.\n<</SYS>>\n\n"
)


@pytest.fixture(scope="module", params=["tiny", "llama2"])
def hf_tokenizer(request, tmp_path_factory):
    if request.param == "llama2":
        return request.getfixturevalue("llama2_tokenizer")
    from transformers import AutoTokenizer

    from prox_spark.testing.tiny_llama import build_tokenizer

    path = build_tokenizer(tmp_path_factory.mktemp("tok"), [_text(random.Random(1), 200)])
    return AutoTokenizer.from_pretrained(str(path))


@pytest.fixture(scope="module")
def tokenizer(hf_tokenizer):
    """The engine's encoding of the tokenizer: what every count must match."""
    return text_encoding(hf_tokenizer)


WORDS = ("the river town market, history; people (water) season=light winter: "
         "école naïve 東京 données ü ß 🙂 <s> </s> [000] [INST]").split()


def _text(rng: random.Random, n_lines: int, max_words: int = 30) -> str:
    lines = []
    for _ in range(n_lines):
        k = rng.choice([0, 1, 3, 8, max_words])
        lines.append(" ".join(rng.choices(WORDS, k=k)) + rng.choice(["", " ", "  ", "\t"]))
    return "\n".join(lines)


def test_header_is_the_llama2_chat_format():
    assert PROMPT_HEAD == HEAD
    assert PROMPT_TAIL == " [/INST]"


@pytest.mark.parametrize("doc", ["Hello world.", "Two\nlines  \n\n", "  lead space", "é🙂"])
def test_doc_prompt_is_exact_for_documents_that_fit(tokenizer, doc):
    assert doc_prompt(doc, tokenizer) == HEAD + doc.rstrip() + " [/INST]"


def test_chunk_prompt_is_exact(tokenizer):
    chunk = "[000]Home | About\n[001]Text"
    assert chunk_prompt(chunk) == HEAD + "[doc]\n" + chunk + "\n[/doc] [/INST]"


def test_builders_given_the_plain_tokenizer_count_as_the_engine(hf_tokenizer, tokenizer):
    doc = _text(random.Random(5), 300)
    assert doc_prompt(doc, hf_tokenizer, 200) == doc_prompt(doc, tokenizer, 200)
    assert chunk_document(doc, hf_tokenizer, 150) == chunk_document(doc, tokenizer, 150)
    bos = tokenizer.bos_token_id
    assert hf_tokenizer.encode("a <s>").count(bos) == 2  # read as a second BOS
    assert tokenizer.encode("a <s>").count(bos) == 1     # read as text, as the engine does


def test_prompt_length_counts_one_bos(tokenizer):
    prompt = doc_prompt("Hello", tokenizer)
    assert prompt_length(prompt, tokenizer) == len(tokenizer.encode(prompt))
    assert tokenizer.encode(prompt)[0] == tokenizer.bos_token_id
    assert not prompt.startswith("<s>")


@pytest.mark.parametrize("max_tokens", [60, 200, 2000])
def test_long_documents_are_truncated_inside_the_prompt(tokenizer, max_tokens):
    rng = random.Random(max_tokens)
    for _ in range(5):
        doc = _text(rng, rng.randint(50, 400))
        prompt = doc_prompt(doc, tokenizer, max_tokens)
        length = len(tokenizer.encode(prompt))
        assert length <= max_tokens
        assert prompt.startswith(HEAD) and prompt.endswith(" [/INST]")
        body = prompt[len(HEAD):-len(" [/INST]")]
        assert doc.startswith(body)
        if len(tokenizer.encode(HEAD + doc.rstrip() + " [/INST]")) > max_tokens:
            # Truncation keeps the prompt close to full, not far below it.
            assert length >= max_tokens - 8


class CountingTokenizer(TextEncoding):
    """Wraps an encoding and counts the characters its backend is asked to
    encode or its model to tokenize."""

    def __init__(self, inner):
        self.inner = inner
        self.chars = 0
        self.bos_token_id = inner.bos_token_id
        outer = self

        class Model:
            def tokenize(self, text):
                outer.chars += len(text)
                return inner.backend_tokenizer.model.tokenize(text)

        class Backend:
            model = Model()

            def __getattr__(self, name):
                return getattr(inner.backend_tokenizer, name)

            def encode(self, text, *a, **k):
                outer.chars += len(text)
                return inner.backend_tokenizer.encode(text, *a, **k)

            def encode_batch_fast(self, texts, *a, **k):
                outer.chars += sum(len(t) for t in texts)
                return inner.backend_tokenizer.encode_batch_fast(texts, *a, **k)

        self.backend_tokenizer = Backend()
        self.source = self.backend_tokenizer

    def encode(self, text, *a, **k):
        return self.inner.encode(text, *a, **k)


def test_doc_prompt_tokenizes_only_what_it_needs(tokenizer):
    huge = _text(random.Random(7), 200) * 2000  # several MB
    counting = CountingTokenizer(tokenizer)
    prompt = doc_prompt(huge, counting, 2000)
    assert len(tokenizer.encode(prompt)) <= 2000
    assert counting.chars < 200_000 < len(huge)


def test_chunks_match_the_plain_per_line_rule(tokenizer):
    rng = random.Random(3)
    compared = 0
    for trial in range(80):
        doc = _text(rng, rng.randint(1, 300))
        budget = rng.choice([60, 150, 1500])
        longest = max(
            len(tokenizer.encode(f"[{i:03d}]{line}")) for i, line in enumerate(doc.split("\n"))
        )
        if longest > budget:
            continue  # the plain rule overflows there; covered by the next test
        compared += 1
        assert chunk_document(doc, tokenizer, budget) == naive_chunks(doc, tokenizer, budget), trial
    assert compared >= 40


def test_chunks_never_exceed_the_budget_and_keep_line_numbers(tokenizer):
    long_line = " ".join(["supercalifragilistic"] * 3000)
    doc = "\n".join(["short one", long_line, "short two", long_line[:50]])
    chunks = chunk_document(doc, tokenizer, 300)
    numbered = [line for chunk in chunks for line in chunk.split("\n")]
    assert [line[:5] for line in numbered] == ["[000]", "[001]", "[002]", "[003]"]
    for chunk in chunks:
        assert sum(len(tokenizer.encode(line)) for line in chunk.split("\n")) <= 300
    assert numbered[1].startswith("[001]supercalifragilistic")
    assert len(numbered[1]) < len(long_line)


def test_line_numbers_past_999_are_written_in_full(tokenizer):
    doc = "\n".join(f"l{i}" for i in range(1002))
    lines = "\n".join(chunk_document(doc, tokenizer)).split("\n")
    assert lines[0] == "[000]l0" and lines[999] == "[999]l999" and lines[1001] == "[1001]l1001"


def test_empty_document_is_one_empty_numbered_line(tokenizer):
    assert chunk_document("", tokenizer) == ["[000]"]


def test_line_counts_equal_encode_on_arbitrary_lines(tokenizer):
    """The segment-cached counter (Llama) and batch encoding (others) both give
    exactly ``len(tokenizer.encode(line))`` on any line."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from prox_spark.generation.prompts import _line_counter

    counter = _line_counter(tokenizer)
    pieces = st.sampled_from([" ", "  ", "\t", "<s>", "</s>", "▁", "[001]", "]", "a", "é",
                              "東", "🙂", "\u00a0", "\u200b", "word", "Word,", "\r"])
    lines = st.one_of(st.text(max_size=40), st.lists(pieces, max_size=20).map("".join))

    @settings(max_examples=300, deadline=None)
    @given(batch=st.lists(lines.map(lambda s: "[012]" + s), min_size=1, max_size=8))
    def check(batch):
        assert counter.counts(batch) == [len(tokenizer.encode(line)) for line in batch]

    check()


def test_a_long_document_is_cut_where_its_whole_encoding_would_cut_it(tokenizer):
    """The segment walk that cuts a long document (no window tokenized) ends
    where the first `budget` tokens of the whole text's encoding end."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from prox_spark.generation.prompts import _line_counter

    counter = _line_counter(tokenizer)
    assert counter.segmented
    pieces = st.sampled_from([" ", "  ", "\t", "\n", "\n\n", "a", "é", "東京大学の研究" * 9,
                              "🙂", "\u00a0", "\u200b", "word", "Word,", "\r", "[001]"])
    texts = st.lists(pieces, max_size=600).map("".join)

    @settings(max_examples=200, deadline=None)
    @given(text=texts, budget=st.integers(1, 400))
    def check(text, budget):
        whole = tokenizer.backend_tokenizer.encode(text, add_special_tokens=False)
        expected = len(text) if len(whole.ids) <= budget \
            else whole.token_to_chars(budget - 1)[1]
        end = counter.prefix_end(text, budget)
        if end is None:  # documented: too few tokens in 32 chars per token (a window is encoded)
            assert len(text) > 32 * budget
        else:
            assert end == expected

    check()
    assert counter.prefix_end("a <s> b", 1) is None  # special-token text: a window is encoded
