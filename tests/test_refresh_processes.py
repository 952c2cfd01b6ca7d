"""Refreshes as separate jobs: kill -9 at three moments and run again; two jobs
started together on one output; a dead run's claim on the work."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import start_cli
from prox_spark.config import load_config
from prox_spark.run.job import run_pipeline
from refresh_helpers import RULES_JOB, doc, table, write_jsonl

pytestmark = pytest.mark.spark
DOCS = 20
EVERY = 7  # 21 documents (one a duplicate) in 3 batches
LEASE = 30  # seconds a dead run's claim on a batch blocks it


def kill_tree(proc: subprocess.Popen) -> None:
    """kill -9 the job and its Spark JVM and Python workers."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def refined_count(output: str) -> int:
    match = re.search(r"refined now\s+([\d,]+)", output)
    assert match, output[-3000:]
    return int(match.group(1).replace(",", ""))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("corpus")
    rows = [{"id": f"k{i:02d}", "text": doc(i)} for i in range(DOCS)]
    rows += [{"id": "k99", "text": doc(3)}]  # a duplicate, so dedup decisions are compared too
    return write_jsonl(tmp / "corpus.jsonl", rows)


@pytest.fixture(scope="module")
def expected(config_file, spark, corpus, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("uninterrupted")
    config = config_file(tmp, RULES_JOB, source=corpus, commit_every=EVERY)
    run_pipeline(load_config(config), spark)
    return {i: (r.text, r.status, r.duplicate_of) for i, r in table(spark, tmp / "refined").items()}


def run_until(config: Path, cwd: Path, pattern: str, delay: float) -> list[str]:
    """Start the job, kill -9 it `delay` s after a log line matches `pattern`."""
    proc = start_cli("run", config, cwd)
    seen = []
    assert proc.stdout is not None
    for out in proc.stdout:
        seen.append(out)
        if re.search(pattern, out):
            time.sleep(delay)
            kill_tree(proc)
            return seen
    proc.wait()
    pytest.fail(f"never saw {pattern!r}:\n{''.join(seen)[-3000:]}")


def test_a_killed_refresh_resumes_without_loss_or_redone_batches(config_file,
        spark, corpus, expected, tmp_path):
    """Three kills in a row, each followed by a run that resumes: after the
    first commit, during a MERGE, and after the last commit."""
    # A run killed mid-MERGE holds its batch's claim until the lease lapses.
    config = config_file(tmp_path, RULES_JOB, source=corpus, commit_every=EVERY,
                         claim_lease_seconds=LEASE)
    out = tmp_path / "refined"
    total = DOCS + 1
    moments = [(r"batch 1 of \d+ committed", 0.0),      # between two commits
               (r"batch 1 of \d+: writing", 0.5),        # during a MERGE
               (r"batch (\d+) of \1 committed", 0.0)]   # after the last commit
    before = 0
    for pattern, delay in moments:
        seen = run_until(config, tmp_path, pattern, delay)
        committed = sum("committed:" in s for s in seen)
        after = len(table(spark, out)) if (out / "_delta_log").is_dir() else 0
        # Everything committed before the kill is in the table, and a run
        # refines only what was not committed (at most the batch in flight).
        assert after >= before + min(committed * EVERY, total - before)
        first = next(s for s in seen if "to refine in" in s)
        assert f"{total - before} to refine" in first, first
        before = after
    rerun = start_cli("run", config, tmp_path)
    output, _ = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, output[-3000:]
    assert refined_count(output) == total - before
    final = {i: (r.text, r.status, r.duplicate_of) for i, r in table(spark, out).items()}
    assert final == expected
    metrics = spark.read.format("delta").load(str(tmp_path / "refined_metrics")).collect()
    batch_rows = [r for r in metrics if r.kind == "batch"]
    assert len({r.commit_version for r in batch_rows}) == len(batch_rows)
    assert sum(r.refined for r in batch_rows) == total


def test_two_runs_started_together_split_the_work(config_file, spark, corpus, expected, tmp_path):
    """Each run claims a batch before refining it (issue 19): together they
    refine every document once, and the table is one run's."""
    config = config_file(tmp_path, RULES_JOB, source=corpus, commit_every=EVERY)
    jobs = [start_cli("run", config, tmp_path) for _ in range(2)]
    outputs = [job.communicate(timeout=900)[0] for job in jobs]
    codes = [job.returncode for job in jobs]
    assert codes == [0, 0], [o[-3000:] for o in outputs]
    assert sum(refined_count(o) for o in outputs) == DOCS + 1, [o[-3000:] for o in outputs]
    final = {i: (r.text, r.status, r.duplicate_of)
             for i, r in table(spark, tmp_path / "refined").items()}
    assert set(final) == set(expected)
    assert {i: v[:2] for i, v in final.items()} == {i: v[:2] for i, v in expected.items()}
    # The new / changed / refreshed split counts the rows each run committed.
    metrics = spark.read.format("delta").load(str(tmp_path / "refined_metrics")).collect()
    for kind in ("run", "batch"):
        rows = [r for r in metrics if r.kind == kind]
        assert sum(r.new_documents for r in rows) == DOCS + 1, kind
        assert sum(r.changed_documents + r.refreshed_documents for r in rows) == 0, kind


def test_a_dead_runs_claim_blocks_its_batches_only_for_the_lease(config_file,
        spark, corpus, expected, tmp_path, caplog):
    """A run that died holding a claim left its row in the claims table and
    renews it no more: the next run takes the work once the lease lapses."""
    import logging

    from prox_spark.io.claims import claim, claims_ref

    config = load_config(config_file(tmp_path, RULES_JOB, source=corpus, commit_every=EVERY,
                                      claim_lease_seconds=LEASE))
    # The dead run had claimed every id ("" to the end) just before dying.
    assert claim(spark, claims_ref(config.output), "dead-batch", "", None, "dead-run", LEASE)
    with caplog.at_level(logging.INFO, logger="prox_spark"):
        summary = run_pipeline(config, spark)
    # exact_dedup: batches go in id order, so the run waits at the first one.
    assert "batch 1 of 3: being refined by another run; waiting for it" in caplog.text
    assert summary.refined == DOCS + 1
    final = {i: (r.text, r.status, r.duplicate_of)
             for i, r in table(spark, tmp_path / "refined").items()}
    assert final == expected


def test_without_dedup_a_run_takes_the_batches_no_one_holds_first(config_file, spark, corpus,
                                                                  tmp_path, caplog):
    """No dedup stage: batch order does not matter, so the run refines what
    is free and waits at the end for the batch a dead run still holds."""
    import logging

    from prox_spark.io.claims import claim, claims_ref

    config = load_config(config_file(tmp_path, RULES_JOB, source=corpus, commit_every=EVERY,
                                      claim_lease_seconds=LEASE, stages=["c4_quality"]))
    # The dead run held the first batch (ids before k07).
    assert claim(spark, claims_ref(config.output), "dead-batch", "", "k07", "dead-run", LEASE)
    with caplog.at_level(logging.INFO, logger="prox_spark"):
        summary = run_pipeline(config, spark)
    text = caplog.text
    assert "waiting for 1 batch(es) another run is refining" in text
    assert text.index("batch 2 of 3 committed") < text.index("batch 1 of 3 committed")
    assert summary.refined == DOCS + 1
    assert len(table(spark, tmp_path / "refined")) == DOCS + 1



def test_a_lapsed_claim_is_neither_held_nor_renewed(spark, tmp_path):
    """A claim whose lease ran out before its run could know it held it is
    not held, and a renewal never revives a lapsed claim (another run may
    have claimed the range by then): found by a trial with a 20 s lease on
    a machine where a claims-table commit took 47 s."""
    from prox_spark.io.claims import claim, renew
    from prox_spark.refs import TableRef

    ref = TableRef(path=str(tmp_path / "claims"))
    assert not claim(spark, ref, "batch-1", "", None, "slow-run", 0.05)
    assert not renew(spark, ref, "batch-1", "slow-run", 600)
    assert claim(spark, ref, "batch-1", "", None, "other-run", 600)
    assert renew(spark, ref, "batch-1", "other-run", 600)
    assert not claim(spark, ref, "batch-1", "", None, "slow-run", 600)


def test_a_claim_is_renewed_while_other_jobs_hold_every_task_slot(spark, tmp_path):
    """A renewal is a Spark job; claims jobs run in a fair-scheduler pool of
    their own, so a renewal takes the next free task slot instead of waiting
    until every queued task of a long model job has started (with FIFO
    scheduling it finished only after the busy job: a live run's lease could
    lapse behind its own model tasks)."""
    import threading

    from prox_spark.io.claims import claim, in_claims_pool, renew
    from prox_spark.refs import TableRef

    ref = TableRef(path=str(tmp_path / "claims"))
    assert claim(spark, ref, "batch-1", "", None, "busy-run", 600)
    sc = spark.sparkContext
    tasks = sc.defaultParallelism * 15

    def busy() -> None:
        sc.parallelize(range(tasks), tasks).foreach(lambda _: time.sleep(1))

    busy_job = threading.Thread(target=busy)
    busy_job.start()
    while not sc.statusTracker().getActiveJobsIds():
        time.sleep(0.1)
    renewed: list[bool] = []

    def renewal() -> None:
        in_claims_pool(spark)
        renewed.append(renew(spark, ref, "batch-1", "busy-run", 600))

    renewing = threading.Thread(target=renewal)
    renewing.start()
    renewing.join()
    renewed_while_busy = busy_job.is_alive()
    busy_job.join()
    assert renewed == [True]
    assert renewed_while_busy
