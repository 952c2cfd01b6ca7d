"""The per-worker engine cache keeps an engine it cannot replace."""

from __future__ import annotations

import pytest

from prox_spark.generation import engine as engines
from prox_spark.generation.engine import EngineConfig, EngineStartError, get_engine


def test_an_engine_for_another_gpu_is_kept_when_the_worker_cannot_switch(monkeypatch):
    # This machine has no GPU: the task's GPU assignment and CUDA's state are
    # what Spark and torch would report on one whose worker already uses GPU 0.
    config = EngineConfig(model="/models/any")
    held = object()
    monkeypatch.setitem(engines._ENGINES, (config, ("0",)), held)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setattr(engines, "task_gpus", lambda: ("1",))
    monkeypatch.setattr(engines, "_cuda_initialized", lambda: True)
    with pytest.raises(EngineStartError, match="cannot switch to GPU 1"):
        get_engine(config)
    assert engines._ENGINES[(config, ("0",))] is held
    assert (config, ("1",)) not in engines._FAILED
