"""Shared fixtures: a local Spark session with Delta, per-test Delta paths,
and tiny Llama models built offline (cached across runs in the set-up cache)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

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


def start_cli(command: str, config: Path, cwd: Path) -> subprocess.Popen:
    """`prox-spark COMMAND CONFIG` in a process of its own (its own session,
    so a test can kill it mid-run), output and errors in one text pipe."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    return subprocess.Popen([CLI, command, str(config)], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)

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


# The engine settings of the tests' tiny models: float32, a small KV cache and
# no CUDA graphs, so an engine starts fast on any machine.
ENGINE = {"dtype": "float32", "kv_cache_gib": 0.25, "enforce_eager": True, "max_num_seqs": 32}


def job_config(base: Mapping[str, Any] | None = None, *, source: Path | str | None = None,
               fmt: str = "jsonl", input: Mapping[str, Any] | None = None,
               output: Path | str | Mapping[str, Any] | None = None,
               models: str | Path | Sequence[str] | None = None,
               new_tokens: tuple[int, int] = (16, 64), engine: Mapping[str, Any] | None = None,
               **sections: Any) -> dict[str, Any]:
    """A job config as a dict: `base` (copied), then `source` as input.path with
    format `fmt`, `input` merged into that section, `output` as output.path (a
    mapping as the whole section), `models` (one path for both or (doc, chunk))
    as doc_model and chunk_model with the tests' `ENGINE` settings, `engine`
    over them and max_new_tokens `new_tokens`, and every other keyword as a
    top-level key (None leaves the key out)."""
    raw = {k: dict(v) if isinstance(v, Mapping) else v for k, v in (base or {}).items()}
    if source is not None:
        raw["input"] = {"path": str(source), "format": fmt}
    if input:
        raw["input"] = {**raw.get("input", {}), **input}
    if output is not None:
        raw["output"] = dict(output) if isinstance(output, Mapping) else {"path": str(output)}
    if models is not None:
        doc, chunk = (models, models) if isinstance(models, (str, Path)) else models
        settings = {**ENGINE, **(engine or {})}
        raw["doc_model"] = {"model": str(doc), **settings, "max_new_tokens": new_tokens[0]}
        raw["chunk_model"] = {"model": str(chunk), **settings, "max_new_tokens": new_tokens[1]}
    raw.update((k, v) for k, v in sections.items() if v is not None)
    return raw


@pytest.fixture(scope="session")
def config_file() -> Callable[..., Path]:
    """Factory: write a job config YAML into `folder` (as `name`) and return its
    path. The content is `job_config(base, **keys)` (given a `source` and no
    output anywhere, the output is `folder/refined`), or `text` verbatim for a
    test of what the parser makes of it. Session-scoped so module fixtures can write
    configs too; every call names its folder."""

    def write(folder: Path, base: Mapping[str, Any] | None = None, *, name: str = "job.yaml",
              text: str | None = None, **keys: Any) -> Path:
        if keys.get("source") is not None and keys.get("output") is None \
                and "output" not in (base or {}):
            keys["output"] = folder / "refined"
        path = folder / name
        path.write_text(text if text is not None else yaml.safe_dump(job_config(base, **keys)))
        return path

    return write


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
