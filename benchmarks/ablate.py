"""Proxy training throughput, 1 vs 2 processes under Spark's TorchDistributor,
and lm-eval evaluation throughput, on a corpus made on the spot.

    python benchmarks/ablate.py [--tokens 200000] [--hidden 128] [--layers 2]

Prints training tokens/s for one process (in the driver) and for two DDP
processes (`TorchDistributor(local_mode=True)`, gloo on CPU), their ratio,
the same as a per-process ratio, and evaluation examples/s (bits per byte on
reference documents, multiple-choice items). Tokens/s is measured over the
training steps only (Trainer's wall time between the first and the last
checkpoint point), so process start-up is reported apart. Run it on a quiet
machine: two processes on two cores share them with everything else.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=200_000)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()

    from prox_spark.ablate.config import ProxyEval, ProxyModel, ProxyTraining, TaskFile
    from prox_spark.ablate.evaluate import Suite
    from prox_spark.ablate.proxy import ProxyJob, points, train_proxy
    from prox_spark.distill.tokenizer import build_tokenizer
    from prox_spark.session import get_spark
    from prox_spark.testing.ablation_corpus import (
        multiple_choice,
        prose_documents,
        with_boilerplate,
        write_jsonl,
    )

    work = Path(tempfile.mkdtemp(prefix="prox-bench-ablate-"))
    docs = with_boilerplate(prose_documents(2000, seed=1), share=0.3, seed=2)
    tok_dir = build_tokenizer(work / "tok", [d["text"] for d in docs[:500]], 2000)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    stream: list[int] = []
    for d in docs:
        stream += [tok.bos_token_id, *tok(d["text"], add_special_tokens=False)["input_ids"],
                   tok.eos_token_id]
        if len(stream) >= args.tokens:
            break
    if len(stream) < args.tokens:
        sys.exit(f"the made-up corpus holds {len(stream):,} tokens; ask for fewer")
    data = work / "sample.npy"
    np.save(data, np.asarray(stream[:args.tokens], dtype=np.uint32))
    model = ProxyModel(hidden_size=args.hidden, layers=args.layers, heads=args.hidden // 64,
                       seq_len=args.seq_len, vocab_size=2000)
    get_spark("prox-spark-bench-ablate")
    rates = {}
    for processes in (1, 2):
        train = ProxyTraining(batch_size=args.batch // processes, learning_rate=1e-3,
                              num_processes=processes, eval_every_tokens=args.tokens // 4)
        folder = work / f"proxy-{processes}"
        started = time.perf_counter()
        train_proxy(ProxyJob(str(folder), str(data), str(tok_dir), args.tokens, 0, model, train))
        wall = time.perf_counter() - started
        found = [p for _, p in points(folder)]
        first, last = found[0], found[-1]
        seconds = last["train_seconds"] - first["train_seconds"]
        rate = (last["tokens"] - first["tokens"]) / seconds
        rates[processes] = rate
        print(f"{processes} process(es): {rate:,.0f} training tokens/s over steps "
              f"{first['step']}-{last['step']} (same global batch of {args.batch} sequences); "
              f"wall {wall:.1f} s incl. start-up")
    print(f"2 vs 1 processes: {rates[2] / rates[1]:.2f}x tokens/s "
          f"({rates[2] / rates[1] / 2:.2f}x per process)")

    reference = write_jsonl(prose_documents(100, seed=7, prefix="ref"), work / "ref.jsonl")
    tasks = write_jsonl(multiple_choice(200, seed=8), work / "mc.jsonl")
    suite = Suite(ProxyEval(task_files=(TaskFile("mc", str(tasks), 200),), limit=1000),
                  str(reference))
    from transformers import AutoModelForCausalLM

    checkpoint, _ = points(work / "proxy-1")[-1]
    lm = AutoModelForCausalLM.from_pretrained(str(checkpoint)).eval()
    started = time.perf_counter()
    scores = suite.score(lm, tok, args.seq_len)
    seconds = time.perf_counter() - started
    examples = sum(s.examples for s in scores if s.metric != "acc_norm")
    print(f"evaluation: {examples} examples ({', '.join(f'{s.task} {s.metric}' for s in scores)})"
          f" in {seconds:.1f} s = {examples / seconds:.1f} examples/s")
    print(json.dumps({"tokens_per_s_1": rates[1], "tokens_per_s_2": rates[2],
                      "ratio": rates[2] / rates[1], "eval_examples_per_s": examples / seconds}))


if __name__ == "__main__":
    main()
