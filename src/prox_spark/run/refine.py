"""The run's stage chain from its config, and `refine`: a DataFrame through
that chain in one call (what a test or a notebook uses on a small frame)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prox_spark.config import PipelineConfig
from prox_spark.fingerprint import stage_fingerprints
from prox_spark.stages.base import BuildContext
from prox_spark.stages.chain import StageChain

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def chain_for(config: PipelineConfig) -> StageChain:
    """The configured stages built once, with their fingerprints. Rule
    stages count the tokens they remove with a model's tokenizer, if any."""
    model = config.chunk_model or config.doc_model
    context = BuildContext(config.doc_model, config.chunk_model, config.policy, None,
                           model.engine.tokenizer_name if model is not None else None)
    return StageChain.build(config.stages, context, stage_fingerprints(config))


def refine(df: DataFrame, config: PipelineConfig, existing: DataFrame | None = None,
           stored: DataFrame | None = None) -> DataFrame:
    """Apply the configured stages to (id, text, ...) and return the refined
    columns (see `StageChain.apply`)."""
    return chain_for(config).apply(df, existing, stored)
