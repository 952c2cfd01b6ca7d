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
claim (the lease ends now), in the same commit as its claim on the next batch.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from prox_spark.delta import (
    CommitConflict,
    TableRef,
    ensure_table,
    first_line,
    read_table,
    with_conflict_retries,
)
from prox_spark.metrics import now

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
CLAIMS_SCHEMA = ("batch_key string, first_id string, next_id string, owner string, "
                 "claimed_at timestamp, expires_at timestamp")
__all__ = ["CLAIMS_SCHEMA", "Holding", "batch_key", "claim", "claims_ref", "release"]

# A live claim (target `c`) whose id range overlaps the new one (`n`); a
# null next_id is the end of the ids.
_OVERLAPS = ("c.expires_at >= n.claimed_at"
             " AND (n.next_id IS NULL OR c.first_id < n.next_id)"
             " AND (c.next_id IS NULL OR n.first_id < c.next_id)")
_MINE = "c.batch_key = n.batch_key AND c.owner = n.owner"


def claims_ref(output: TableRef) -> TableRef:
    """The claims table of a refined table: `<path>_claims` or `<table>_claims`."""
    if output.path is not None:
        return TableRef(path=output.path.rstrip("/") + "_claims")
    return TableRef(table=f"{output.table}_claims")


def batch_key(fingerprint: str, first_id: str, next_id: str | None) -> str:
    """The key of the batch of ids in [first_id, next_id) refined with
    `fingerprint` (next_id None: to the end)."""
    blob = "\x1f".join([fingerprint, first_id, next_id if next_id is not None else "\x00end"])
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _table(spark: SparkSession, ref: TableRef) -> Any:
    from delta.tables import DeltaTable

    if ref.table is not None:
        return DeltaTable.forName(spark, ref.table)
    return DeltaTable.forPath(spark, str(ref.path))


def _row(spark: SparkSession, key: str, first_id: str, next_id: str | None, owner: str,
         lease_seconds: float) -> DataFrame:
    at = now()
    return spark.createDataFrame(
        [(key, first_id, next_id, owner, at, at + timedelta(seconds=lease_seconds))],
        CLAIMS_SCHEMA)


# The claim MERGE's source: the new claim, and optionally this run's claim on
# the batch it just committed (kind "release"), deleted in the same commit
# with the claims that lapsed.
_SOURCE = f"kind string, {CLAIMS_SCHEMA}"
_CLAIM_OR_RELEASE = (f"(n.kind = 'claim' AND {_OVERLAPS}) OR (n.kind = 'release' AND "
                     f"(({_MINE}) OR c.expires_at < n.claimed_at))")
_INSERT = {name: f"n.{name}" for name in
           ("batch_key", "first_id", "next_id", "owner", "claimed_at", "expires_at")}


def claim(spark: SparkSession, ref: TableRef, key: str, first_id: str, next_id: str | None,
          owner: str, lease_seconds: float, release_key: str | None = None) -> bool:
    """Claim the ids in [first_id, next_id) (batch `key`) for run `owner` for
    `lease_seconds`; True when this run holds them now. `release_key`: this
    run's claim on the batch it has just committed, released in the same
    commit (one Delta commit per batch instead of two).

    One MERGE inserts the claim only when no live claim overlaps the range
    (a lapsed one does not count); its `num_inserted_rows` says whether this
    run now holds it. Of two runs claiming overlapping ranges at once, Delta
    commits one MERGE and fails the other with a conflict; the loser retries,
    finds the live claim and inserts nothing."""
    from pyspark.sql import functions as F

    ensure_table(spark, ref, CLAIMS_SCHEMA)
    at = now()
    expires = at + timedelta(seconds=lease_seconds)
    rows = [("claim", key, first_id, next_id, owner, at, expires)]
    if release_key is not None:
        rows.append(("release", release_key, "", None, owner, at, expires))
    source = spark.createDataFrame(rows, _SOURCE)

    def merge(_: int) -> int:
        metrics = (_table(spark, ref).alias("c")
                   .merge(source.alias("n"), _CLAIM_OR_RELEASE)
                   .whenMatchedDelete(condition="n.kind = 'release'")
                   .whenNotMatchedInsert(condition="n.kind = 'claim'", values=_INSERT)
                   .execute().collect())
        return int(metrics[0]["num_inserted_rows"]) if metrics else 0

    try:
        inserted = with_conflict_retries(merge, retries=5, what="claiming a batch",
                                         log=log.info)
    except CommitConflict:
        if release_key is not None:
            release(spark, ref, release_key, owner)
        inserted = -1  # unknown: read who holds the range
    if inserted >= 0 and now() - at < timedelta(seconds=lease_seconds / 2):
        return inserted == 1
    # The MERGE took long against the lease (or kept conflicting): the claim
    # is held when this run's row is there and no other run claimed the
    # range after it (which it can only do once this run's claim lapsed).
    overlapping = F.col("next_id").isNull() | (F.col("next_id") > F.lit(first_id))
    if next_id is not None:
        overlapping = overlapping & (F.col("first_id") < F.lit(next_id))
    found = read_table(spark, ref).where(overlapping).collect()
    mine = [r.claimed_at for r in found if r.batch_key == key and r.owner == owner]
    return bool(mine) and not any(r.owner != owner and r.claimed_at >= max(mine)
                                  for r in found)


def renew(spark: SparkSession, ref: TableRef, key: str, owner: str,
          lease_seconds: float) -> None:
    """Push this run's claim on `key` `lease_seconds` into the future
    (retried on a conflict with another run's claim or release)."""
    with_conflict_retries(
        lambda _: (_table(spark, ref).alias("c")
                   .merge(_row(spark, key, "", None, owner, lease_seconds).alias("n"), _MINE)
                   .whenMatchedUpdate(set={"expires_at": "n.expires_at"})
                   .execute()),
        retries=5, what="renewing a batch claim", log=log.info)


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
        _table(spark, ref).delete(
            ((F.col("batch_key") == key) & (F.col("owner") == owner))
            | (F.col("expires_at") < F.lit(now())))

    try:
        with_conflict_retries(delete, retries=retries, what="releasing a batch claim",
                              log=log.info)
    except Exception as exc:
        log.warning("could not release the claim on a batch (%s); it lapses with its lease",
                    first_line(exc, 200))


class Holding:
    """A claim this run holds while it refines a batch: renewed every third
    of the lease by a daemon thread, released on exit (on success only when
    `release_on_success`; else the caller releases it, e.g. with its next
    `claim(..., release_key=key)`). A batch that raised is always released.

        with Holding(spark, ref, key, run_id, lease_seconds):
            ...  # refine and commit the batch
    """

    def __init__(self, spark: SparkSession, ref: TableRef, key: str, owner: str,
                 lease_seconds: float, release_on_success: bool = True) -> None:
        self.spark, self.ref, self.key, self.owner = spark, ref, key, owner
        self.lease_seconds = lease_seconds
        self.release_on_success = release_on_success
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="prox-spark-claim",
                                        daemon=True)

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                renew(self.spark, self.ref, self.key, self.owner, self.lease_seconds)
            except Exception as exc:  # the next renewal tries again
                log.debug("renewing a claim failed: %s", exc)

    def __enter__(self) -> Holding:
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.lease_seconds)
        if exc_type is not None or self.release_on_success:
            release(self.spark, self.ref, self.key, self.owner)
