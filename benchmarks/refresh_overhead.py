"""What bounded commits and resumability cost: one commit vs `commit_every`
at 1/10 of the corpus, and a no-op rerun, all in one warm local Spark session.

    python benchmarks/refresh_overhead.py [--docs 20000] [--stages rules|filters|dedup]

Rules-only stages (no model), so the figures isolate the refresh machinery:
planning, per-batch dedup against the table, MERGE, metrics. Prints the
overhead ratio of 10 batches over 1 (target <= 1.15) and the no-op rerun
relative to the first run (target <= 0.1), and the fixed cost of one more
batch in seconds ((ten - one) / 9), from which the overhead at another
`commit_every` follows.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import sentence

from prox_spark.config import parse_config
from prox_spark.run.job import run_pipeline
from prox_spark.session import get_spark

FILTERS = ["gopher_repetition", {"gopher_quality": {"min_doc_words": 50}}, "c4_quality",
           "fineweb_quality"]
STAGES = {
    "rules": ["exact_dedup", {"near_dedup": {"threshold": 0.8}}, *FILTERS],
    "filters": FILTERS,
    "dedup": ["exact_dedup", "near_dedup"],
}


def config(source: Path, output: Path, stages: list, every: int, partitions: int):
    return parse_config({
        "input": {"path": str(source), "format": "jsonl"},
        "output": {"path": str(output)},
        "stages": stages,
        "commit_every": every,
        "spark": {"partitions": partitions},
    }, check_models=False)


def documents(n: int, seed: int = 3) -> list[str]:
    """Web-like prose of 5-15 lines (about 1-3 KB): the rules have work to do."""
    rng = random.Random(seed)
    return ["\n".join(" ".join(sentence(rng) for _ in range(rng.randint(1, 3)))
                      for _ in range(rng.randint(5, 15))) for _ in range(n)]


def write_jsonl(path: Path, texts: list[str]) -> Path:
    with path.open("w") as fh:
        for i, text in enumerate(texts):
            fh.write(json.dumps({"id": f"doc-{i:07d}", "text": text}) + "\n")
    return path


def timed(spark, cfg) -> tuple[float, int]:
    start = time.perf_counter()
    summary = run_pipeline(cfg, spark)
    return time.perf_counter() - start, summary.refined


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--stages", choices=sorted(STAGES), default="rules")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--verbose", action="store_true", help="log each batch")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="[%(asctime)s] %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)

    work = Path(tempfile.mkdtemp(prefix="prox-refresh-bench-"))
    try:
        texts = documents(args.docs)
        source = write_jsonl(work / "corpus.jsonl", texts)
        warm = write_jsonl(work / "warm.jsonl", documents(500, seed=4))
        spark = get_spark("prox-refresh-bench")
        stages = STAGES[args.stages]
        # Warm the session, the Python workers and the rule code.
        timed(spark, config(warm, work / "warm", stages, 100, args.partitions))

        one, n1 = timed(spark, config(source, work / "one", stages, args.docs, args.partitions))
        every = max(1, args.docs // 10)
        ten, n10 = timed(spark, config(source, work / "ten", stages, every, args.partitions))
        noop, n0 = timed(spark, config(source, work / "one", stages, args.docs, args.partitions))
        assert n1 == n10 == args.docs and n0 == 0, (n1, n10, n0)
        print(f"documents: {args.docs:,}   stages: {args.stages}   partitions: {args.partitions}")
        print(f"one commit:            {one:8.1f} s  ({args.docs / one:,.0f} documents/s)")
        print(f"commit_every={every:<9,} {ten:8.1f} s  ({args.docs / ten:,.0f} documents/s)")
        print(f"no-op rerun:           {noop:8.1f} s")
        print(f"overhead of 10 batches vs 1:   {ten / one:.3f}x   (target <= 1.15)")
        # What each batch costs beyond its share of the work (commit, claim,
        # dedup against the table, job planning): the run's overhead is
        # about this times the number of batches over the one-commit time.
        print(f"fixed cost per extra batch:    {(ten - one) / 9:.2f} s")
        print(f"no-op rerun / first run:       {noop / one:.3f}x   (target <= 0.10)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
