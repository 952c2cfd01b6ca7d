"""Smoke job: Delta in and out, and a tiny model answering through a Spark UDF.

    spark-submit jobs/smoke.py        # or: python jobs/smoke.py [--output DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from prox_spark.engine import EngineConfig
from prox_spark.session import get_spark
from prox_spark.testing.tiny_llama import build_tiny_llama, is_tiny_model
from prox_spark.udfs import doc_program_udf

DOCS = [
    "Home | About | Contact\nA long article about rivers and the towns along them.",
    "Buy cheap pills now!!! Click here click here click here",
    "Cookie notice: we use cookies.\nThe recipe needs flour, water and salt.",
    "",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default=None, help="where to write the Delta tables")
    args = parser.parse_args(argv)
    out = Path(args.output or tempfile.mkdtemp(prefix="prox-smoke-"))
    model = out / "tiny-model"
    if not is_tiny_model(model):
        build_tiny_llama(model)
    started = time.monotonic()
    spark = get_spark("prox-spark-smoke")
    source = str(out / "source")
    spark.createDataFrame(list(enumerate(DOCS)), "id long, text string").write.format(
        "delta"
    ).mode("overwrite").save(source)
    config = EngineConfig(model=str(model), dtype="float32", kv_cache_gib=0.25, enforce_eager=True)
    docs = spark.read.format("delta").load(source).repartition(2)
    refined = docs.withColumn("doc", doc_program_udf(config)("text"))
    target = str(out / "programs")
    refined.select("id", "doc.program", "doc.error").write.format("delta").mode(
        "overwrite"
    ).save(target)
    rows = spark.read.format("delta").load(target).orderBy("id").collect()
    for row in rows:
        print(f"id={row.id} program={row.program!r} error={row.error!r}")
    print(f"smoke job: {len(rows)} rows written to {target} in {time.monotonic() - started:.1f}s")
    return 0 if len(rows) == len(DOCS) else 1


if __name__ == "__main__":
    raise SystemExit(main())
