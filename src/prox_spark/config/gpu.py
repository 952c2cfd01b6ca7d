"""The GPU memory budget of a run: every engine that can be alive on one GPU
gets its share of `gpu_memory_fraction` (see `resources.shares`)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from prox_spark.config.model import ModelConfig
from prox_spark.errors import ConfigError
from prox_spark.resources import shares


def fit_gpu_budget(doc: ModelConfig | None, chunk: ModelConfig | None,
                   stage_names: Collection[str], fraction: float
                   ) -> tuple[ModelConfig | None, ModelConfig | None]:
    """The two model sections with each running engine's
    `gpu_memory_utilization` set to its share (explicit values are kept and
    checked); a ConfigError when the engines cannot fit."""
    running = [(where, m) for where, m, stage in (("doc_model", doc, "prox_doc"),
                                                  ("chunk_model", chunk, "prox_chunk"))
               if m is not None and stage in stage_names]
    if not running:
        return doc, chunk
    try:
        split = shares([(where, m.resources, m.engine.gpu_memory_utilization)
                        for where, m in running], fraction)
    except ValueError as exc:
        field_name = "gpu_memory_fraction" if "gpu_memory_fraction must" in str(exc) else \
            ", ".join(f"{w}.gpu_memory_utilization" for w, _ in running)
        raise ConfigError(field_name, str(exc)) from None
    out = {where: replace(m, engine=replace(m.engine, gpu_memory_utilization=split[where]))
           for where, m in running}
    return out.get("doc_model", doc), out.get("chunk_model", chunk)
