"""Doc and chunk stages on a GPU: UDF path against standalone vLLM, one command.

    python benchmarks/gpu_throughput.py [--docs 2000] [--tokenizer DIR]

For a machine with a GPU and the project's environment (`. scripts/setup.sh`
with a CUDA build of vLLM); nothing is downloaded: the model has the released
architecture (354M parameters) with random weights, in bfloat16. Both stages
run with the released prompt budgets (doc 2000 tokens, chunk 1500) and both
engines share the GPU as `conf/gpu_cluster.yaml` plans it (0.45 each).

Prints, for each stage, prompt tokens/s and documents/s standalone
(`LLM.generate` on the prompt strings) and through the Spark stage in a
local[1] session, and their ratio. Without a GPU it says so and stops
(`--allow-cpu` runs it anyway, slowly).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from generation_throughput import SHARED_TOKENIZER, build_model
from workload import corpus

from prox_spark.generation.engine import (
    CHUNK_MAX_NEW_TOKENS,
    DOC_MAX_NEW_TOKENS,
    EngineConfig,
    get_engine,
    release_engines,
)
from prox_spark.generation.prompts import (
    CHUNK_MAX_TOKENS,
    DOC_MAX_TOKENS,
    chunk_document,
    chunk_prompt,
    doc_prompt,
)
from prox_spark.resources import TaskResources, shares
from prox_spark.session import get_spark
from prox_spark.stages import ChunkRefiner, DocRefiner


def standalone(config: EngineConfig, prompts: list[str], new_tokens: int) -> tuple[float, int]:
    """Seconds and prompt tokens of one `LLM.generate` call (engine warm)."""
    from vllm import SamplingParams

    llm = get_engine(config).llm
    params = SamplingParams(temperature=0.0, max_tokens=new_tokens)
    llm.generate(prompts[: max(1, len(prompts) // 10)], params, use_tqdm=False)
    start = time.perf_counter()
    outs = llm.generate(prompts, params, use_tqdm=False)
    return time.perf_counter() - start, sum(len(o.prompt_token_ids) for o in outs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--tokenizer", default=str(SHARED_TOKENIZER))
    parser.add_argument("--allow-cpu", action="store_true")
    args = parser.parse_args()
    import torch

    on_gpu = torch.cuda.is_available()
    if not on_gpu and not args.allow_cpu:
        print("gpu_throughput: no CUDA GPU here; run it on a GPU machine (or --allow-cpu)")
        raise SystemExit(2)
    args.tiny = False
    model, described = build_model(args)
    gpu = TaskResources(gpus_per_task=1)
    split = shares([("doc", gpu, None), ("chunk", gpu, None)])
    dtype = "bfloat16" if on_gpu else "float32"
    doc = EngineConfig(model=str(model), dtype=dtype, gpu_memory_utilization=split["doc"])
    chunk = EngineConfig(model=str(model), dtype=dtype, gpu_memory_utilization=split["chunk"],
                         seed=1)  # a distinct engine, as in production
    texts = [t for t, _ in corpus(args.docs, seed=5)]
    tok = get_engine(doc).tokenizer
    doc_prompts = [doc_prompt(t, tok, DOC_MAX_TOKENS) for t in texts]
    chunk_prompts = [chunk_prompt(c) for t in texts for c in chunk_document(t, tok,
                                                                             CHUNK_MAX_TOKENS)]
    doc_alone, doc_tokens = standalone(doc, doc_prompts, DOC_MAX_NEW_TOKENS)
    chunk_alone, chunk_tokens = standalone(chunk, chunk_prompts, CHUNK_MAX_NEW_TOKENS)
    release_engines()
    gc.collect()

    spark = get_spark("prox-gpu-bench", cores=1)
    df = spark.createDataFrame(list(enumerate(texts)), "id long, text string").cache()
    df.count()
    results = {}
    for name, stage in (("doc", DocRefiner(doc)), ("chunk", ChunkRefiner(chunk))):
        df.limit(max(1, len(texts) // 10)).transform(stage).count()  # engine up
        start = time.perf_counter()
        df.transform(stage).write.format("noop").mode("overwrite").save()
        results[name] = time.perf_counter() - start
    print(f"workload: {len(texts)} documents; {described}; "
          f"{'GPU ' + torch.cuda.get_device_name(0) if on_gpu else 'CPU'}")
    for name, alone, tokens in (("doc", doc_alone, doc_tokens),
                                ("chunk", chunk_alone, chunk_tokens)):
        udf = results[name]
        print(f"  {name} stage: standalone {tokens / alone:9.1f} prompt tokens/s "
              f"{len(texts) / alone:8.1f} docs/s | UDF {tokens / udf:9.1f} prompt tokens/s "
              f"{len(texts) / udf:8.1f} docs/s | ratio UDF / standalone {alone / udf:.3f}")
    spark.stop()


if __name__ == "__main__":
    main()
