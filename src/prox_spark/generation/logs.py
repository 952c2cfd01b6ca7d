"""The engine log, and the libraries' own output that goes there instead of
the console.

The engine log is a JSON-lines file named by PROX_SPARK_ENGINE_LOG (unset:
no log): which process built which engine on which GPU, every `generate`
call, and what vLLM, torch and transformers say while they work. Their
hints (no Triton, no tcmalloc in LD_PRELOAD, NUMA binding, deprecated torch
names, progress bars) are about their set-up, not about a prox-spark run,
and dozens of them would bury the run's own lines. `route_library_output`
sends them to the log in each process that loads those libraries: the
command, Spark's Python workers (an engine is built there) and training
processes. Errors still reach stderr, and PROX_SPARK_VERBOSE=1
(`prox-spark COMMAND --verbose`) leaves every library as it is.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
import time
import warnings
from pathlib import Path
from typing import Any, TextIO

ENGINE_LOG_ENV = "PROX_SPARK_ENGINE_LOG"
VERBOSE_ENV = "PROX_SPARK_VERBOSE"
VLLM_LOGGING_CONFIG = Path(__file__).with_name("vllm_logging.json")

# Python warnings of these categories, raised from these packages' files,
# go to the log (a RuntimeWarning or any warning from elsewhere still shows).
ROUTED_WARNING_PACKAGES = frozenset({"vllm", "torch", "transformers", "accelerate", "triton"})
ROUTED_WARNING_CATEGORIES: tuple[type[Warning], ...] = (
    DeprecationWarning, PendingDeprecationWarning, FutureWarning, UserWarning)


def record_event(kind: str, **fields: Any) -> None:
    """Append one JSON line to the file named by PROX_SPARK_ENGINE_LOG, if set:
    which process built which engine on which GPU, and which task ran where.
    An operations aid (and what the cluster tests read); never raises."""
    path = os.environ.get(ENGINE_LOG_ENV)
    if not path:
        return
    try:
        line = json.dumps({"event": kind, "pid": os.getpid(), "time": time.time(),
                           "cwd": os.getcwd(), "pool": os.environ.get("PROX_SPARK_ENGINE_POOL"),
                           "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                           **fields}, default=str)
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")
    except OSError:
        pass


def verbose() -> bool:
    """True when the user asked to see the libraries' own output."""
    return os.environ.get(VERBOSE_ENV) == "1"


class EngineLogHandler(logging.Handler):
    """vLLM's log records (config dumps, load times, set-up hints) as
    `vllm_log` events of the engine log; dropped when no log is set."""

    def emit(self, record: logging.LogRecord) -> None:
        record_event("vllm_log", level=record.levelname, logger=record.name,
                     message=record.getMessage())


def route_vllm_logs() -> None:
    """Keep vLLM's INFO and WARNING lines off the console, in the engine log,
    unless PROX_SPARK_VERBOSE=1 asks for them; its errors still reach stderr.

    Uses vLLM's own hook, VLLM_LOGGING_CONFIG_PATH (a `logging.dictConfig`
    file that `vllm.LLM` applies when it builds an engine), set only when
    the user has not set one. The same file is applied here at once, so what
    vLLM logs while it is imported (before any engine) goes the same way.
    """
    if verbose():
        return
    os.environ.setdefault("VLLM_LOGGING_CONFIG_PATH", str(VLLM_LOGGING_CONFIG))
    applied = any(isinstance(h, EngineLogHandler) for h in logging.getLogger("vllm").handlers)
    if os.environ["VLLM_LOGGING_CONFIG_PATH"] == str(VLLM_LOGGING_CONFIG) and not applied:
        logging.config.dictConfig(json.loads(VLLM_LOGGING_CONFIG.read_text(encoding="utf-8")))


def _package_of(filename: str) -> str | None:
    """The installed package a source file belongs to (`.../site-packages/<package>/...`)."""
    parts = Path(filename).parts
    for i, part in enumerate(parts[:-1]):
        if part in ("site-packages", "dist-packages"):
            return parts[i + 1]
    return None


_show_warning = warnings.showwarning


def _route_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                   file: TextIO | None = None, line: str | None = None) -> None:
    package = _package_of(filename)
    if (file is None and package in ROUTED_WARNING_PACKAGES
            and issubclass(category, ROUTED_WARNING_CATEGORIES)):
        record_event("library_warning", package=package, category=category.__name__,
                     message=str(message), where=f"{filename}:{lineno}")
        return
    _show_warning(message, category, filename, lineno, file, line)


def route_library_output() -> None:
    """Send vLLM's, torch's and transformers' set-up hints to the engine log
    in this process and in the processes it starts (Spark's Python workers
    inherit the environment), unless PROX_SPARK_VERBOSE=1. Call it before
    those libraries are imported; calling it again is harmless.

    - vLLM's log lines below ERROR (`route_vllm_logs`);
    - Python warnings of the deprecation and user categories raised from
      those packages' files (e.g. `torch.distributed.reduce_op is
      deprecated`, raised inside vLLM), as `library_warning` events;
    - torch's C++ warnings (e.g. vLLM's CPU backend saying how it binds
      NUMA memory), through TORCH_CPP_LOG_LEVEL, which torch reads when it is
      imported. C++ writes them to stderr itself, so they are dropped, not
      logged; `--verbose` shows them.
    """
    if verbose():
        return
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    route_vllm_logs()
    global _show_warning
    if warnings.showwarning is not _route_warning:
        _show_warning = warnings.showwarning
        warnings.showwarning = _route_warning
