"""The refinement job: source table -> stages -> refined Delta table, in
bounded, exactly-once batches.

    >>> summary = run_pipeline(load_config("conf/local.yaml"))  # doctest: +SKIP

A run reads the source, decides what is pending (`refresh.plan`), deletes
refined rows whose documents left the source, then refines and commits the
pending documents `commit_every` at a time, one MERGE per batch. Documents
already in the refined table with the same content hash and fingerprint are
not refined again, so a killed run started again redoes at most the batch
that was in flight, and a second run of the same job changes nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from prox_spark.config import DEDUP_STAGES, PipelineConfig
from prox_spark.errors import CommitConflict, CommitFailed, TooManyFailed, first_line
from prox_spark.fingerprint import MODEL_STAGES, fingerprint, stage_fingerprints
from prox_spark.io.claims import BatchClaims, Holding, batch_key, claims_ref
from prox_spark.io.delta import (
    append_rows,
    delete_ids,
    ensure_table,
    merge_batch,
    read_table,
    rows_changed_by_others,
    table_exists,
    table_version,
    with_conflict_retries,
)
from prox_spark.io.metrics import (
    METRICS_SCHEMA,
    BatchStats,
    RunSummary,
    batch_metadata,
    batch_stats,
    delete_metadata,
    run_row,
    sync_metrics,
)
from prox_spark.program import FAILED
from prox_spark.progress import progress
from prox_spark.refresh import Plan, plan
from prox_spark.resources import has_gpus
from prox_spark.schema import ATTEMPTS, REFINED_SCHEMA, SOURCE_ERROR, STATUS, TEXT
from prox_spark.session import job_session
from prox_spark.stages import Stage
from prox_spark.stages.finalize import ORIGINAL_TEXT, finish_rows
from prox_spark.stages.model_stages import fuse_model_stages, model_stage_names
from prox_spark.stages.model_usage import model_usage
from prox_spark.stages.registry import BuildContext, stage_spec
from prox_spark.stages.reuse import finish_reuse, stored_outputs, with_reuse
from prox_spark.stages.rule_stages import fuse_rule_stages

if TYPE_CHECKING:
    from concurrent.futures import Future

    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("prox_spark")
# The metrics table is brought up to date from the commits at the end of a
# run (a crashed run's batches included), and after a batch when this long
# has passed since the last time (each batch's figures are in its own commit
# either way, so nothing is lost in between).
METRICS_EVERY_SECONDS = 300.0
__all__ = ["METRICS_SCHEMA", "CommitFailed", "RunSummary", "TooManyFailed", "build_stages",
           "fingerprint", "refine", "run_pipeline"]


def build_stages(config: PipelineConfig, existing: DataFrame | None = None) -> list[Stage]:
    """The configured stages, in order, as DataFrame -> DataFrame callables,
    built from the stage registry.

    `existing` (rows already refined) is what the dedup stages compare new
    documents with, beside each other."""
    # Rule stages count the tokens they remove with a model's tokenizer, if any.
    model = config.chunk_model or config.doc_model
    context = BuildContext(config.doc_model, config.chunk_model, config.policy, existing,
                           model.engine.tokenizer_name if model is not None else None)
    return fuse_rule_stages(fuse_model_stages(
        [stage_spec(item.name).create(item.params, context) for item in config.stages]))


def refine(df: DataFrame, config: PipelineConfig, existing: DataFrame | None = None,
           stored: DataFrame | None = None) -> DataFrame:
    """Apply the configured stages to (id, text, ...) and return the refined columns.

    Rows with a `source_error` (unreadable records) skip the stages and come
    out as dropped rows carrying that error. The result has `REFINED_TYPES`
    plus `invalid` (the row was a source error). Every dropped or failed row
    has a `drop_reason`: the first rule or dedup stage that dropped it (its
    reason code), else the interpreter's ("doc_model", "chunk_policy:...",
    "failed:<kind>"), "invalid_record" for source errors. `words_after` and
    `tokens_after` count the final text, and only rows in the corpus.

    `stored` (`stages.reuse.stored_outputs` of the refined table) offers the
    model stages their stored programs: a model stage whose fingerprint and
    input text are unchanged takes them instead of calling the model.
    """
    from pyspark.sql import functions as F

    has_errors = SOURCE_ERROR in df.columns
    valid = df.where(F.col(SOURCE_ERROR).isNull()) if has_errors else df
    valid = valid.withColumn(ORIGINAL_TEXT, F.col(TEXT))
    fps = stage_fingerprints(config)
    # The interpreter counts the words and tokens of what it leaves; they are
    # counted again only when a stage after it changed the text.
    counted = False
    for stage in build_stages(config, existing):
        models = model_stage_names(stage)
        if models:
            valid = with_reuse(valid, stored, models, fps)
        valid = valid.transform(stage)
        counted = "prox_chunk" in models
    valid = finish_reuse(valid, fps)
    model = config.chunk_model or config.doc_model
    return finish_rows(valid, df.where(F.col(SOURCE_ERROR).isNotNull()) if has_errors else None,
                       config.policy, model.engine.tokenizer_name if model else None,
                       counted=counted)


def _existing(spark: SparkSession, config: PipelineConfig, later: DataFrame,
              in_flight: DataFrame | None = None) -> DataFrame:
    """Refined rows new documents are deduplicated against: the table, minus
    the pending documents this run has not committed yet (`later`), plus
    `in_flight`: the refined rows of a batch being committed while the next
    one is refined (its ids are in `later`, so the table's copy of them, old
    or just committed, is never counted twice)."""
    table = read_table(spark, config.output)
    keep = [c for c in ("id", "dedup_hash", "minhash", "duplicate_of") if c in table.columns]
    rows = table.select(*keep).join(later.select("id"), "id", "left_anti")
    if in_flight is not None:
        rows = rows.unionByName(in_flight.select(*keep))
    return rows


def _stored(spark: SparkSession, config: PipelineConfig) -> DataFrame | None:
    """What the model stages may reuse from the refined table (see `stages.reuse`)."""
    if not any(s.name in MODEL_STAGES for s in config.stages):
        return None
    return stored_outputs(read_table(spark, config.output))


def _not_done_since(spark: SparkSession, config: PipelineConfig, rows: DataFrame, fp: str,
                    since: Any) -> DataFrame:
    """`rows` minus those another run committed (same content and fingerprint)
    after this run planned its work."""
    from pyspark.sql import functions as F

    done = (read_table(spark, config.output)
            .where((F.col("fingerprint") == fp) & (F.col("refined_at") >= F.lit(since)))
            .select("id", "content_hash"))
    return rows.join(done, ["id", "content_hash"], "left_anti")


def _eta(done: int, total: int, seconds: float) -> str:
    if not done or done >= total:
        return "0s"
    left = seconds / done * (total - done)
    return f"{int(left // 60)}m{int(left % 60):02d}s" if left >= 60 else f"{left:.0f}s"


def _delete_gone(spark: SparkSession, config: PipelineConfig, work: Plan, run_id: str,
                 fp: str) -> int:
    """Delete the refined rows whose documents left the source; returns how
    many this run deleted. The rows still in the table are counted inside
    each attempt, so of two runs deleting at once one deletes them and the
    other (after the conflict, or finding none left) deletes and counts 0."""
    if work.deleted is None:
        return 0
    log.info("deleting %d refined rows whose documents left the source", work.deleted_count)

    def delete(_: int) -> int:
        present = read_table(spark, config.output).select("id")
        ids = work.deleted.join(present, "id", "left_semi").localCheckpoint(eager=True)
        count = ids.count()
        if count:
            delete_ids(spark, config.output, ids,
                       metadata=delete_metadata(run_id, fp, count, work.id_type))
        return int(count)

    return with_conflict_retries(delete, retries=config.commit_retries,
                                 what="deleting rows gone from the source", log=log.warning)


@dataclass
class _Progress:
    """What `_commit_batches` has done so far (for the ETA and the totals).
    The committer thread and the run's thread both update it, under `lock`."""

    total: BatchStats = field(default_factory=BatchStats)
    skipped: int = 0
    held_elsewhere: int = 0
    commits: int = 0
    # The output table's version as this run last accounted for it (None:
    # unknown), and whether it has moved on without this run since planning
    # (see `_moved_on`).
    known_version: int | None = None
    moved: bool = False
    failed_before: DataFrame | None = None
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    synced: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Refined:
    """Batch `k` refined (`rows`, checkpointed) and counted, not yet committed."""

    k: int
    rows: DataFrame
    stats: BatchStats
    usage: dict[str, Any]
    started: float
    refine_seconds: float
    holding: Holding | None = None


