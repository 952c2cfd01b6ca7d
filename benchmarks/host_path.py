"""Host cost per prompt token: the model stages' CPU path against raw tokenization.

    python benchmarks/host_path.py [--tokenizer DIR] [--docs 600] [--batch 200]
                                   [--repeat 5] [--drop-rate 0.7] [--profile N]

On a GPU the model is fast and the Python around it decides how many CPU
cores one GPU needs. This runs, in one process (no Spark: pyarrow
RecordBatches are handed to the functions Spark would call), what a model
task does per Arrow batch of the fused doc+chunk pass -- the real
`stages.model_stages._model_pass` (text column read, `prepare_doc`,
`prepare_chunks`, `finish_doc`, `doc_statuses`, `finish_chunks`,
`append_columns`) -- then the interpreter the chunk stage runs next
(`stages.apply.apply_batch`, token counts included). Only generation is
replaced: a `ReplayEngine` (the real `Engine`'s tokenization) answers each
prompt with a program recorded in an untimed first run: `drop_doc()` for a
deterministic `--drop-rate` share of doc prompts (default 0.7: ProX's doc
pass kept 19.0B of 62.5B RedPajama-V2 tokens, docs/prox-programs.md §1),
else `keep_doc()`; for a chunk prompt, `remove_lines` over its navigation
and footer lines and a `normalize` of its "Source:" link, or `keep_chunk()`.

Prints, per CPU-second of one process (process CPU time, both threads of
the prefetching pipeline, minus the replay engine's own time): prompt
tokens sent to the engine per second, beside the raw tokenizer's tokens per
second (`backend_tokenizer.encode` of the same documents, same run); the
ratio host/raw, and the cores that feed one GPU reading 300,000 prompt
tokens/s. Median of `--repeat` runs, with min and max. Each run starts with
cold segment caches (`prompts._COUNTERS`).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import re
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyarrow as pa
from workload import FOOT, NAV, corpus

from prox_spark.generation.prompts import _COUNTERS
from prox_spark.schema import (
    CHUNK_FAILURE,
    CHUNK_PROGRAMS,
    CHUNK_TRUNCATED,
    DOC_FAILURE,
    DOC_PROGRAM,
    DOC_TRUNCATED,
    TEXT,
)
from prox_spark.stages.apply import apply_batch
from prox_spark.stages.model_stages import ChunkRefiner, DocRefiner, _model_pass
from prox_spark.testing.replay_engine import ReplayEngine, replaying

GPU_PROMPT_TOKENS_PER_S = 300_000  # the target rate for one GPU
_LINE = re.compile(r"^\[(\d{3,})\](.*)$", re.MULTILINE)
_SOURCE = re.compile(r" Source: http://example\.com/page\?id=\d+, ref=home")
_BOILERPLATE = frozenset(NAV) | frozenset(FOOT)


def load_tokenizer(path: str | None) -> tuple[Any, str]:
    """The tokenizer of directory `path` and its path; by default a small
    Llama-style one trained here on the workload (a fresh clone has no other)."""
    from transformers import AutoTokenizer

    if path is None:
        from prox_spark.testing.tiny_llama import build_tokenizer

        path = str(build_tokenizer(tempfile.mkdtemp(), [t for t, _ in corpus(50)], 4000))
    return AutoTokenizer.from_pretrained(path), path


def recorded_answer(tokenizer: Any, drop_rate: float) -> Callable[[list[int]], str]:
    """The stand-in model: a fixed plausible program per prompt, chosen
    deterministically from its token ids."""

    def answer(ids: list[int]) -> str:
        text = tokenizer.decode(ids, skip_special_tokens=True)
        if "[doc]\n[" not in text:
            share = zlib.crc32(repr(ids).encode()) / 2**32
            return "drop_doc()" if share < drop_rate else "keep_doc()"
        calls, run = [], []
        for number, line in _LINE.findall(text):
            if line.strip() in _BOILERPLATE:
                run.append(int(number))
                continue
            if run:
                calls.append(f"remove_lines(line_start={run[0]}, line_end={run[-1]})")
                run = []
            source = _SOURCE.search(line)
            if source:
                calls.append(f'normalize(source_str="{source.group(0)}", target_str="")')
        if run:
            calls.append(f"remove_lines(line_start={run[0]}, line_end={run[-1]})")
        return "\n".join(calls) or "keep_chunk()"

    return answer


def batches(texts: list[str], size: int) -> list[pa.RecordBatch]:
    """The documents as Arrow batches of `id` and `text`, as Spark hands them over."""
    return [pa.RecordBatch.from_pydict({"id": list(range(k, k + len(texts[k:k + size]))),
                                        TEXT: texts[k:k + size]})
            for k in range(0, len(texts), size)]


@dataclass
class Run:
    """CPU seconds of one host-path run and what it produced."""

    model_seconds: float
    apply_seconds: float
    prompt_tokens: int
    prompts: int
    outputs: list[Any]

    @property
    def seconds(self) -> float:
        return self.model_seconds + self.apply_seconds


def host_path(engine: ReplayEngine, data: list[pa.RecordBatch]) -> Run:
    """One model task over `data`, then the interpreter over its output."""
    for _, counter in _COUNTERS.values():
        counter.cache.clear()
    engine.reset_counts()
    config = engine.config
    doc, chunk = DocRefiner(config), ChunkRefiner(config)
    run = _model_pass(doc, chunk, ())
    started = time.process_time()
    passed = list(run(iter(data)))
    model = time.process_time() - started - engine.replay_seconds
    started = time.process_time()
    outputs = [apply_batch(
        b.column(TEXT).to_pandas(), b.column(DOC_PROGRAM).to_pandas(),
        b.column(CHUNK_PROGRAMS).to_pandas(), chunk.policy, config.tokenizer_name,
        failures=(b.column(DOC_FAILURE).to_pandas(), b.column(CHUNK_FAILURE).to_pandas()),
        truncated=(b.column(DOC_TRUNCATED).to_pandas(), b.column(CHUNK_TRUNCATED).to_pandas()))
        for b in passed]
    apply = time.process_time() - started
    return Run(model, apply, engine.prompt_tokens, engine.prompts_sent,
               [(b, o) for b, o in zip(passed, outputs, strict=True)])


def raw_tokenization(tokenizer: Any, texts: list[str]) -> tuple[float, int]:
    """CPU seconds and tokens of encoding each document once."""
    backend = tokenizer.backend_tokenizer
    started = time.process_time()
    tokens = sum(len(backend.encode(t, add_special_tokens=False).ids) for t in texts)
    return time.process_time() - started, tokens


def _spread(values: list[float]) -> str:
    return f"median {statistics.median(values):,.0f} (min {min(values):,.0f}, " \
           f"max {max(values):,.0f})"


def _same(a: Run, b: Run) -> bool:
    return all(x.equals(y) and p.equals(q)
               for (x, p), (y, q) in zip(a.outputs, b.outputs, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", default=None,
                        help="a tokenizer directory (default: a small one built here)")
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--batch", type=int, default=200, help="documents per Arrow batch")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--drop-rate", type=float, default=0.7)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also print the N costliest functions of one run (cProfile)")
    args = parser.parse_args()
    tokenizer, name = load_tokenizer(args.tokenizer)
    texts = [t for t, _ in corpus(args.docs, seed=2)]
    data = batches(texts, args.batch)
    engine = ReplayEngine.of(tokenizer, name=name,
                             answer_for=recorded_answer(tokenizer, args.drop_rate))
    with replaying(engine):
        recorded = host_path(engine, data)  # untimed: records the answers
        engine.answer_for = None
        host, raw, model_share = [], [], []
        for _ in range(args.repeat):
            seconds, tokens = raw_tokenization(tokenizer, texts)
            raw.append(tokens / seconds)
            result = host_path(engine, data)
            assert _same(result, recorded), "a replayed run differs from the recorded one"
            host.append(result.prompt_tokens / result.seconds)
            model_share.append(result.model_seconds / result.seconds)
        if args.profile:
            # One batch, so that cProfile (main thread only) sees the
            # preparation too, not only what the prefetch thread leaves.
            profiler = cProfile.Profile()
            profiler.runcall(host_path, engine, batches(texts, len(texts)))
    mb = sum(len(t.encode()) for t in texts) / 1e6
    doc_tokens = raw_tokenization(tokenizer, texts)[1]
    print(f"tokenizer: {name}")
    print(f"workload: {len(texts)} docs, {mb:.1f} MB, {doc_tokens:,} tokens, "
          f"batches of {args.batch}; drop rate {args.drop_rate}; no Spark (one process)")
    statuses = collections.Counter(s for _, out in recorded.outputs for s in out["status"])
    print("statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    print(f"prompts sent: {recorded.prompts:,}, {recorded.prompt_tokens:,} prompt tokens "
          f"({recorded.prompt_tokens / doc_tokens:.2f} per document token)")
    print(f"host path, prompt tokens/s per core: {_spread(host)}")
    print(f"  of which model pass {statistics.median(model_share):.0%}, "
          f"interpreter {1 - statistics.median(model_share):.0%} of CPU time")
    print(f"raw tokenizer, tokens/s per core:    {_spread(raw)}")
    ratio = statistics.median(host) / statistics.median(raw)
    print(f"ratio host/raw: {ratio:.2f} (target >= 0.5)")
    print(f"cores per GPU at {GPU_PROMPT_TOKENS_PER_S:,} prompt tokens/s: "
          f"{GPU_PROMPT_TOKENS_PER_S / statistics.median(host):.1f}")
    if args.profile:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)


if __name__ == "__main__":
    main()
