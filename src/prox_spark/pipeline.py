"""The refinement job: source table -> doc stage -> chunk stage -> refined Delta table.

    >>> summary = run_pipeline(load_config("conf/local.yaml"))  # doctest: +SKIP

Documents already in the refined table with the same content hash and the
same fingerprint (models, prompt format, policy) are not sent to a model
again, so re-running a job is cheap and leaves the table unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from prox_spark.config import ModelConfig, PipelineConfig
from prox_spark.delta import (
    REFINED_COLUMNS,
    append_row,
    merge_refined,
    read_source,
    read_table,
    table_exists,
)
from prox_spark.stages import ChunkRefiner, DocRefiner, ProgramApplier
from prox_spark.stages.base import CHUNK_ERROR, DOC_ERROR, REFINED_TEXT

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("prox_spark")
PROMPT_FORMAT_VERSION = "llama2-chat/prox-v1"
METRICS_SCHEMA = (
    "run_at timestamp, fingerprint string, documents_in long, already_refined long, "
    "refined long, kept long, edited long, dropped long, reverted long, program_errors long, "
    "rows_with_errors long, tokens_before long, tokens_after long, words_before long, "
    "words_after long, wall_seconds double, documents_per_second double"
)


@dataclass(frozen=True)
class RunSummary:
    """What a run did. `refined` counts documents that went through the stages now."""

    fingerprint: str
    documents_in: int
    already_refined: int
    refined: int
    kept: int
    edited: int
    dropped: int
    reverted: int
    program_errors: int
    rows_with_errors: int
    tokens_before: int
    tokens_after: int
    words_before: int
    words_after: int
    wall_seconds: float

    @property
    def documents_per_second(self) -> float:
        return self.refined / self.wall_seconds if self.wall_seconds > 0 else 0.0

    def render(self) -> str:
        kept_share = (self.tokens_after / self.tokens_before * 100) if self.tokens_before else 0
        return "\n".join([
            "prox-spark run summary",
            f"  documents in      {self.documents_in:>10,}"
            f"   (already refined, skipped: {self.already_refined:,})",
            f"  refined now       {self.refined:>10,}",
            f"    kept            {self.kept:>10,}",
            f"    edited          {self.edited:>10,}",
            f"    dropped         {self.dropped:>10,}",
            f"    reverted        {self.reverted:>10,}",
            f"  program errors    {self.program_errors:>10,}"
            f"   (rows with generation errors: {self.rows_with_errors:,})",
            f"  tokens before     {self.tokens_before:>10,}",
            f"  tokens after      {self.tokens_after:>10,}   ({kept_share:.1f}% kept)",
            f"  wall time         {self.wall_seconds:>10.1f} s"
            f"   ({self.documents_per_second:.2f} documents/s)",
            f"  fingerprint       {self.fingerprint}",
        ])


def fingerprint(config: PipelineConfig) -> str:
    """A short hash of what decides a row's result: models, prompt format, policy."""

    def model_part(model: ModelConfig | None) -> Any:
        if model is None:
            return None
        return [model.engine.model, model.engine.tokenizer, model.max_new_tokens,
                model.max_prompt_tokens]

    blob = json.dumps(
        [PROMPT_FORMAT_VERSION, model_part(config.doc_model), model_part(config.chunk_model),
         asdict(config.policy)],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def refine(df: DataFrame, config: PipelineConfig) -> DataFrame:
    """Apply the configured stages to (id, text, ...) and return the refined columns."""
    from pyspark.sql import functions as F

    if config.doc_model is not None:
        m = config.doc_model
        df = df.transform(DocRefiner(m.engine, m.max_prompt_tokens, m.max_new_tokens))
    if config.chunk_model is not None:
        m = config.chunk_model
        df = df.transform(ChunkRefiner(m.engine, config.policy, m.max_prompt_tokens,
                                       m.max_new_tokens, m.max_doc_chars))
    else:
        engine = config.doc_model.engine if config.doc_model is not None else None
        tokenizer = (engine.tokenizer or engine.model) if engine is not None else None
        df = df.transform(ProgramApplier(config.policy, tokenizer))
    errors = F.concat_ws("; ", *[F.col(c) for c in (DOC_ERROR, CHUNK_ERROR) if c in df.columns])
    return df.select(
        "id",
        F.col(REFINED_TEXT).alias("text"),
        "status",
        *[c for c in REFINED_COLUMNS
          if c in df.columns and c not in ("id", "text", "status", "error", "content_hash")],
        F.when(errors != "", errors).alias("error"),
        "content_hash",
    )


def _pending(spark: SparkSession, source: DataFrame, config: PipelineConfig,
             fp: str) -> DataFrame:
    if not table_exists(spark, config.output):
        return source
    done = read_table(spark, config.output).select("id", "content_hash", "fingerprint")
    done = done.filter(done.fingerprint == fp).drop("fingerprint")
    return source.join(done, on=["id", "content_hash"], how="left_anti")


def run_pipeline(config: PipelineConfig, spark: SparkSession | None = None) -> RunSummary:
    """Run the whole job and write the refined and metrics tables."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from prox_spark.session import get_spark

    started = time.monotonic()
    local_conf = {"spark.sql.shuffle.partitions": str(config.partitions),
                  "spark.ui.showConsoleProgress": "true", **config.spark_conf}
    spark = spark or get_spark("prox-spark-refine", conf=local_conf)
    fp = fingerprint(config)
    log.info("reading %s (%s)", config.input.ref, config.input.format)
    source = read_source(spark, config.input.ref, config.input.format,
                         config.input.id_column, config.input.text_column)
    source = source.dropDuplicates(["id"])
    if config.limit is not None:
        source = source.orderBy("id").limit(config.limit)
    source = source.persist(StorageLevel.MEMORY_AND_DISK)
    documents_in = source.count()
    todo = _pending(spark, source, config, fp).persist(StorageLevel.MEMORY_AND_DISK)
    pending = todo.count()
    log.info("%d documents in, %d to refine, %d already refined with fingerprint %s",
             documents_in, pending, documents_in - pending, fp)
    totals: dict[str, int] = {}
    if pending:
        refined = (
            refine(todo.repartition(config.partitions), config)
            .withColumn("fingerprint", F.lit(fp))
            .withColumn("refined_at", F.current_timestamp())
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        row = refined.agg(
            *[F.sum((F.col("status") == s).cast("long")).alias(s)
              for s in ("kept", "edited", "dropped", "reverted")],
            F.sum("errors").alias("program_errors"),
            F.sum(F.col("error").isNotNull().cast("long")).alias("rows_with_errors"),
            *[F.sum(c).alias(c) for c in ("tokens_before", "tokens_after",
                                          "words_before", "words_after")],
        ).collect()[0]
        totals = {k: int(v or 0) for k, v in row.asDict().items()}
        log.info("writing %s", config.output)
        merge_refined(spark, refined, config.output)
        refined.unpersist()
    todo.unpersist()
    source.unpersist()
    summary = RunSummary(
        fingerprint=fp, documents_in=documents_in, already_refined=documents_in - pending,
        refined=pending, kept=totals.get("kept", 0), edited=totals.get("edited", 0),
        dropped=totals.get("dropped", 0), reverted=totals.get("reverted", 0),
        program_errors=totals.get("program_errors", 0),
        rows_with_errors=totals.get("rows_with_errors", 0),
        tokens_before=totals.get("tokens_before", 0), tokens_after=totals.get("tokens_after", 0),
        words_before=totals.get("words_before", 0), words_after=totals.get("words_after", 0),
        wall_seconds=time.monotonic() - started,
    )
    metrics = {k: v for k, v in asdict(summary).items()}
    metrics.update(run_at=_now(), documents_per_second=summary.documents_per_second)
    append_row(spark, metrics, METRICS_SCHEMA, config.metrics)
    return summary


def _now() -> Any:
    from datetime import datetime

    return datetime.now(UTC).replace(tzinfo=None)
