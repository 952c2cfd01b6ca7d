"""The four quality filters: prox-spark through Spark against datatrove in one process.

    python benchmarks/rules_throughput.py [--docs 2000]

Each filter is applied to every document (not cascaded), in both systems.
datatrove runs its filters in this Python process, one core; prox-spark runs
`RuleStage`s in a warm local[2] session (one job per filter, after a warm-up
job). Also shows prox-spark's rule functions in this process, without Spark.
Prints documents/s, the ratio, and the ratio per core.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import corpus, int_options

from prox_spark.rules import QUALITY_RULES
from prox_spark.session import get_spark
from prox_spark.stages import RuleStage

NAMES = list(QUALITY_RULES)


def run_datatrove(texts: list[str]) -> float:
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    filters = [GopherQualityFilter(), GopherRepetitionFilter(), C4QualityFilter(),
               FineWebQualityFilter()]
    filters[0].filter(Document(text=texts[0], id="warm"))  # loads spaCy
    start = time.perf_counter()
    for flt in filters:
        for i, text in enumerate(texts):
            flt.filter(Document(text=text, id=str(i)))
    return time.perf_counter() - start


def run_local(texts: list[str]) -> float:
    start = time.perf_counter()
    for fn in QUALITY_RULES.values():
        for text in texts:
            fn(text)
    return time.perf_counter() - start


def run_spark(texts: list[str], cores: int) -> float:
    spark = get_spark("prox-rules-bench", cores=cores)
    df = spark.createDataFrame(list(enumerate(texts)), "id long, text string")
    df = df.repartition(cores * 2).cache()
    df.count()

    def one_pass() -> float:
        start = time.perf_counter()
        for name in NAMES:
            df.transform(RuleStage(name)).select("status").where("status = 'dropped'").count()
        return time.perf_counter() - start

    one_pass()  # warm-up: Python workers, imports
    elapsed = one_pass()
    spark.stop()
    return elapsed


def main() -> None:
    args = int_options(__doc__, docs=2000, cores=2)
    texts = [t for t, _ in corpus(args.docs, seed=3)]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    theirs = run_datatrove(texts)
    local = run_local(texts)
    ours = run_spark(texts, args.cores)
    n = len(texts)
    print(f"workload: {n} docs, {mb:.1f} MB, 4 filters each")
    print(f"  datatrove, 1 process:          {n / theirs:8.1f} docs/s (all 4 filters)")
    print(f"  prox-spark rules, 1 process:   {n / local:8.1f} docs/s")
    print(f"  prox-spark on Spark local[{args.cores}]:  {n / ours:8.1f} docs/s")
    print(f"ratio Spark / datatrove: {theirs / ours:.2f}x; "
          f"per core: {theirs / ours / args.cores:.2f}x; "
          f"one process / datatrove: {theirs / local:.2f}x")


if __name__ == "__main__":
    main()
