"""The local session really has Delta: write, MERGE, read, time travel."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.spark


def test_create_merge_read_and_time_travel(spark, delta_path):
    from delta.tables import DeltaTable

    spark.createDataFrame(
        [(1, "alpha"), (2, "beta"), (3, "gamma")], "id long, text string"
    ).write.format("delta").save(delta_path)

    updates = spark.createDataFrame([(2, "BETA"), (4, "delta")], "id long, text string")
    (
        DeltaTable.forPath(spark, delta_path)
        .alias("t")
        .merge(updates.alias("u"), "t.id = u.id")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )

    now = {r.id: r.text for r in spark.read.format("delta").load(delta_path).collect()}
    assert now == {1: "alpha", 2: "BETA", 3: "gamma", 4: "delta"}

    before = spark.read.format("delta").option("versionAsOf", 0).load(delta_path)
    assert {r.id: r.text for r in before.collect()} == {1: "alpha", 2: "beta", 3: "gamma"}
    history = DeltaTable.forPath(spark, delta_path).history().collect()
    assert [h.operation for h in sorted(history, key=lambda h: h.version)] == ["WRITE", "MERGE"]


def test_session_runs_workers_with_this_interpreter(spark):
    import sys

    ran = spark.sparkContext.parallelize([0], 1).map(lambda _: __import__("sys").executable)
    assert ran.collect() == [sys.executable]
