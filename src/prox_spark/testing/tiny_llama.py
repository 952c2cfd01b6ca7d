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

# Moved to the distill package (refiners trained from scratch use it); kept
# importable from here for tests and benchmarks.
from prox_spark.distill.tokenizer import SPECIAL_TOKENS, build_tokenizer

__all__ = [
    "RELEASED_ARCHITECTURE",
    "SPECIAL_TOKENS",
    "build_released_architecture",
    "build_tiny_llama",
    "build_tokenizer",
    "is_tiny_model",
]

_MARKER = "prox-tiny.json"


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
