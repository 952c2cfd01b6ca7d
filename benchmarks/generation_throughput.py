"""The doc stage through Spark against standalone vLLM: same model, same documents.

    python benchmarks/generation_throughput.py [--docs 32] [--prompt-tokens 256]
        [--tokenizer ../shared/llama2-tokenizer] [--tiny]

The model has the released refining models' architecture (Llama, 24 layers,
hidden 1280, 16 heads, 1 KV head, intermediate 2048, vocab 32000: 354M
parameters) with random weights built on the spot, and the real Llama-2
tokenizer when `--tokenizer` points at it (the default looks next to the
checkout). `--tiny` swaps in a small model for a quick check.

1. Standalone: one `LLM.generate` call on the documents' prompt strings in
   this process, after a warm-up call on other documents.
2. UDF path: the `DocRefiner` stage (prompt building, one tokenization,
   Arrow batches, prefetch, generate) in a local[1] session whose single
   Python worker gets the same CPU threads, after a warm-up job.
Prints documents/s and prompt tokens/s for both, the ratio UDF / standalone,
and the share of the UDF's wall time spent outside `generate`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

from workload import corpus

from prox_spark.generation.engine import DOC_MAX_NEW_TOKENS, EngineConfig, release_engines
from prox_spark.generation.prompts import doc_prompt
from prox_spark.session import get_spark
from prox_spark.stages import DocRefiner
from prox_spark.testing.tiny_llama import build_released_architecture, build_tiny_llama

SHARED_TOKENIZER = Path(__file__).resolve().parents[2] / "shared" / "llama2-tokenizer"


def build_model(args: argparse.Namespace) -> tuple[Path, str]:
    cache = Path(os.environ.get("PROX_SPARK_CACHE", Path.home() / ".cache" / "prox-spark"))
    if args.tiny:
        path = build_tiny_llama(Path(tempfile.mkdtemp()) / "model", [t for t, _ in corpus(50)],
                                hidden_size=256, layers=4, vocab_size=2000)
        return path, "tiny Llama (hidden 256, 4 layers)"
    tokenizer = Path(args.tokenizer) if args.tokenizer else None
    if tokenizer is not None and not (tokenizer / "tokenizer.json").is_file():
        tokenizer = None
    name = "released-arch-llama2" if tokenizer else "released-arch-trained-tok"
    path = build_released_architecture(cache / "bench-models" / name, tokenizer)
    return path, ("released architecture, 354M random weights, "
                  + ("Llama-2 tokenizer" if tokenizer else "a trained Llama-style tokenizer"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=32)
    parser.add_argument("--prompt-tokens", type=int, default=256,
                        help="doc prompt budget (the released setting is 2000)")
    parser.add_argument("--tokenizer", default=str(SHARED_TOKENIZER))
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    model, described = build_model(args)
    # Distinct documents for warm-up and timing, so vLLM's prefix cache cannot
    # replay the timed prompts (real corpora do not repeat documents).
    warm = [t for t, _ in corpus(max(4, args.docs // 4), seed=4)]
    texts = [t for t, _ in corpus(args.docs, seed=5)]
    config = EngineConfig(model=str(model), dtype="float32", kv_cache_gib=1.0,
                          enforce_eager=True)

    from vllm import LLM, SamplingParams

    llm = LLM(model=str(model), dtype="float32", max_model_len=2048, enforce_eager=True,
              kv_cache_memory_bytes=1024**3, seed=0)
    tok = llm.get_tokenizer()
    prompts = [doc_prompt(t, tok, args.prompt_tokens) for t in texts]
    params = SamplingParams(temperature=0.0, max_tokens=DOC_MAX_NEW_TOKENS)
    llm.generate([doc_prompt(t, tok, args.prompt_tokens) for t in warm], params,
                 use_tqdm=False)
    start = time.perf_counter()
    outs = llm.generate(prompts, params, use_tqdm=False)
    standalone = time.perf_counter() - start
    prompt_tokens = sum(len(o.prompt_token_ids) for o in outs)
    del llm, outs
    release_engines()
    gc.collect()

    log = Path(tempfile.mkdtemp()) / "engine.jsonl"
    os.environ["PROX_SPARK_ENGINE_LOG"] = str(log)
    spark = get_spark("prox-bench", cores=1, conf={
        "spark.executorEnv.OMP_NUM_THREADS": str(args.threads),
        "spark.executorEnv.PROX_SPARK_ENGINE_LOG": str(log)})

    def frame(docs: list[str]):
        df = spark.createDataFrame(list(enumerate(docs)), "id long, text string").cache()
        df.count()
        return df

    stage = DocRefiner(config, max_prompt_tokens=args.prompt_tokens)
    frame(warm).transform(stage).select("doc_program").collect()  # engine up
    log.write_text("")
    df = frame(texts)
    start = time.perf_counter()
    rows = df.transform(stage).select("doc_program", "doc_error").collect()
    udf_time = time.perf_counter() - start
    assert len(rows) == len(texts) and all(r.doc_error is None for r in rows)
    done = [json.loads(x) for x in log.read_text().splitlines()]
    generating = sum(r.get("generate_seconds", 0.0) for r in done
                     if r["event"] == "model_task_done")

    print(f"workload: {len(texts)} documents, {prompt_tokens} prompt tokens, prompts of at "
          f"most {args.prompt_tokens} tokens; {described}; {args.threads} CPU thread(s)")
    print(f"  standalone LLM.generate: {len(texts) / standalone:8.2f} docs/s "
          f"{prompt_tokens / standalone:8.1f} prompt tokens/s")
    print(f"  UDF path (DocRefiner):   {len(texts) / udf_time:8.2f} docs/s "
          f"{prompt_tokens / udf_time:8.1f} prompt tokens/s")
    print(f"ratio UDF / standalone: {standalone / udf_time:.3f}")
    print(f"share of UDF wall time outside generate: {1 - generating / udf_time:.3f} "
          f"({generating:.1f} s of {udf_time:.1f} s in generate)")
    spark.stop()


if __name__ == "__main__":
    main()
