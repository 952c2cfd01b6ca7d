"""Train a Llama-style BPE tokenizer on the spot, with no download.

The tokenizer follows the released ProX refiners' conventions (`<unk>`=0,
`<s>`=1, `</s>`=2, one BOS added on encode, SentencePiece-style BPE with byte
fallback), so prompt code and the engine see what they see in production;
only the vocabulary is trained on the given corpus. Used for refiners trained
from scratch (`distill.train`) and for the tiny test models.

    >>> build_tokenizer("/tmp/tok", ["drop_doc()", "keep_doc()"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")

# Always in the training text, so the chat frame and the program language
# get their own merges even when the corpus is small.
_BASE_CORPUS = (
    "[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant.\n<</SYS>>\n\n",
    " [/INST]",
    "[doc]\n[000]Home | About | Contact\n[001]Cookie notice\n[/doc]",
    "drop_doc()\nkeep_doc()\nkeep_chunk()\n",
    'remove_lines(line_start=0, line_end=5)\nnormalize(source_str="Click here", target_str="")\n',
    "The quick brown fox jumps over the lazy dog. 0123456789 ,.;:!?'\"()[]{}<>=+-*/_#|",
)


# At most this share of the learnt tokens are single characters, so the
# rest is left for merges however many distinct characters a corpus has.
_ALPHABET_SHARE = 0.75
# Characters seen fewer times are left to byte fallback when the alphabet is limited.
_MIN_CHAR_COUNT = 2


def _alphabet(texts: Sequence[str], learnt: int) -> list[str] | None:
    """The characters that get a token of their own, or None for all of them.

    All when they fit in `_ALPHABET_SHARE` of the `learnt` tokens. Otherwise
    the characters of `_BASE_CORPUS` (the chat frame and program language)
    plus the commonest others seen at least `_MIN_CHAR_COUNT` times, up to
    that share; the rest are encoded as bytes. Spaces count as ``▁``."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(text)
    counts["\u2581"] += counts.pop(" ", 0)
    cap = int(learnt * _ALPHABET_SHARE)
    if len(counts) <= cap:
        return None
    base = set("".join(_BASE_CORPUS).replace(" ", "\u2581"))
    kept = sorted(base)
    for char, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(kept) >= cap or n < _MIN_CHAR_COUNT:
            break
        if char not in base:
            kept.append(char)
    return kept


def build_tokenizer(path: str | Path, corpus: Iterable[str] = (), vocab_size: int = 512) -> Path:
    """Train a SentencePiece-style BPE tokenizer shaped like Llama-2's and save it.

    Same pipeline as the released models' tokenizer: no normalizer, a
    Metaspace pre-tokenizer (``▁`` for spaces, prepended once, no splitting),
    BPE with byte fallback (ids 3..258 are ``<0x00>``..``<0xFF>``), Llama's
    decoder, and one ``<s>`` added on encode. Merges are learnt within words,
    so, as in Llama's vocabulary, ``▁`` only ever starts a token.

    `vocab_size` is an upper bound (a small corpus yields fewer merges); the
    vocabulary holds at least the 3 specials, 256 bytes and 64 learnt tokens.
    A corpus with more distinct characters than 3/4 of the learnt tokens
    (CJK, Hangul) keeps only its commonest characters (`_alphabet`) and
    leaves the rest to byte fallback, so at least 1/4 is left for merges.
    Returns `path`, holding the files `AutoTokenizer.from_pretrained` reads.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast  # heavy (torch): kept out of import time

    path = Path(path)
    vocab, merges = _learn_bpe([*_BASE_CORPUS, *corpus], vocab_size)

    tok = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True,
                   fuse_unk=True)
    )
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
         decoders.Strip(" ", 1, 0)]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        add_bos_token=True,
        add_eos_token=False,
    )
    fast.save_pretrained(str(path))
    return path


def _learn_bpe(texts: Sequence[str], vocab_size: int
               ) -> tuple[dict[str, int], list[tuple[str, ...]]]:
    """BPE merges learnt on `texts` within words, as a vocabulary laid out
    like Llama-2's (3 specials, then the 256 bytes, then the learnt tokens)
    and its merges."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    learner = Tokenizer(models.BPE(unk_token="<unk>"))
    learner.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first", split=True)
    learnt = max(vocab_size - 256, 64)
    alphabet = _alphabet(texts, learnt - len(SPECIAL_TOKENS))
    limits = {} if alphabet is None else {"initial_alphabet": alphabet,
                                          "limit_alphabet": len(alphabet)}
    trainer = trainers.BpeTrainer(
        vocab_size=learnt, special_tokens=list(SPECIAL_TOKENS), show_progress=False, **limits)
    learner.train_from_iterator(texts, trainer=trainer)
    learnt = json.loads(learner.to_str())["model"]
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for token, _ in sorted(learnt["vocab"].items(), key=lambda item: item[1]):
        vocab.setdefault(token, len(vocab))
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in learnt["merges"]]
    return vocab, merges


def chars_per_token(path: str | Path, texts: Sequence[str]) -> float:
    """Characters of `texts` per token of the tokenizer saved at `path`
    (specials not counted): how much text a token carries. About 4 for
    English with Llama-2's tokenizer; near 1 for a tokenizer that fell back
    to characters, below 1 when it encodes characters as bytes."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
    tokens = sum(len(e.ids) for e in tok.encode_batch(list(texts), add_special_tokens=False))
    return sum(map(len, texts)) / max(tokens, 1)
