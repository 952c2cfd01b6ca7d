"""Refiner training throughput, one process vs two under TorchDistributor, and
the starter refiner's scores.

    python benchmarks/distill.py [--examples 48] [--steps 12] [--hidden 256 --layers 4]
    python benchmarks/distill.py --starter MODEL_DIR     # only the starter's F1 figures

Trains the same model (from scratch, same tokenizer, same examples: chunk
prompts of generated web-like documents with their programs, same steps and
the same global batch) twice: in this process with all the machine's cores as
torch threads, then as 2 gloo processes under Spark's
`TorchDistributor(local_mode=True)`, each with cores / 2 threads. Prints the
machine's cores, training tokens per second in total and per process (tokens
seen / the Trainer's wall time; process start-up and model saving are outside
it, the whole call's wall time is printed beside it) and the ratio of the
totals. On a 2-core machine the two processes share the cores the one process
had, so the ratio can only show DDP's overhead (gradient all-reduce, a
process each), not a speed-up: that needs a core or a GPU per process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import corpus

from prox_spark.distill.card import CARD_JSON
from prox_spark.distill.config import TrainConfig
from prox_spark.distill.tokenizer import build_tokenizer
from prox_spark.distill.train import TOKENIZER_DIR, train_sft

# What the issue asks of a starter refiner against its teacher.
STARTER_TARGETS = {"doc f1": 0.8, "chunk line f1": 0.6}


def examples(n: int, tokenizer: Any, max_tokens: int) -> list[tuple[str, str]]:
    """Chunk prompts of `n` generated documents (first chunk) and their programs."""
    from prox_spark.generation.prompts import chunk_document, chunk_prompt

    pairs = []
    for text, program in corpus(n, seed=3):
        chunk = chunk_document(text, tokenizer, max_tokens)[0]
        pairs.append((chunk_prompt(chunk), program))
    return pairs


def run(pairs: list[tuple[str, str]], tokenizer_dir: Path, root: Path, name: str,
        processes: int, args: argparse.Namespace) -> dict[str, float]:
    """Train with `processes` processes sharing the machine's cores evenly
    (torch threads set through OMP_NUM_THREADS, which the DDP workers inherit)
    and a global batch of `args.batch` x 2 whatever the process count."""
    import torch

    cores = os.cpu_count() or 1
    threads = max(1, cores // processes)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    out = root / name
    shutil.copytree(tokenizer_dir, out / TOKENIZER_DIR)  # identical tokenizer for both runs
    config = TrainConfig(
        output_dir=str(out), hidden_size=args.hidden, layers=args.layers,
        heads=args.hidden // 64, vocab_size=args.vocab, max_steps=args.steps,
        batch_size=args.batch * 2 // processes, save_steps=10**6, num_processes=processes,
        local_mode=True, max_seq_tokens=args.max_tokens + 256,
        max_positions=max(2048, args.max_tokens + 256))
    started = time.perf_counter()
    result = train_sft(pairs, config)
    wall = time.perf_counter() - started
    rate = result.train_tokens / result.seconds
    return {"tokens": result.train_tokens, "seconds": result.seconds, "wall": wall,
            "threads": threads, "processes": processes, "rate": rate,
            "per_process": rate / processes, "loss": result.losses[-1][1],
            "examples": len(pairs) - result.skipped_examples}


def print_starter_scores(model_dir: str | Path) -> None:
    """Print a starter refiner's doc F1 and chunk line F1 against its teacher,
    read from the evaluation section `prox-spark evaluate` writes into the
    model card (``prox_card.json``), beside the issue's targets."""
    card_path = Path(model_dir) / CARD_JSON
    card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
    evaluation = card.get("evaluation")
    if not isinstance(evaluation, Mapping):
        print(f"starter {model_dir}: not evaluated yet (run `prox-spark evaluate`)")
        return
    doc = evaluation.get("doc") or {}
    chunk = evaluation.get("chunk") or {}
    figures = {"doc f1": doc.get("f1"), "chunk line f1": chunk.get("line_f1")}
    print(f"starter refiner {model_dir} (teacher: {card.get('teacher', 'unknown')})")
    for name, value in figures.items():
        shown = "n/a" if value is None else f"{value:.3f}"
        print(f"  {name:14s} {shown:>6s}   target >= {STARTER_TARGETS[name]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=4,
                        help="per process of the two; the one process takes twice as many")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=4000)
    parser.add_argument("--max-tokens", type=int, default=512, help="chunk budget of a prompt")
    parser.add_argument("--starter", default=None, help="a starter refiner's model directory")
    args = parser.parse_args()
    if args.starter:
        print_starter_scores(args.starter)
        return

    from pyspark.sql import SparkSession
    from transformers import AutoTokenizer

    from prox_spark.session import get_spark

    spark = SparkSession.getActiveSession() or get_spark("prox-spark-distill-bench")
    root = Path(tempfile.mkdtemp(prefix="prox-distill-bench-"))
    try:
        texts = [t for t, _ in corpus(args.examples, seed=3)]
        tok_dir = build_tokenizer(root / "tokenizer", texts, args.vocab)
        pairs = examples(args.examples, AutoTokenizer.from_pretrained(str(tok_dir)),
                         args.max_tokens)
        one = run(pairs, tok_dir, root, "one", 1, args)
        two = run(pairs, tok_dir, root, "ddp", 2, args)
    finally:
        spark.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(f"machine: {os.cpu_count()} cores; model: Llama hidden {args.hidden}, "
          f"{args.layers} layers, head size 64; {one['examples']} chunk examples, "
          f"{args.steps} steps, global batch {args.batch * 2}")
    for name, r in (("1 process", one), ("TorchDistributor x2", two)):
        print(f"{name:20s} {r['tokens']:>8,} tokens in {r['seconds']:6.1f} s "
              f"({r['processes']} x {r['threads']} threads, call {r['wall']:5.1f} s): "
              f"{r['rate']:7.0f} tokens/s in total, {r['per_process']:7.0f} per process, "
              f"final loss {r['loss']:.3f}")
    print(f"total tokens/s, TorchDistributor x2 / 1 process: {two['rate'] / one['rate']:.2f}")


if __name__ == "__main__":
    main()
