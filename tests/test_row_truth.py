"""Every row tells the truth (issue 17), on Spark and Delta: failed is not kept
and is retried a bounded number of times, every drop says why, counts after
are of the final text, timestamps are instants whatever the time zone."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from prox_spark.config import load_config
from prox_spark.errors import TooManyFailed
from prox_spark.io.corpus import read_corpus
from prox_spark.io.delta import read_table
from prox_spark.run.job import run_pipeline
from refiner_cases import GOOD, SPAM

pytestmark = pytest.mark.spark

PROSE = "\n".join(
    f"The river number {i} runs past the market and the old mill, with boats that carry "
    "bread to the town." for i in range(6)
)


# The job of these tests, for the `config_file` fixture with `source=`.
JOB = {"spark": {"partitions": 1}, "report": False}


def write_corpus(tmp: Path, lines: list[str]) -> Path:
    corpus = tmp / "corpus.jsonl"
    corpus.write_text("".join(line + "\n" for line in lines))
    return corpus


def rows(*records: dict) -> list[str]:
    return [json.dumps(r) for r in records]


@pytest.fixture
def new_york():
    """This Python process in America/New_York (what Spark's Python side uses
    to convert naive datetimes), restored afterwards."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    yield
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_every_drop_says_why_and_times_are_utc_instants(config_file, spark, tmp_path, new_york):
    from pyspark.sql import functions as F

    lines = [*rows({"id": "a", "text": PROSE}, {"id": "b", "text": PROSE},
                   {"id": "d", "text": "Too short."}), '{"id": "e", "text": oops']
    stages = [{"gopher_quality": {"min_doc_words": 20}}, "exact_dedup"]
    config = load_config(config_file(tmp_path, JOB, source=write_corpus(tmp_path, lines),
                                     stages=stages))
    summary = run_pipeline(config, spark)
    table = {r.id: r for r in read_table(spark, config.output).collect()}
    assert table["a"].status == "kept" and table["a"].drop_reason is None
    assert (table["b"].status, table["b"].drop_reason) == ("dropped", "exact_duplicate")
    assert (table["d"].status, table["d"].drop_reason) == ("dropped", "gopher_short_doc")
    invalid = [r for r in table.values() if r.id not in "abd"]
    assert [(r.status, r.drop_reason) for r in invalid] == [("dropped", "invalid_record")]
    # Counts after are of the final text: a row dropped by a later stage counts 0.
    assert table["b"].words_after == 0 and table["a"].words_after == len(PROSE.split())
    assert summary.words_after == len(PROSE.split())
    assert all(r.truncated is False and r.attempts == 1 for r in table.values())

    # Written under New York time, read as instants: the metrics rows' run_at
    # is the time the rows were refined, not five hours off.
    refined_at = read_table(spark, config.output).agg(F.max("refined_at")).collect()[0][0]
    metrics = read_table(spark, config.metrics)
    gap = metrics.select(F.max(F.abs(F.unix_timestamp("run_at")
                                     - F.unix_timestamp(F.lit(refined_at))))).collect()[0][0]
    assert gap < 600
    assert metrics.where("kind = 'batch'").count() == 1


def _broken_model(tmp: Path) -> str:
    broken = tmp / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama", "hidden_size": "oops"}')
    return str(broken)


