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
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from prox_spark.errors import EngineStartError
from prox_spark.generation.logs import record_event, route_library_output, verbose
from prox_spark.generation.prompts import text_encoding
from prox_spark.params import Doc, Range, check_fields

DOC_MAX_NEW_TOKENS = 15
CHUNK_MAX_NEW_TOKENS = 256
GiB = 1024**3


# vLLM's `ModelDType` (vllm/config/model.py), spelled out so that a typo is a
# config error, not an engine that fails to start on every worker.
ModelDtype = Literal["auto", "half", "float16", "bfloat16", "float", "float32"]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How to build one engine. Equal configurations share a cached engine.

    `kv_cache_gib` caps the KV cache of each engine; on CPU it is required in
    practice (vLLM would otherwise reserve most of the RAM for every engine),
    so it defaults to `cpu_kv_cache_gib` there. On GPU, without it, the engine
    takes `gpu_memory_utilization` of its device (a share per engine: two
    engines on one GPU must split it; `resources.shares` computes the split,
    and None means the whole budget, 0.9, for a lone engine).
    """

    model: Annotated[str, Doc("a model directory or Hugging Face hub id")]
    tokenizer: Annotated[str | None, Doc("its tokenizer, when not the model's own")] = None
    dtype: Annotated[ModelDtype, Doc("weights' dtype as vLLM names it")] = "auto"
    max_model_len: Annotated[int, Range(0, open_low=True), Doc(
        "the engine's context, in tokens")] = 2048
    gpu_memory_utilization: Annotated[float | None, Range(0, 1, open_low=True), Doc(
        "this engine's share of its GPU (null: split `gpu_memory_fraction`)")] = None
    kv_cache_gib: Annotated[float | None, Range(0, open_low=True), Doc(
        "KV cache per engine, GiB (null: `cpu_kv_cache_gib` on CPU)")] = None
    cpu_kv_cache_gib: Annotated[float, Range(0, open_low=True), Doc(
        "KV cache per engine on CPU, GiB")] = 1.0
    tensor_parallel_size: Annotated[int, Range(1), Doc("GPUs one engine spans")] = 1
    max_num_seqs: Annotated[int, Range(1), Doc("prompts the engine runs at once")] = 256
    enforce_eager: Annotated[bool, Doc("no CUDA graphs (vLLM's enforce_eager)")] = False
    seed: Annotated[int, Doc("the engine's random seed (decoding is greedy)")] = 0

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError("EngineConfig.model must name a model directory or hub id")
        check_fields(self)

    @property
    def tokenizer_name(self) -> str:
        """The tokenizer the engine uses: `tokenizer`, else the model's own."""
        return self.tokenizer or self.model


# `Generation.failure` kinds: why a prompt got no answer (the row's
# drop_reason is then `failed:<kind>`).
PROMPT_TOO_LONG = "prompt_too_long"
GENERATION_ERROR = "generation"
ENGINE_START = "engine_start"


@dataclass(frozen=True, slots=True)
class Generation:
    """One prompt's answer, or why it was not sent.

    `finish_reason` is vLLM's: "stop" (the model ended its answer) or
    "length" (cut at `max_new_tokens` or the context; see `truncated`).
    `failure` is a kind (`PROMPT_TOO_LONG`, `GENERATION_ERROR`) when `text`
    is None.
    """

    text: str | None
    error: str | None = None
    prompt_tokens: int = 0
    finish_reason: str | None = None
    failure: str | None = None

    @property
    def truncated(self) -> bool:
        """The answer was cut at the token limit, not ended by the model."""
        return self.finish_reason == "length"


def task_gpus() -> tuple[str, ...]:
    """The GPU addresses Spark assigned to the current task (empty off-GPU)."""
    try:
        from pyspark import TaskContext
    except ImportError:
        return ()
    context = TaskContext.get()
    if context is None:
        return ()
    gpus = context.resources().get("gpu")
    return tuple(gpus.addresses) if gpus is not None and gpus.addresses else ()


