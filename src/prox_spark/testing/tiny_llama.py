"""Build a tiny Llama model and a Llama-style tokenizer with no download.

The tokenizer follows the released models' conventions (`<unk>`=0, `<s>`=1,
`</s>`=2, one BOS added on encode, SentencePiece-style BPE with byte
fallback) so prompt code sees what it will see in production; only the
vocabulary is small and trained on the spot.

    >>> path = build_tiny_llama("/tmp/tiny")          # doctest: +SKIP
    >>> LLM(model=str(path))                           # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")
_MARKER = "prox-tiny.json"

_BASE_CORPUS = (
    "[INST] <<SYS>>\nYou are a helpful, respectful and honest assistant.\n<</SYS>>\n\n",
    " [/INST]",
    "[doc]\n[000]Home | About | Contact\n[001]Cookie notice\n[/doc]",
    "drop_doc()\nkeep_doc()\nkeep_chunk()\n",
    'remove_lines(line_start=0, line_end=5)\nnormalize(source_str="Click here", target_str="")\n',
    "The quick brown fox jumps over the lazy dog. 0123456789 ,.;:!?'\"()[]{}<>=+-*/_#|",
)


def build_tokenizer(path: str | Path, corpus: Iterable[str] = (), vocab_size: int = 512) -> Path:
    """Train a SentencePiece-style BPE tokenizer shaped like Llama-2's and save it.

    Same pipeline as the released models' tokenizer: no normalizer, a
    Metaspace pre-tokenizer (``▁`` for spaces, prepended once, no splitting),
    BPE with byte fallback (ids 3..258 are ``<0x00>``..``<0xFF>``), Llama's
    decoder, and one ``<s>`` added on encode. Merges are learnt within words,
    so, as in Llama's vocabulary, ``▁`` only ever starts a token.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    path = Path(path)
    texts = [*_BASE_CORPUS, *corpus]
    learner = Tokenizer(models.BPE(unk_token="<unk>"))
    learner.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=max(vocab_size - 256, 64),
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    learner.train_from_iterator(texts, trainer=trainer)
    learnt = json.loads(learner.to_str())["model"]
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for token, _ in sorted(learnt["vocab"].items(), key=lambda item: item[1]):
        vocab.setdefault(token, len(vocab))
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in learnt["merges"]]

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


def build_tiny_llama(
    path: str | Path,
    corpus: Iterable[str] = (),
    *,
    hidden_size: int = 128,
    layers: int = 2,
    vocab_size: int = 512,
    max_positions: int = 2048,
    seed: int = 0,
) -> Path:
    """Write a randomly initialised tiny `LlamaForCausalLM` plus tokenizer to `path`.

    head_dim is 64, the smallest vLLM's CPU attention accepts.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    build_tokenizer(path, corpus, vocab_size)
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(str(path)))
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=hidden_size // 64,
        num_key_value_heads=1,
        max_position_embeddings=max_positions,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(path), safe_serialization=True)
    (path / _MARKER).write_text(json.dumps({"hidden_size": hidden_size, "layers": layers}))
    return path


def is_tiny_model(path: str | Path) -> bool:
    """True when `path` holds a complete model written by this module."""
    return (Path(path) / _MARKER).is_file()


RELEASED_ARCHITECTURE = {
    "hidden_size": 1280, "intermediate_size": 2048, "num_hidden_layers": 24,
    "num_attention_heads": 16, "num_key_value_heads": 1, "vocab_size": 32000,
    "max_position_embeddings": 2048,
}


def build_released_architecture(path: str | Path, tokenizer_dir: str | Path | None = None,
                                *, dtype: str = "float32", seed: int = 0) -> Path:
    """The released ProX refining models' shape (Llama, 354M parameters) with
    random weights, for benchmarks without the hub. Uses the Llama-2
    tokenizer from `tokenizer_dir` when given, else a trained Llama-style one."""
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    if (path / _MARKER).is_file():
        return path
    path.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir is not None:
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                     "tokenizer.model"):
            if (Path(tokenizer_dir) / name).is_file():
                shutil.copy(Path(tokenizer_dir) / name, path / name)
    else:
        build_tokenizer(path, (), vocab_size=4000)
    config = LlamaConfig(**RELEASED_ARCHITECTURE, bos_token_id=1, eos_token_id=2,
                         pad_token_id=0, tie_word_embeddings=False, torch_dtype=dtype)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(getattr(torch, dtype))
    model.save_pretrained(str(path), safe_serialization=True)
    (path / _MARKER).write_text(json.dumps(RELEASED_ARCHITECTURE))
    return path
