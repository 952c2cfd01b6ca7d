"""One run's batches: claim, refine and commit each, exactly once.

A `Run` owns the run's state (session, config, plan, run id, fingerprint,
stage chain, refined table, tally), so the steps below read top to bottom:

1. `refine_and_commit` claims each batch (`io.claims`) while the one before
   is refined, and hands each refined batch to a committer thread while the
   next is refined (`Committer`). A batch another run holds is left to it
   and waited for at the end, or at once when dedup requires id order.
2. `refine_batch` skips what another writer committed since planning
   (`moved_on`), runs the chain, counts attempts (`with_attempts`) and
   stops a batch that failed too much (`check_failed`).
3. `commit` merges the batch (one MERGE, retried on a conflict, keeping
   only what no other writer committed meanwhile) and accounts for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from prox_spark.config import PipelineConfig
from prox_spark.errors import CommitConflict, CommitFailed, TooManyFailed, first_line
from prox_spark.io.claims import BatchClaims, Holding, batch_key, claims_ref
from prox_spark.io.delta import with_conflict_retries
from prox_spark.io.metrics import BatchStats, batch_metadata, batch_stats, sync_metrics
from prox_spark.progress import progress
from prox_spark.run.plan import Plan
from prox_spark.run.refined_table import RefinedTable
from prox_spark.schema import ATTEMPTS
from prox_spark.stages.chain import StageChain
from prox_spark.stages.model_usage import model_usage
from prox_spark.stages.registry import DEDUP_STAGES, MODEL_STAGES

if TYPE_CHECKING:
    from concurrent.futures import Future

    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("prox_spark")
METRICS_EVERY_SECONDS = 300.0
"""The metrics table is brought up to date from the commits at the end of a
run (a crashed run's batches included), and after a batch when this long has
passed since the last time (each batch's figures are in its own commit)."""


@dataclass
class Tally:
    """What the run's batches have done so far (for the ETA and the totals).
    The committer thread and the run's thread both update it, under `lock`."""

    total: BatchStats = field(default_factory=BatchStats)
    skipped: int = 0
    held_elsewhere: int = 0
    commits: int = 0
    # The output table's version as this run last accounted for it (None:
    # unknown), and whether it has moved on without this run since planning.
    known_version: int | None = None
    moved: bool = False
    failed_before: DataFrame | None = None
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    synced: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def skip(self) -> None:
        """Count a batch another run committed (nothing written by this one)."""
        with self.lock:
            self.skipped += 1


@dataclass
class Refined:
    """Batch `k` refined (`rows`, checkpointed) and counted, not yet committed."""

    k: int
    rows: DataFrame
    stats: BatchStats
    usage: dict[str, Any]
    started: float
    refine_seconds: float
    holding: Holding | None = None


class Committer:
    """Commits refined batches one at a time in a thread of its own, so that
    a batch's MERGE (and its claim's release, and the metrics) overlaps the
    refinement of the next batch: on GPUs the models are not left idle while
    Delta writes. A batch is handed over only once the commit before it has
    succeeded (`submit` raises that commit's error, and the run stops there:
    a later batch was deduplicated against the rows of the one before).

    All of a run's commits to the output and metrics tables go through this
    thread: a commit sets Delta's txnAppId/txnVersion/userMetadata in the
    session's SQL conf, which no other write of the session may see."""

    def __init__(self, commit: Callable[[Refined], None]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._commit = commit
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prox-spark-commit")
        self._pending: tuple[Refined, Future[None]] | None = None

    def in_flight(self) -> Refined | None:
        """The batch handed over whose commit has not been confirmed yet."""
        return self._pending[0] if self._pending is not None else None

    def wait(self) -> None:
        """Wait for the batch in flight; raise its commit's error."""
        if self._pending is not None:
            _, future = self._pending
            self._pending = None
            future.result()

    def submit(self, ready: Refined) -> None:
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


def eta(done: int, total: int, seconds: float) -> str:
    """Time left at the rate so far, e.g. "3m05s", "12s", "0s"."""
    if not done or done >= total:
        return "0s"
    left = seconds / done * (total - done)
    return f"{int(left // 60)}m{int(left % 60):02d}s" if left >= 60 else f"{left:.0f}s"


def release_unused(claims: BatchClaims, claimed: Future[Holding | None]) -> None:
    """Release a batch claimed ahead that this run will not refine (it
    stopped early); a failed claim needs nothing."""
    try:
        holding = claimed.result()
    except Exception as exc:
        log.debug("a claim made ahead failed: %s", exc)
        return
    if holding is not None:
        claims.release(holding)


@dataclass
class Run:
    """One run of `config` over `work` (its plan): what every step shares."""

    spark: SparkSession
    config: PipelineConfig
    work: Plan
    fp: str
    chain: StageChain
    table: RefinedTable
    run_id: str
    planned_at: Any
    tally: Tally = field(default_factory=Tally)

    @property
    def n(self) -> int:
        """How many batches the plan cut."""
        return len(self.work.bounds)

    def id_range(self, k: int) -> tuple[str, str | None]:
        """Batch `k`'s ids: [first, next) (next None: to the end)."""
        bounds = self.work.bounds
        return bounds[k], bounds[k + 1] if k + 1 < len(bounds) else None

    def claim(self, claims: BatchClaims, k: int) -> Future[Holding | None]:
        """Claim batch `k` in the background (None inside: another run holds it)."""
        return claims.claim_ahead(batch_key(self.fp, *self.id_range(k)), *self.id_range(k))

    def delete_gone(self) -> int:
        """Delete the refined rows whose documents left the source; returns
        how many this run deleted."""
        if self.work.deleted is None:
            return 0
        log.info("deleting %d refined rows whose documents left the source",
                 self.work.deleted_count)
        return self.table.delete_gone(self.work.deleted, run_id=self.run_id, fp=self.fp,
                                      id_type=self.work.id_type,
                                      retries=self.config.commit_retries)

    def sync(self) -> None:
        """Bring the metrics table up to date from the refined table's commits."""
        with_conflict_retries(
            lambda _: sync_metrics(self.spark, self.config.output, self.config.metrics),
            retries=5, what="recording metrics", log=log.warning)

    # 1. Claims and the committer.

    def refine_and_commit(self) -> Tally:
        """Claim, refine and commit every batch (see `io.claims`). A batch
        another run holds is left to it while this run takes the next; at
        the end the run waits for those batches: committed by the other run
        (nothing left to do) or claimable again (the other run died and its
        lease lapsed). Each batch is claimed while the one before is refined,
        and committed while the one after is refined (`Committer`).

        With dedup stages a batch is deduplicated against the batches before
        it (lower ids) as committed, so a run goes in id order: it waits for
        a batch another run holds before it refines later ones."""
        in_order = any(s.name in DEDUP_STAGES for s in self.config.stages)
        claims = BatchClaims(self.spark, claims_ref(self.config.output), self.run_id,
                             self.config.claim_lease_seconds)
        committer = Committer(lambda ready: self._commit_and_release(claims, ready))
        next_claim = self.claim(claims, 0) if self.n else None
        waiting: list[int] = []
        failing = True
        try:
            for k in range(self.n):
                assert next_claim is not None
                holding = next_claim.result()
                waited = holding is None and in_order
                if waited:
                    committer.wait()
                    holding = self._wait_for(claims, k)
                next_claim = self.claim(claims, k + 1) if k + 1 < self.n else None
                if holding is None:
                    log.info("batch %d of %d: being refined by another run; taking the next",
                             k + 1, self.n)
                    waiting.append(k)
                    continue
                self._refine_held(claims, committer, k, holding, waited)
            committer.wait()
            self._take_waiting(claims, committer, waiting)
            failing = False
        finally:
            committer.close(failing)
            if next_claim is not None:
                release_unused(claims, next_claim)
            claims.close()
        return self.tally

    def _commit_and_release(self, claims: BatchClaims, ready: Refined) -> None:
        try:
            self.commit(ready)
        finally:
            if ready.holding is not None:
                claims.release(ready.holding)

    def _refine_held(self, claims: BatchClaims, committer: Committer, k: int,
                     holding: Holding, waited: bool = False) -> None:
        """Refine batch `k` (held by this run) and hand it to `committer`,
        which releases the claim after the commit; else release it here."""
        try:
            ready = self.refine_batch(k, waited, holding, committer.in_flight())
            if ready is not None:
                committer.submit(ready)
                return
        except BaseException:
            claims.release(holding)
            raise
        claims.release(holding)

    def _take_waiting(self, claims: BatchClaims, committer: Committer,
                      waiting: list[int]) -> None:
        """Refine the batches another run held when reached, as each becomes
        claimable again (done by the other run, or its lease lapsed)."""
        if not waiting:
            return
        self.tally.held_elsewhere += len(waiting)
        log.info("waiting for %d batch(es) another run is refining (a dead run's claim "
                 "lapses after claim_lease_seconds=%g)", len(waiting),
                 self.config.claim_lease_seconds)
        while waiting:
            time.sleep(min(5.0, self.config.claim_lease_seconds / 4))
            for k in list(waiting):
                holding = self.claim(claims, k).result()
                if holding is not None:
                    waiting.remove(k)
                    self._refine_held(claims, committer, k, holding, waited=True)
                    committer.wait()

    def _wait_for(self, claims: BatchClaims, k: int) -> Holding:
        """Claim batch `k` once the run holding it is done with it (committed,
        or dead and its lease lapsed)."""
        log.info("batch %d of %d: being refined by another run; waiting for it (dedup goes "
                 "in id order; a dead run's claim lapses after claim_lease_seconds=%g)",
                 k + 1, self.n, self.config.claim_lease_seconds)
        self.tally.held_elsewhere += 1
        while True:
            time.sleep(min(5.0, self.config.claim_lease_seconds / 4))
            holding = self.claim(claims, k).result()
            if holding is not None:
                return holding

    # 2. Refining a batch.

    def refine_batch(self, k: int, waited: bool = False, holding: Holding | None = None,
                     in_flight: Refined | None = None) -> Refined | None:
        """Refine batch `k` (claimed by this run) and count it; None when
        there is nothing to commit. When another run held the batch before
        (`waited`) or the table has commits this run has not accounted for,
        the batch is checked against what was committed since planning
        before anything is refined. `in_flight` is the batch before it,
        still being committed: the dedup stages count its rows as committed.
        Raises `TooManyFailed`."""
        started = time.monotonic()
        rows = self.work.batch(k)
        if self.moved_on() or waited:
            rows = self.table.not_done_since(rows, self.fp, self.planned_at)
            if rows.isEmpty():
                self.tally.skip()
                log.info("batch %d of %d: committed by another run, nothing left to do",
                         k + 1, self.n)
                return None
        before = in_flight if in_flight is not None and in_flight.k < k else None
        usage_before = model_usage(self.spark)
        with progress(self.spark, f"batch {k + 1} of {self.n}"):
            refined = self._refined_rows(rows, before.k if before else k,
                                         before.rows if before else None)
            usage = asdict(model_usage(self.spark) - usage_before)
            stats = replace(batch_stats(refined, self.work.previous), **usage)
        if stats.refined == 0:
            self.tally.skip()
            log.info("batch %d of %d: already committed by another run, skipped", k + 1, self.n)
            return None
        self.check_failed(stats, k)
        return Refined(k, refined, stats, usage, started, time.monotonic() - started, holding)

    def _refined_rows(self, rows: DataFrame, first: int, in_flight: DataFrame | None
                      ) -> DataFrame:
        """`rows` through the chain, deduplicated against the table as of
        batch `first` (plus the rows `in_flight`), checkpointed."""
        from pyspark.sql import functions as F

        later = self.work.pending.where(F.col("id") >= F.lit(self.work.bounds[first]))
        stored = (self.table.stored_outputs()
                  if any(s.name in MODEL_STAGES for s in self.config.stages) else None)
        refined = self.chain.apply(rows.repartition(self.config.partitions),
                                   self.table.dedup_keys(later, in_flight), stored)
        return (
            self.with_attempts(refined)
            .withColumn("fingerprint", F.lit(self.fp))
            .withColumn("refined_at", F.current_timestamp())
            # Model output must never be computed twice, even after this
            # session writes to a table the plan reads.
            .localCheckpoint(eager=True)
        )

    def moved_on(self) -> bool:
        """Whether another writer has changed rows of the output table since
        this run planned: from then on every batch is checked against what
        was committed since planning. Sticky, because another run's commit
        may be of any later batch. In a run alone (its own commits, a table
        creation) the check, a scan of the table, is skipped. The versions
        this run's commits made are told apart in the table's history (their
        userMetadata names the run), not counted: a batch may be committing
        in the background."""
        tally = self.tally
        if not tally.moved:
            latest = self.table.version()
            if latest != tally.known_version:
                tally.moved = self.table.changed_by_others(tally.known_version, self.run_id)
                tally.known_version = latest
        return tally.moved

    def with_attempts(self, refined: DataFrame) -> DataFrame:
        """`refined` with `attempts`: how many runs have tried each document
        (same content and fingerprint), this one included. A row the table
        holds as "failed" for the same content and fingerprint is being
        retried. The failed rows are read once per run (this run's batches
        never hold one another's documents)."""
        from pyspark.sql import functions as F

        if self.tally.failed_before is None:
            self.tally.failed_before = self.table.failed_attempts(self.fp)
        attempts = (F.coalesce(F.col("_previous"), F.lit(0)) + 1).cast("int")
        return (refined.join(F.broadcast(self.tally.failed_before), ["id", "content_hash"],
                             "left")
                .withColumn(ATTEMPTS, attempts).drop("_previous"))

    def check_failed(self, stats: BatchStats, k: int) -> None:
        """Raise `TooManyFailed` when more than `max_failed_fraction` of a
        batch failed (checked before the batch is committed)."""
        limit = self.config.max_failed_fraction
        if limit is None or not stats.refined or stats.failed / stats.refined <= limit:
            return
        raise TooManyFailed(
            f"batch {k + 1} of {self.n}: {stats.failed} of {stats.refined} documents failed "
            f"({stats.failed / stats.refined:.0%} > max_failed_fraction={limit}); the batch "
            "was not committed (see the engine log; batches committed before are kept)")

    # 3. Committing a batch.

    def commit(self, ready: Refined) -> None:
        """Commit a refined batch (one MERGE, retried on a Delta conflict)
        and account for it; runs in the committer's thread."""
        k = ready.k
        try:
            stats = with_conflict_retries(
                lambda attempt: self._merge(ready, attempt), retries=self.config.commit_retries,
                what=f"batch {k + 1} of {self.n}", log=log.warning)
        except CommitConflict:
            raise
        except Exception as exc:
            raise CommitFailed(f"batch {k + 1} of {self.n} could not be committed, so no "
                               f"later batch was: {first_line(exc, 400)}") from exc
        self._account(ready, stats)

    def _merge(self, ready: Refined, attempt: int) -> BatchStats:
        """One attempt at merging `ready`. After a conflict, or when this
        run's claim lapsed, only what no other writer committed is kept."""
        todo, stats = ready.rows, ready.stats
        if attempt or (ready.holding is not None and ready.holding.lost):
            todo = self.table.not_done_since(ready.rows, self.fp, self.planned_at)
            stats = replace(batch_stats(todo, self.work.previous), **ready.usage)
            if stats.refined == 0:
                return stats
        meta = batch_metadata(self.run_id, ready.k + 1, self.n, self.fp, stats,
                              time.monotonic() - ready.started, self.work.id_type)
        log.info("batch %d of %d: writing %d documents", ready.k + 1, self.n, stats.refined)
        # Delta skips a commit whose txn version is not above the last one of
        # this app id, so versions count this run's commits (batches can be
        # committed out of id order when another run held one).
        self.table.merge(todo, app_id=f"prox-spark:{self.run_id}",
                         txn_version=self.tally.commits + 1, metadata=meta,
                         id_range=self.id_range(ready.k))
        return stats

    def _account(self, ready: Refined, stats: BatchStats) -> None:
        """Add a committed batch to the tally, log it, and sync the metrics
        when `METRICS_EVERY_SECONDS` have passed."""
        tally, k = self.tally, ready.k
        done = self.work.batch(k).count() if stats.refined == 0 else stats.refined
        with tally.lock:
            if stats.refined:
                tally.commits += 1
            else:  # another run committed all of it first: nothing was written
                tally.skipped += 1
            tally.total = tally.total + stats
            tally.done += done
        seconds = time.monotonic() - ready.started
        log.info("batch %d of %d committed: %d documents, %.1f documents/s, tokens in %d / "
                 "out %d, ETA %s (refine %.1f s, commit %.1f s)", k + 1, self.n,
                 stats.refined, stats.refined / max(seconds, 1e-9), stats.tokens_before,
                 stats.tokens_after,
                 eta(tally.done, self.work.pending_count, time.monotonic() - tally.started),
                 ready.refine_seconds, seconds - ready.refine_seconds)
        if time.monotonic() - tally.synced >= METRICS_EVERY_SECONDS:
            self.sync()
            tally.synced = time.monotonic()
