"""`StageChain`: the configured stages built once per run, applied to each
batch (as a `pyspark.ml.Pipeline` is fitted once and then transforms).

    >>> chain = StageChain.build(config.stages, BuildContext(...), fps)  # doctest: +SKIP
    >>> refined = chain.apply(batch, existing=keys, stored=outputs)  # doctest: +SKIP

The stages and their fingerprints are fixed when the chain is built; what
changes per batch is given to `apply`: the rows already refined that the
dedup stages compare with (`existing`) and the stored model output the model
stages may reuse (`stored`). `prefix` is the CPU part before the first model
stage, which the dry run runs to count what the models would do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from prox_spark.schema import SOURCE_ERROR, TEXT
from prox_spark.stages.base import BuildContext, Stage
from prox_spark.stages.finalize import ORIGINAL_TEXT, finish_rows
from prox_spark.stages.model_stages import fuse_model_stages, model_stage_names
from prox_spark.stages.registry import stage_spec
from prox_spark.stages.reuse import finish_reuse, with_reuse
from prox_spark.stages.rule_stages import fuse_rule_stages

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

EXISTING = "existing"
"""The context field of the stages that compare with rows refined before (dedup)."""


def with_existing(stage: Stage, existing: DataFrame | None) -> Stage:
    """`stage` comparing with `existing` when it declares that context field
    (the dedup stages), else `stage` itself. A copy: the built chain is kept."""
    if EXISTING not in getattr(type(stage), "context_fields", ()):
        return stage
    return replace(stage, **{EXISTING: existing})


def _valid_rows(df: DataFrame) -> DataFrame:
    """The rows of `df` without a `source_error`, their text kept as the
    original text (what every stage and the final counts start from)."""
    from pyspark.sql import functions as F

    rows = df.where(F.col(SOURCE_ERROR).isNull()) if SOURCE_ERROR in df.columns else df
    return rows.withColumn(ORIGINAL_TEXT, F.col(TEXT))


@dataclass(frozen=True)
class StageChain:
    """The run's stages in order (rule and model stages fused), their
    fingerprints (stage name -> hash, see `fingerprint.stage_fingerprints`),
    the chunk policy and the tokenizer that counts the final text."""

    stages: tuple[Stage, ...]
    fingerprints: Mapping[str, str]
    policy: Any = None
    tokenizer: str | None = None

    @classmethod
    def build(cls, items: Sequence[Any], context: BuildContext,
              fingerprints: Mapping[str, str]) -> StageChain:
        """The chain of the configured stage `items` (each with `name` and
        `params`), built from the stage registry with `context` (its
        `existing` is ignored: `apply` gives it)."""
        built = [stage_spec(item.name).create(item.params, context) for item in items]
        return cls(tuple(fuse_rule_stages(fuse_model_stages(built))), dict(fingerprints),
                   context.policy, context.tokenizer)

    def prefix(self) -> tuple[tuple[Stage, ...], tuple[str, ...]]:
        """(the stages before the first model stage, that stage's model
        names; () when the chain calls no model)."""
        for i, stage in enumerate(self.stages):
            models = model_stage_names(stage)
            if models:
                return self.stages[:i], models
        return self.stages, ()

    def apply(self, df: DataFrame, existing: DataFrame | None = None,
              stored: DataFrame | None = None) -> DataFrame:
        """Apply the stages to (id, text, ...) and return the refined columns.

        Rows with a `source_error` skip the stages and come out as dropped
        rows carrying that error (see `finalize.finish_rows`). `existing`:
        rows dedup compares with; `stored` (`stages.reuse.stored_outputs`):
        model output a model stage takes when its fingerprint and input text
        are unchanged."""
        from pyspark.sql import functions as F

        valid = _valid_rows(df)
        fps = dict(self.fingerprints)
        # The interpreter counts the words and tokens of what it leaves; they
        # are counted again only when a stage after it changed the text.
        counted = False
        for stage in self.stages:
            models = model_stage_names(stage)
            if models:
                valid = with_reuse(valid, stored, models, fps)
            valid = valid.transform(with_existing(stage, existing))
            counted = "prox_chunk" in models
        valid = finish_reuse(valid, fps)
        invalid = df.where(F.col(SOURCE_ERROR).isNotNull()) if SOURCE_ERROR in df.columns else None
        return finish_rows(valid, invalid, self.policy, self.tokenizer, counted=counted)

    def apply_prefix(self, df: DataFrame, existing: DataFrame | None = None
                     ) -> tuple[DataFrame, tuple[str, ...]]:
        """(the valid rows of `df` through the stages before the first model
        stage, that stage's model names): what the dry run counts."""
        rows = _valid_rows(df)
        stages, models = self.prefix()
        for stage in stages:
            rows = rows.transform(with_existing(stage, existing))
        return rows, models
