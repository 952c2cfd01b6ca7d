"""`prox-spark train CONFIG` and `prox-spark evaluate CONFIG`: the student
fine-tuned on the SFT table `annotate` wrote, then scored against its
teacher on the table's `eval` split.

    >>> config = load_config("conf/starter.yaml", check_models=False)  # doctest: +SKIP
    >>> result = train(config)  # doctest: +SKIP
    >>> print(evaluate(config).render())  # doctest: +SKIP

`evaluate` prints each level's figures beside those of the trivial students
(doc: always the commoner decision; chunk: remove nothing, remove everything)
and a verdict; the paper's 0.3B refiners' F1 82.6 (doc drops) and 75.2 (chunk
removed lines, `prox-programs.md` section 5) stand beside the same measures.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prox_spark.config import ConfigError, PipelineConfig
from prox_spark.distill.card import update_model_card
from prox_spark.distill.evaluate import Evaluation, evaluate_student
from prox_spark.distill.section import distill_config
from prox_spark.distill.train import TrainResult, train_sft
from prox_spark.generation.engine import EngineConfig
from prox_spark.io.delta import read_table, table_exists, table_version
from prox_spark.session import job_session

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


def _spark(config: PipelineConfig, name: str) -> SparkSession:
    """The job's Spark session, as every prox-spark job gets it."""
    return job_session(name, config.partitions, config.spark_conf)


def sft_rows(spark: SparkSession, config: PipelineConfig) -> tuple[DataFrame, int | None]:
    """The SFT table and its Delta version (ConfigError when it is missing)."""
    distill = distill_config(config)
    if not table_exists(spark, distill.sft_table):
        raise ConfigError("distill.sft_table", f"{distill.sft_table} is not a Delta table; "
                          "run `prox-spark annotate CONFIG` first")
    return read_table(spark, distill.sft_table), table_version(spark, distill.sft_table)


def train_examples(df: DataFrame, tasks: tuple[str, ...]) -> list[tuple[str, str]]:
    """Valid `train` examples of `tasks` as (prompt, completion), in a stable
    order. ConfigError naming `distill.tasks` when a task has none."""
    from pyspark.sql import functions as F

    rows = (df.where(F.col("valid") & (F.col("split") == "train") & F.col("task").isin(*tasks))
              .select("task", "id", "chunk_index", "prompt", "completion")
              .orderBy("task", "id", "chunk_index").collect())
    for task in tasks:
        if not any(r["task"] == task for r in rows):
            raise ConfigError("distill.tasks", f"the SFT table holds no valid train example "
                              f"for the {task} task (see its `reason` column)")
    return [(r["prompt"], r["completion"]) for r in rows]


def train(config: PipelineConfig, spark: SparkSession | None = None) -> TrainResult:
    """Fine-tune the student on the SFT table's valid `train` examples.

    Raises ConfigError (exit 2, nothing written) for a missing table or a
    task without valid examples; ValueError from `train_sft` for a base model
    whose tokenizer lacks BOS/EOS is turned into a ConfigError naming
    `distill.student.base_model`."""
    distill = distill_config(config)
    spark = spark or _spark(config, "prox-spark-train")
    df, version = sft_rows(spark, config)
    examples = train_examples(df, distill.tasks)
    s = distill.student
    card = {"teacher": _teacher_name(config), "sft_table": str(distill.sft_table),
            "sft_table_version": version, "tasks": list(distill.tasks),
            "train_examples": len(examples)}
    log.info("training %s on %d examples (%s) from %s version %s", s.output_dir, len(examples),
             "+".join(distill.tasks), distill.sft_table, version)
    try:
        return train_sft(examples, s, card=card)
    except ValueError as exc:
        if "base_model" in str(exc):
            raise ConfigError("distill.student.base_model", str(exc)) from None
        raise


def _teacher_name(config: PipelineConfig) -> str:
    t = distill_config(config).teacher
    if t.kind == "llm":
        return f"llm {t.model} (chunk {t.chunk_mode})"
    if t.kind == "table":
        return f"table {t.table}"
    return "rules " + ", ".join(s.name for s in config.stages
                                if s.name not in ("prox_doc", "prox_chunk"))


@dataclass(frozen=True)
class EvaluateResult:
    """A student's figures against its teacher, beside the trivial students'
    and, for the same measures, the paper's."""

    evaluation: Evaluation
    sft_table_version: int | None

    def render(self) -> str:
        return (f"{self.evaluation.summary()}\n(SFT table version {self.sft_table_version}; "
                "scores against the teacher's eval-split labels)")

    def figures(self) -> dict[str, Any]:
        """The model card's evaluation: the tables (None for n/a), the
        verdict, the warnings, and every score as plain values."""
        e = self.evaluation
        return {"eval_examples": e.examples, "sft_table_version": self.sft_table_version,
                "model": e.model, "tables": e.tables(), "verdict": e.verdict(),
                "warnings": e.warnings(), "scores": e.to_dict()}


def evaluate(config: PipelineConfig, spark: SparkSession | None = None,
             model: str | None = None) -> EvaluateResult:
    """Score the student (`model`, default the student's output directory)
    on the SFT table's `eval` split and add the figures to its model card.

    Raises ConfigError naming `distill.eval_fraction` when the split has no
    valid eval example, `distill.student.output_dir` when there is no model."""
    from pyspark.sql import functions as F

    distill = distill_config(config)
    target = model or distill.student.output_dir
    if not (Path(target) / "config.json").is_file():
        raise ConfigError("distill.student.output_dir", f"{target} holds no trained model; "
                          "run `prox-spark train CONFIG` first")
    spark = spark or _spark(config, "prox-spark-evaluate")
    df, version = sft_rows(spark, config)
    df = df.where(F.col("task").isin(*distill.tasks))
    if df.where(F.col("valid") & (F.col("split") == "eval")).limit(1).count() == 0:
        raise ConfigError("distill.eval_fraction", "the SFT table has no valid eval example "
                          "to score; raise eval_fraction or the sample size")
    base = config.chunk_model or config.doc_model
    engine = EngineConfig(model=target, dtype="float32",
                          kv_cache_gib=base.engine.kv_cache_gib if base else None,
                          enforce_eager=True)
    evaluation = evaluate_student(spark, df, engine, policy=config.policy)
    result = EvaluateResult(evaluation, version)
    try:
        update_model_card(target, result.figures())
    except OSError as exc:
        log.warning("could not add the evaluation to the model card: %s", exc)
    return result
