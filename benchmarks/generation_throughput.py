"""Generation through the Spark UDF against standalone vLLM, same prompts and model.

    python benchmarks/generation_throughput.py [--docs 400] [--hidden 256] [--layers 4]

1. Standalone: one `LLM.generate` call on the document prompts in this process
   (after a warm-up call on other documents), greedy, the doc-level budget.
2. Spark: `doc_program_udf` over the same documents in a local[2] session,
   after a warm-up job on the other documents has built the engines.
Prints documents/s for both and the ratio UDF / standalone. A random tiny
Llama (built on the spot) stands in for the released model.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from workload import corpus

from prox_spark.engine import DOC_MAX_NEW_TOKENS, EngineConfig, release_engines
from prox_spark.prompts import doc_prompt
from prox_spark.session import get_spark
from prox_spark.testing.tiny_llama import build_tiny_llama
from prox_spark.udfs import doc_program_udf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    model = build_tiny_llama(
        Path(tempfile.mkdtemp()) / "model", [t for t, _ in corpus(50)],
        hidden_size=args.hidden, layers=args.layers, vocab_size=2000,
    )
    # Distinct documents for warm-up and timing, so vLLM's prefix cache cannot
    # replay the timed prompts (real corpora do not repeat documents).
    warm = [t for t, _ in corpus(args.docs, seed=4)]
    texts = [t for t, _ in corpus(args.docs, seed=5)]
    config = EngineConfig(model=str(model), dtype="float32", kv_cache_gib=1.0,
                          enforce_eager=True)

    from vllm import LLM, SamplingParams

    llm = LLM(model=str(model), dtype="float32", max_model_len=2048, enforce_eager=True,
              kv_cache_memory_bytes=1024**3, seed=0)
    prompts = [doc_prompt(t, llm.get_tokenizer()) for t in texts]
    params = SamplingParams(temperature=0.0, max_tokens=DOC_MAX_NEW_TOKENS)
    warm_prompts = [doc_prompt(t, llm.get_tokenizer()) for t in warm]
    llm.generate(warm_prompts, params, use_tqdm=False)
    start = time.perf_counter()
    outs = llm.generate(prompts, params, use_tqdm=False)
    standalone = time.perf_counter() - start
    out_tokens = sum(len(o.outputs[0].token_ids) for o in outs)
    del llm, outs
    release_engines()
    gc.collect()

    spark = get_spark("prox-bench")
    def frame(docs: list[str]):
        df = spark.createDataFrame(list(enumerate(docs)), "id long, text string")
        df = df.repartition(2).cache()
        df.count()
        return df

    warm_df, df = frame(warm), frame(texts)
    udf = doc_program_udf(config)
    warm_df.select(udf("text").alias("d")).select("d.program").collect()  # engines up
    start = time.perf_counter()
    rows = df.select(udf("text").alias("d")).select("d.program", "d.error").collect()
    spark_time = time.perf_counter() - start
    assert len(rows) == len(texts) and all(r.error is None for r in rows)

    print(f"workload: {len(texts)} docs, {out_tokens} output tokens standalone; "
          f"model hidden={args.hidden} layers={args.layers}")
    print(f"  standalone LLM.generate: {len(texts) / standalone:8.1f} docs/s")
    print(f"  Spark doc_program_udf:   {len(texts) / spark_time:8.1f} docs/s (engines warm)")
    print(f"ratio UDF / standalone: {standalone / spark_time:.2f}")
    spark.stop()


if __name__ == "__main__":
    main()