class _Committer:
    """Commits refined batches one at a time in a thread of its own, so that
    a batch's MERGE (and its claim's release, and the metrics) overlaps the
    refinement of the next batch: on GPUs the models are not left idle while
    Delta writes. A batch is handed over only once the commit before it has
    succeeded (`submit` raises that commit's error, and the run stops there:
    a later batch was deduplicated against the rows of the one before).

    All of a run's commits to the output and metrics tables go through this
    thread: a commit sets Delta's txnAppId/txnVersion/userMetadata in the
    session's SQL conf, which no other write of the session may see."""

    def __init__(self, commit: Callable[[_Refined], None]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._commit = commit
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prox-spark-commit")
        self._pending: tuple[_Refined, Future[None]] | None = None

    def in_flight(self) -> _Refined | None:
        """The batch handed over whose commit has not been confirmed yet."""
        return self._pending[0] if self._pending is not None else None

    def wait(self) -> None:
        """Wait for the batch in flight; raise its commit's error."""
        if self._pending is not None:
            _, future = self._pending
            self._pending = None
            future.result()

    def submit(self, ready: _Refined) -> None:
        """Commit `ready` in the background once the batch before it is committed."""
        self.wait()
        self._pending = (ready, self._pool.submit(self._commit, ready))

    def close(self, failing: bool) -> None:
        """Wait for the batch in flight; when the run is already `failing`,
        a failed commit is logged instead of raised (the first error wins)."""
        try:
            self.wait()
        except Exception as exc:
            if not failing:
                raise
            log.warning("the batch committed in the background failed too: %s", exc)
        finally:
            self._pool.shutdown(wait=True)


def _commit_batches(spark: SparkSession, config: PipelineConfig, work: Plan, run_id: str,
                    fp: str, planned_at: Any, seen_version: int | None = None) -> _Progress:
    """Claim, refine and commit every batch (see `claims`). A batch another
    run holds is left to it while this run takes the next; at the end the run
    waits for those batches: committed by the other run (nothing left to do)
    or claimable again (the other run died and its lease lapsed). Each batch
    is claimed while the one before is refined, and committed while the one
    after is refined (`_Committer`).

    With dedup stages a batch is deduplicated against the batches before it
    (lower ids) as committed, so a run goes in id order: it waits for a batch
    another run holds before it refines later ones (two runs still never
    refine a document twice; the second one takes what the first has not
    claimed)."""
    in_order = any(s.name in DEDUP_STAGES for s in config.stages)
    n = len(work.bounds)
    state = _Progress(known_version=seen_version)
    claims = BatchClaims(spark, claims_ref(config.output), run_id, config.claim_lease_seconds)

    def commit_and_release(ready: _Refined) -> None:
        try:
            _commit_refined(spark, config, work, run_id, fp, planned_at, state, ready)
        finally:
            if ready.holding is not None:
                claims.release(ready.holding)

    committer = _Committer(commit_and_release)

    def ahead(k: int) -> Future[Holding | None] | None:
        return claims.claim_ahead(_key(work, k, fp), *_range(work, k)) if k < n else None

    def refine_held(k: int, holding: Holding, waited: bool = False) -> None:
        try:
            ready = _refine_batch(spark, config, work, k, run_id, fp, planned_at, state,
                                  waited, holding, committer.in_flight())
            if ready is not None:
                committer.submit(ready)  # the claim is released after the commit
                return
        except BaseException:
            claims.release(holding)
            raise
        claims.release(holding)

    next_claim = ahead(0)
    waiting: list[int] = []
    failing = True
    try:
        for k in range(n):
            assert next_claim is not None
            holding = next_claim.result()
            waited = holding is None and in_order
            if waited:
                committer.wait()
                holding = _wait_for(claims, work, k, fp, config, state)
            next_claim = ahead(k + 1)
            if holding is None:
                log.info("batch %d of %d: being refined by another run; taking the next",
                         k + 1, n)
                waiting.append(k)
                continue
            refine_held(k, holding, waited)
        committer.wait()
        if waiting:
            state.held_elsewhere += len(waiting)
            log.info("waiting for %d batch(es) another run is refining (a dead run's claim "
                     "lapses after claim_lease_seconds=%g)", len(waiting),
                     config.claim_lease_seconds)
        while waiting:
            time.sleep(min(5.0, config.claim_lease_seconds / 4))
            for k in list(waiting):
                holding = claims.claim_ahead(_key(work, k, fp), *_range(work, k)).result()
                if holding is not None:
                    waiting.remove(k)
                    refine_held(k, holding, waited=True)
                    committer.wait()
        failing = False
    finally:
        committer.close(failing)
        if next_claim is not None:
            _release_unused(claims, next_claim)
        claims.close()
    return state


def _wait_for(claims: BatchClaims, work: Plan, k: int, fp: str, config: PipelineConfig,
              state: _Progress) -> Holding:
    """Claim batch `k` once the run holding it is done with it (committed, or
    dead and its lease lapsed)."""
    log.info("batch %d of %d: being refined by another run; waiting for it (dedup goes in id "
             "order; a dead run's claim lapses after claim_lease_seconds=%g)", k + 1,
             len(work.bounds), config.claim_lease_seconds)
    state.held_elsewhere += 1
    while True:
        time.sleep(min(5.0, config.claim_lease_seconds / 4))
        holding = claims.claim_ahead(_key(work, k, fp), *_range(work, k)).result()
        if holding is not None:
            return holding


def _release_unused(claims: BatchClaims, claimed: Future[Holding | None]) -> None:
    """Release a batch claimed ahead that this run will not refine (it
    stopped early); a failed claim needs nothing."""
    try:
        holding = claimed.result()
    except Exception as exc:
        log.debug("a claim made ahead failed: %s", exc)
        return
    if holding is not None:
        claims.release(holding)


def _range(work: Plan, k: int) -> tuple[str, str | None]:
    """Batch `k`'s ids: [first, next) (next None: to the end)."""
    return work.bounds[k], work.bounds[k + 1] if k + 1 < len(work.bounds) else None


def _key(work: Plan, k: int, fp: str) -> str:
    return batch_key(fp, *_range(work, k))


def _refine_batch(spark: SparkSession, config: PipelineConfig, work: Plan, k: int, run_id: str,
                  fp: str, planned_at: Any, state: _Progress, waited: bool = False,
                  holding: Holding | None = None, in_flight: _Refined | None = None
                  ) -> _Refined | None:
    """Refine batch `k` (claimed by this run) and count it; None when there
    is nothing to commit. When another run held the batch before (`waited`)
    or the table has commits this run has not accounted for, the batch is
    checked against what was committed since planning before anything is
    refined. `in_flight` is the batch before it, still being committed: the
    dedup stages count its rows as committed. Raises `TooManyFailed`."""
    from pyspark.sql import functions as F

    n = len(work.bounds)
    batch_started = time.monotonic()
    rows = work.batch(k)
    if _moved_on(spark, config, state, run_id) or waited:
        rows = _not_done_since(spark, config, rows, fp, planned_at)
        if rows.isEmpty():
            with state.lock:
                state.skipped += 1
            log.info("batch %d of %d: committed by another run, nothing left to do", k + 1, n)
            return None
    before = in_flight if in_flight is not None and in_flight.k < k else None
    later = work.pending.where(F.col("id") >= F.lit(work.bounds[before.k if before else k]))
    usage_before = model_usage(spark)
    with progress(spark, f"batch {k + 1} of {n}"):
        refined = (
            _with_attempts(spark, config, fp, state, refine(
                rows.repartition(config.partitions), config,
                _existing(spark, config, later, before.rows if before else None),
                _stored(spark, config)))
            .withColumn("fingerprint", F.lit(fp))
            .withColumn("refined_at", F.current_timestamp())
            # Model output must never be computed twice, even after this
            # session writes to a table the plan reads.
            .localCheckpoint(eager=True)
        )
        usage = asdict(model_usage(spark) - usage_before)
        stats = replace(batch_stats(refined, work.previous), **usage)
    if stats.refined == 0:
        with state.lock:
            state.skipped += 1
        log.info("batch %d of %d: already committed by another run, skipped", k + 1, n)
        return None
    _check_failed(config, stats, k, n)
    return _Refined(k, refined, stats, usage, batch_started,
                    time.monotonic() - batch_started, holding)


def _commit_refined(spark: SparkSession, config: PipelineConfig, work: Plan, run_id: str,
                    fp: str, planned_at: Any, state: _Progress, ready: _Refined) -> None:
    """Commit a refined batch (one MERGE, retried on a Delta conflict) and
    account for it; runs in the committer's thread (see `_Committer`)."""
    k, n = ready.k, len(work.bounds)
    holding = ready.holding
    # Delta skips a commit whose txn version is not above the last one of
    # this app id, so versions count this run's commits (batches can be
    # committed out of id order when another run held one).
    commit_number = state.commits + 1

    def commit(attempt: int) -> BatchStats:
        todo, now_stats = ready.rows, ready.stats
        if attempt or (holding is not None and holding.lost):
            # Another writer won, or may have (this run's claim lapsed):
            # keep only what it has not committed.
            todo = _not_done_since(spark, config, ready.rows, fp, planned_at)
            now_stats = replace(batch_stats(todo, work.previous), **ready.usage)
            if now_stats.refined == 0:
                return now_stats
        meta = batch_metadata(run_id, k + 1, n, fp, now_stats,
                              time.monotonic() - ready.started, work.id_type)
        log.info("batch %d of %d: writing %d documents", k + 1, n, now_stats.refined)
        merge_batch(spark, todo, config.output, app_id=f"prox-spark:{run_id}",
                    txn_version=commit_number, metadata=meta, id_range=_range(work, k))
        return now_stats

    try:
        stats = with_conflict_retries(commit, retries=config.commit_retries,
                                      what=f"batch {k + 1} of {n}", log=log.warning)
    except CommitConflict:
        raise
    except Exception as exc:
        raise CommitFailed(f"batch {k + 1} of {n} could not be committed, so no later batch "
                           f"was: {first_line(exc, 400)}") from exc
    done = work.batch(k).count() if stats.refined == 0 else stats.refined
    with state.lock:
        if stats.refined:
            state.commits += 1
        else:  # another run committed all of it first: nothing was written
            state.skipped += 1
        state.total = state.total + stats
        state.done += done
    seconds = time.monotonic() - ready.started
    log.info("batch %d of %d committed: %d documents, %.1f documents/s, tokens in %d / "
             "out %d, ETA %s (refine %.1f s, commit %.1f s)", k + 1, n, stats.refined,
             stats.refined / max(seconds, 1e-9), stats.tokens_before, stats.tokens_after,
             _eta(state.done, work.pending_count, time.monotonic() - state.started),
             ready.refine_seconds, seconds - ready.refine_seconds)
    if time.monotonic() - state.synced >= METRICS_EVERY_SECONDS:
        _sync(spark, config)
        state.synced = time.monotonic()


def _moved_on(spark: SparkSession, config: PipelineConfig, state: _Progress,
              run_id: str) -> bool:
    """Whether another writer has changed rows of the output table since
    this run planned: from then on every batch is checked against what was
    committed since planning. Sticky, because another run's commit may be
    of any later batch (it claimed, committed and released it before this
    run claimed it). In a run alone (its own commits, a table creation) the
    check, a scan of the table, is skipped. The versions this run's commits
    made are told apart in the table's history (their userMetadata names the
    run), not counted: a batch may be committing in the background."""
    if not state.moved:
        latest = table_version(spark, config.output)
        if latest != state.known_version:
            state.moved = rows_changed_by_others(spark, config.output, state.known_version,
                                                 run_id)
            state.known_version = latest
    return state.moved


def _with_attempts(spark: SparkSession, config: PipelineConfig, fp: str, state: _Progress,
                   refined: DataFrame) -> DataFrame:
    """`refined` with `attempts`: how many runs have tried each document (same
    content and fingerprint), this one included. A row the table holds as
    "failed" for the same content and fingerprint is being retried. The
    failed rows are read once per run (this run's batches never hold one
    another's documents)."""
    from pyspark.sql import functions as F

    if state.failed_before is None:
        table = read_table(spark, config.output)
        state.failed_before = (
            table.where((F.col("fingerprint") == F.lit(fp)) & (F.col(STATUS) == F.lit(FAILED)))
            .select("id", "content_hash",
                    F.coalesce(F.col(ATTEMPTS), F.lit(1)).alias("_previous"))
            if ATTEMPTS in table.columns
            else spark.createDataFrame([], "id string, content_hash string, _previous int")
        ).localCheckpoint(eager=True)
    attempts = (F.coalesce(F.col("_previous"), F.lit(0)) + 1).cast("int")
    return (refined.join(F.broadcast(state.failed_before), ["id", "content_hash"], "left")
            .withColumn(ATTEMPTS, attempts).drop("_previous"))


def _check_failed(config: PipelineConfig, stats: BatchStats, k: int, n: int) -> None:
    """Raise `TooManyFailed` when more than `max_failed_fraction` of a batch
    failed (checked before the batch is committed)."""
    limit = config.max_failed_fraction
    if limit is None or not stats.refined or stats.failed / stats.refined <= limit:
        return
    raise TooManyFailed(
        f"batch {k + 1} of {n}: {stats.failed} of {stats.refined} documents failed "
        f"({stats.failed / stats.refined:.0%} > max_failed_fraction={limit}); the batch was "
        "not committed (see the engine log; batches committed before are kept)")


def _sync(spark: SparkSession, config: PipelineConfig) -> None:
    with_conflict_retries(lambda _: sync_metrics(spark, config.output, config.metrics),
                          retries=5, what="recording metrics", log=log.warning)


def _cpu_sample(spark: SparkSession, config: PipelineConfig) -> PipelineConfig:
    """Without a GPU, a config with `cpu_sample` refines only that many pending
    documents (unless --limit or --all says otherwise)."""
    names = {s.name for s in config.stages}
    if config.cpu_sample is None or config.limit is not None or \
            not names & {"prox_doc", "prox_chunk"} or has_gpus(spark):
        return config
    return replace(config, limit=config.cpu_sample)


# What the released architecture reads on two CPU cores (measured by
# benchmarks/generation_throughput.py: roughly 80-150 prompt tokens/s).
CPU_PROMPT_TOKENS_PER_SECOND = 100.0


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


def session_for(config: PipelineConfig) -> SparkSession:
    """The cluster's session, or a local one with the config's Spark settings."""
    return job_session("prox-spark-refine", config.partitions, config.spark_conf)


def plan_work(spark: SparkSession, config: PipelineConfig) -> tuple[PipelineConfig, str, Plan]:
    """What a run of `config` would do, read-only: the config as the session
    runs it (tables of a catalog-less session under ./spark-warehouse, the
    CPU sample), its fingerprint, and the plan (`refresh.plan`). Raises
    `ConfigError` for a session without Delta."""
    config = _checked_session(spark, config)
    fp = fingerprint(config)
    log.info("reading %s (%s)", config.input.ref, config.input.format)
    config = _cpu_sample(spark, config)
    return config, fp, plan(spark, config, fp)


def run_pipeline(config: PipelineConfig, spark: SparkSession | None = None) -> RunSummary:
    """Run the whole job: plan, delete what left the source, refine and commit
    in batches, record metrics. A run sets its commits' Delta options in
    `spark`'s SQL conf, so two runs at once in one driver (threads of a
    notebook) each need a session of their own (`spark.newSession()`)."""
    from prox_spark.io.metrics import now

    started = time.monotonic()
    spark = spark or session_for(config)
    config = _checked_session(spark, config)
    run_id = uuid.uuid4().hex[:12]
    planned_at = now()
    seen_version = table_version(spark, config.output)
    config, fp, work = plan_work(spark, config)
    if config.cpu_sample is not None and config.limit == config.cpu_sample:
        _estimate(work)
    log.info("%d documents in (%s), %d to refine in %d batch(es) of up to %d, %d to delete; "
             "fingerprint %s", work.documents_in, work.mode, work.pending_count,
             len(work.bounds), config.commit_every, work.deleted_count, fp)
    if work.pending_count or work.deleted is not None:
        ensure_table(spark, config.output, REFINED_SCHEMA)
    deleted = _delete_gone(spark, config, work, run_id, fp)
    state = _commit_batches(spark, config, work, run_id, fp, planned_at, seen_version)
    totals, skipped = state.total, state.skipped
    work.unpersist()
    if work.deleted is not None:
        work.deleted.unpersist()
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
    if state.held_elsewhere:
        notes.append(f"another run held {state.held_elsewhere} batch(es) when this run "
                     "reached them, so this run took later batches first or waited for them; "
                     "the batches the other run committed, held when reached or not, are "
                     "counted above as committed by another run")
    if not table_exists(spark, config.output):
        notes.append(f"no refined table was written at {config.output}: nothing to refine")
    summary = RunSummary.of(
        totals, fingerprint=fp, documents_in=work.documents_in,
        already_refined=work.documents_in - work.waiting_count,
        wall_seconds=time.monotonic() - started,
        duplicate_records=work.duplicate_records, conflicting_ids=work.conflicting_ids,
        deleted=deleted, batches=state.commits, skipped_batches=skipped,
        source_version=work.refreshed_to, run_id=run_id, notes=tuple(notes),
    )
    _sync(spark, config)
    row = {**run_row(summary), **_provenance(config, work.source_version)}
    with_conflict_retries(
        lambda _: append_rows(spark, [row], METRICS_SCHEMA, config.metrics),
        retries=5, what="recording the run", log=log.warning)
    _report(spark, config)
    return summary


def _checked_session(spark: SparkSession, config: PipelineConfig) -> PipelineConfig:
    """Refuse a session without Delta (`ConfigError` naming `spark`), and
    give catalog tables of a local session, whose catalog dies with it, a
    lasting home under `./spark-warehouse` (see `session.persistent_ref`)."""
    from prox_spark.config import ConfigError
    from prox_spark.session import DeltaMissing, persistent_ref, require_delta

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


def _provenance(config: PipelineConfig, source_version: int | None) -> dict[str, str]:
    """What the run row records for its report: the source as read, the
    settings, and the versions of what decided the output."""
    from prox_spark.report.page import versions

    inp = config.input
    source = {"path": inp.ref.path, "table": inp.ref.table, "format": inp.format,
              "id_column": inp.id_column, "text_column": inp.text_column,
              "cast_text": inp.cast_text, "version": source_version}
    return {"source": json.dumps(source), "versions": json.dumps(versions()),
            "settings": json.dumps(asdict(config), default=str)}


def _report(spark: SparkSession, config: PipelineConfig) -> None:
    """Write the run's HTML report; a report that fails is logged, never fatal."""
    from prox_spark.report.page import write_report

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

