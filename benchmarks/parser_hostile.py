"""Parser time on hostile model outputs, against a linear baseline.

    python benchmarks/parser_hostile.py [--n 20000] [--repeat 3]

For each shape of `prox_spark.testing.hostile_programs` (20,000 calls on one
line, 20,000 unclosed `normalize(`, a 1 MB string, repeated bare names, ...)
prints the parse time and the time a linear parser would take at the
throughput (MB/s) it reaches on ordinary chunk programs from `workload.py`.
Issue 17's bar: every hostile program under 2 s (before: 40-51 s).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import corpus, int_options

from prox_spark.program import parse_program
from prox_spark.testing.hostile_programs import hostile_programs

LIMIT_SECONDS = 2.0


def best_of(programs: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for program in programs:
            parse_program(program)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    args = int_options(__doc__, n=20000, repeat=3)
    ordinary = [program for _, program in corpus(2000)]
    ordinary_mb = sum(len(p.encode()) for p in ordinary) / 1e6
    baseline = ordinary_mb / best_of(ordinary, args.repeat)
    print(f"linear baseline: {baseline:.1f} MB/s on {len(ordinary)} ordinary chunk programs")
    header = f"{'shape':>40} {'MB':>6} {'seconds':>8} {'linear':>8} {'ratio':>6}"
    print(f"{header}  < {LIMIT_SECONDS:g} s")
    slow = 0
    for shape, program in hostile_programs(args.n).items():
        mb = len(program.encode()) / 1e6
        seconds = best_of([program], args.repeat)
        linear = mb / baseline
        ok = seconds < LIMIT_SECONDS
        slow += not ok
        print(f"{shape:>40} {mb:6.2f} {seconds:8.3f} {linear:8.3f} {seconds / linear:6.1f}  "
              f"{'yes' if ok else 'NO'}")
    sys.exit(1 if slow else 0)


if __name__ == "__main__":
    main()
