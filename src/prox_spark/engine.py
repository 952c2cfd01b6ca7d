"""Executor-local vLLM engines, one per Python worker, cached in this module.

The cache lives here, in an importable module, so a reused Spark Python worker
finds its engine again on the next task and the next job; a cache defined in a
notebook or script would be pickled with the UDF and lost on every task.

    >>> engine = get_engine(EngineConfig(model="/models/web-doc-refining-lm"))  # doctest: +SKIP
    >>> engine.generate(["[INST] ... [/INST]"], max_new_tokens=15)             # doctest: +SKIP
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

DOC_MAX_NEW_TOKENS = 15
CHUNK_MAX_NEW_TOKENS = 256
GiB = 1024**3


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How to build one engine. Equal configurations share a cached engine.

    `kv_cache_gib` caps the KV cache of each engine; on CPU it is required in
    practice (vLLM would otherwise reserve most of the RAM for every engine),
    so it defaults to `cpu_kv_cache_gib` there. On GPU, without it, the engine
    takes `gpu_memory_utilization` of its device.
    """

    model: str
    tokenizer: str | None = None
    dtype: str = "auto"
    max_model_len: int = 2048
    gpu_memory_utilization: float = 0.85
    kv_cache_gib: float | None = None
    cpu_kv_cache_gib: float = 1.0
    tensor_parallel_size: int = 1
    max_num_seqs: int = 256
    enforce_eager: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError("EngineConfig.model must name a model directory or hub id")
        if self.max_model_len <= 0:
            raise ValueError(f"max_model_len must be positive, got {self.max_model_len}")
        if not 0.0 < self.gpu_memory_utilization <= 1.0:
            raise ValueError(
                f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}"
            )
        for name in ("kv_cache_gib", "cpu_kv_cache_gib"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.tensor_parallel_size < 1 or self.max_num_seqs < 1:
            raise ValueError("tensor_parallel_size and max_num_seqs must be >= 1")

    @property
    def tokenizer_name(self) -> str:
        """The tokenizer the engine uses: `tokenizer`, else the model's own."""
        return self.tokenizer or self.model


@dataclass(frozen=True, slots=True)
class Generation:
    """One prompt's answer, or why it was not sent."""

    text: str | None
    error: str | None = None
    prompt_tokens: int = 0


def bind_task_gpus() -> list[str]:
    """Make CUDA see only the GPUs Spark assigned to the current task.

    Spark assigns addresses but does not isolate devices; this must run before
    CUDA is initialised in the worker. Returns the addresses (empty off-GPU).
    """
    try:
        from pyspark import TaskContext
    except ImportError:
        return []
    context = TaskContext.get()
    if context is None:
        return []
    gpus = context.resources().get("gpu")
    if gpus is None or not gpus.addresses:
        return []
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus.addresses)
    return list(gpus.addresses)


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


@dataclass
class Engine:
    """A vLLM engine plus the tokenizer its prompts are checked with."""

    config: EngineConfig
    llm: Any = field(repr=False)
    tokenizer: Any = field(repr=False)

    @classmethod
    def create(cls, config: EngineConfig) -> Engine:
        bind_task_gpus()
        # Keep vLLM's engine core inside the calling process: Spark Python
        # workers have no `__main__` guard for vLLM's spawned process. Set
        # here, when an engine is built, not when this module is imported.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from vllm import LLM

        kwargs: dict[str, Any] = {
            "model": config.model,
            "tokenizer": config.tokenizer_name,
            "dtype": config.dtype,
            "max_model_len": config.max_model_len,
            "tensor_parallel_size": config.tensor_parallel_size,
            "max_num_seqs": config.max_num_seqs,
            "enforce_eager": config.enforce_eager,
            "seed": config.seed,
            "gpu_memory_utilization": config.gpu_memory_utilization,
        }
        kv_gib = config.kv_cache_gib
        if kv_gib is None and _on_cpu():
            kv_gib = config.cpu_kv_cache_gib
        if kv_gib is not None:
            kwargs["kv_cache_memory_bytes"] = int(kv_gib * GiB)
        llm = LLM(**kwargs)
        return cls(config, llm, llm.get_tokenizer())

    def __post_init__(self) -> None:
        from tokenizers import Tokenizer

        # A private copy that reads "<s>" inside a document as text, so the
        # only BOS the model sees is the one `encode` puts first.
        self._backend = Tokenizer.from_str(self.tokenizer.backend_tokenizer.to_str())
        self._backend.encode_special_tokens = True

    def encode(self, prompts: list[str]) -> list[list[int]]:
        """Token ids of each prompt with exactly one leading BOS.

        Special-token text inside a document (a literal ``<s>``) stays text.
        """
        bos = self.tokenizer.bos_token_id
        encoded = self._backend.encode_batch_fast(prompts, add_special_tokens=False)
        ids = [list(e.ids) for e in encoded]
        if bos is not None:
            ids = [[bos, *row] for row in ids]
        return ids

    def generate(self, prompts: list[str], max_new_tokens: int) -> list[Generation]:
        """Greedy answers for `prompts`, in order.

        A prompt that would not leave room for the answer inside the model
        context is not sent; its Generation carries the reason instead.
        """
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        limit = self.config.max_model_len
        results: list[Generation | None] = [None] * len(prompts)
        batch: list[TokensPrompt] = []
        params: list[SamplingParams] = []
        index: list[int] = []
        for i, ids in enumerate(self.encode(prompts)):
            room = limit - len(ids)
            if room < 1:
                results[i] = Generation(
                    None, f"prompt of {len(ids)} tokens exceeds the context of {limit}", len(ids)
                )
                continue
            batch.append(TokensPrompt(prompt_token_ids=ids))
            params.append(
                SamplingParams(temperature=0.0, max_tokens=min(max_new_tokens, room), seed=0)
            )
            index.append(i)
        if batch:
            outputs = self.llm.generate(batch, params, use_tqdm=False)
            for i, out in zip(index, outputs, strict=True):
                results[i] = Generation(out.outputs[0].text, None, len(out.prompt_token_ids))
        return [r for r in results if r is not None]


_LOCK = threading.Lock()
_ENGINES: dict[EngineConfig, Engine] = {}
_TOKENIZERS: dict[str, Any] = {}
_CREATED = 0


def get_tokenizer(name: str) -> Any:
    """The Hugging Face tokenizer of a model directory or id, cached per process
    (loads no model weights)."""
    with _LOCK:
        tok = _TOKENIZERS.get(name)
        if tok is None:
            from transformers import AutoTokenizer

            tok = _TOKENIZERS[name] = AutoTokenizer.from_pretrained(name)
        return tok


def get_engine(config: EngineConfig) -> Engine:
    """The cached engine for `config` in this process, created on first use."""
    global _CREATED
    with _LOCK:
        engine = _ENGINES.get(config)
        if engine is None:
            engine = Engine.create(config)
            _ENGINES[config] = engine
            _CREATED += 1
        return engine


def engines_created() -> int:
    """How many engines this process has built (to check that caching works)."""
    return _CREATED


def release_engines() -> None:
    """Drop every cached engine of this process (frees its memory)."""
    with _LOCK:
        _ENGINES.clear()
