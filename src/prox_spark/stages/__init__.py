"""Spark stages: DataFrame in, DataFrame out (`df.transform(stage)`).

    >>> refined = (df.transform(DocRefiner(doc_engine))            # doctest: +SKIP
    ...              .transform(ChunkRefiner(chunk_engine)))
"""

from __future__ import annotations

from prox_spark.stages.apply import ProgramApplier
from prox_spark.stages.base import Stage
from prox_spark.stages.datatrove_filter import DatatroveFilter
from prox_spark.stages.dedup import ExactDedup, NearDedup
from prox_spark.stages.model_stages import ChunkRefiner, DocRefiner, ProxRefiner
from prox_spark.stages.rule_stages import RuleStage

__all__ = [
    "ChunkRefiner",
    "DatatroveFilter",
    "DocRefiner",
    "ExactDedup",
    "NearDedup",
    "ProgramApplier",
    "ProxRefiner",
    "RuleStage",
    "Stage",
]
