"""`prox-spark annotate CONFIG`: a teacher labels a sample of the source and
the labels become an SFT Delta table, one row per example.

    >>> summary = annotate(load_config("conf/starter.yaml", check_models=False))  # doctest: +SKIP

Each sampled document gives one `doc` example and, when the teacher kept
it, one `chunk` example per chunk. The prompt is built by the very functions
the refining stages call (`prompts.doc_prompt`, `chunk_document`,
`chunk_prompt`) with the student's tokenizer, so training and inference
cannot drift. Every program is checked by executing it before it becomes an
example (`checks`); a discarded example stays in the table with
`valid = false` and its `reason`, so the table is an audit of the teacher.
The split (`train` / `eval`) is a stable hash of the document id: one
document never lands in both.

Columns: `id`, `task` (doc | chunk), `chunk_index`, `prompt`, `completion`,
`teacher`, `teacher_output`, `valid`, `reason` (why the example was
discarded), `discarded_calls` (calls of a kept example that failed their
check, each with its reason), `split`, `example_key`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from prox_spark.config import ConfigError, PipelineConfig
from prox_spark.distill.config import DistillConfig, TeacherConfig
from prox_spark.distill.examples import (
    SFT_FIELDS,
    SFT_SCHEMA,
    LabelJob,
    doc_rows,
    failed_rows,
    program_rows,
)
from prox_spark.distill.llm_teacher import check_teacher_model, label_llm
from prox_spark.distill.report import write_annotate_report
from prox_spark.distill.section import distill_config
from prox_spark.distill.summary import AnnotateSummary, summarize
from prox_spark.distill.teachers import TeacherLabel, rules_teacher, table_teacher
from prox_spark.distill.tokenizer import build_tokenizer, chars_per_token
from prox_spark.generation.engine import get_tokenizer
from prox_spark.generation.prompts import CHUNK_MAX_TOKENS, DEFAULT_MAX_DOC_CHARS, DOC_MAX_TOKENS
from prox_spark.io.delta import overwrite_table, read_table, table_version
from prox_spark.io.sources import read_source, resolve_duplicate_ids
from prox_spark.run.refined_table import RefinedTable
from prox_spark.schema import SOURCE_ERROR
from prox_spark.session import job_session
from prox_spark.stages.registry import BuildContext, stage_spec
from prox_spark.stages.rule_stages import RuleStage, rule_function

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


def _resolve_rules(job: LabelJob) -> list[tuple[str, Any, Mapping[str, Any]]]:
    """The job's rule stages as the rules teacher runs them: (name,
    function, params), built as the pipeline builds them."""
    context = BuildContext(None, None, job.policy, None, None)
    out = []
    for name, params in job.rules:
        stage = stage_spec(name).create(dict(params), context)
        if isinstance(stage, RuleStage):
            out.append((stage.name, rule_function(stage.rule), stage.params))
    return out


def _label_rules(frame: pd.DataFrame, tok: Any, job: LabelJob, rules: list[Any]
                 ) -> list[dict[str, Any]]:
    """The SFT rows of a batch labelled by the rules teacher."""
    rows: list[dict[str, Any]] = []
    for doc_id, text in zip(frame["id"], frame["text"], strict=True):
        label = rules_teacher(text, rules)
        rows += doc_rows(doc_id, text, label, tok, job)
        rows += program_rows(doc_id, text, label, tok, job)
    return rows


def _label_table(frame: pd.DataFrame, tok: Any, job: LabelJob) -> list[dict[str, Any]]:
    """The SFT rows of a batch labelled by the programs a refined table stored."""
    rows: list[dict[str, Any]] = []
    for doc_id, text, doc_program, chunk_programs, status in zip(
            frame["id"], frame["text"], frame["doc_program"], frame["chunk_programs"],
            frame["status"], strict=True):
        if doc_program is None and chunk_programs is None:
            label = TeacherLabel(None, None, "", f"the table holds no program for this "
                                 f"document (status {status})")
        else:
            programs = None if chunk_programs is None else list(chunk_programs)
            label = table_teacher(doc_program, programs)
        rows += doc_rows(doc_id, text, label, tok, job)
        rows += program_rows(doc_id, text, label, tok, job)
    return rows


def label_batches(job: LabelJob, frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """The task body: documents (`id`, `text`, and for a table teacher the
    stored programs) in, SFT rows out. A document that cannot be labelled is
    an invalid row with its reason, never a failed task."""
    tok = get_tokenizer(job.tokenizer)
    rules = _resolve_rules(job) if job.teacher.kind == "rules" else []
    for frame in frames:
        try:
            if job.teacher.kind == "rules":
                rows = _label_rules(frame, tok, job, rules)
            elif job.teacher.kind == "table":
                rows = _label_table(frame, tok, job)
            else:
                rows = label_llm(frame, tok, job)
        except Exception as exc:  # one bad batch is rows with a reason, not a failed job
            rows = failed_rows(list(frame["id"]), job, exc)
        out = pd.DataFrame(rows, columns=list(SFT_FIELDS))
        out["chunk_index"] = out["chunk_index"].astype("Int32")
        yield out


def _sample(df: DataFrame, config: DistillConfig) -> DataFrame:
    """`sample.size` documents chosen by a seeded hash of their id: the same
    documents for the same seed, whatever the partitioning."""
    from pyspark.sql import functions as F

    order = F.sha2(F.concat(F.lit(f"{config.sample.seed}:"), F.col("id")), 256)
    ranked = df.withColumn("_order", order)
    if config.sample.size is not None:
        ranked = ranked.orderBy("_order").limit(config.sample.size)
    return ranked.drop("_order")


def _documents(spark: SparkSession, config: PipelineConfig) -> tuple[DataFrame, int]:
    """Readable documents of the input, and how many records were read:
    unreadable ones (the refine job keeps them as error rows) are left out,
    and ids repeated in several records are resolved by the refine job's own
    rule (`input.on_duplicate_id`: by default an id with different texts is
    left out, since no text is chosen silently)."""
    from pyspark.sql import functions as F

    df = read_source(spark, config.input).cache()
    total = df.count()
    resolved = resolve_duplicate_ids(df, config.input)
    docs = resolved.where(F.col(SOURCE_ERROR).isNull() & F.col("text").isNotNull())
    return docs.select("id", "text"), total


_TABLE_COLUMNS = ("id", "doc_program", "chunk_programs", "status", "drop_reason")
_TRUNCATION_COLUMNS = ("truncated", "doc_truncated", "chunk_truncated")


def _with_table_programs(spark: SparkSession, docs: DataFrame, teacher: TeacherConfig
                         ) -> tuple[DataFrame, list[str]]:
    """`docs` joined with the programs of the refined table, only the rows
    whose programs applied cleanly (`_skip_reason`), and a note counting the
    skipped rows per reason (also logged)."""
    from pyspark.sql import functions as F

    assert teacher.table is not None
    table = RefinedTable(spark, teacher.table)
    if not table.exists():
        raise ConfigError("distill.teacher.table", f"{teacher.table} is not a Delta table")
    refined = table.read()
    missing = set(_TABLE_COLUMNS) - set(refined.columns)
    if missing:
        raise ConfigError("distill.teacher.table", f"{teacher.table} lacks the column(s) "
                          f"{', '.join(sorted(missing))} of a refined table")
    cut = [F.coalesce(_any_true(refined, c), F.lit(False)) for c in _TRUNCATION_COLUMNS
           if c in refined.columns]
    programs = refined.select(*_TABLE_COLUMNS, _skip_reason(cut).alias("_skip"))
    joined = docs.join(programs, "id", "inner").drop("drop_reason")
    skipped = {r["_skip"]: r["count"] for r in
               joined.where(F.col("_skip").isNotNull()).groupBy("_skip").count().collect()}
    notes = []
    if skipped:
        counts = sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0]))
        notes.append(f"table teacher skipped {sum(skipped.values()):,} rows whose programs did "
                     "not apply cleanly: " + ", ".join(f"{r} {n:,}" for r, n in counts))
        log.info(notes[0])
    return joined.where(F.col("_skip").isNull()).drop("_skip"), notes


def _any_true(df: DataFrame, column: str) -> Any:
    """A truncation column as one boolean (`chunk_truncated` holds one per
    chunk program)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType

    if isinstance(df.schema[column].dataType, ArrayType):
        return F.exists(F.col(column), lambda x: F.coalesce(x, F.lit(False)))
    return F.col(column)


