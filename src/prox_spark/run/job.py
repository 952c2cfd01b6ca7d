"""The refinement job: source table -> stages -> refined Delta table, in
bounded, exactly-once batches.

    >>> summary = run_pipeline(load_config("conf/local.yaml"))  # doctest: +SKIP

A run reads the source, decides what is pending (`run.plan`), deletes
refined rows whose documents left the source, then refines and commits the
pending documents `commit_every` at a time, one MERGE per batch
(`run.batches`). Documents already in the refined table with the same
content hash and fingerprint are not refined again, so a killed run started
again redoes at most the batch that was in flight, and a second run of the
same job changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict, replace
from typing import TYPE_CHECKING

from prox_spark.config import PipelineConfig
from prox_spark.errors import ConfigError
from prox_spark.fingerprint import fingerprint
from prox_spark.io.delta import append_rows, with_conflict_retries
from prox_spark.io.metrics import METRICS_SCHEMA, RunSummary, now, run_row
from prox_spark.report.page import versions, write_report
from prox_spark.resources import has_gpus
from prox_spark.run.batches import Run, Tally
from prox_spark.run.plan import Plan, plan
from prox_spark.run.refine import chain_for
from prox_spark.run.refined_table import RefinedTable
from prox_spark.session import DeltaMissing, job_session, persistent_ref, require_delta
from prox_spark.stages.registry import MODEL_STAGES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger("prox_spark")
CPU_PROMPT_TOKENS_PER_SECOND = 100.0
"""What the released architecture reads on two CPU cores (measured by
benchmarks/generation_throughput.py: roughly 80-150 prompt tokens/s)."""

__all__ = ["METRICS_SCHEMA", "RunSummary", "plan_work", "run_pipeline", "session_for"]


def session_for(config: PipelineConfig) -> SparkSession:
    """The cluster's session, or a local one with the config's Spark settings."""
    return job_session("prox-spark-refine", config.partitions, config.spark_conf)


def checked_session(spark: SparkSession, config: PipelineConfig) -> PipelineConfig:
    """Refuse a session without Delta (`ConfigError` naming `spark`), and
    give catalog tables of a local session, whose catalog dies with it, a
    lasting home under `./spark-warehouse` (see `session.persistent_ref`)."""
    try:
        require_delta(spark)
    except DeltaMissing as exc:
        raise ConfigError("spark", str(exc)) from None
    output, metrics = persistent_ref(spark, config.output), persistent_ref(spark, config.metrics)
    for given, used in ((config.output, output), (config.metrics, metrics)):
        if used != given:
            log.info("table %s: this Spark session keeps no catalog, so it is the Delta table "
                     "at %s", given.table, used.path)
    return replace(config, output=output, metrics=metrics)


def cpu_sample(spark: SparkSession, config: PipelineConfig) -> PipelineConfig:
    """Without a GPU, a config with `cpu_sample` refines only that many pending
    documents (unless --limit or --all says otherwise)."""
    names = {s.name for s in config.stages}
    if config.cpu_sample is None or config.limit is not None or \
            not names & set(MODEL_STAGES) or has_gpus(spark):
        return config
    return replace(config, limit=config.cpu_sample)


def plan_work(spark: SparkSession, config: PipelineConfig) -> tuple[PipelineConfig, str, Plan]:
    """What a run of `config` would do, read-only: the config as the session
    runs it (tables of a catalog-less session under ./spark-warehouse, the
    CPU sample), its fingerprint, and the plan (`run.plan`). Raises
    `ConfigError` for a session without Delta."""
    config = checked_session(spark, config)
    fp = fingerprint(config)
    log.info("reading %s (%s)", config.input.ref, config.input.format)
    config = cpu_sample(spark, config)
    return config, fp, plan(spark, config, fp)


def _estimate(work: Plan) -> None:
    from pyspark.sql import functions as F

    chars = work.pending.agg(F.sum(F.length("text"))).collect()[0][0] or 0
    # Prompts hold each document about twice (doc stage, then its chunks),
    # about four characters per token.
    seconds = 2 * chars / 4 / CPU_PROMPT_TOKENS_PER_SECOND
    log.warning("no GPU: refining a sample of %d of the %d pending documents (cpu_sample), "
                "about %d min of generation on CPU plus a few minutes to start the engines; "
                "run with --all (or --limit N) to refine more",
                work.pending_count, work.waiting_count, max(1, round(seconds / 60)))


def run_pipeline(config: PipelineConfig, spark: SparkSession | None = None) -> RunSummary:
    """Run the whole job: plan, delete what left the source, refine and commit
    in batches, record metrics. A run sets its commits' Delta options in
    `spark`'s SQL conf, so two runs at once in one driver (threads of a
    notebook) each need a session of their own (`spark.newSession()`)."""
    started = time.monotonic()
    spark = spark or session_for(config)
    config = checked_session(spark, config)
    run_id = uuid.uuid4().hex[:12]
    planned_at = now()
    seen_version = RefinedTable(spark, config.output).version()
    config, fp, work = plan_work(spark, config)
    if config.cpu_sample is not None and config.limit == config.cpu_sample:
        _estimate(work)
    log.info("%d documents in (%s), %d to refine in %d batch(es) of up to %d, %d to delete; "
             "fingerprint %s", work.documents_in, work.mode, work.pending_count,
             len(work.bounds), config.commit_every, work.deleted_count, fp)
    run = Run(spark, config, work, fp, chain_for(config), RefinedTable(spark, config.output),
              run_id, planned_at, Tally(known_version=seen_version))
    if work.pending_count or work.deleted is not None:
        run.table.ensure()
    deleted = run.delete_gone()
    tally = run.refine_and_commit()
    work.unpersist()
    if work.deleted is not None:
        work.deleted.unpersist()
    summary = RunSummary.of(
        tally.total, fingerprint=fp, documents_in=work.documents_in,
        already_refined=work.documents_in - work.waiting_count,
        wall_seconds=time.monotonic() - started,
        duplicate_records=work.duplicate_records, conflicting_ids=work.conflicting_ids,
        deleted=deleted, batches=tally.commits, skipped_batches=tally.skipped,
        source_version=work.refreshed_to, run_id=run_id, notes=summary_notes(run),
    )
    run.sync()
    row = {**run_row(summary), **provenance(config, work.source_version)}
    with_conflict_retries(
        lambda _: append_rows(spark, [row], METRICS_SCHEMA, config.metrics),
        retries=5, what="recording the run", log=log.warning)
    _report(spark, config)
    return summary


def summary_notes(run: Run) -> tuple[str, ...]:
    """What the summary says beside its figures: an empty input, documents
    left for a later run, batches another run held, no table written."""
    config, work = run.config, run.work
    notes = []
    if work.documents_in == 0:
        notes.append(f"the input {config.input.ref} holds no documents")
    if work.waiting_count > work.pending_count:
        beyond = ("the CPU sample (--all refines them)" if config.limit == config.cpu_sample
                  else f"--limit {config.limit}")
        notes.append(f"{work.waiting_count - work.pending_count:,} more documents wait beyond "
                     f"{beyond}")
        if work.source_version is not None and work.refreshed_to != work.source_version:
            notes.append(f"the change feed stays before source version {work.source_version} "
                         "until they are refined")
    if run.tally.held_elsewhere:
        notes.append(f"another run held {run.tally.held_elsewhere} batch(es) when this run "
                     "reached them, so this run took later batches first or waited for them; "
                     "the batches the other run committed, held when reached or not, are "
                     "counted above as committed by another run")
    if not run.table.exists():
        notes.append(f"no refined table was written at {config.output}: nothing to refine")
    return tuple(notes)


def provenance(config: PipelineConfig, source_version: int | None) -> dict[str, str]:
    """What the run row records for its report: the source as read, the
    settings, and the versions of what decided the output."""
    inp = config.input
    source = {"path": inp.ref.path, "table": inp.ref.table, "format": inp.format,
              "id_column": inp.id_column, "text_column": inp.text_column,
              "cast_text": inp.cast_text, "version": source_version}
    return {"source": json.dumps(source), "versions": json.dumps(versions()),
            "settings": json.dumps(asdict(config), default=str)}


def _report(spark: SparkSession, config: PipelineConfig) -> None:
    """Write the run's HTML report; a report that fails is logged, never fatal."""
    if config.report is None:
        return
    try:
        path = write_report(spark, config.output, config.metrics, sample=config.report.sample,
                            seed=config.report.seed, folder=config.report.path)
    except Exception as exc:
        log.warning("the run report could not be written: %s: %s", type(exc).__name__, exc)
        return
    if path is not None:
        log.info("run report: %s", path)