def test_failed_rows_are_not_kept_and_are_retried_up_to_max_attempts(config_file, spark, tmp_path):
    engine = {"model": _broken_model(tmp_path), "dtype": "float32", "kv_cache_gib": 0.25}
    lines = rows({"id": "a", "text": GOOD}, {"id": "b", "text": SPAM},
                 {"id": "c", "text": "   "})
    config = load_config(config_file(tmp_path, JOB, source=write_corpus(tmp_path, lines),
                                     doc_model=engine, max_attempts=2))
    first = run_pipeline(config, spark)
    table = {r.id: r for r in read_table(spark, config.output).collect()}
    for i, text in (("a", GOOD), ("b", SPAM)):
        row = table[i]
        assert (row.status, row.text, row.attempts) == ("failed", text, 1)
        assert row.drop_reason == "failed:engine_start"
        assert row.error.startswith("engine failed to start: ")
        assert row.words_after == 0
    assert (table["c"].status, table["c"].drop_reason) == ("dropped", "empty_text")
    assert (first.failed, first.kept, first.dropped) == (2, 0, 1)
    assert "failed" in first.render()
    assert read_corpus(spark, config.output).count() == 0
    batch = read_table(spark, config.metrics).where("kind = 'batch'").collect()
    assert [m.failed for m in batch] == [2]

    second = run_pipeline(config, spark)
    assert (second.refined, second.failed) == (2, 2)
    table = {r.id: r for r in read_table(spark, config.output).collect()}
    assert [table[i].attempts for i in "abc"] == [2, 2, 1]
    third = run_pipeline(config, spark)  # max_attempts reached: they stay failed
    assert third.refined == 0
    assert {r.status for r in read_table(spark, config.output).collect()} == {"failed",
                                                                              "dropped"}


def test_max_failed_fraction_fails_the_run_and_keeps_earlier_batches(config_file, spark, tmp_path):
    from prox_spark.cli import main

    engine = {"model": _broken_model(tmp_path), "dtype": "float32", "kv_cache_gib": 0.25}
    lines = rows({"id": "a1", "text": ""}, {"id": "a2", "text": " "},
                 {"id": "b1", "text": GOOD}, {"id": "b2", "text": SPAM})
    path = config_file(tmp_path, JOB, source=write_corpus(tmp_path, lines), doc_model=engine,
                       commit_every=2, max_failed_fraction=0.5)
    config = load_config(path)
    assert config.max_failed_fraction == 0.5 and config.max_attempts == 3
    with pytest.raises(TooManyFailed, match="batch 2 of 2: 2 of 2 documents failed"):
        run_pipeline(config, spark)
    table = {r.id: r for r in read_table(spark, config.output).collect()}
    assert sorted(table) == ["a1", "a2"]  # the first batch stays committed
    assert main(["run", str(path)]) == 1
    assert sorted(r.id for r in read_table(spark, config.output).collect()) == ["a1", "a2"]


def test_attempt_settings_are_checked(config_file, tmp_path):
    from prox_spark.config import ConfigError

    for extra, field in (({"max_attempts": 0}, "max_attempts"),
                         ({"max_failed_fraction": 1.5}, "max_failed_fraction"),
                         ({"max_failed_fraction": "half"}, "max_failed_fraction")):
        with pytest.raises(ConfigError, match=field):
            load_config(config_file(tmp_path, JOB,
                                    source=write_corpus(tmp_path, rows({"id": "a", "text": PROSE})),
                                    stages=["exact_dedup"], **extra))


def test_failed_rows_are_planned_again_until_max_attempts(config_file, spark, tmp_path):
    lines = rows({"id": "a", "text": PROSE}, {"id": "b", "text": PROSE.replace("river", "road")},
                 {"id": "c", "text": PROSE.replace("river", "lane")})
    config = load_config(config_file(tmp_path, JOB, source=write_corpus(tmp_path, lines),
                                     stages=["exact_dedup"], max_attempts=3))
    assert run_pipeline(config, spark).refined == 3
    # As a run whose engine failed would have left them.
    spark.sql(f"UPDATE delta.`{config.output.path}` SET status = 'failed', text = NULL, "
              "attempts = CASE id WHEN 'a' THEN 1 ELSE 3 END WHERE id IN ('a', 'b')")
    again = run_pipeline(config, spark)
    assert again.refined == 1  # a is retried; b has had its 3 attempts
    table = {r.id: r for r in read_table(spark, config.output).collect()}
    assert (table["a"].status, table["a"].attempts, table["a"].text) == ("kept", 2, PROSE)
    assert (table["b"].status, table["b"].attempts) == ("failed", 3)
    assert (table["c"].status, table["c"].attempts) == ("kept", 1)
    assert read_corpus(spark, config.output).count() == 2
