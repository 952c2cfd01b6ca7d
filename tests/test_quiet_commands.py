"""The commands show prox-spark's own lines; what vLLM, torch, transformers
and Spark say while they set up and work goes to the engine log (issue 35):
the real `prox-spark run` with a tiny model (Spark, a Python worker, a vLLM
engine on CPU), and training with transformers' Trainer as
`prox-spark train` runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import CLI

# What the libraries printed on the console of `scripts/main.sh` before.
NOISE = {
    "vLLM's warnings": r"\[vllm\] WARNING|Triton is installed|LD_PRELOAD|set_num_threads",
    "Python warnings from torch": r"FutureWarning|reduce_op",
    "torch's C++ warnings": r"NUMA binding",
    "progress bars": r"checkpoint shards|Writing model shards",
    "Trainer's printed logs": r"\{'loss'|'grad_norm'|'train_runtime'",
    "Spark's start-up lines": r"default log4j profile|default log level|To adjust logging level"
                              r"|NativeCodeLoader",
}
QUIET_ENV = ("PROX_SPARK_VERBOSE", "VLLM_LOGGING_CONFIG_PATH", "TORCH_CPP_LOG_LEVEL",
             "PYSPARK_GATEWAY_PORT")


def _env(log: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in QUIET_ENV}
    env.update(PROX_SPARK_ENGINE_LOG=str(log), PYTHONUNBUFFERED="1")
    return env


def _noise(console: str) -> dict[str, list[str]]:
    return {what: found for what, pattern in NOISE.items()
            if (found := [line for line in console.splitlines() if re.search(pattern, line)])}


def _events(log: Path, kind: str) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [e for e in map(json.loads, log.read_text().splitlines()) if e["event"] == kind]


@pytest.mark.spark
@pytest.mark.vllm
def test_run_shows_its_own_lines_and_logs_the_libraries(
        config_file: Any, tiny_model: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": text}) + "\n" for i, text in
                              enumerate(["A short line about rivers.\nAnd one about bread.",
                                         "The mill stands by the old bridge.\nBoats pass."])))
    config = config_file(tmp_path, source=corpus, models=tiny_model, engine={"max_num_seqs": 8},
                         new_tokens=(8, 8), spark={"partitions": 1}, report=False)
    log = tmp_path / "engine.jsonl"
    done = subprocess.run([CLI, "run", str(config)], cwd=tmp_path, env=_env(log),
                          capture_output=True, text=True, timeout=900, check=False)
    console = done.stdout + done.stderr
    assert done.returncode == 0, console[-4000:]
    assert "prox-spark run summary" in done.stdout
    assert not _noise(console), _noise(console)
    # In the engine log instead: vLLM's hints (also those it logs while it
    # is imported) and torch's deprecation warning raised inside vLLM.
    hints = [e["message"] for e in _events(log, "vllm_log")]
    assert any("LD_PRELOAD" in m for m in hints) and any("Triton" in m for m in hints), hints
    warned = _events(log, "library_warning")
    assert any(w["category"] == "FutureWarning" and "reduce_op" in w["message"]
               for w in warned), warned


TRAIN = """
import sys
from prox_spark.distill.config import TrainConfig
from prox_spark.distill.train import train_sft

pairs = [("[INST] keep this line of text [/INST]", "keep_doc()"),
         ("[INST] drop that other line [/INST]", "drop_doc()")] * 4
config = TrainConfig(output_dir=sys.argv[1], hidden_size=64, layers=1, heads=1, kv_heads=1,
                     vocab_size=400, max_seq_tokens=128, warmup_ratio=0.0, max_steps=6,
                     batch_size=4, save_steps=3)
print("steps", train_sft(pairs, config).steps)
"""


def test_training_logs_go_to_the_engine_log(tmp_path: Path) -> None:
    log = tmp_path / "engine.jsonl"
    done = subprocess.run([sys.executable, "-c", TRAIN, str(tmp_path / "model")], cwd=tmp_path,
                          env={**_env(log), "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=600, check=False)
    console = done.stdout + done.stderr
    assert done.returncode == 0, console[-4000:]
    assert done.stdout.strip() == "steps 6", console
    assert not _noise(console), _noise(console)
    logged = _events(log, "train_log")
    assert [e["step"] for e in logged if "loss" in e] == list(range(1, 7)), logged
