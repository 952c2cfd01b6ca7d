"""Chunking throughput: `chunk_document` against the plain per-line rule.

    python benchmarks/chunking_throughput.py [--tokenizer DIR] [--docs 400]

Both produce identical chunks (checked here); the plain rule calls
`tokenizer.encode` once per numbered line. Without --tokenizer a small
Llama-style tokenizer is built on the spot; pass the Llama-2 tokenizer of the
released models for realistic figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import corpus

from prox_spark.generation.prompts import _COUNTERS, chunk_document
from prox_spark.testing.naive_chunker import naive_chunks


def load_tokenizer(path: str | None):
    from transformers import AutoTokenizer

    if path is None:
        from prox_spark.testing.tiny_llama import build_tokenizer

        path = str(build_tokenizer(tempfile.mkdtemp(), [t for t, _ in corpus(50)], 4000))
    return AutoTokenizer.from_pretrained(path)


def timed(fn, docs, tok) -> tuple[float, list]:
    _COUNTERS.clear()  # start every run with a cold segment cache
    start = time.perf_counter()
    out = [fn(d, tok) for d in docs]
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokenizer", default=None)
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tok = load_tokenizer(args.tokenizer)
    docs = [t for t, _ in corpus(args.docs, seed=1)]
    mb = sum(len(d.encode()) for d in docs) / 1e6
    fast = plain = float("inf")
    for _ in range(args.repeat):
        t_plain, expected = timed(naive_chunks, docs, tok)
        t_fast, got = timed(chunk_document, docs, tok)
        assert got == expected, "chunk_document differs from the plain rule"
        fast, plain = min(fast, t_fast), min(plain, t_plain)
    print(f"workload: {len(docs)} docs, {mb:.1f} MB; chunks identical: yes")
    for name, sec in (("chunk_document", fast), ("plain per-line encode", plain)):
        print(f"{name:>22}: {len(docs) / sec:8.1f} docs/s  {mb / sec:6.2f} MB/s")
    print(f"ratio chunk_document / plain: {plain / fast:.2f}x")


if __name__ == "__main__":
    main()