def _skip_reason(truncated: list[Any]) -> Any:
    """Why a refined row is no lesson (null: it is one). A lesson is a row
    kept, edited, or dropped by the doc model, whose stored answers were not
    cut at the token limit; `reverted` (too many refused calls), `failed`,
    dropped by a rule or dedup stage, or cut rows teach what went wrong."""
    from pyspark.sql import functions as F

    status, reason = F.col("status"), F.col("drop_reason")
    cut = F.greatest(*truncated) if len(truncated) > 1 else (
        truncated[0] if truncated else F.lit(False))
    by_model = F.coalesce(reason == "doc_model", F.lit(False))
    return (F.when(status.isNull(), F.lit("no status"))
             .when((status == "dropped") & ~by_model,
                   F.concat(F.lit("dropped by "), F.coalesce(reason, F.lit("an unknown stage"))))
             .when(~status.isin("kept", "edited", "dropped"), F.concat(F.lit("status "), status))
             .when(cut, F.lit("truncated program"))
             .otherwise(F.lit(None)))


def _dedup_examples(df: DataFrame) -> DataFrame:
    """Identical (task, prompt, completion) examples: the first by id stays."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("example_key").orderBy("id", "chunk_index")
    first = F.first("id").over(w)
    rank = F.when(F.col("example_key").isNull(), F.lit(1)).otherwise(F.row_number().over(w))
    df = df.withColumn("_rank", rank).withColumn("_first", first)
    dup = F.col("_rank") > 1
    return (df.withColumn("valid", F.when(dup, F.lit(False)).otherwise(F.col("valid")))
              .withColumn("reason", F.when(dup, F.concat(F.lit("duplicate example (kept: "),
                                                         F.col("_first"), F.lit(")")))
                          .otherwise(F.col("reason")))
              .drop("_rank", "_first"))


AUTO_BALANCE_ABOVE = 0.8  # a majority doc decision above this share is balanced
AUTO_DROP_SHARE = 0.5


def balance_examples(df: DataFrame, drop_share: float | None) -> tuple[DataFrame, str | None]:
    """The examples with the train split's doc classes balanced, and a note
    saying so. `drop_share` set: as asked. None (the default): balanced to
    `AUTO_DROP_SHARE` when the teacher's majority decision exceeds
    `AUTO_BALANCE_ABOVE` of the valid train doc examples, since a student
    trained on 90% drops learns to answer only `drop_doc()` (issue 34)."""

    if drop_share is not None:
        return _balance(df, drop_share).localCheckpoint(), None
    drops, keeps = _train_doc_counts(df)
    if not drops or not keeps or max(drops, keeps) / (drops + keeps) <= AUTO_BALANCE_ABOVE:
        return df, None
    label = "drop_doc()" if drops > keeps else "keep_doc()"
    note = (f"the teacher answered {label} for {max(drops, keeps) / (drops + keeps):.0%} of the "
            f"train split's doc examples: balanced to {AUTO_DROP_SHARE:.0%} drops (distill."
            f"drop_share: null balances above {AUTO_BALANCE_ABOVE:.0%}; set it to keep another "
            "share); the eval split keeps the teacher's own")
    log.info(note)
    return _balance(df, AUTO_DROP_SHARE).localCheckpoint(), note


def _train_doc(df: DataFrame) -> Any:
    from pyspark.sql import functions as F

    return (F.col("task") == "doc") & F.col("valid") & (F.col("split") == "train")


def _train_doc_counts(df: DataFrame) -> tuple[int, int]:
    """(drops, keeps) among the train split's valid doc examples."""
    counts = {r["completion"]: r["count"] for r in
              df.where(_train_doc(df)).groupBy("completion").count().collect()}
    return counts.get("drop_doc()", 0), counts.get("keep_doc()", 0)


