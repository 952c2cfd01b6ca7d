"""Chunk interpreter throughput on one core, against the reference algorithm.

    python benchmarks/interpreter_throughput.py [--docs 20000] [--repeat 5]

Prints documents/s and MB/s of document text for prox-spark's
`run_chunk_program` and for a re-creation of the reference executor's
algorithm on the same generated workload, and their ratio. Best of `repeat`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_executor import reference_chunk
from workload import corpus, int_options

from prox_spark.program import run_chunk_program


def best_of(fn, pairs, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for text, program in pairs:
            fn(text, program)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    args = int_options(__doc__, docs=20000, repeat=5)
    pairs = corpus(args.docs)
    mb = sum(len(t.encode()) for t, _ in pairs) / 1e6
    calls = sum(p.count("\n") + 1 for _, p in pairs) / len(pairs)
    lines = sum(t.count("\n") + 1 for t, _ in pairs) / len(pairs)
    print(f"workload: {len(pairs)} docs, {mb:.1f} MB, {lines:.0f} lines and {calls:.1f} calls/doc")
    ours = best_of(run_chunk_program, pairs, args.repeat)
    ref = best_of(reference_chunk, pairs, args.repeat)
    for name, seconds in (("prox-spark", ours), ("reference algorithm", ref)):
        print(f"{name:>20}: {len(pairs) / seconds:10.0f} docs/s  {mb / seconds:7.1f} MB/s")
    print(f"ratio prox-spark / reference: {ref / ours:.2f}x")


if __name__ == "__main__":
    main()