def _cuda_initialized() -> bool:
    import sys

    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_initialized())
    except Exception:
        return False


def bind_task_gpus() -> list[str]:
    """Make CUDA see only the GPUs Spark assigned to the current task.

    Spark assigns addresses but does not isolate devices; this must run before
    CUDA is initialised in the worker, so a process that already initialised
    CUDA for other GPUs is refused. Returns the addresses (empty off-GPU).
    """
    addresses = task_gpus()
    if not addresses:
        return []
    wanted = ",".join(addresses)
    current = os.environ.get("CUDA_VISIBLE_DEVICES")
    if current != wanted and _cuda_initialized():
        raise EngineStartError(
            f"this Python worker already uses GPU {current} and cannot switch to GPU {wanted}; "
            "give each executor one GPU, or set spark.python.worker.reuse=false")
    os.environ["CUDA_VISIBLE_DEVICES"] = wanted
    return list(addresses)


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
        # Keep vLLM's engine core inside the calling process: Spark Python
        # workers have no `__main__` guard for vLLM's spawned process. Set
        # here, when an engine is built, not when this module is imported.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        route_library_output()
        from vllm import LLM

        addresses = bind_task_gpus()
        kwargs: dict[str, Any] = {
            "model": config.model,
            "tokenizer": config.tokenizer_name,
            "dtype": config.dtype,
            "max_model_len": config.max_model_len,
            "tensor_parallel_size": config.tensor_parallel_size,
            "max_num_seqs": config.max_num_seqs,
            "enforce_eager": config.enforce_eager,
            "seed": config.seed,
            "gpu_memory_utilization": config.gpu_memory_utilization or 0.9,
            "use_tqdm_on_load": verbose(),
        }
        kv_gib = config.kv_cache_gib
        if kv_gib is None and _on_cpu():
            kv_gib = config.cpu_kv_cache_gib
        if kv_gib is not None:
            kwargs["kv_cache_memory_bytes"] = int(kv_gib * GiB)
        llm = LLM(**kwargs)
        record_event("engine_built", model=config.model, gpus=addresses, llm_args=kwargs)
        return cls(config, llm, llm.get_tokenizer())

    def __post_init__(self) -> None:
        # Reads "<s>" inside a document as text, so the only BOS the model
        # sees is the one `encode` puts first. Every budget count (chunks,
        # doc truncation, token statistics) uses this same encoding.
        self.text_tokenizer = text_encoding(self.tokenizer)
        self._backend = self.text_tokenizer.backend_tokenizer
        self._bos = self.tokenizer.bos_token_id

    def encode_one(self, prompt: str) -> list[int]:
        """`encode` for one prompt (what the prompt builder measures with, so a
        prompt is tokenized once and its ids are what the engine receives)."""
        # The batch call skips the character offsets `encode` would compute;
        # `ids` is a fresh list, so the BOS goes in place.
        ids: list[int] = self._backend.encode_batch_fast([prompt], add_special_tokens=False)[0].ids
        if self._bos is not None:
            ids.insert(0, self._bos)
        return ids

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

    def generate(self, prompts: list[str] | list[list[int]], max_new_tokens: int
                 ) -> list[Generation]:
        """Greedy answers for `prompts` (texts, or token ids from `encode`), in order.

        All prompts go to vLLM in one call, longest first, so its scheduler
        can pack them. A prompt that would not leave room for the answer
        inside the model context is not sent; its Generation says why.
        Each call to vLLM is a `generate` event of the engine log (prompts,
        prompt tokens, seconds).
        """
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        limit = self.config.max_model_len
        results: list[Generation | None] = [None] * len(prompts)
        batch: list[TokensPrompt] = []
        params: list[SamplingParams] = []
        index: list[int] = []
        texts = [p for p in prompts if isinstance(p, str)]
        fresh = iter(self.encode(texts) if texts else [])
        encoded = [next(fresh) if isinstance(p, str) else list(p) for p in prompts]
        for i in sorted(range(len(encoded)), key=lambda i: -len(encoded[i])):
            ids = encoded[i]
            room = limit - len(ids)
            if room < 1:
                results[i] = Generation(
                    None, f"prompt of {len(ids)} tokens exceeds the context of {limit}", len(ids),
                    failure=PROMPT_TOO_LONG)
                continue
            batch.append(TokensPrompt(prompt_token_ids=ids))
            params.append(
                SamplingParams(temperature=0.0, max_tokens=min(max_new_tokens, room), seed=0)
            )
            index.append(i)
        if batch:
            started = time.perf_counter()
            outputs = self.llm.generate(batch, params, use_tqdm=False)
            seconds = time.perf_counter() - started
            GENERATE_SECONDS[0] += seconds
            PROMPT_TOKENS[0] += sum(len(p["prompt_token_ids"]) for p in batch)
            record_event("generate", model=self.config.model, prompts=len(batch),
                         prompt_tokens=sum(len(p["prompt_token_ids"]) for p in batch),
                         seconds=seconds)
            for i, out in zip(index, outputs, strict=True):
                answer = out.outputs[0]
                results[i] = Generation(answer.text, None, len(out.prompt_token_ids),
                                        answer.finish_reason)
        return [r for r in results if r is not None]