def _balance(df: DataFrame, drop_share: float) -> DataFrame:
    """Down-sample the majority doc label of the train split so that drops
    are `drop_share` of its valid doc examples (the eval split keeps the
    teacher's own distribution, so evaluation figures stay honest)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    train_docs = _train_doc(df)
    drops, keeps = _train_doc_counts(df)
    if not drops or not keeps:
        return df
    if drops / (drops + keeps) > drop_share:
        label, quota = "drop_doc()", round(drop_share / (1 - drop_share) * keeps)
    else:
        label, quota = "keep_doc()", round((1 - drop_share) / drop_share * drops)
    # Numbered among the train split's valid doc examples only.
    w = Window.partitionBy(train_docs, "completion").orderBy(F.sha2(F.col("id"), 256))
    over = train_docs & (F.col("completion") == label) & (F.row_number().over(w) > quota)
    df = df.withColumn("_over", over)
    return (df.withColumn("valid", F.when(F.col("_over"), F.lit(False)).otherwise(F.col("valid")))
              .withColumn("reason", F.when(F.col("_over"), F.lit(
                  f"class balance: over drop_share={drop_share}")).otherwise(F.col("reason")))
              .drop("_over"))


def label_job(config: PipelineConfig) -> LabelJob:
    """The task settings from a validated config (rules: its rule stages)."""
    distill = distill_config(config)
    rules = tuple((s.name, dict(s.params)) for s in config.stages
                  if stage_spec(s.name).model is None and not s.name.endswith("_dedup"))
    if distill.teacher.kind == "rules" and not rules:
        raise ConfigError("stages", "the rules teacher needs rule stages in `stages:` "
                          "(e.g. gopher_quality, c4_quality)")
    doc, chunk = config.doc_model, config.chunk_model
    return LabelJob(
        teacher=distill.teacher, tokenizer=distill.tokenizer_dir,
        doc_max_tokens=doc.max_prompt_tokens if doc else DOC_MAX_TOKENS,
        chunk_max_tokens=chunk.max_prompt_tokens if chunk else CHUNK_MAX_TOKENS,
        max_doc_chars=chunk.max_doc_chars if chunk else DEFAULT_MAX_DOC_CHARS,
        tasks=distill.tasks, eval_fraction=distill.eval_fraction, policy=config.policy,
        rules=rules)


MIN_CHARS_PER_TOKEN = 2.0


def _student_tokenizer(docs: DataFrame, config: DistillConfig) -> None:
    """From scratch, the student's tokenizer is trained on the sampled
    documents first (once per output directory), so every prompt is
    measured with the tokenizer the student will have.

    Raises ConfigError naming `distill.student.vocab_size`, leaving nothing
    on disk, when the trained tokenizer averages fewer than
    `MIN_CHARS_PER_TOKEN` characters per token on the sample: prompts would
    hold a fraction of the text they hold in production."""
    if config.student.base_model is not None:
        return
    path = Path(config.tokenizer_dir)
    if (path / "tokenizer.json").is_file():
        return
    texts = [r["text"] for r in docs.select("text").collect()]
    vocab = config.student.vocab_size
    with tempfile.TemporaryDirectory(prefix="prox-tokenizer-") as tmp:
        build_tokenizer(tmp, texts, vocab_size=vocab)
        ratio = chars_per_token(tmp, texts)
        if ratio < MIN_CHARS_PER_TOKEN:
            distinct = len(set().union(*map(set, texts)))
            raise ConfigError("distill.student.vocab_size", (
                f"a tokenizer of {vocab:,} tokens averages {ratio:.2f} characters per token "
                f"on the sample ({distinct:,} distinct characters), under "
                f"{MIN_CHARS_PER_TOKEN:g}; raise vocab_size (e.g. to {_suggest(vocab, distinct):,})"
                " or start from a base_model"))
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(tmp, path)
    log.info("trained the student's tokenizer (at most %d tokens, %.1f characters per token) "
             "on %d documents: %s", vocab, ratio, len(texts), path)


def _suggest(vocab: int, distinct: int) -> int:
    """A vocabulary size worth trying: room for every distinct character
    twice over (one token each, as many merges), at least twice `vocab`."""
    return -(-max(2 * vocab, 256 + 2 * distinct) // 1000) * 1000


def annotate(config: PipelineConfig, spark: SparkSession | None = None) -> AnnotateSummary:
    """Label a sample of `config.input` with the configured teacher and
    write the SFT Delta table (overwritten: the table is one annotation).

    Raises ConfigError (nothing written) for a config without `distill:`, a
    rules teacher without rule stages, an llm teacher whose model cannot be
    loaded, a table teacher whose table is missing, a sample without text,
    a from-scratch tokenizer too small for the sample, and a run in which
    every example was discarded."""
    distill = distill_config(config)
    job = label_job(config)
    if job.teacher.kind == "llm":
        check_teacher_model(job.teacher)
    started = time.monotonic()
    spark = spark or job_session("prox-spark-annotate", config.partitions, config.spark_conf)
    sample, count, notes = _sampled_documents(spark, config)
    _student_tokenizer(sample, distill)
    docs = sample
    if job.teacher.kind == "table":
        docs, skipped = _with_table_programs(spark, sample, job.teacher)
        notes += skipped
    examples, balanced = _examples(docs.repartition(max(config.partitions, 1)), job, distill)
    if balanced:
        notes.append(balanced)
    per_task, labels, discards, splits = summarize(examples)
    sample.unpersist()
    _refuse_all_discarded(per_task, discards, examples)
    overwrite_table(examples.select(*SFT_FIELDS), distill.sft_table)
    written = read_table(spark, distill.sft_table)
    for task_name in distill.tasks:
        if not per_task.get(task_name, {}).get("valid"):
            notes.append(f"no valid {task_name} example: train refuses this task")
    summary = AnnotateSummary(
        documents=count, examples=per_task, labels=labels, discards=discards, splits=splits,
        table=str(distill.sft_table), version=table_version(spark, distill.sft_table),
        seconds=time.monotonic() - started, notes=tuple(notes))
    return _with_report(spark, written, summary, distill)


def _sampled_documents(spark: SparkSession, config: PipelineConfig
                       ) -> tuple[DataFrame, int, list[str]]:
    """The sample (cached), its size and a note on the records left out.

    Raises ConfigError naming `input` when the sample holds no document or
    no document with a non-blank text (nothing to label or train on)."""
    from pyspark.sql import functions as F

    distill = distill_config(config)
    readable, records = _documents(spark, config)
    docs = _sample(readable, distill).cache()
    count = docs.count()
    left_out = records - readable.count()
    if count == 0:
        raise ConfigError("input", f"{config.input.ref} holds no readable document to label")
    if docs.where(F.col("text").rlike(r"\S")).limit(1).count() == 0:
        docs.unpersist()
        raise ConfigError("input", f"every one of the {count:,} sampled documents of "
                          f"{config.input.ref} has an empty text: nothing to label")
    notes = []
    if left_out:
        notes.append(f"{left_out:,} of {records:,} input records not labelled: unreadable "
                     "(malformed, no id, no text), repeated, or an id with several texts")
    return docs, count, notes


def _examples(docs: DataFrame, job: LabelJob, distill: DistillConfig
              ) -> tuple[DataFrame, str | None]:
    """The SFT rows of `docs`, deduplicated and balanced as configured
    (checkpointed: the teacher runs once), and a note when balancing was
    the default's."""

    def task(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        yield from label_batches(job, frames)

    examples = docs.mapInPandas(task, SFT_SCHEMA)
    if distill.dedup_examples:
        examples = _dedup_examples(examples)
    examples = examples.localCheckpoint()
    return balance_examples(examples, distill.drop_share)


def _refuse_all_discarded(per_task: Mapping[str, Mapping[str, int]],
                          discards: Mapping[str, int], examples: DataFrame) -> None:
    """ConfigError naming `distill.teacher` when no example is valid: a
    table of discards only would make `train` fail later and hide why."""
    from pyspark.sql import functions as F

    if any(c.get("valid") for c in per_task.values()):
        return
    total = sum(discards.values())
    if not total:
        raise ConfigError("distill.teacher", "the teacher gave no example for the sample "
                          "(no document it has a label for); nothing written")
    common = sorted(discards.items(), key=lambda kv: -kv[1])[:3]
    first = examples.where(F.col("reason").isNotNull()).select("reason").first()
    example = " ".join(str(first["reason"]).split())[:200] if first else ""
    raise ConfigError("distill.teacher", (
        f"all {total:,} examples were discarded, nothing written; commonest reasons: "
        + "; ".join(f"{r} ({n:,})" for r, n in common) + (f"; e.g. {example}" if example else "")))


def _with_report(spark: SparkSession, written: DataFrame, summary: AnnotateSummary,
                 distill: DistillConfig) -> AnnotateSummary:
    try:
        path = write_annotate_report(written, summary, distill)
    except Exception as exc:  # a report must never fail the labelling
        log.warning("the annotate report could not be written: %s: %s", type(exc).__name__, exc)
        return summary
    return replace(summary, report=None if path is None else str(path))
