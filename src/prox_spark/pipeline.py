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
    REFINED_TYPES,
    append_row,
    merge_refined,
    read_source,
    read_table,
    table_exists,
)
from prox_spark.stages import (
    ChunkRefiner,
    DocRefiner,
    ExactDedup,
    NearDedup,
    ProgramApplier,
    RuleStage,
    Stage,
)
from prox_spark.stages.base import CHUNK_ERROR, DOC_ERROR, DOC_PROGRAM, REFINED_TEXT
from prox_spark.stages.rule_stages import RULE_EDITS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("prox_spark")
PROMPT_FORMAT_VERSION = "llama2-chat/prox-v1"
METRICS_SCHEMA = (
    "run_at timestamp, fingerprint string, documents_in long, already_refined long, "
    "refined long, kept long, edited long, dropped long, reverted long, program_errors long, "
    "rows_with_errors long, tokens_before long, tokens_after long, words_before long, "
    "words_after long, wall_seconds double, documents_per_second double, rule_stats string"
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
    # Per rule or dedup stage: (stage, documents dropped, documents edited,
    # words removed, tokens removed -- 0 without a model tokenizer).
    by_stage: tuple[tuple[str, int, int, int, int], ...] = ()

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
            *([f"  tokens before     {self.tokens_before:>10,}",
               f"  tokens after      {self.tokens_after:>10,}   ({kept_share:.1f}% kept)"]
              if self.tokens_before else []),
            f"  words before      {self.words_before:>10,}",
            f"  words after       {self.words_after:>10,}",
            f"  wall time         {self.wall_seconds:>10.1f} s"
            f"   ({self.documents_per_second:.2f} documents/s)",
            *[f"  {stage:<17} {dropped:>10,} dropped, {edited:,} edited, "
              f"{words:,} words" + (f" / {tokens:,} tokens" if tokens else "") + " removed"
              for stage, dropped, edited, words, tokens in self.by_stage],
            f"  fingerprint       {self.fingerprint}",
        ])


def fingerprint(config: PipelineConfig) -> str:
    """A short hash of what decides a row's result: models, prompt format, policy."""

    def model_part(model: ModelConfig | None) -> Any:
        if model is None:
            return None
        return [model.engine.model, model.engine.tokenizer, model.max_new_tokens,
                model.max_prompt_tokens]

    stages = [[s.name, dict(s.params)] for s in config.stages]
    blob = json.dumps(
        [PROMPT_FORMAT_VERSION, model_part(config.doc_model), model_part(config.chunk_model),
         asdict(config.policy), stages],
        sort_keys=True, default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_stages(config: PipelineConfig) -> list[Stage]:
    """The configured stages, in order, as DataFrame -> DataFrame callables."""
    stages: list[Stage] = []
    # Rule stages count the tokens they remove with a model's tokenizer, if any.
    model = config.chunk_model or config.doc_model
    tokenizer = model.engine.tokenizer_name if model is not None else None
    for item in config.stages:
        if item.name == "prox_doc" and config.doc_model is not None:
            m = config.doc_model
            stages.append(DocRefiner(m.engine, m.max_prompt_tokens, m.max_new_tokens))
        elif item.name == "prox_chunk" and config.chunk_model is not None:
            m = config.chunk_model
            stages.append(ChunkRefiner(m.engine, config.policy, m.max_prompt_tokens,
                                       m.max_new_tokens, m.max_doc_chars))
        elif item.name == "exact_dedup":
            stages.append(ExactDedup(**item.params))
        elif item.name == "near_dedup":
            stages.append(NearDedup(**item.params))
        else:
            stages.append(RuleStage(item.name, dict(item.params), tokenizer))
    return stages


def refine(df: DataFrame, config: PipelineConfig) -> DataFrame:
    """Apply the configured stages to (id, text, ...) and return the refined columns."""
    from pyspark.sql import functions as F

    for stage in build_stages(config):
        df = df.transform(stage)
    if REFINED_TEXT not in df.columns:
        if DOC_PROGRAM in df.columns:
            doc = config.doc_model
            df = df.transform(
                ProgramApplier(config.policy, doc.engine.tokenizer_name if doc else None)
            )
        else:
            df = df.withColumn(REFINED_TEXT, F.col("text"))
    if "status" not in df.columns:
        df = df.withColumn("status", F.when(F.col(REFINED_TEXT).isNull(), "dropped")
                           .otherwise("kept"))
    if RULE_EDITS in df.columns:
        # A rule's line edits make an otherwise untouched document "edited".
        line_edit = F.exists(F.col(RULE_EDITS), lambda e: e["reason"].isNull())
        df = df.withColumn("status", F.when((F.col("status") == "kept") & line_edit, "edited")
                           .otherwise(F.col("status")))
    errors = F.concat_ws("; ", *[F.col(c) for c in (DOC_ERROR, CHUNK_ERROR) if c in df.columns])
    computed = {
        "text": F.col(REFINED_TEXT),
        "error": F.when(errors != "", errors),
        "fingerprint": F.lit(None), "refined_at": F.lit(None),
    }
    return df.select(*[
        (computed[name] if name in computed else
         F.col(name) if name in df.columns else F.lit(None)).cast(kind).alias(name)
        for name, kind in REFINED_TYPES.items()
    ])


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
    by_stage: tuple[tuple[str, int, int, int, int], ...] = ()
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
        by_stage = tuple(
            (r.stage, int(r.dropped or 0), int(r.edited or 0), int(r.words or 0),
             int(r.tokens or 0))
            for r in refined.select(F.explode(RULE_EDITS).alias("e"))
            .groupBy(F.col("e.stage").alias("stage"))
            .agg(F.sum(F.col("e.reason").isNotNull().cast("long")).alias("dropped"),
                 F.sum(F.col("e.reason").isNull().cast("long")).alias("edited"),
                 F.sum("e.words_removed").alias("words"),
                 F.sum("e.tokens_removed").alias("tokens"))
            .orderBy("stage").collect()
        )
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
        wall_seconds=time.monotonic() - started, by_stage=by_stage,
    )
    metrics = {k: v for k, v in asdict(summary).items() if k != "by_stage"}
    metrics.update(
        run_at=_now(), documents_per_second=summary.documents_per_second,
        rule_stats=json.dumps({s: {"dropped": d, "edited": e, "words_removed": w,
                                   "tokens_removed": t} for s, d, e, w, t in by_stage}),
    )
    append_row(spark, metrics, METRICS_SCHEMA, config.metrics)
    return summary


def _now() -> Any:
    from datetime import datetime

    return datetime.now(UTC).replace(tzinfo=None)
