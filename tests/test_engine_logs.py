"""vLLM's INFO and WARNING lines stay off the console, in the engine log,
unless asked for (issues 17 and 35); its errors reach the console. Runs
vLLM's real logging set-up in a fresh interpreter: the same path an engine
takes (`route_library_output`, then vLLM's logging set-up as `vllm.LLM` runs
it), without building an engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import logging
from prox_spark.generation.logs import route_library_output
route_library_output()
# What `vllm.LLM(...)` does first when it builds an engine.
from vllm.config.logging import LoggingConfig
from vllm.logger import configure_logging_if_needed
configure_logging_if_needed(LoggingConfig())
log = logging.getLogger("vllm.engine.test")
log.info("Initializing an engine with config: model=tiny")
log.warning("libtcmalloc is not found in LD_PRELOAD")
log.error("an error the user must see")
"""


def _run(tmp: Path, **extra: str) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    log = tmp / "engine.jsonl"
    env = {k: v for k, v in os.environ.items()
           if k not in ("VLLM_LOGGING_CONFIG_PATH", "PROX_SPARK_VERBOSE")}
    env.update(PROX_SPARK_ENGINE_LOG=str(log), **extra)
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, events


@pytest.mark.vllm
def test_vllm_info_goes_to_the_engine_log_not_the_console(tmp_path):
    done, events = _run(tmp_path)
    console = done.stdout + done.stderr
    assert "Initializing an engine" not in console
    assert "LD_PRELOAD" not in console
    assert "an error the user must see" in done.stderr
    logged = [e for e in events if e["event"] == "vllm_log"]
    assert {"level": "INFO", "logger": "vllm.engine.test",
            "message": "Initializing an engine with config: model=tiny"}.items() <= \
        next(e for e in logged if "Initializing" in e["message"]).items()
    assert any(e["level"] == "WARNING" and "LD_PRELOAD" in e["message"] for e in logged)


@pytest.mark.vllm
def test_verbose_shows_vllm_info_on_the_console(tmp_path):
    done, events = _run(tmp_path, PROX_SPARK_VERBOSE="1")
    assert "Initializing an engine with config: model=tiny" in done.stdout + done.stderr
    assert not [e for e in events if e["event"] == "vllm_log"]
