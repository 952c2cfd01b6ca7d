"""Batch claims: runs started together on one output split the work instead
of each refining every document.

Before refining a batch, a run claims it in the claims table (a Delta table
next to the output, `<output>_claims`): one row per claimed batch, with its
id range [first_id, next_id), the owner run and when the claim lapses. A
claim is one conditional MERGE that inserts the row only when no live claim
overlaps the range (runs that planned at different moments cut different
batches), then a read of whether this run holds it. Two runs claiming
overlapping ranges both read the table before writing, so Delta's
optimistic concurrency lets one MERGE commit and fails the other with a
conflict; the loser finds it does not hold the range and moves on to the
next batch.

While a run refines a batch, a thread renews its claim every third of the
lease (`Holding`), so a live run keeps its batch however long it takes and a
run that dies holding a claim blocks that batch only until the lease lapses
(`claim_lease_seconds`, default 300 s). After its commit a run releases the
claim (the lease ends now). Claims are made one batch ahead and releases in
the background (`BatchClaims`), so a run does not wait on the claims table
between batches.

A renewal is a Spark job: in a session whose task slots all run model
tasks it would wait behind them, and a lease could lapse while the run is
alive and working. Claims jobs therefore run in a fair-scheduler pool of
their own (`CLAIMS_POOL`): with `spark.scheduler.mode=FAIR` (the local
sessions of `session.get_spark`, and Databricks clusters by default) a
claims job takes the next free task slot instead of the slot after the
last queued model task.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from prox_spark.io.delta import (
    CommitConflict,
    TableRef,
    delta_table,
    ensure_table,
    first_line,
    is_missing,
    read_table,
    with_conflict_retries,
)
from prox_spark.io.metrics import now

if TYPE_CHECKING:
    from concurrent.futures import Future

    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
CLAIMS_SCHEMA = ("batch_key string, first_id string, next_id string, owner string, "
                 "claimed_at timestamp, expires_at timestamp")
CLAIMS_POOL = "prox_spark_claims"
__all__ = ["CLAIMS_POOL", "CLAIMS_SCHEMA", "BatchClaims", "Holding", "batch_key", "claim",
           "claims_ref", "in_claims_pool", "release"]

# A live claim (target `c`) whose id range overlaps the new one (`n`); a
# null next_id is the end of the ids.
_OVERLAPS = ("c.expires_at >= n.claimed_at"
             " AND (n.next_id IS NULL OR c.first_id < n.next_id)"
             " AND (c.next_id IS NULL OR n.first_id < c.next_id)")
_MINE = "c.batch_key = n.batch_key AND c.owner = n.owner"


def in_claims_pool(spark: SparkSession) -> None:
    """Send the Spark jobs this thread starts from now on to `CLAIMS_POOL`
    (a local property: other threads keep their pool). Without FAIR
    scheduling the pool is ignored and jobs run in submission order; a
    Spark Connect session has no local properties and is left as it is."""
    try:
        spark.sparkContext.setLocalProperty("spark.scheduler.pool", CLAIMS_POOL)
    except Exception as exc:  # Spark Connect: no SparkContext here
        log.debug("claims jobs stay in the default scheduler pool: %s", exc)


def claims_ref(output: TableRef) -> TableRef:
    """The claims table of a refined table: `<path>_claims` or `<table>_claims`."""
    return output.sibling("_claims")


def batch_key(fingerprint: str, first_id: str, next_id: str | None) -> str:
    """The key of the batch of ids in [first_id, next_id) refined with
    `fingerprint` (next_id None: to the end)."""
    blob = "\x1f".join([fingerprint, first_id, next_id if next_id is not None else "\x00end"])
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _row(spark: SparkSession, key: str, first_id: str, next_id: str | None, owner: str,
         lease_seconds: float) -> DataFrame:
    at = now()
    return spark.createDataFrame(
        [(key, first_id, next_id, owner, at, at + timedelta(seconds=lease_seconds))],
        CLAIMS_SCHEMA)


def claim(spark: SparkSession, ref: TableRef, key: str, first_id: str, next_id: str | None,
          owner: str, lease_seconds: float) -> bool:
    """Claim the ids in [first_id, next_id) (batch `key`) for run `owner` for
    `lease_seconds`; True when this run holds them now.

    One MERGE inserts the claim only when no live claim overlaps the range
    (a lapsed one does not count); its `num_inserted_rows` says whether this
    run now holds it. Of two runs claiming overlapping ranges at once, Delta
    commits one MERGE and fails the other with a conflict; the loser retries,
    finds the live claim and inserts nothing."""
    from pyspark.sql import functions as F

    ensure_table(spark, ref, CLAIMS_SCHEMA)
    at = now()
    row = _row(spark, key, first_id, next_id, owner, lease_seconds)

    def merge(_: int) -> int:
        metrics = (delta_table(spark, ref).alias("c")
                   .merge(row.alias("n"), _OVERLAPS)
                   .whenNotMatchedInsertAll()
                   .execute().collect())
        return int(metrics[0]["num_inserted_rows"]) if metrics else -1

    inserted = -1  # unknown: read who holds the range
    for attempt in range(6):
        try:
            inserted = with_conflict_retries(merge, retries=5, what="claiming a batch",
                                             log=log.debug)
            break
        except CommitConflict:
            break
        except Exception as exc:
            # Another run creating the claims table at this moment.
            if not is_missing(exc) or attempt == 5:
                raise
            time.sleep(0.5 * (attempt + 1))
            ensure_table(spark, ref, CLAIMS_SCHEMA)
    if inserted >= 0 and now() - at < timedelta(seconds=lease_seconds / 2):
        return inserted == 1
    # The MERGE took long against the lease (or kept conflicting): the claim
    # is held when this run's row is there and no other run claimed the
    # range after it (which it can only do once this run's claim lapsed).
    overlapping = F.col("next_id").isNull() | (F.col("next_id") > F.lit(first_id))
    if next_id is not None:
        overlapping = overlapping & (F.col("first_id") < F.lit(next_id))
    found = (read_table(spark, ref).where(overlapping)
             .withColumn("live", F.col("expires_at") > F.current_timestamp()).collect())
    mine = [r for r in found if r.batch_key == key and r.owner == owner]
    if not any(r.live for r in mine):
        # Not there, or it lapsed before this run could know it held it:
        # another run may claim the range at any moment.
        return False
    latest = max(r.claimed_at for r in mine)
    return not any(r.owner != owner and r.claimed_at >= latest for r in found)


def renew(spark: SparkSession, ref: TableRef, key: str, owner: str,
          lease_seconds: float) -> bool:
    """Push this run's claim on `key` `lease_seconds` into the future
    (retried on a conflict with another run's claim or release). Only a
    live claim is renewed: False when it had lapsed (another run may have
    claimed the range since; a lapsed claim is never brought back)."""
    def merge(_: int) -> int:
        metrics = (delta_table(spark, ref).alias("c")
                   .merge(_row(spark, key, "", None, owner, lease_seconds).alias("n"),
                          f"{_MINE} AND c.expires_at >= n.claimed_at")
                   .whenMatchedUpdate(set={"expires_at": "n.expires_at"})
                   .execute().collect())
        return int(metrics[0]["num_updated_rows"]) if metrics else 1

    return with_conflict_retries(merge, retries=5, what="renewing a batch claim",
                                 log=log.debug) > 0


def release(spark: SparkSession, ref: TableRef, key: str, owner: str,
            retries: int = 10) -> None:
    """Delete this run's claim on `key` (its batch is committed) and claims
    that lapsed. The DELETE conflicts with another run's concurrent claim
    (both touch the same small file), so a conflict is retried up to
    `retries` times: a claim left behind would make a run waiting for the
    batch wait out the whole lease. A release that still fails is logged,
    not raised: the claim then lapses with its lease."""
    from pyspark.sql import functions as F

    def delete(_: int) -> None:
        delta_table(spark, ref).delete(
            ((F.col("batch_key") == key) & (F.col("owner") == owner))
            | (F.col("expires_at") < F.lit(now())))

    try:
        with_conflict_retries(delete, retries=retries, what="releasing a batch claim",
                              log=log.debug)
    except Exception as exc:
        log.warning("could not release the claim on a batch (%s); it lapses with its lease",
                    first_line(exc, 200))


class Holding:
    """A claim this run holds on a batch: renewed every third of the lease
    by a daemon thread from `start()` until `finish()`, which releases it.

        holding = Holding(spark, ref, key, run_id, lease_seconds).start()
        try:
            ...  # refine and commit the batch
        finally:
            holding.finish()
    """

    def __init__(self, spark: SparkSession, ref: TableRef, key: str, owner: str,
                 lease_seconds: float, writing: threading.Lock | None = None) -> None:
        self.spark, self.ref, self.key, self.owner = spark, ref, key, owner
        self.lease_seconds = lease_seconds
        # Held around each commit to the claims table: a run's own renewals,
        # claims and releases never conflict with one another.
        self.writing = writing or threading.Lock()
        # Set when a renewal found the claim lapsed: another run may be
        # refining the batch too, so the commit checks the table first.
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="prox-spark-claim",
                                        daemon=True)

    def _renew(self) -> None:
        in_claims_pool(self.spark)
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                with self.writing:
                    renewed = renew(self.spark, self.ref, self.key, self.owner,
                                    self.lease_seconds)
                if not renewed:
                    self.lost = True
                    log.warning("a batch claim lapsed before it was renewed (claims-table "
                                "commits take longer than claim_lease_seconds=%g allows); "
                                "the batch is checked against the table before its commit",
                                self.lease_seconds)
                    return
            except Exception as exc:  # the next renewal tries again
                log.debug("renewing a claim failed: %s", exc)

    def start(self) -> Holding:
        self._thread.start()
        return self

    def finish(self) -> None:
        """Stop renewing and release the claim."""
        self._stop.set()
        self._thread.join(timeout=self.lease_seconds)
        with self.writing:
            release(self.spark, self.ref, self.key, self.owner)


class BatchClaims:
    """A run's claims on its batches, kept off the path between batches:
    the next batch is claimed while the current one is refined
    (`claim_ahead`) and a committed batch is released in the background
    (`release`). One worker thread makes the claims and releases in order,
    and a lock keeps the renewal threads' commits apart from them (two of
    this run's own commits to the claims table would conflict).

        claims = BatchClaims(spark, ref, run_id, lease_seconds)
        ahead = claims.claim_ahead(key, first_id, next_id)   # a Future
        holding = ahead.result()                             # None: another run has it
        ...
        claims.release(holding)
        claims.close()                                       # waits for the releases
    """

    def __init__(self, spark: SparkSession, ref: TableRef, owner: str,
                 lease_seconds: float) -> None:
        from concurrent.futures import ThreadPoolExecutor

        # A session of its own (same SparkContext and catalog, its own SQL
        # conf): the run's thread sets session confs around its commits
        # (Delta's txnAppId/txnVersion and userMetadata), which must never
        # reach a claim made at the same moment.
        self.spark = spark.newSession()
        self.ref, self.owner, self.lease_seconds = ref, owner, lease_seconds
        ensure_table(spark, ref, CLAIMS_SCHEMA)  # here, before any claim is made
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prox-spark-claims",
                                        initializer=in_claims_pool, initargs=(self.spark,))
        # One commit to the claims table at a time from this run (its
        # renewals run in their own threads).
        self._writing = threading.Lock()

    def claim_ahead(self, key: str, first_id: str, next_id: str | None
                    ) -> Future[Holding | None]:
        """Claim a batch in the background: a started `Holding` (renewed from
        the moment it is claimed), or None when another run holds it."""
        def take() -> Holding | None:
            with self._writing:
                held = claim(self.spark, self.ref, key, first_id, next_id, self.owner,
                             self.lease_seconds)
            if not held:
                return None
            return Holding(self.spark, self.ref, key, self.owner, self.lease_seconds,
                           self._writing).start()

        return self._pool.submit(take)

    def release(self, holding: Holding) -> None:
        """Release a claim in the background (see `Holding.finish`)."""
        self._pool.submit(holding.finish)

    def close(self) -> None:
        """Wait for the claims and releases still to be made."""
        self._pool.shutdown(wait=True)
