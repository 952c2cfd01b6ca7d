"""Shared fixtures: a local Spark session with Delta, per-test Delta paths,
and tiny Llama models built offline (cached across runs in the set-up cache)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "src")
# This checkout's code, in this process and in every process the tests start
# (the CLI, Spark's Python workers): the shared environment holds no
# prox-spark, and PYTHONPATH may still name another checkout.
if sys.path[0] != SRC:
    sys.path.insert(0, SRC)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [SRC, *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != SRC)])
os.environ.setdefault("PROX_SPARK_PYTHON", sys.executable)
# The `prox-spark` command of this checkout (what `scripts/setup.sh` puts on PATH).
CLI = str(ROOT / "bin" / "prox-spark")

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Every engine event of the test session (engine builds, `generate` calls
# with their prompt counts) in one file the Spark workers inherit: the
# tests that count model calls read it (see `engine_events`).
os.environ.setdefault("PROX_SPARK_ENGINE_LOG",
                      os.path.join(tempfile.mkdtemp(prefix="prox-engine-log-"), "engine.jsonl"))

CACHE = Path(os.environ.get("PROX_SPARK_CACHE", Path.home() / ".cache" / "prox-spark"))
LLAMA2_TOKENIZER = ROOT.parent / "shared" / "llama2-tokenizer"


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from prox_spark.session import get_spark

    session = get_spark("prox-spark-tests")
    yield session
    session.stop()


@pytest.fixture
def delta_path(tmp_path: Path) -> str:
    """A fresh location for one Delta table."""
    return str(tmp_path / "table")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny Llama (hidden 128, 2 layers, head_dim 64) with a Llama-style tokenizer."""
    from prox_spark.testing.tiny_llama import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def trained_model() -> Callable[[Sequence[tuple[str, str]]], Path]:
    """Factory: a tiny model trained to answer each (prompt, program) pair,
    cached by the pairs so a warm run does not train again."""
    from prox_spark.testing.train_tiny import pairs_key, train_tiny_refiner

    def make(pairs: Sequence[tuple[str, str]], steps: int = 300) -> Path:
        path = CACHE / "test-models" / pairs_key(pairs, steps)
        return train_tiny_refiner(path, pairs, steps=steps)

    return make


@pytest.fixture(scope="session")
def llama2_tokenizer() -> object:
    """The released models' tokenizer, when the shared folder is next to the checkout."""
    if not (LLAMA2_TOKENIZER / "tokenizer.json").is_file():
        pytest.skip("the Llama-2 tokenizer is not available on this machine")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(LLAMA2_TOKENIZER))


def engine_events(kind: str, since: float, **match: object) -> list[dict]:
    """Engine-log events of `kind` written after `since` (time.time()) whose
    fields equal `match` (e.g. model=PATH)."""
    path = Path(os.environ["PROX_SPARK_ENGINE_LOG"])
    if not path.exists():
        return []
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in events if e.get("event") == kind and e.get("time", 0) >= since
            and all(e.get(k) == v for k, v in match.items())]
