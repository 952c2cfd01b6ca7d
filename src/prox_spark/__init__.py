"""prox-spark: refine LLM pretraining corpora on Spark the ProX way.

The public API is `__all__`; each name is imported when first used (PEP 562),
so `import prox_spark` starts neither Spark, torch nor vLLM.

    >>> import prox_spark
    >>> "run_pipeline" in prox_spark.__all__
    True
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC: dict[str, str] = {
    "run_pipeline": "prox_spark.run.job",
    "dry_run": "prox_spark.run.dry_run",
    "load_config": "prox_spark.config",
    "PipelineConfig": "prox_spark.config",
    "TableRef": "prox_spark.refs",
    "Stage": "prox_spark.stages",
    "DocRefiner": "prox_spark.stages",
    "ChunkRefiner": "prox_spark.stages",
    "ProxRefiner": "prox_spark.stages",
    "ProgramApplier": "prox_spark.stages",
    "EngineConfig": "prox_spark.generation.engine",
    "annotate": "prox_spark.distill",
    "train": "prox_spark.distill",
    "evaluate": "prox_spark.distill",
    "load_ablate_config": "prox_spark.ablate",
    "plan_ablation": "prox_spark.ablate",
    "run_ablation": "prox_spark.ablate",
    "ProxSparkError": "prox_spark.errors",
    "ConfigError": "prox_spark.errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'prox_spark' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