# Seconds this process spent inside vLLM's generate (to see what else costs),
# and the prompt tokens it sent there.
GENERATE_SECONDS = [0.0]
PROMPT_TOKENS = [0]
_LOCK = threading.Lock()


def generate_seconds() -> float:
    """Seconds this process has spent inside vLLM's `generate` so far.

    A function, not the list: a UDF closure pickled by value would carry a
    copy of the list, never updated in the worker.
    """
    return GENERATE_SECONDS[0]


def prompt_tokens_sent() -> int:
    """Prompt tokens this process has sent to vLLM's `generate` so far."""
    return PROMPT_TOKENS[0]


_ENGINES: dict[tuple[EngineConfig, tuple[str, ...]], Engine] = {}
_FAILED: dict[tuple[EngineConfig, tuple[str, ...]], str] = {}
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


def counting_tokenizer(name: str | None) -> Any | None:
    """`get_tokenizer(name)` for token statistics, or None when it cannot be
    loaded (the counts are then null): a statistic never fails a task."""
    if name is None:
        return None
    try:
        return get_tokenizer(name)
    except Exception as exc:
        record_event("tokenizer_failed", tokenizer=name, error=f"{type(exc).__name__}: {exc}")
        return None


def get_engine(config: EngineConfig) -> Engine:
    """The cached engine for `config` and the current task's GPUs, created on
    first use; raises `EngineStartError` if it cannot be built.

    An engine is reused only by tasks holding the same GPU addresses; a task
    on another GPU releases it and builds its own, but only once the worker
    is known to be able to switch GPUs (`bind_task_gpus`): a worker that
    cannot keeps its engines and this task gets `EngineStartError`. A build
    that failed is not retried in this process (every later batch gets the
    same error fast).
    """
    global _CREATED
    key = (config, task_gpus())
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is not None:
            return engine
        if key in _FAILED:
            raise EngineStartError(_FAILED[key])
        others = [k for k in _ENGINES if k[1] != key[1]]
        if others:
            bind_task_gpus()  # raises, engines kept, if this worker cannot switch
        for other in others:
            del _ENGINES[other]  # a GPU this task does not hold
        try:
            engine = Engine.create(config)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}".strip()[:1000]
            _FAILED[key] = message
            record_event("engine_failed", model=config.model, gpus=key[1], error=message)
            raise EngineStartError(message) from exc
        _ENGINES[key] = engine
        _CREATED += 1
        return engine


def engines_created() -> int:
    """How many engines this process has built (to check that caching works)."""
    return _CREATED


def release_engines() -> None:
    """Drop every cached engine of this process (frees its memory)."""
    with _LOCK:
        _ENGINES.clear()
        _FAILED.clear()
